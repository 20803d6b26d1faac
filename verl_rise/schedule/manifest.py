"""Per-stage manifests: ``<run_dir>/<stage>/manifest.json``, written atomically after every change of state.

A manifest records, for the stage and for each of its steps: the fingerprint (hash of the command, the inputs'
content hashes and the upstream stages' fingerprints), the inputs with their hashes, the outputs, the command as
run, the status (``running``, ``completed``, ``failed``, ``interrupted``, ``killed``), the exit status, the wall time
of every attempt and the log file. The runner skips a step whose manifest entry is ``completed`` with the same
fingerprint and whose outputs exist. Attempts are never dropped: a fresh start after a failure or a kill adds to
the step's history, and attempt ``n`` logs to ``<step>.attempt-<n>.log``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from data_prep.atomic import write_text_atomic

MANIFEST_NAME = "manifest.json"
VERSION = 1

RUNNING, COMPLETED, FAILED, INTERRUPTED = "running", "completed", "failed", "interrupted"
#: The runner died while the attempt ran (kill -9, OOM killer, lost node) and could not record its end; the next run
#: finds it ``running`` with its process gone and marks it so (:func:`mark_killed`).
KILLED = "killed"


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
    #: continued the previous attempt's work (a resumable step); False for a fresh start (outputs removed first).
    resumed: bool = False


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
        """Wall time of all attempts (failed, interrupted and killed ones included)."""
        return sum(a.wall_s or 0.0 for a in self.attempts)

    @property
    def result_wall_s(self) -> float:
        """Wall time of the attempts whose work the current outputs hold: from the last fresh start on (an earlier
        attempt's outputs were removed, so its time bought nothing that is left)."""
        fresh = [i for i, a in enumerate(self.attempts) if not a.resumed]
        return sum(a.wall_s or 0.0 for a in self.attempts[fresh[-1] if fresh else 0:])


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
        return sum(s.result_wall_s if s.status == COMPLETED else 0.0 for s in self.steps.values())

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


def mark_killed(manifest: StageManifest, alive: Callable[[Optional[int], Optional[float]], bool]) -> list[str]:
    """Mark ``killed`` every step whose last attempt is recorded ``running`` but whose process is gone.

    Only valid while holding the run directory's lock (no other runner can be writing these manifests). The
    attempt's end is taken as its log's last write (its last sign of life), or its start when there is no log.

    Args:
        manifest: a stage manifest; changed in place.
        alive: ``alive(pid, pid_started)`` tells whether the attempt's process still runs.

    Returns:
        ``"<step> attempt <n> (pid <pid>)"`` per attempt marked; empty when nothing changed.
    """
    marked = []
    for rec in manifest.steps.values():
        last = rec.attempts[-1] if rec.attempts else None
        if rec.status != RUNNING or last is None or last.status != RUNNING or alive(last.pid, last.pid_started):
            continue
        try:
            end = max(Path(last.log).stat().st_mtime, last.started)
        except OSError:
            end = last.started
        last.status, last.finished, last.wall_s = KILLED, end, end - last.started
        rec.status = KILLED
        marked.append(f"{rec.name} attempt {last.number} (pid {last.pid})")
    if marked and manifest.status == RUNNING:
        manifest.status = KILLED
    return marked


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
