"""Broken input files never crash a reader: a line that is not UTF-8 (or not JSON) becomes a rejected row naming the
file, the line and the reason, and every line is counted (issue 14, item 8)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import MATHVISION, REPO_ROOT, require
from tests.support.sft_export_fixture import convert_train, mathvision_prompt_ids, write_export
from verl_rise.scoring import read_rows, score_rows
from verl_rise.sft_data import records as R
from verl_rise.sft_data.build import BuildConfig, build
from verl_rise.sft_data.expert_file import read_expert_file

# Latin-1 "é" and a lone continuation byte: what a file saved by a non-UTF-8 editor or cut mid-character holds.
NOT_UTF8 = b'{"prompt_id": "p1", "response": "caf\xe9 \x80"}\n'


def _trace(trace_id: str) -> dict:
    lines = (require(MATHVISION / "expert_traces.jsonl")).read_text().splitlines()
    return next(json.loads(line) for line in lines if json.loads(line)["id"] == trace_id)


def test_expert_file_reader_rejects_a_non_utf8_line_and_reads_on(tmp_path):
    path = tmp_path / "expert.jsonl"
    good = json.dumps({"prompt_id": "p2", "response": "fine"}).encode()
    path.write_bytes(good + b"\n" + NOT_UTF8 + b"not json\n" + good + b"\n")
    items = list(read_expert_file(path))
    assert len(items) == 4  # one item per non-blank line
    rejects = [i for i in items if isinstance(i, R.Reject)]
    assert [(r.candidate.origin["line"], r.reason) for r in rejects] == [(2, R.BAD_RECORD), (3, R.BAD_RECORD)]
    assert rejects[0].candidate.origin["file"] == str(path)
    assert "UTF-8" in rejects[0].detail and "0xe9" in rejects[0].detail
    assert json.dumps(rejects[0].to_json())  # the rejects file can hold it
    assert [i[0].origin["line"] for i in items if not isinstance(i, R.Reject)] == [1, 4]


def test_build_counts_a_non_utf8_expert_line_as_a_reject(tmp_path):
    rl = convert_train(tmp_path)
    pid = mathvision_prompt_ids(rl)
    write_export(rl, tmp_path / "export", {pid["98"]: "hard", pid["19"]: "hard"})
    expert = tmp_path / "expert.jsonl"
    expert.write_bytes(json.dumps(_trace("98")).encode() + b"\n" + NOT_UTF8)
    stats = build(BuildConfig(export_dir=tmp_path / "export", out_dir=tmp_path / "out", expert_files=[expert],
                              expert_key="mathvision", expert_image_root=MATHVISION, progress=False))
    c = stats["candidates"][R.EXPERT_FILE]
    assert (c["in"], c["kept"], c["rejected"], c["reject_reasons"]) == (2, 1, 1, {R.BAD_RECORD: 1})
    rejects = [json.loads(x) for x in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["origin"]["file"], r["origin"]["line"]) for r in rejects] == [(str(expert), 2)]


def test_score_reader_keeps_every_line(tmp_path):
    src = tmp_path / "in.jsonl"
    ok = json.dumps({"response": "<think>a</think><answer>\\boxed{3}</answer>", "ground_truth": "3"}).encode()
    src.write_bytes(ok + b"\n" + NOT_UTF8 + b"\n{broken\n[1, 2]\n" + ok + b"\n")
    rows = read_rows(src)
    assert len(rows) == 5  # blank lines are not rows; every other line is

    def reward(**kw):
        return {"score": 1.0}

    scored, rejects, report = score_rows(rows, reward, source=str(src))
    assert (report.read, report.scored, report.rejected) == (5, 2, 3)
    assert [(r["file"], r["line"]) for r in rejects] == [(str(src), 2), (str(src), 4), (str(src), 5)]
    assert "UTF-8" in rejects[0]["reason"] and "JSON" in rejects[1]["reason"] and "object" in rejects[2]["reason"]


def test_score_command_turns_bad_lines_into_rejects(tmp_path):
    src = tmp_path / "in.jsonl"
    ok = json.dumps({"response": "<think>a</think><answer>\\boxed{3}</answer>", "ground_truth": "3"}).encode()
    src.write_bytes(ok + b"\n" + NOT_UTF8)
    out = subprocess.run([sys.executable, "-m", "verl_rise.cli", "score", str(src), "--out", str(tmp_path / "o.jsonl")],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "read 2 = scored 1 + rejected 1" in out.stdout
    rejects = [json.loads(x) for x in (tmp_path / "o.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejects] == [(2, "not UTF-8")]


def test_score_reader_reads_parquet_unchanged(tmp_path):
    import pandas as pd

    src = tmp_path / "in.parquet"
    pd.DataFrame({"response": ["a", "b"], "ground_truth": ["1", "2"]}).to_parquet(src)
    assert [r["response"] for r in read_rows(Path(src))] == ["a", "b"]
