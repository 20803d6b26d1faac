"""Per-prompt statistics: exact values against a plain-Python reference, window semantics, bad records."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest

from verl_rise.passrate import prompt_index
from verl_rise.passrate.prompt_index import PromptIdCollision, PromptIndex
from verl_rise.passrate.records import RecordBatch, RecordError
from verl_rise.passrate.tracker import PassRateTracker


def _random_records(seed: int, n: int, prompts: int, steps: int):
    rng = np.random.default_rng(seed)
    # Variable-length ids, some sharing long prefixes, some non-ASCII, to exercise the hash padding path.
    names = [f"prompt-{i}" if i % 3 else f"{'x' * 70}é{i}" for i in range(prompts)]
    pid = [names[i] for i in rng.integers(0, prompts, n)]
    step = rng.integers(0, steps + 1, n)
    acc = rng.integers(0, 2, n).astype(float)
    score = 0.9 * acc + 0.1 * rng.integers(0, 2, n)
    return pid, step, acc, score


def _reference(pid, step, acc, score, window_steps):
    """Straight from the definitions in verl_rise.passrate.tracker's docstring."""
    by_prompt = defaultdict(list)
    for p, s, a, sc in zip(pid, step, acc, score):
        by_prompt[p].append((int(s), float(a), float(sc)))
    out = {}
    for p, recs in by_prompt.items():
        latest = max((s - 1) // window_steps for s, _, _ in recs)
        win = [a for s, a, _ in recs if (s - 1) // window_steps == latest]
        solved_steps = [s for s, a, _ in recs if a == 1.0]
        out[p] = {
            "attempts": len(recs),
            "correct": int(sum(a for _, a, _ in recs)),
            "pass_rate": sum(a for _, a, _ in recs) / len(recs),
            "window_attempts": len(win),
            "window_correct": int(sum(win)),
            "window_pass_rate": sum(win) / len(win),
            "mean_score": sum(sc for _, _, sc in recs) / len(recs),
            "first_step_solved": min(solved_steps) if solved_steps else -1,
            "last_step_seen": max(s for s, _, _ in recs),
        }
    return out


def _as_dict(tracker: PassRateTracker):
    rows = tracker.stats_table().to_pylist()
    return {r.pop("prompt_id"): r for r in rows}


def test_statistics_match_plain_python_reference():
    pid, step, acc, score = _random_records(0, 5000, 300, 12)
    tracker = PassRateTracker(window_steps=3)
    for lo in range(0, 5000, 700):  # several batches, so prompts and windows span batches
        tracker.ingest(RecordBatch.from_columns(pid[lo : lo + 700], step[lo : lo + 700], acc[lo : lo + 700],
                                                score[lo : lo + 700], source="test"))
    got, want = _as_dict(tracker), _reference(pid, step, acc, score, 3)
    assert got.keys() == want.keys()
    for p in want:
        for field, value in want[p].items():
            assert got[p][field] == pytest.approx(value), (p, field)
    assert tracker.total_records == 5000


def test_order_and_batching_do_not_change_the_state():
    pid, step, acc, score = _random_records(1, 3000, 100, 9)
    a = PassRateTracker(window_steps=2)
    a.ingest(RecordBatch.from_columns(pid, step, acc, score, source="all"))
    b = PassRateTracker(window_steps=2)
    perm = np.random.default_rng(2).permutation(3000)
    for chunk in np.array_split(perm, 7):
        b.ingest(RecordBatch.from_columns([pid[i] for i in chunk], step[chunk], acc[chunk], score[chunk], source="c"))
    assert a.equals(b)
    assert a.stats_table().num_rows == len(set(pid))


def test_window_is_the_latest_window_with_records_and_late_records_count_overall_only():
    t = PassRateTracker(window_steps=2)  # windows: steps {1,2} -> 0, {3,4} -> 1
    t.ingest(RecordBatch.from_columns(["p"] * 3, [1, 2, 2], [1, 1, 0], [1, 1, 0], source="s"))
    row = _as_dict(t)["p"]
    assert (row["window_attempts"], row["window_correct"]) == (3, 2)
    t.ingest(RecordBatch.from_columns(["p"] * 2, [3, 4], [0, 0], [0, 0], source="s"))
    row = _as_dict(t)["p"]
    assert (row["window_attempts"], row["window_correct"], row["window_pass_rate"]) == (2, 0, 0.0)
    # A late record of window 0 changes the overall totals, not the window.
    t.ingest(RecordBatch.from_columns(["p"], [1], [1], [1], source="s"))
    row = _as_dict(t)["p"]
    assert (row["attempts"], row["correct"]) == (6, 3)
    assert (row["window_attempts"], row["window_correct"]) == (2, 0)
    assert row["first_step_solved"] == 1 and row["last_step_seen"] == 4


def test_step_zero_is_a_window_of_its_own():
    t = PassRateTracker(window_steps=5)
    t.ingest(RecordBatch.from_columns(["p", "p"], [0, 1], [1, 0], [1, 0], source="s"))
    row = _as_dict(t)["p"]
    assert (row["window_attempts"], row["window_correct"]) == (1, 0)


def test_state_round_trip_is_exact():
    pid, step, acc, score = _random_records(3, 2000, 150, 6)
    t = PassRateTracker(window_steps=4)
    t.ingest(RecordBatch.from_columns(pid, step, acc, score, source="s"))
    back = PassRateTracker.from_state_table(t.state_table(), window_steps=4, total_records=t.total_records)
    assert back.equals(t)
    # ... and keeps counting the same way afterwards.
    more = RecordBatch.from_columns(pid[:500], step[:500] + 6, acc[:500], score[:500], source="s")
    t.ingest(more)
    back.ingest(more)
    assert back.equals(t)


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"score": [1.0, 0.5, float("nan")]}, "score", "is NaN"),
        ({"score": [1.0, float("inf"), 0.0]}, "score", "is infinite"),
        ({"acc": [1.0, 0.5, 0.0]}, "acc", "not exactly 0 or 1"),
        ({"step": [1, -3, 2]}, "step", "is negative"),
        ({"step": [1.0, 2.5, 2.0]}, "step", "not an integer"),
        ({"prompt_id": ["a", "", "c"]}, "prompt_id", "is empty"),
        ({"prompt_id": ["a", None, "c"]}, "prompt_id", "is missing"),
    ],
)
def test_bad_records_are_rejected_naming_source_record_and_field(change, field, words):
    cols = {"prompt_id": ["a", "b", "c"], "step": [1, 1, 2], "acc": [1.0, 0.0, 0.0], "score": [1.0, 0.0, 0.1]}
    cols.update(change)
    with pytest.raises(RecordError) as err:
        RecordBatch.from_columns(**cols, source="dumps/7.jsonl")
    msg = str(err.value)
    assert "dumps/7.jsonl" in msg and f"field {field!r}" in msg and words in msg
    bad_index = next(i for i, x in enumerate(cols[field]) if _is_bad(field, x))
    assert f"record {bad_index}" in msg


