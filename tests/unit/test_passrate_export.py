"""Export: every dataset row in exactly one of hard/inconsistent/solved/unseen, original rows unchanged, the
correct responses of inconsistent prompts, and clear errors for stats that do not fit the dataset."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support._passrate_data import mathvision_parquet
from verl_rise.passrate import cli
from verl_rise.passrate.buckets import BucketThresholds
from verl_rise.passrate.export import ExportError, export
from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
from verl_rise.passrate.records import RecordBatch

OUT_FILES = ("hard.parquet", "inconsistent.parquet", "solved.parquet", "unseen.parquet")


def _k(i: int) -> int:
    """Correct responses (of 8) of inconsistent prompt ``i`` (6..13): 1..7, then 1."""
    return 1 + (i - 6) % 7


def _batch(pid: str, step: int, accs: list[int], responses: list[str] | None = None) -> RecordBatch:
    acc = np.array(accs, float)
    return RecordBatch.from_columns([pid] * len(accs), [step] * len(accs), acc, 0.9 * acc + 0.1,
                                    responses, source="test")


@pytest.fixture
def scenario(tmp_path):
    # Rows 30 and 31 repeat rows 0 and 6: each copy must land in its prompt's bucket.
    dataset, rows = mathvision_parquet(tmp_path, 30, duplicate_rows=(0, 6))
    pids = [r["extra_info"]["prompt_id"] for r in rows]
    rec = PassRateRecorder(PassRateConfig(dir=str(tmp_path / "stats"), window_steps=1, histogram=False))
    for i in range(0, 6):  # hard
        rec.record(_batch(pids[i], 10, [0] * 8, [f"wrong {i}"] * 8))
    for i in range(6, 14):  # inconsistent: _k(i) of 8 correct; the correct texts repeat
        k = _k(i)
        texts = [f"right {i}.{j % max(1, k - 1)}" for j in range(k)] + [f"wrong {i}"] * (8 - k)
        rec.record(_batch(pids[i], 10, [1] * k + [0] * (8 - k), texts))
    rec.record(_batch(pids[6], 2, [1], ["old right answer"]))  # an older window: not a current response
    for i in range(14, 20):  # solved now; prompt 14 was all wrong at step 2 (overall basis: inconsistent)
        rec.record(_batch(pids[i], 10, [1] * 8, [f"right {i}"] * 8))
    rec.record(_batch(pids[14], 2, [0] * 8, ["w"] * 8))
    for i in range(20, 24):  # one attempt only: unseen with min_attempts=2
        rec.record(_batch(pids[i], 10, [1], ["r"]))
    rec.save(10)
    return {"dataset": dataset, "stats": tmp_path / "stats", "out": tmp_path / "out", "rows": rows, "pids": pids}


def _read(out, name):
    return pq.read_table(out / name)


def test_every_row_lands_in_exactly_one_file_with_its_statistics(scenario):
    out = scenario["out"]
    summary = export(scenario["stats"], scenario["dataset"], out, thresholds=BucketThresholds(min_attempts=2),
                     progress=False)
    tables = {name: _read(out, name) for name in OUT_FILES}
    assert {n: t.num_rows for n, t in tables.items()} == {
        "hard.parquet": 7, "inconsistent.parquet": 9, "solved.parquet": 6, "unseen.parquet": 10}
    assert summary["rows"] == 32 == sum(summary["rows_per_bucket"].values())
    assert summary["prompts_per_bucket"] == {"hard": 6, "inconsistent": 8, "solved": 6, "unseen": 10}
    assert summary["duplicate_rows"] == 2
    written = Counter(pid for t in tables.values() for pid in t.column("extra_info").combine_chunks()
                      .field("prompt_id").to_pylist())
    assert written == Counter(scenario["pids"])

    # Original columns are carried through unchanged (images bytes included).
    by_pid = {r["extra_info"]["prompt_id"]: r for r in scenario["rows"]}
    for table in tables.values():
        for row in table.select(["images", "prompt", "extra_info", "reward_model"]).to_pylist():
            orig = by_pid[row["extra_info"]["prompt_id"]]
            assert row["images"] == orig["images"] and row["prompt"] == orig["prompt"]
            assert row["reward_model"] == orig["reward_model"]

    hard = tables["hard.parquet"].to_pylist()
    assert all(r["passrate"] == 0.0 and r["passrate_attempts"] == 8 and r["passrate_bucket"] == "hard" for r in hard)
    assert all(r["passrate_first_step_solved"] is None for r in hard)
    solved = {r["extra_info"]["prompt_id"]: r for r in tables["solved.parquet"].to_pylist()}
    p14 = solved[scenario["pids"][14]]
    assert (p14["passrate"], p14["passrate_overall"], p14["passrate_overall_attempts"]) == (1.0, 0.5, 16)
    assert p14["passrate_first_step_solved"] == 10 and p14["passrate_last_step_seen"] == 10
    unseen = tables["unseen.parquet"].to_pylist()
    assert sorted(r["passrate_attempts"] for r in unseen) == [0] * 6 + [1] * 4
    assert all(r["passrate"] is None for r in unseen if r["passrate_attempts"] == 0)
    assert (out / "summary.json").exists() and json.loads((out / "summary.json").read_text()) == summary
    assert (out / "pass_rate_hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inconsistent_rows_carry_their_distinct_current_correct_responses(scenario):
    out = scenario["out"]
    summary = export(scenario["stats"], scenario["dataset"], out, progress=False)
    rows = _read(out, "inconsistent.parquet").to_pylist()
    assert summary["responses_available"] and summary["inconsistent_prompts_with_responses"] == 8
    for row in rows:
        i = scenario["pids"].index(row["extra_info"]["prompt_id"])
        k = _k(i)
        texts = [c["response"] for c in row["correct_responses"]]
        assert sorted(texts) == sorted({f"right {i}.{j % max(1, k - 1)}" for j in range(k)})
        assert "old right answer" not in texts  # step 2 is outside prompt 6's latest window
        assert all(c["step"] == 10 and c["score"] == pytest.approx(1.0) for c in row["correct_responses"])
        assert row["passrate_correct"] == k


def test_overall_basis_and_thresholds_change_the_split(scenario):
    out = scenario["out"]
    summary = export(scenario["stats"], scenario["dataset"], out, basis="overall",
                     thresholds=BucketThresholds(solved_threshold=0.8, hard_threshold=0.2, min_attempts=1),
                     progress=False)
    # prompt 14: 8/16 overall -> inconsistent; one-attempt prompts (1/1) are now classified (solved).
    # Inconsistent k/8: k=1 (prompt 13) <= 0.2 -> hard; prompt 6 has 2/9 > 0.2; k=7 (prompt 12) >= 0.8 -> solved.
    assert summary["prompts_per_bucket"] == {"hard": 7, "inconsistent": 7, "solved": 10, "unseen": 6}
    assert summary["rows_per_bucket"] == {"hard": 8, "inconsistent": 8, "solved": 10, "unseen": 6}
    inconsistent = {r["extra_info"]["prompt_id"] for r in _read(out, "inconsistent.parquet").to_pylist()}
    assert scenario["pids"][14] in inconsistent


def test_records_of_a_prompt_missing_from_the_dataset_are_an_error(scenario, tmp_path):
    rec = PassRateRecorder(PassRateConfig(dir=str(scenario["stats"]), window_steps=1, histogram=False))
    rec.restore(10)
    rec.record(_batch("not-in-the-dataset", 11, [1, 0]))
    with pytest.raises(ExportError, match=r"1 prompt id\(s\) with records are not in .*train\.parquet.*"
                                          r"not-in-the-dataset"):
        export(scenario["stats"], scenario["dataset"], scenario["out"], progress=False)
    assert not scenario["out"].exists() or not any(scenario["out"].iterdir())


def test_cli_reports_nan_score_naming_the_shard_file(scenario, capsys):
    shard_dir = scenario["stats"] / "records" / "step_0000000011"
    shard_dir.mkdir()
    pq.write_table(pa.table({"prompt_id": [scenario["pids"][0]], "step": [11], "acc": [0.0],
                             "score": [float("nan")]}), shard_dir / "worker-000000.parquet")
    code = cli.main(["export", "--stats", str(scenario["stats"]), "--dataset", str(scenario["dataset"]),
                     "--out", str(scenario["out"]), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "worker-000000.parquet: record 0: field 'score' is NaN" in err


def test_dataset_row_without_prompt_id_is_an_error_naming_the_row(scenario, tmp_path):
    rows = scenario["rows"][:5]
    rows[3] = {**rows[3], "extra_info": {**rows[3]["extra_info"], "prompt_id": None}}
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(scenario["dataset"])), bad)
    empty_stats = tmp_path / "empty_stats"
    PassRateRecorder(PassRateConfig(dir=str(empty_stats)))
    with pytest.raises(ExportError, match=r"bad\.parquet: row 3: extra_info\.prompt_id is missing"):
        export(empty_stats, bad, tmp_path / "o", progress=False)


def test_failed_export_leaves_no_partial_files(scenario, monkeypatch):
    calls = {"n": 0}
    real = pq.ParquetWriter.write_table

    def failing(self, table, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("injected: disk full")
        return real(self, table, *a, **k)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    with pytest.raises(OSError, match="injected"):
        export(scenario["stats"], scenario["dataset"], scenario["out"], progress=False)
    assert sorted(p.name for p in scenario["out"].iterdir()) == []


def test_cli_export_and_summary(scenario, capsys):
    code = cli.main(["export", "--stats", str(scenario["stats"]), "--dataset", str(scenario["dataset"]),
                     "--out", str(scenario["out"]), "--min-attempts", "2", "--quiet"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows_per_bucket"] == {"hard": 7, "inconsistent": 9, "solved": 6, "unseen": 10}
    assert cli.main(["summary", "--dir", str(scenario["stats"]), "--min-attempts", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["buckets"] == {"unseen": 4, "hard": 6, "inconsistent": 8, "solved": 6}
