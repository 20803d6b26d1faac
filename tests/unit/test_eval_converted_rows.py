"""The scorer on rows exactly as the benchmark converters (data_prep.benchmarks) write them: extra_info["vlmeval"]
from VLMEvalKit TSV fixtures, scored per response and aggregated (WeMath groups, DynaMath seeds)."""

from __future__ import annotations

from verl_rise.evaluation import aggregate, score_row
from verl_rise.evaluation.reward import compute_score
from tests.unit.test_eval_convert_layouts import (
    dynamath_tsv_rows,
    read_rows,
    run_convert,
    wemath_native_records,
    wemath_tsv_rows,
    write_tsv,
)


def _convert(tmp_path, benchmark, name, rows):
    tsv = write_tsv(tmp_path / f"{name}.tsv", rows)
    out = tmp_path / f"{benchmark}.parquet"
    assert run_convert("-b", benchmark, "--tsv", str(tsv), "-o", str(out)) == 0
    return read_rows(out)


def test_converted_wemath_rows_score_and_aggregate(tmp_path):
    rows = _convert(tmp_path, "wemath", "WeMath", wemath_tsv_rows(wemath_native_records()))
    assert len(rows) == 7
    scored = []
    for i, r in enumerate(rows):
        fields, gold = r["extra_info"]["vlmeval"], r["reward_model"]["ground_truth"]
        # the model names the option's TEXT for every sub-problem, and gets the multi-step problem of group 2 wrong
        text = fields[gold]
        wrong = "A" if gold != "A" else "B"
        answer = f"{wrong}. {fields[wrong]}" if fields["key"] == "3steps_multi" else text
        response = f"Converting the units step by step gives {text.split(',')[0]} first.\nAnswer: {answer}"
        result = score_row("wemath", fields, response, "lenient")
        assert result["acc"] == int(fields["key"] != "3steps_multi"), (i, result)
        assert score_row("wemath", fields, response, "strict")["acc"] == 0
        assert compute_score(r["data_source"], response, gold, r["extra_info"])["acc_lenient"] == result["acc"]
        scored.append({**fields, "acc": result["acc"]})
    m = aggregate("wemath", scored)
    # group 1 (2 steps): complete mastery; group 2 (3 steps): all steps right, multi-step wrong -> IG
    assert (m["n_groups"], m["CM_strict"], m["IG"], m["IK"], m["RM_strict"]) == (2, 1, 1, 0, 0)
    assert m["score_strict"] == (2 - 0.5) / 2


def test_converted_dynamath_rows_score_and_worst_case(tmp_path):
    rows = _convert(tmp_path, "dynamath", "DynaMath", dynamath_tsv_rows())
    scored = []
    for r in rows:
        fields = r["extra_info"]["vlmeval"]
        gold = fields["answer"]
        # variant 2 of the float seed is answered with variant 1's value: right on average, wrong in the worst case
        said = "2.094" if (fields["answer_type"] == "float") else gold
        response = '{"solution": "Read the graph.", "short answer": "%s"}' % said
        scored.append({**fields, "acc": score_row("dynamath", fields, response)["acc"]})
    assert sorted((s["qid"], s["varid"], s["acc"]) for s in scored) == [
        ("1", "1", 1), ("1", "2", 0), ("2", "1", 1), ("2", "2", 1)]
    m = aggregate("dynamath", scored)
    assert (m["average_acc"], m["worst_case_acc"]) == (0.75, 0.5)
