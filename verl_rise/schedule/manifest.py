"""Per-stage manifests: ``<run_dir>/<stage>/manifest.json``, written atomically after every change of state.

A manifest records, for the stage and for each of its steps: the fingerprint (hash of the command, the inputs'
content hashes and the upstream stages' fingerprints), the inputs with their hashes, the outputs, the command as
run, the status (``running``, ``completed``, ``failed``, ``interrupted``), the exit status, the wall time of every
attempt and the log file. The runner skips a step whose manifest entry is ``completed`` with the same fingerprint
and whose outputs exist.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from data_prep.atomic import write_text_atomic

MANIFEST_NAME = "manifest.json"
VERSION = 1

RUNNING, COMPLETED, FAILED, INTERRUPTED = "running", "completed", "failed", "interrupted"


@dataclass
class Attempt:
    """One execution of a step's command."""

    number: int
    started: float
    log: str
    pid: Optional[int] = None
    pid_started: Optional[float] = None
    finished: Optional[float] = None
    wall_s: Optional[float] = None
    exit_status: Optional[int] = None
    status: str = RUNNING


@dataclass
class StepRecord:
    """What the manifest holds about a step."""

    name: str
    fingerprint: str
    command: str
    argv: list[str]
    inputs: dict[str, dict] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    upstream: dict[str, str] = field(default_factory=dict)
    status: str = RUNNING
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        """Wall time of the attempt that completed the step (0 when none did)."""
        done = [a for a in self.attempts if a.status == COMPLETED and a.wall_s is not None]
        return done[-1].wall_s if done else 0.0

    @property
    def total_wall_s(self) -> float:
        """Wall time of all attempts (failed and interrupted ones included)."""
        return sum(a.wall_s or 0.0 for a in self.attempts)


@dataclass
class StageManifest:
    """A stage's manifest (see the module docstring)."""

    stage: str
    fingerprint: str = ""
    status: str = RUNNING
    started: Optional[float] = None
    finished: Optional[float] = None
    steps: dict[str, StepRecord] = field(default_factory=dict)
    version: int = VERSION

    @property
    def wall_s(self) -> float:
        """Sum over steps of the wall time of the attempt that completed each (resumed attempts add up: a
        resumable step's completing attempt only ran the remaining part, so its earlier ones count too)."""
        return sum(s.total_wall_s if s.status == COMPLETED else 0.0 for s in self.steps.values())

    def to_json(self) -> str:
        data = asdict(self)
        data["wall_s"] = self.wall_s
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> "StageManifest":
        steps = {}
        for name, rec in (data.get("steps") or {}).items():
            attempts = [Attempt(**a) for a in rec.pop("attempts", [])]
            steps[name] = StepRecord(**rec, attempts=attempts)
        return cls(stage=data["stage"], fingerprint=data.get("fingerprint", ""), status=data.get("status", RUNNING),
                   started=data.get("started"), finished=data.get("finished"), steps=steps,
                   version=data.get("version", VERSION))


def manifest_path(stage_dir: Path) -> Path:
    return stage_dir / MANIFEST_NAME


def read_manifest(stage_dir: Path) -> Optional[StageManifest]:
    """The stage's manifest, or None when there is none.

    Raises:
        ValueError: the file exists but is not a manifest this version wrote (message names the file).
    """
    path = manifest_path(stage_dir)
    if not path.is_file():
        return None
    try:
        return StageManifest.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: unreadable manifest ({exc}); delete it to rerun the stage") from None


def write_manifest(stage_dir: Path, manifest: StageManifest) -> None:
    """Write the manifest atomically (temp file + rename)."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(manifest_path(stage_dir), manifest.to_json())


def now() -> float:
    return time.time()
