"""Ingest verl's validation JSONL dumps (the post-RL sweep) into a tracker directory, with the responses.

The sweep runs verl itself (``main_ppo`` with ``trainer.val_only=True``, ``val_kwargs.n=k``, sampling
temperature > 0, :mod:`verl_rise.passrate.sweep_reward`, ``trainer.validation_data_dir=DIR``), so it scales like
training. verl writes ``DIR/<global_step>.jsonl`` (``PPOTrainer._write_generations``, trainer_base.py:1226-1260),
one line per response::

    {"input": str, "output": str, "gts": str, "score": float, "step": int,
     "reward": float, <every key the reward function returned: "score", "acc", "format", "pred", "reason",
     "prompt_id">, "uid": "<uid>_<session>_<index>"}

``reward`` is the canonical reward (``rm_scores`` summed, trainer_base.py:1122-1124), the same value the RL
recorder stores as ``score``; the reward's own ``score`` key overwrites the top-level ``score``. A record is
``(prompt_id, step, acc, reward, output)``. For multi-output agent loops verl dumps every output of a session
with the session's reward; one record per session is kept (the highest ``index``), as verl's validation metrics
count sessions. ``trainer.rollout_data_dir`` dumps carry only ``uid`` and ``score`` (trainer_base.py:1297-1340):
no prompt id, no accuracy, so they cannot be ingested and are rejected with that explanation.

Exactly once: each dump file becomes shards of producer ``dump-<sha256 of its content>``; a marker
``imports/<producer>.json`` is written atomically after the file's last shard. A re-run skips marked files and
deletes the shards of an import that was killed half way before redoing it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from data_prep.atomic import write_text_atomic
from data_prep.records import read_jsonl_lines
from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
from verl_rise.passrate.records import RecordBatch, RecordError
from verl_rise.passrate.store import RecordStore

ROLLOUT_DUMP_HINT = (
    "verl's validation dump holds the reward function's extra keys: run the sweep with "
    "reward.custom_reward_function.path=pkg://verl_rise.passrate.sweep_reward so each line carries prompt_id. "
    "trainer.rollout_data_dir dumps hold only uid and score (trainer_base.py:1297-1340) and cannot be ingested"
)


def _session(uid_key: Any) -> tuple[str, int]:
    if not isinstance(uid_key, str):
        return "", 0
    parts = uid_key.rsplit("_", 2)
    if len(parts) == 3 and parts[2].isdigit():
        return f"{parts[0]}_{parts[1]}", int(parts[2])
    return uid_key, 0


def iter_dump_records(
    path: str | os.PathLike, *, prompt_id_key: str = "prompt_id", chunk_records: int = 50_000
) -> Iterator[RecordBatch]:
    """Stream one verl validation dump as validated record batches (with ``response``).

    Args:
        path: a ``<step>.jsonl`` file written by ``trainer.validation_data_dir``.
        prompt_id_key: the dump column holding the stable prompt id.
        chunk_records: records per yielded batch (bounds memory).

    Yields:
        :class:`RecordBatch` with responses; a session's outputs never straddle two batches.

    Raises:
        RecordError: invalid JSON, a missing field, a non-numeric acc/score, a NaN score, ... naming the file and
            line (``path: line N: ...``).
    """
    path = Path(path)
    cols: dict[str, list] = {"prompt_id": [], "step": [], "acc": [], "score": [], "response": [], "labels": []}
    pending: tuple[str, int, dict, int] | None = None  # (session, index, row, line) of the last line read

    def emit(row: dict, line_no: int) -> None:
        cols["prompt_id"].append(row[prompt_id_key])
        cols["step"].append(row["step"])
        cols["acc"].append(row["acc"])
        cols["score"].append(row["reward"] if "reward" in row else row["score"])
        cols["response"].append(row["output"])
        cols["labels"].append(f"line {line_no}")

    def flush() -> RecordBatch:
        labels = cols.pop("labels")
        batch = RecordBatch.from_columns(**cols, source=str(path), labels=labels)
        for v in cols.values():
            v.clear()
        cols["labels"] = []
        return batch

    for item in read_jsonl_lines(path):
        line_no = item.line
        if item.error is not None:
            raise RecordError(f"{path}: line {line_no}: {item.error}")
        row = item.record
        missing = [k for k in (prompt_id_key, "acc", "step", "output") if k not in row]
        if "reward" not in row and "score" not in row:
            missing.append("reward")
        if missing:
            raise RecordError(
                f"{path}: line {line_no}: missing field(s) {missing} (has {sorted(row)}). {ROLLOUT_DUMP_HINT}"
            )
        for field in ("acc", "reward" if "reward" in row else "score"):
            value = row[field]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RecordError(f"{path}: line {line_no}: field {field!r} is not a number ({value!r})")
        session, index = _session(row.get("uid"))
        if pending is not None and not (session and session == pending[0] and index >= pending[1]):
            emit(pending[2], pending[3])
            if len(cols["step"]) >= chunk_records:
                yield flush()
        pending = (session, index, row, line_no)
    if pending is not None:
        emit(pending[2], pending[3])
    if cols["step"]:
        yield flush()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ingest_dumps(
    paths: list[str | os.PathLike],
    config: PassRateConfig,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Add verl validation dumps to a tracker directory (idempotent) and snapshot the result.

    Args:
        paths: dump files, or directories whose ``*.jsonl`` files are all taken.
        config: tracker settings (``config.dir`` is created when missing).
        progress: show a tqdm bar over the files.

    Returns:
        ``{"files": [{"file", "producer", "records", "status"}], "records": total in the tracker,
        "snapshot_step": int | None}``; status is ``"ingested"`` or ``"already ingested"``.

    Raises:
        RecordError: a bad line (nothing of that file is kept); FileNotFoundError: a path does not exist.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.jsonl")))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"dump not found: {p}")
    store = RecordStore(config.dir)
    imports = store.root / "imports"
    report: list[dict[str, Any]] = []
    for path in tqdm(files, desc="ingesting dumps", unit="file", disable=not progress):
        producer = f"dump-{file_digest(path)[:20]}"
        marker = imports / f"{producer}.json"
        if marker.exists():
            report.append({"file": str(path), "producer": producer, "records": 0, "status": "already ingested"})
            continue
        _delete_producer_shards(store, producer)  # leftovers of an import killed half way
        records, keys = 0, []
        try:
            for batch in iter_dump_records(path, prompt_id_key=config.prompt_id_key):
                keys.extend(store.append(batch, producer=producer))
                records += len(batch)
        except BaseException:
            _delete_producer_shards(store, producer)
            raise
        marker_doc = {"file": str(path), "producer": producer, "records": records, "shards": keys}
        write_text_atomic(marker, json.dumps(marker_doc, indent=2) + "\n")
        report.append({"file": str(path), "producer": producer, "records": records, "status": "ingested"})

    recorder = PassRateRecorder.open_readonly(config)
    steps = [s for s, _ in store.shard_keys()]
    snapshot_step = max(steps) if steps else None
    if snapshot_step is not None:
        recorder.save(snapshot_step)
    return {"files": report, "records": recorder.tracker.total_records, "snapshot_step": snapshot_step}


def _delete_producer_shards(store: RecordStore, producer: str) -> None:
    for _, key in store.shard_keys():
        if key.split("/", 1)[1].rsplit("-", 1)[0] == producer:
            store.shard_path(key).unlink(missing_ok=True)
