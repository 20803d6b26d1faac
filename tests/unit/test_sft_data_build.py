"""The whole build: every input row accounted for, the text-only ratio, dedup, bad inputs, the command line."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.paths import MATHVISION, require
from tests.support.sft_export_fixture import (
    convert_train,
    mathvision_prompt_ids,
    rise,
    write_export,
    write_text_only,
)
from verl_rise.sft_data import records as R
from verl_rise.sft_data.build import BuildConfig, build
from verl_rise.sft_data.cli import main
from verl_rise.sft_data.inputs import SFTInputError

def _count(items, key):
    return dict(Counter(i[key] for i in items))


GOOD = rise("Reading the sequence 100, 90, 80, 70: each number is ten less, so 70 - 10 = 60 comes next.", "60")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("build")
    rl = convert_train(tmp)
    pid = mathvision_prompt_ids(rl)
    buckets = {pid[i]: "hard" for i in ("19", "87", "98", "25")} | {pid["1"]: "inconsistent", pid["3"]: "inconsistent"}
    buckets |= {pid[i]: "unseen" for i in ("12", "15")}
    responses = {pid["1"]: [{"response": GOOD, "score": 1.0, "step": 1}],
                 pid["3"]: [{"response": rise("The kite C has the longest string.", "A"), "score": 1.0, "step": 2}]}
    counts = write_export(rl, tmp / "export", buckets, responses)
    return tmp, rl, pid, counts


def _cfg(tmp, export_dir, **kw):
    return BuildConfig(export_dir=export_dir, out_dir=tmp / kw.pop("name", "out"),
                       expert_files=[require(MATHVISION / "expert_traces.jsonl")], expert_key="mathvision",
                       expert_image_root=MATHVISION, progress=False, **kw)


def test_every_row_and_candidate_is_accounted_for(export, tmp_path):
    tmp, _, pid, counts = export
    text = write_text_only(tmp_path)
    stats = build(_cfg(tmp_path, tmp / "export", text_only=text, text_ratio=0.5))
    out = tmp_path / "out"
    coverage = [json.loads(line) for line in (out / "coverage.jsonl").read_text().splitlines()]
    assert len(coverage) == sum(counts.values()) == 400
    assert _count(coverage, "bucket") == counts
    # Solved/unseen rows are dropped with their bucket as the reason.
    solved = [c for c in coverage if c["bucket"] == "solved"]
    assert _count(solved, "reason") == {"solved_dropped": counts["solved"]}
    assert _count([c for c in coverage if c["bucket"] == "unseen"], "reason") == {"unseen_dropped": 2}
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    sft = pq.read_table(out / "sft.parquet").to_pylist()
    assert stats["sft_rows"] == len(sft)
    for source, c in stats["candidates"].items():
        assert c["in"] == c["kept"] + c["rejected"]
        assert c["kept"] == sum(r["extra_info"]["sft_source"] == source for r in sft)
        assert c["rejected"] == sum(r["source"] == source for r in rejects)
        assert set(c["reject_reasons"]) <= set(R.REASONS)
    # Coverage rows of hard/inconsistent prompts count exactly the SFT rows of their prompt.
    per_prompt = _count([r["extra_info"] for r in sft if r["extra_info"]["sft_source"] != R.TEXT_ONLY],
                            "prompt_id")
    assert {c["prompt_id"]: c["sft_rows"] for c in coverage if c["sft_rows"]} == per_prompt
    # Text-only: ratio 0.5 of the multimodal rows, the rest over_ratio.
    multimodal = len(sft) - stats["rows_by_source"][R.TEXT_ONLY]
    t = stats["text_only"]
    assert t["target"] == round(0.5 * multimodal) and t["kept"] == min(t["target"], t["verified"])
    assert stats["candidates"][R.TEXT_ONLY]["reject_reasons"].get(R.OVER_RATIO, 0) == t["verified"] - t["kept"]
    by_pid = {c["prompt_id"]: c for c in coverage}
    assert by_pid[pid["25"]]["reason"] == "no_expert_response"  # hard, no trace in the file
    assert by_pid[pid["3"]]["reason"] == "no_verified_response"  # its only "correct" response says A; answer C
    assert by_pid[pid["1"]]["status"] == "in_sft" and by_pid[pid["1"]]["by_source"] == {R.SELF_DISTILLED: 1}
    # Nothing half-written is left behind, and the report exists.
    assert not [p for p in out.rglob("*.tmp")]
    assert (out / "stats.png").stat().st_size > 0 and (out / "stats.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "stats.json").read_text())["sft_rows"] == len(sft)


def test_duplicates_across_sources_are_removed(export, tmp_path):
    tmp, _, pid, _ = export
    # An expert file that repeats, for a hard prompt, the exact text another expert file gives.
    trace = next(json.loads(line) for line in (MATHVISION / "expert_traces.jsonl").read_text().splitlines()
                 if json.loads(line)["id"] == "98")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps(trace) + "\n")
    b.write_text(json.dumps(trace) + "\n" + json.dumps(trace) + "\n")
    stats = build(BuildConfig(export_dir=tmp / "export", out_dir=tmp_path / "out", expert_files=[a, b],
                              expert_key="mathvision", expert_image_root=MATHVISION, progress=False))
    c = stats["candidates"][R.EXPERT_FILE]
    assert (c["in"], c["kept"], c["reject_reasons"]) == (3, 1, {R.DUPLICATE: 2})


def test_bad_inputs_name_the_file_row_and_field(export, tmp_path):
    tmp, _, _, _ = export
    src = tmp / "export"
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("hard", "inconsistent", "solved", "unseen"):
        (bad / f"{name}.parquet").write_bytes((src / f"{name}.parquet").read_bytes())
    # Missing file.
    (bad / "unseen.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="unseen.parquet"):
        build(BuildConfig(export_dir=bad, out_dir=tmp_path / "o1", progress=False))
    (bad / "unseen.parquet").write_bytes((src / "unseen.parquet").read_bytes())
    # A row in the wrong file.
    t = pq.read_table(src / "hard.parquet")
    wrong = t.set_column(t.schema.get_field_index("passrate_bucket"), "passrate_bucket",
                         pa.array(["hard"] * (t.num_rows - 1) + ["solved"]))
    pq.write_table(wrong, bad / "hard.parquet")
    with pytest.raises(SFTInputError, match=rf"hard.parquet: row {t.num_rows - 1}: passrate_bucket"):
        build(BuildConfig(export_dir=bad, out_dir=tmp_path / "o2", progress=False))
    # No correct_responses column.
    pq.write_table(t, bad / "hard.parquet")
    inc = pq.read_table(src / "inconsistent.parquet").drop_columns(["correct_responses"])
    pq.write_table(inc, bad / "inconsistent.parquet")
    with pytest.raises(SFTInputError, match="inconsistent.parquet: missing column.*correct_responses"):
        build(BuildConfig(export_dir=bad, out_dir=tmp_path / "o3", progress=False))
    # A row without a ground truth.
    inc = pq.read_table(src / "inconsistent.parquet").to_pylist()
    inc[1]["reward_model"]["ground_truth"] = ""
    pq.write_table(pa.Table.from_pylist(inc, schema=pq.read_schema(src / "inconsistent.parquet")),
                   bad / "inconsistent.parquet")
    with pytest.raises(SFTInputError, match="inconsistent.parquet: row 1: reward_model.ground_truth"):
        build(BuildConfig(export_dir=bad, out_dir=tmp_path / "o4", progress=False))
    assert not (tmp_path / "o4" / "sft.parquet").exists()


def test_command_line(export, tmp_path, capsys):
    tmp, _, _, _ = export
    out = tmp_path / "cli"
    code = main(["build", "--export-dir", str(tmp / "export"), "--out", str(out), "--expert-file",
                 str(MATHVISION / "expert_traces.jsonl"), "--expert-key", "mathvision", "--expert-image-root",
                 str(MATHVISION), "--self-distill-max", "1", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0 and "hard prompts covered: " in printed
    stats = json.loads((out / "stats.json").read_text())
    assert stats["settings"]["self_distill_max"] == 1 and stats["rows_by_source"][R.EXPERT_FILE] > 0
    assert main(["build", "--export-dir", str(tmp_path / "nope"), "--out", str(out), "--no-progress"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["build", "--export-dir", str(tmp / "export"), "--out", str(out), "--endpoint-model", "m"]) == 2