def _is_bad(field, x):
    if field == "score":
        return not math.isfinite(x)
    if field == "acc":
        return x not in (0.0, 1.0)
    if field == "step":
        return x < 0 or x != int(x)
    return not x


def test_non_string_prompt_id_and_ragged_columns_are_rejected():
    with pytest.raises(RecordError, match="record 1: field 'prompt_id' must be a string"):
        RecordBatch.from_columns(["a", 7], [1, 1], [1, 0], [1, 0], source="s")
    with pytest.raises(RecordError, match="different lengths"):
        RecordBatch.from_columns(["a", "b"], [1], [1, 0], [1, 0], source="s")


def test_prompt_index_maps_distinct_strings_to_distinct_ids_and_unknown_to_minus_one():
    names = ["a", "ab", "a\0", "é", "x" * 8, "x" * 9, "y" * 200, "y" * 199 + "z"]
    index = PromptIndex()
    dense, codes = index.lookup(pa.array(names + names[:3]), add=True)
    assert sorted(dense[codes][: len(names)]) == list(range(len(names)))
    assert list(dense[codes][len(names) :]) == [0, 1, 2]
    assert index.strings().to_pylist() == names
    dense2, codes2 = index.lookup(pa.array(["ab", "nope"]), add=False)
    assert list(dense2[codes2]) == [1, -1]
    rebuilt = PromptIndex.from_strings(index.strings())
    dense3, codes3 = rebuilt.lookup(pa.array(names[::-1]), add=False)
    assert list(dense3[codes3]) == list(range(len(names)))[::-1]


def test_hash_collision_is_an_error_not_a_merge(monkeypatch):
    real = prompt_index.hash_strings

    def colliding(arr, seeds=(0,)):  # the first hash collides for every string, the second does not
        return [np.zeros(len(arr), np.uint64) if s == 0 else h for s, h in zip(seeds, real(arr, seeds))]

    monkeypatch.setattr(prompt_index, "hash_strings", colliding)
    index = PromptIndex()
    with pytest.raises(PromptIdCollision):
        index.lookup(pa.array(["a", "b"]), add=True)
    index.lookup(pa.array(["a"]), add=True)
    with pytest.raises(PromptIdCollision):
        index.lookup(pa.array(["b"]), add=True)
