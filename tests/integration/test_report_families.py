"""The per-family effect report: answer counts from verl's greedy dumps, one accuracy column per family of a
held-out set, summary.json's accuracy and buckets, the family-coloured pass-rate histogram, and the demo targets."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from verl_rise.demo.targets import check_targets
from verl_rise.schedule.evaluate import main as evaluate_main
from verl_rise.schedule.report import accuracy_columns, write_report

LEARN, ABSENT = "verl-rise/demo/learnable", "verl-rise/demo/absent"


QUESTION = {LEARN: "What colour? Options: A. red B. blue", ABSENT: "What colour? One word."}


def _held_out(path, rows):
    pq.write_table(pa.Table.from_pylist([
        {"data_source": ds, "reward_model": {"ground_truth": gt}, "extra_info": {"prompt_id": f"p{i}"},
         "prompt": [{"role": "user", "content": f"<image>{QUESTION[ds]}"}]}
        for i, (ds, gt) in enumerate(rows)]), path)


def _metrics(path, step, acc):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {f"val-core/{ds}/acc/mean@1": v for ds, v in acc.items()}
    with open(path, "a") as f:
        f.write(json.dumps({"step": step, "data": data}) + "\n")


def _dump(path, preds, gts, order=(3, 1, 0, 2)):
    """verl's dump lines, in another order than the held-out rows (as the agent loop finishes them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = [LEARN, ABSENT, LEARN, ABSENT]
    path.write_text("".join(json.dumps({"input": f"user\n{QUESTION[ds[i]]}\nassistant\n", "gts": gts[i],
                                        "pred": preds[i], "score": float(preds[i] == gts[i])}) + "\n"
                            for i in order))


@pytest.fixture()
def run_dir(tmp_path):
    """A run directory with eval results for base / RL / SFT on one held-out set of two families, and an export."""
    rows = [(LEARN, "A"), (ABSENT, "red"), (LEARN, "B"), (ABSENT, "blue")]
    held = tmp_path / "test.parquet"
    _held_out(held, rows)
    gts = [gt for _, gt in rows]
    run = tmp_path / "run"
    _metrics(run / "rl" / "metrics" / "a.jsonl", 0, {LEARN: 0.5, ABSENT: 0.0})
    _metrics(run / "rl" / "metrics" / "a.jsonl", 4, {LEARN: 1.0, ABSENT: 0.0})
    _dump(run / "rl" / "val_dumps" / "0.jsonl", ["A", "7", "A", "7"], gts)
    _dump(run / "rl" / "val_dumps" / "4.jsonl", ["A", "", "B", "3"], gts)
    _metrics(run / "eval" / "sft" / "m.jsonl", 0, {LEARN: 1.0, ABSENT: 0.5})
    _dump(run / "eval" / "sft" / "dumps" / "0.jsonl", ["A", "red", "B", "red"], gts)
    argv = ["--out", str(run / "eval" / "results.json"), "--held-out", f"demo_test={held}",
            "--greedy", f"base={run / 'rl' / 'metrics'}@first", "--greedy-dumps", f"base={run / 'rl' / 'val_dumps'}",
            "--greedy", f"rl={run / 'rl' / 'metrics'}@last", "--greedy-dumps", f"rl={run / 'rl' / 'val_dumps'}",
            "--greedy", f"sft={run / 'eval' / 'sft' / 'm.jsonl'}@first",
            "--greedy-dumps", f"sft={run / 'eval' / 'sft' / 'dumps'}"]
    assert evaluate_main(argv) == 0
    export = run / "export"
    export.mkdir()
    buckets = {"hard": [(ABSENT, 0.0), (ABSENT, 0.0), (LEARN, 0.0)], "inconsistent": [(LEARN, 0.25), (LEARN, 0.5)],
               "solved": [(LEARN, 1.0)], "unseen": []}
    for bucket, items in buckets.items():
        pq.write_table(pa.Table.from_pylist([{"data_source": ds, "passrate": r} for ds, r in items],
                                            schema=pa.schema([("data_source", pa.string()), ("passrate", pa.float64())])),
                       export / f"{bucket}.parquet")
    (export / "summary.json").write_text(json.dumps(
        {"prompts_per_bucket": {b: len(v) for b, v in buckets.items()}}))
    return run


