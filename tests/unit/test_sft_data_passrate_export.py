"""End to end with the REAL pass-rate export (verl_rise.passrate, issue 5): tracker records -> export -> SFT set.

Skipped until verl_rise.passrate is on this branch (it lands on main separately).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.support.paths import MATHVISION, require
from tests.support.sft_export_fixture import convert_train, mathvision_prompt_ids, rise, train_rows
from verl_rise.sft_data import records as R
from verl_rise.sft_data.build import BuildConfig, build

# ImportError, not only ModuleNotFoundError: a shared editable install of another checkout can expose a passrate
# package that needs newer sibling modules than this branch has.
passrate_export = pytest.importorskip("verl_rise.passrate.export", exc_type=ImportError)


def test_real_export_feeds_the_builder(tmp_path):
    from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
    from verl_rise.passrate.records import RecordBatch

    rl = convert_train(tmp_path)
    pid = mathvision_prompt_ids(rl)
    rows = train_rows(rl)
    rec = PassRateRecorder(PassRateConfig(dir=str(tmp_path / "stats"), window_steps=1, histogram=False))

    def record(mv_id, accs, texts):
        acc = np.array(accs, float)
        rec.record(RecordBatch.from_columns([pid[mv_id]] * len(accs), [4] * len(accs), acc, 0.9 * acc + 0.1, texts,
                                            source="test"))

    hard = ("19", "87", "98")  # all have real expert traces
    for i in hard:
        record(i, [0, 0, 0, 0], ["wrong"] * 4)
    gt = rows["1"]["reward_model"]["ground_truth"]
    good = rise("Each number is ten less than the one before it: 70 - 10 = 60.", gt)
    # The tracker was told acc=1 for the second response too; the RISE reward says it is wrong.
    record("1", [1, 1, 0, 0], [good, rise("Each number is ten less, so it is 50.", "50"), "w", "w"])
    record("12", [1, 1, 1, 1], ["r"] * 4)  # solved
    rec.save(4)
    summary = passrate_export.export(tmp_path / "stats", rl, tmp_path / "export", progress=False)
    assert summary["prompts_per_bucket"]["hard"] == 3 and summary["prompts_per_bucket"]["inconsistent"] == 1

    stats = build(BuildConfig(export_dir=tmp_path / "export", out_dir=tmp_path / "sft",
                              expert_files=[require(MATHVISION / "expert_traces.jsonl")], expert_key="mathvision",
                              expert_image_root=MATHVISION, progress=False))
    sd = stats["candidates"][R.SELF_DISTILLED]
    assert (sd["in"], sd["kept"], sd["reject_reasons"]) == (2, 1, {R.NOT_CORRECT: 1})
    assert stats["coverage"]["hard"]["prompts"] == 3 and stats["coverage"]["hard"]["covered"] == 3
    assert stats["input_rows"] == {k: v for k, v in summary["rows_per_bucket"].items()}
    sft = pq.read_table(tmp_path / "sft" / "sft.parquet").to_pylist()
    self_rows = [r for r in sft if r["extra_info"]["sft_source"] == R.SELF_DISTILLED]
    assert [r["messages"][-1]["content"] for r in self_rows] == [good]
    assert self_rows[0]["extra_info"]["passrate"] == 0.5
    coverage = [json.loads(line) for line in (tmp_path / "sft" / "coverage.jsonl").read_text().splitlines()]
    assert len(coverage) == summary["rows"]
