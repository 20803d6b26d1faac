"""The real MATH-V expert traces (../shared expert_traces.jsonl) -> verified RISE-format trajectories.

Expected counts are computed here from the data with the reward's own judge (``reward_fns.accuracy.judge``) and a
plain reading of each trace's final answer, not hard-coded.
"""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from reward_fns import compute_score
from reward_fns.accuracy import judge
from reward_fns.choice import read_letters
from reward_fns.extract import last_boxed
from tests.support.paths import MATHVISION, require
from tests.support.sft_export_fixture import convert_train, mathvision_prompt_ids, write_export
from verl_rise.sft_data import records as R
from verl_rise.sft_data.build import NO_EXPERT_RESPONSE, BuildConfig, build

TRACES = MATHVISION / "expert_traces.jsonl"
NOT_HARD = ("1", "12", "17")  # traced problems placed in the solved bucket


def _final_answer(trace: dict) -> str | None:
    """The trace's final answer read plainly: last box, else 'answer is X' on the last line, else a bare last
    line equal to model_answer."""
    box = last_boxed(trace["response"], 1000).content
    if box is not None:
        return box
    last = trace["response"].strip().splitlines()[-1].strip()
    m = re.search(r"answer(?: is|:)\s*:?\s*(.+?)[.\s]*$", last, re.IGNORECASE)
    if m:
        return m.group(1)
    if last.rstrip(". ") == str(trace["model_answer"]).strip():
        return last.rstrip(". ")
    return None


@pytest.fixture(scope="module")
def traces():
    return [json.loads(line) for line in require(TRACES).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def built(tmp_path_factory, traces):
    tmp = tmp_path_factory.mktemp("expert")
    rl = convert_train(tmp)
    pid = mathvision_prompt_ids(rl)
    traced = {t["id"] for t in traces}
    buckets = {pid[i]: ("solved" if i in NOT_HARD else "hard") for i in traced}
    export = tmp / "export"
    write_export(rl, export, buckets, default_bucket="unseen")
    # The real file plus three bad lines: not JSON, an unknown problem, a missing image.
    expert = tmp / "traces.jsonl"
    bad = [dict(traces[0], question=traces[0]["question"] + " (edited)"),
           dict(traces[0], image="images/does-not-exist.jpg")]
    expert.write_text(TRACES.read_text() + "{not json\n" + "".join(json.dumps(b) + "\n" for b in bad))
    results = {}
    for name, min_chars in (("strict", 20), ("lenient", 0)):
        cfg = BuildConfig(export_dir=export, out_dir=tmp / name, expert_files=[expert], expert_key="mathvision",
                          expert_image_root=MATHVISION, min_reasoning_chars=min_chars, progress=False)
        results[name] = (build(cfg), tmp / name)
    return results, pid


def _expected(traces, pid):
    hard = [t for t in traces if t["id"] not in NOT_HARD]
    correct = [t for t in hard
               if (a := _final_answer(t)) is not None and judge(t["answer"], a, tuple(t["options"])).acc == 1.0]
    return hard, correct


def test_every_trace_is_accounted_for(built, traces):
    results, _ = built
    stats, out = results["strict"]
    c = stats["candidates"][R.EXPERT_FILE]
    assert c["in"] == len(traces) + 3 and c["in"] == c["kept"] + c["rejected"]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == c["rejected"]
    reasons = c["reject_reasons"]
    assert reasons[R.BAD_RECORD] == 2 and reasons[R.PROMPT_NOT_FOUND] == 1
    not_hard = sum(t["id"] in NOT_HARD for t in traces)
    assert reasons[R.PROMPT_NOT_HARD] == not_hard > 0


def test_kept_count_matches_what_the_reward_accepts(built, traces):
    results, pid = built
    hard, correct = _expected(traces, pid)
    lenient, _ = results["lenient"]
    strict, out = results["strict"]
    # Without a reasoning threshold every hard trace whose final answer the reward accepts is kept, no other.
    assert lenient["candidates"][R.EXPERT_FILE]["kept"] == len(correct)
    wrong = len(hard) - len(correct)
    rej = lenient["candidates"][R.EXPERT_FILE]["reject_reasons"]
    assert rej.get(R.WRONG_ANSWER, 0) + rej.get(R.NO_FINAL_ANSWER, 0) == wrong
    # The threshold only removes correct ones, and says so.
    s_rej = strict["candidates"][R.EXPERT_FILE]["reject_reasons"]
    assert strict["candidates"][R.EXPERT_FILE]["kept"] == len(correct) - s_rej[R.NO_REASONING]
    assert 0 < s_rej[R.NO_REASONING] < len(correct) // 2
    print(f"\nexpert traces: {len(hard)} on hard prompts, {len(correct)} with a correct final answer, "
          f"{strict['candidates'][R.EXPERT_FILE]['kept']} kept with >= 20 reasoning chars; "
          f"methods {strict['expert_file']['methods']}; rejects {s_rej}")


def test_kept_rows_are_rise_format_with_the_letter_for_choices(built, traces):
    results, _ = built
    _, out = results["strict"]
    rows = pq.read_table(out / "sft.parquet").to_pylist()
    by_id = {}
    for t in traces:
        by_id.setdefault(t["id"], t)
    boxed_option_text = 0
    for row in rows:
        origin = json.loads(row["extra_info"]["origin"])
        trace = by_id[origin["id"]]
        gt = trace["answer"]
        text = row["messages"][-1]["content"]
        score = compute_score(row["data_source"], text, gt, {"options": trace["options"]})
        assert (score["acc"], score["format"]) == (1.0, 1.0), text
        assert text.count("\\boxed") == 1
        if trace["options"]:
            assert score["pred"] == gt  # the LETTER, whatever the expert boxed
            box = last_boxed(trace["response"], 1000).content
            if box is not None and not read_letters(box).letters:
                boxed_option_text += 1
        assert row["messages"][0]["role"] == "system" and row["messages"][1]["content"].count("<image>") == 1
        assert len(row["images"]) == 1 and row["extra_info"]["sft_source"] == R.EXPERT_FILE
    assert boxed_option_text > 0, "real traces box option texts; some must have been mapped to letters"


def test_coverage_of_hard_prompts(built, traces):
    results, pid = built
    stats, out = results["strict"]
    coverage = [json.loads(line) for line in (out / "coverage.jsonl").read_text().splitlines()]
    assert len(coverage) == sum(stats["input_rows"].values()) == 400
    hard_ids = {t["id"] for t in traces if t["id"] not in NOT_HARD}
    rows = pq.read_table(out / "sft.parquet").to_pylist()
    covered = {json.loads(r["extra_info"]["origin"])["id"] for r in rows}
    hard = stats["coverage"]["hard"]
    assert hard["prompts"] == len(hard_ids) and hard["covered"] == len(covered)
    assert sum(hard["uncovered_reasons"].values()) == len(hard_ids) - len(covered)
    assert NO_EXPERT_RESPONSE not in hard["uncovered_reasons"]  # every hard prompt here has a trace
    for line in coverage:
        if line["bucket"] == "hard" and line["status"] != "in_sft":
            assert line["rejects"] and line["reason"] in line["rejects"]
    print(f"\nhard prompts covered: {hard['covered']}/{hard['prompts']}, uncovered: {hard['uncovered_reasons']}")