def test_answer_counts_per_family_from_the_greedy_dumps(run_dir):
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert results["models"]["base"]["answers"] == {ABSENT: {"7": 2}, LEARN: {"A": 2}}
    assert results["models"]["rl"]["answers"] == {ABSENT: {"(none)": 1, "3": 1}, LEARN: {"A": 1, "B": 1}}
    assert results["models"]["sft"]["answers"][ABSENT] == {"red": 2}


def test_a_dump_that_matches_no_held_out_row_gives_no_counts_and_says_why(run_dir, tmp_path):
    _dump(run_dir / "rl" / "val_dumps" / "4.jsonl", ["A"] * 4, ["C", "red", "A", "blue"], order=(0, 1, 2, 3))
    out = tmp_path / "r.json"
    assert evaluate_main(["--out", str(out), "--held-out", f"demo_test={tmp_path / 'test.parquet'}",
                          "--greedy", f"rl={run_dir / 'rl' / 'metrics'}@last",
                          "--greedy-dumps", f"rl={run_dir / 'rl' / 'val_dumps'}"]) == 0
    rl = json.loads(out.read_text())["models"]["rl"]
    assert "answers" not in rl and "line 1 (ground truth 'C') matches held-out rows of 0 data_sources" in rl[
        "answers_error"]


def test_report_columns_summary_and_plots(run_dir):
    md = write_report(run_dir).read_text()
    assert "| model | demo_test/absent acc | demo_test/learnable acc | avg acc |" in md
    assert "| + RL + SFT (Metis-RISE) | 50.0 | 100.0 | 75.0 |" in md
    assert "| + RL (GRPO) | `(none)` 1, `3` 1 | `A` 1, `B` 1 |" in md
    assert f"| {ABSENT} | 2 | 0 | 0 | 0 |" in md and f"| {LEARN} | 1 | 2 | 1 | 0 |" in md
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    assert summary["accuracy"] == {"base": {"demo_test/absent": 0.0, "demo_test/learnable": 0.5},
                                   "rl": {"demo_test/absent": 0.0, "demo_test/learnable": 1.0},
                                   "rise": {"demo_test/absent": 0.5, "demo_test/learnable": 1.0}}
    assert summary["buckets"] == {"hard": 3, "inconsistent": 2, "solved": 1, "unseen": 0}
    for png in ("accuracy.png", "pass_rate_hist.png"):
        assert (run_dir / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    targets = {t.name: t for t in check_targets(summary)}
    assert targets["RL: learnable >= base + 0.30"].ok  # 1.0 >= 0.8
    assert targets["RL: absent <= 0.05"].ok
    assert targets["sweep: share of absent training prompts in hard"].value == 1.0
    assert targets["sweep: share of learnable training prompts inconsistent or solved"].value == 0.75
    assert not targets["sweep: share of learnable training prompts inconsistent or solved"].ok
    assert targets["SFT: absent >= RL + 0.30"].ok and targets["SFT: learnable >= RL - 0.10"].ok


def test_accuracy_columns_name_a_single_source_set_by_its_name():
    results = {"held_out": {"testmini": {"data_sources": ["MathVision"]},
                            "demo_test": {"data_sources": [ABSENT, LEARN]}}, "data_sources": ["other"]}
    assert accuracy_columns(results) == {"testmini": "MathVision", "demo_test/absent": ABSENT,
                                         "demo_test/learnable": LEARN, "other": "other"}


def test_a_missing_number_fails_its_target():
    targets = check_targets({"accuracy": {"rl": {"demo_test/absent": 0.0}}})
    assert [t.ok for t in targets] == [False, True, False, False, False, False]
    assert targets[0].line().startswith("MISS RL: learnable >= base + 0.30: missing")
