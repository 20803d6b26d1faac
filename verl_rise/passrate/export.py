"""Export the Metis-RISE data split: the original dataset rows, bucketed by pass rate, with their statistics.

``python -m verl_rise.passrate export --stats DIR --dataset train.parquet --out OUT`` writes

* ``OUT/hard.parquet``, ``OUT/inconsistent.parquet``, ``OUT/solved.parquet``, ``OUT/unseen.parquet``: every row of
  the dataset parquet, unchanged, in exactly one of the four files (unseen: fewer than ``min_attempts``
  attempts, including prompts never drawn), with the statistics columns :data:`STAT_COLUMNS` appended;
  ``inconsistent.parquet`` also has ``correct_responses`` (list of ``{response, score, step}``, distinct texts,
  from records that carry responses, e.g. the post-RL sweep; empty when none do);
* ``OUT/summary.json``: row and prompt counts per bucket (they add up to the dataset's rows), settings, inputs;
* ``OUT/pass_rate_hist.png``: the histogram over the dataset's prompts.

Metis-RISE (arXiv 2506.13056, Sec. "SFT Enhancement") uses inconsistent prompts with the model's own correct
responses (self-distillation) and hard prompts with expert trajectories; solved prompts are dropped.

Every file is written atomically; ``summary.json`` is written last, so its presence marks a complete export.
Records whose prompt_id is not in the dataset are an error (the stats and the dataset do not belong together),
as is a record with a NaN score or a dataset row without a prompt id.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from data_prep.atomic import atomic_path, write_text_atomic
from verl_rise.passrate.buckets import BUCKET_NAMES, HARD, INCONSISTENT, SOLVED, UNSEEN, BucketThresholds
from verl_rise.passrate.prompt_index import PromptIdCollision, hash_strings
from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
from verl_rise.passrate.store import RecordStore

STAT_COLUMNS = (
    ("passrate_bucket", pa.string()),
    ("passrate", pa.float64()),  # on the chosen basis; null when unseen
    ("passrate_attempts", pa.int64()),
    ("passrate_correct", pa.int64()),
    ("passrate_overall", pa.float64()),
    ("passrate_overall_attempts", pa.int64()),
    ("passrate_overall_correct", pa.int64()),
    ("passrate_window", pa.float64()),
    ("passrate_window_attempts", pa.int64()),
    ("passrate_window_correct", pa.int64()),
    ("passrate_mean_score", pa.float64()),
    ("passrate_first_step_solved", pa.int64()),  # null: never solved
    ("passrate_last_step_seen", pa.int64()),  # null: never seen
)
RESPONSES_COLUMN = "correct_responses"
RESPONSE_TYPE = pa.list_(pa.struct([("response", pa.string()), ("score", pa.float64()), ("step", pa.int64())]))
OUTPUT_FILES = {HARD: "hard.parquet", INCONSISTENT: "inconsistent.parquet", SOLVED: "solved.parquet",
                UNSEEN: "unseen.parquet"}


class ExportError(ValueError):
    """The stats and the dataset do not fit together (unknown prompt ids, rows without a prompt id, ...)."""


def stats_window_steps(stats_dir: str | os.PathLike) -> int:
    """``window_steps`` the newest snapshot of a tracker directory was counted with (1 when it has none)."""
    store = RecordStore(stats_dir, create=False)
    steps = store.snapshot_steps()
    if steps:
        return int(store.snapshot_meta(steps[-1])["window_steps"])
    return 1


def _prompt_ids(batch: pa.RecordBatch, dataset: Path, key: str, first_row: int) -> pa.StringArray:
    extra = batch.column("extra_info")
    if not pa.types.is_struct(extra.type) or extra.type.get_field_index(key) < 0:
        raise ExportError(f"{dataset}: column extra_info has no field {key!r} (type {extra.type}); "
                          "write the dataset with data_prep")
    pid = pc.struct_field(extra, key)
    if not pa.types.is_string(pid.type):
        pid = pid.cast(pa.string())
    bad = pc.or_kleene(pc.is_null(pid), pc.equal(pc.binary_length(pid), 0))
    if pc.any(bad).as_py():
        row = first_row + int(np.flatnonzero(np.asarray(bad.fill_null(True)))[0])
        raise ExportError(f"{dataset}: row {row}: extra_info.{key} is missing or empty")
    return pid


class _Stats:
    """Per-prompt columns of the tracker, gathered by dense id (-1: not in the tracker)."""

    def __init__(self, rec: PassRateRecorder) -> None:
        t = rec.tracker
        n = t.num_prompts
        self.codes = rec.classify()
        # Views of the tracker's int32 arrays; widened per row batch, not copied whole.
        self.basis_att, self.basis_cor = t.counts(rec.config.basis)
        self.att, self.cor = t.counts("overall")
        self.watt, self.wcor = t.counts("window")
        self.score_sum = t.score_sum[:n]
        self.first = t.first_solved[:n]
        self.last = t.last_seen[:n]
        self.never_solved = np.iinfo(np.int32).max

    def columns(self, dense: np.ndarray) -> tuple[list[pa.Array], np.ndarray]:
        seen = dense >= 0
        d = np.where(seen, dense, 0)

        def take(arr: np.ndarray, fill: int = 0) -> np.ndarray:
            if not len(arr):
                return np.full(len(dense), fill, np.int64)
            return np.where(seen, arr[d], fill).astype(np.int64 if arr.dtype.kind in "iu" else arr.dtype)

        codes = np.where(seen, self.codes[d], UNSEEN) if len(self.codes) else np.full(len(dense), UNSEEN)
        att, cor = take(self.basis_att), take(self.basis_cor)
        oatt, ocor, watt, wcor = take(self.att), take(self.cor), take(self.watt), take(self.wcor)

        def rate(c: np.ndarray, a: np.ndarray) -> pa.Array:
            return pa.array(c / np.maximum(a, 1), mask=a == 0)

        score = take(self.score_sum)
        first = take(self.first, self.never_solved)
        never = first == self.never_solved
        cols = [
            pa.array(np.asarray(BUCKET_NAMES, dtype=object)[codes], pa.string()),
            rate(cor, att),
            pa.array(att),
            pa.array(cor),
            rate(ocor, oatt),
            pa.array(oatt),
            pa.array(ocor),
            rate(wcor, watt),
            pa.array(watt),
            pa.array(wcor),
            pa.array(score / np.maximum(oatt, 1), mask=oatt == 0),
            pa.array(first, mask=never),
            pa.array(take(self.last), mask=oatt == 0),
        ]
        return cols, codes


def _correct_responses(rec: PassRateRecorder, max_responses: int) -> tuple[dict[int, list[dict]], bool]:
    """Distinct correct responses of inconsistent prompts, from the shards that carry responses.

    With the ``window`` basis only records of the prompt's latest window count (the same records its pass rate
    comes from). Returns ``({dense id: [{response, score, step}, ...]}, any shard had responses)``.
    """
    store, tracker = rec.store, rec.tracker
    codes = rec.classify()
    found: dict[int, list[dict]] = {}
    seen_text: dict[int, set[str]] = {}
    any_responses = False
    for _, key in store.shard_keys():
        if not store.shard_has_responses(key):
            continue
        any_responses = True
        batch = store.read_shard(key)
        keep = batch.acc == 1.0
        if not keep.any():
            continue
        dense_u, codes_local = tracker.index.lookup(batch.prompt_id.filter(pa.array(keep)), add=False)
        dense = dense_u[codes_local]
        steps, scores = batch.step[keep], batch.score[keep]
        texts = batch.response.filter(pa.array(keep)).to_pylist()
        for d, text, score, step in zip(dense, texts, scores, steps):
            if d < 0 or codes[d] != INCONSISTENT or text is None:
                continue
            if rec.config.basis == "window" and tracker.window_of(step) != tracker.window_of(tracker.last_seen[d]):
                continue
            bucket = seen_text.setdefault(int(d), set())
            if text in bucket or (max_responses and len(bucket) >= max_responses):
                continue
            bucket.add(text)
            found.setdefault(int(d), []).append({"response": text, "score": float(score), "step": int(step)})
    return found, any_responses


@dataclass
class _RowMap:
    """Pass 1 of the export: each dataset row's tracker id and each distinct prompt's, checked against the stats."""

    total_rows: int
    row_dense: np.ndarray  # per dataset row: the tracker's dense prompt id, -1 when the prompt has no records
    prompt_dense: np.ndarray  # per distinct dataset prompt (first row of each), the same
    duplicate_rows: int


def _check_schema(schema: pa.Schema, dataset: Path) -> None:
    clash = [name for name, _ in STAT_COLUMNS if name in schema.names] + (
        [RESPONSES_COLUMN] if RESPONSES_COLUMN in schema.names else []
    )
    if clash:
        raise ExportError(f"{dataset}: already has column(s) {clash}; export would overwrite them")
    if "extra_info" not in schema.names:
        raise ExportError(f"{dataset}: no extra_info column; write the dataset with data_prep")


def _map_rows(parquet: pq.ParquetFile, rec: PassRateRecorder, dataset: Path, stats_dir: Path, prompt_id_key: str,
              batch_size: int, progress: bool) -> _RowMap:
    """Read only the prompt ids; check that every tracked prompt is in the dataset before anything is written.

    Raises:
        ExportError: a row without a prompt id, or tracked prompt ids missing from the dataset.
        PromptIdCollision: two different ids of the dataset share a 64-bit hash.
    """
    dense_parts, key_parts, check_parts = [], [], []
    row = 0
    for batch in tqdm(parquet.iter_batches(batch_size=batch_size, columns=["extra_info"]),
                      desc="checking prompt ids", unit="batch", disable=not progress):
        pid = _prompt_ids(batch, dataset, prompt_id_key, row)
        dense_u, codes = rec.tracker.index.lookup(pid, add=False)
        dense_parts.append(dense_u[codes].astype(np.int32))
        key, check = hash_strings(pid, seeds=(0, 1))
        key_parts.append(key)
        check_parts.append(check)
        row += batch.num_rows
    row_dense = np.concatenate(dense_parts) if dense_parts else np.empty(0, np.int32)
    row_key = np.concatenate(key_parts) if key_parts else np.empty(0, np.uint64)
    row_check = np.concatenate(check_parts) if check_parts else np.empty(0, np.uint64)
    in_dataset = np.zeros(rec.tracker.num_prompts, bool)
    in_dataset[row_dense[row_dense >= 0]] = True
    if not in_dataset.all():
        unknown = rec.tracker.index.strings().filter(pa.array(~in_dataset)).to_pylist()
        raise ExportError(
            f"{stats_dir}: {len(unknown)} prompt id(s) with records are not in {dataset} "
            f"(e.g. {unknown[:5]}): the stats were recorded on another dataset"
        )
    _, first_row, row_prompt = np.unique(row_key, return_index=True, return_inverse=True)
    if not np.array_equal(row_check, row_check[first_row][row_prompt.reshape(-1)]):
        raise PromptIdCollision(f"{dataset}: two different prompt ids have the same 64-bit hash")
    return _RowMap(row, row_dense, row_dense[first_row].astype(np.int64), row - len(first_row))


def _write_buckets(parquet: pq.ParquetFile, rows: _RowMap, stats: "_Stats", responses: dict[int, list[dict]],
                   out_dir: Path, batch_size: int, progress: bool) -> dict[int, int]:
    """Pass 2: every dataset row, with its pass-rate columns, into exactly one bucket file (atomically).

    Returns:
        Rows written per bucket code.
    """
    schema = parquet.schema_arrow
    base_schema = pa.schema(list(schema) + [pa.field(name, typ) for name, typ in STAT_COLUMNS],
                            metadata=schema.metadata)
    rows_written = dict.fromkeys(OUTPUT_FILES, 0)
    with ExitStack() as stack:
        writers = {}
        for code, name in OUTPUT_FILES.items():
            tmp = stack.enter_context(atomic_path(out_dir / name))
            out_schema = base_schema
            if code == INCONSISTENT:
                out_schema = base_schema.append(pa.field(RESPONSES_COLUMN, RESPONSE_TYPE))
            writers[code] = pq.ParquetWriter(tmp, out_schema)
            stack.callback(writers[code].close)
        row = 0
        for batch in tqdm(parquet.iter_batches(batch_size=batch_size), desc="writing buckets", unit="batch",
                          disable=not progress):
            dense = rows.row_dense[row : row + batch.num_rows].astype(np.int64)
            cols, codes = stats.columns(dense)
            table = pa.Table.from_batches([batch])
            for (name, _), col in zip(STAT_COLUMNS, cols):
                table = table.append_column(name, col)
            for code, writer in writers.items():
                mask = codes == code
                if not mask.any():
                    continue
                part = table.filter(pa.array(mask))
                if code == INCONSISTENT:
                    found = [responses.get(int(d), []) for d in dense[mask]]
                    part = part.append_column(RESPONSES_COLUMN, pa.array(found, RESPONSE_TYPE))
                writer.write_table(part)
                rows_written[code] += int(mask.sum())
            row += batch.num_rows
    if sum(rows_written.values()) != rows.total_rows:
        raise RuntimeError(f"export lost rows: wrote {rows_written}, dataset has {rows.total_rows}")
    return rows_written


def export(
    stats_dir: str | os.PathLike,
    dataset: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    thresholds: BucketThresholds = BucketThresholds(),
    basis: str = "window",
    window_steps: int | None = None,
    prompt_id_key: str = "prompt_id",
    max_responses: int = 0,
    row_batch_size: int = 1024,
    progress: bool = True,
) -> dict[str, Any]:
    """Split a dataset parquet by pass rate (see the module docstring).

    Args:
        stats_dir: a tracker directory (written during RL by the verl hooks, or by ``ingest-dumps``).
        dataset: the RL parquet written by data_prep (``extra_info.<prompt_id_key>`` on every row).
        out_dir: output directory (created).
        thresholds: bucket edges; basis: ``"window"`` or ``"overall"`` pass rate for the buckets.
        window_steps: must match how the stats were counted; default: the newest snapshot's value (else 1).
        max_responses: most distinct correct responses kept per inconsistent prompt (0: all).
        row_batch_size: dataset rows read at a time (bounds memory with image bytes).
        progress: show tqdm bars.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        FileNotFoundError: ``stats_dir`` or ``dataset`` missing.
        ExportError: prompt ids with records that are not in the dataset; a dataset row without a prompt id;
            an output column name already in the dataset.
        RecordError: a record with a NaN score (or any bad record), naming the shard file and record.
    """
    stats_dir, dataset, out_dir = Path(stats_dir), Path(dataset), Path(out_dir)
    if not dataset.is_file():
        raise FileNotFoundError(f"dataset parquet not found: {dataset}")
    if not stats_dir.is_dir():
        raise FileNotFoundError(f"pass-rate stats directory not found: {stats_dir}")
    config = PassRateConfig(
        dir=str(stats_dir),
        window_steps=window_steps or stats_window_steps(stats_dir),
        basis=basis,
        solved_threshold=thresholds.solved_threshold,
        hard_threshold=thresholds.hard_threshold,
        min_attempts=thresholds.min_attempts,
        prompt_id_key=prompt_id_key,
        histogram=False,
    )
    rec = PassRateRecorder.open_readonly(config)
    stats = _Stats(rec)
    parquet = pq.ParquetFile(dataset)
    _check_schema(parquet.schema_arrow, dataset)
    rows = _map_rows(parquet, rec, dataset, stats_dir, prompt_id_key, row_batch_size * 8, progress)
    responses, responses_available = _correct_responses(rec, max_responses)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows_written = _write_buckets(parquet, rows, stats, responses, out_dir, row_batch_size, progress)

    # Per distinct dataset prompt: bucket counts and the histogram.
    prompt_dense = rows.prompt_dense
    _, prompt_codes = stats.columns(prompt_dense)
    att, cor = stats.basis_att, stats.basis_cor
    seen = prompt_dense >= 0
    pass_rate = np.full(len(prompt_dense), np.nan)
    pass_rate[seen] = cor[prompt_dense[seen]] / np.maximum(att[prompt_dense[seen]], 1)
    from verl_rise.passrate.plots import write_histogram

    write_histogram(out_dir / "pass_rate_hist.png", pass_rate, prompt_codes.astype(np.int8), thresholds,
                    f"pass rates of {dataset.name} ({basis} basis)")
    inconsistent_prompts = prompt_dense[prompt_codes == INCONSISTENT]
    summary = {
        "dataset": str(dataset),
        "stats": str(stats_dir),
        "rows": rows.total_rows,
        "rows_per_bucket": {BUCKET_NAMES[c]: n for c, n in rows_written.items()},
        "prompts": int(len(prompt_dense)),
        "prompts_per_bucket": {BUCKET_NAMES[c]: int((prompt_codes == c).sum()) for c in range(4)},
        "duplicate_rows": rows.duplicate_rows,
        "records": int(rec.tracker.total_records),
        "responses_available": responses_available,
        "inconsistent_prompts_with_responses": int(sum(int(d) in responses for d in inconsistent_prompts)),
        "settings": {
            "basis": basis,
            "window_steps": config.window_steps,
            "solved_threshold": thresholds.solved_threshold,
            "hard_threshold": thresholds.hard_threshold,
            "min_attempts": thresholds.min_attempts,
            "max_responses": max_responses,
            "prompt_id_key": prompt_id_key,
        },
        "files": {BUCKET_NAMES[c]: name for c, name in OUTPUT_FILES.items()} | {"histogram": "pass_rate_hist.png"},
    }
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


__all__ = ["ExportError", "STAT_COLUMNS", "export"]
