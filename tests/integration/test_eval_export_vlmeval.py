"""verl_rise.evaluation.vlmeval_export: our generations in VLMEvalKit's prediction-file layout.

The last two tests run VLMEvalKit's own ``evaluate()`` (package ``ms-vlmeval`` 0.0.20, imported without its
package ``__init__``s, which pull in every model and dataset) on our export for the two benchmarks that score
without a judge, WeMath and DynaMath; they skip when the package is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from tests.unit.test_eval_convert_layouts import (
    dynamath_tsv_rows,
    read_rows,
    run_convert,
    wemath_native_records,
    wemath_tsv_rows,
    write_tsv,
)
from verl_rise.evaluation.vlmeval_export import (
    XLSX_MAX_CELL_CHARS,
    ExportError,
    export_vlmeval,
    main,
    rows_from_jsonl,
    rows_from_verl_dump,
)


def converted(tmp_path: Path, benchmark: str, tsv_rows: list[dict], name: str) -> Path:
    tsv = write_tsv(tmp_path / f"{name}.tsv", tsv_rows)
    out = tmp_path / f"{name}.parquet"
    assert run_convert("-b", benchmark, "--tsv", str(tsv), "-o", str(out)) == 0
    return out


def responses_jsonl(path: Path, parquet: Path, predictions: dict[int, str]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in read_rows(parquet):
            extra = row["extra_info"]
            # verl's loader gives a benchmark's rows the other benchmarks' columns too (as None) when it merges files
            extra["vlmeval"]["question_type"] = None
            f.write(json.dumps({"response": predictions[extra["index"]], "extra_info": extra}) + "\n")
    return path


# WeMath: the two-step problem (indices 1-3) all right -> complete mastery; the three-step problem (4-7) has step 1
# wrong, steps 2-3 and the multi-step question right -> rote memorisation (strict) / complete mastery (loose).
# Index 4's answer is right but in <answer> tags: VLMEvalKit's rule reads only "Answer: X", so it counts as wrong.
def wemath_predictions(parquet: Path) -> dict[int, str]:
    gold = {r["extra_info"]["index"]: r["reward_model"]["ground_truth"] for r in read_rows(parquet)}
    preds = {i: f"OA is 3000 m and AB is 4000 m.\nAnswer: {gold[i]}" for i in gold}
    preds[4] = f"<think>measure</think><answer>{gold[4]}</answer>"
    return preds


def test_export_layout_types_and_file_name(tmp_path):
    parquet = converted(tmp_path, "wemath", wemath_tsv_rows(wemath_native_records()), "WeMath")
    jsonl = responses_jsonl(tmp_path / "responses.jsonl", parquet, wemath_predictions(parquet))
    written = export_vlmeval(rows_from_jsonl(jsonl), tmp_path / "out", model="Metis-RISE-7B")
    path = written["wemath"]
    assert path.name == "Metis-RISE-7B_WeMath.xlsx"
    frame = pd.read_excel(path)  # VLMEvalKit's load() of an .xlsx
    header = list(pd.read_csv(tmp_path / "WeMath.tsv", sep="\t", nrows=0).columns)
    assert list(frame.columns) == [c for c in header if c != "image"] + ["prediction"]
    assert frame["index"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert frame["question number"].dtype.kind == "i"  # typed as VLMEvalKit's read_csv of the TSV types it
    assert frame.loc[3, "prediction"].startswith("<think>measure</think>")
    tsv = export_vlmeval(rows_from_jsonl(jsonl), tmp_path / "out", model="M", fmt="tsv")["wemath"]
    assert tsv.name == "M_WeMath.tsv"
    assert pd.read_csv(tsv, sep="\t").equals(frame)


def test_export_refuses_long_xlsx_cells_and_duplicate_index(tmp_path):
    parquet = converted(tmp_path, "wemath", wemath_tsv_rows(wemath_native_records()), "WeMath")
    preds = wemath_predictions(parquet)
    preds[2] = "x" * (XLSX_MAX_CELL_CHARS + 1) + " Answer: A"
    jsonl = responses_jsonl(tmp_path / "r.jsonl", parquet, preds)
    with pytest.raises(ExportError, match=r"index \[2\].*PRED_FORMAT=tsv"):
        export_vlmeval(rows_from_jsonl(jsonl), tmp_path / "out", model="M")
    assert not (tmp_path / "out" / "M_WeMath.xlsx").exists()
    tsv = export_vlmeval(rows_from_jsonl(jsonl), tmp_path / "out", model="M", fmt="tsv")["wemath"]
    assert pd.read_csv(tsv, sep="\t").loc[1, "prediction"].endswith("Answer: A")
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    (tmp_path / "dup.jsonl").write_text("\n".join(lines + lines[:1]) + "\n")
    with pytest.raises(ExportError, match="index given more than once: \\[1\\]"):
        export_vlmeval(rows_from_jsonl(tmp_path / "dup.jsonl"), tmp_path / "out", model="M")


def test_export_from_verl_validation_dump(tmp_path):
    parquet = converted(tmp_path, "dynamath", dynamath_tsv_rows(), "DynaMath")
    rows = read_rows(parquet)
    dump = tmp_path / "10.jsonl"
    with open(dump, "w") as f:
        for r in rows:  # two samples per prompt (val_kwargs.n=2), the reward returned index among its keys
            for s in range(2):
                f.write(json.dumps({"input": "...", "output": f"idx {r['extra_info']['index']} sample {s}",
                                    "gts": r["reward_model"]["ground_truth"], "score": 1.0, "step": 10,
                                    "index": r["extra_info"]["index"], "acc": 1.0}) + "\n")
    with pytest.raises(ExportError, match="has 2 responses"):
        list(rows_from_verl_dump(dump, parquet))
    out = export_vlmeval(rows_from_verl_dump(dump, parquet, sample=1), tmp_path / "o", model="M", fmt="tsv")
    frame = pd.read_csv(out["dynamath"], sep="\t")
    assert frame["prediction"].tolist() == [f"idx {i} sample 1" for i in (1, 2, 502, 503)]
    assert frame["varid"].tolist() == [1, 1, 2, 2]
    bad = tmp_path / "11.jsonl"
    bad.write_text(json.dumps({"output": "x", "index": 999}) + "\n")
    with pytest.raises(ExportError, match="dynamath index 999 is not in the parquet"):
        list(rows_from_verl_dump(bad, parquet))


def test_command_line_reads_scored_rows_with_top_level_columns(tmp_path, capsys):
    # The `verl-rise score` row layout: the TSV columns at top level plus the response.
    rows = [{"index": 7, "question": "Which?", "answer": "B, D", "skill": "['inductive']", "response": "B and D"},
            {"index": 3, "question": "Next?", "answer": "A", "skill": "['spatial']", "response": "Answer: A"}]
    (tmp_path / "scored.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["--responses", str(tmp_path / "scored.jsonl"), "--model", "M", "--out", str(tmp_path / "o")]
    assert main([*argv, "--benchmark", "logicvista", "--format", "tsv"]) == 0
    assert capsys.readouterr().out.strip() == f"logicvista: {tmp_path / 'o' / 'M_LogicVista.tsv'}"
    frame = pd.read_csv(tmp_path / "o" / "M_LogicVista.tsv", sep="\t")
    assert frame.to_dict("list") == {"index": [3, 7], "question": ["Next?", "Which?"], "answer": ["A", "B, D"],
                                     "skill": ["['spatial']", "['inductive']"], "prediction": ["Answer: A", "B and D"]}
    assert main([*argv, "--benchmark", "logicvista", "--dataset", "logicvista=LogicVista_MINI"]) == 0
    assert capsys.readouterr().out.strip().endswith("M_LogicVista_MINI.xlsx")
    assert main(argv) == 1  # no benchmark named anywhere
    assert "line 1: which benchmark?" in capsys.readouterr().out


@pytest.fixture
def vlmeval_datasets():
    """VLMEvalKit's dataset modules, loaded without ``vlmeval/__init__`` and ``vlmeval/dataset/__init__``."""
    spec = importlib.util.find_spec("vlmeval")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("ms-vlmeval is not installed (pip install --no-deps ms-vlmeval==0.0.20 validators sty tabulate xlsxwriter)")
    root = spec.submodule_search_locations[0]

    def unload() -> None:  # only VLMEvalKit's own modules: the libraries it imported stay as they are
        for name in [n for n in sys.modules if n == "vlmeval" or n.startswith("vlmeval.")]:
            del sys.modules[name]

    for name, sub in (("vlmeval", root), ("vlmeval.dataset", f"{root}/dataset")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [sub]
        sys.modules[name] = pkg
    try:
        from vlmeval.dataset import dynamath, image_mcq  # noqa: PLC0415
    except ImportError as exc:
        unload()
        pytest.skip(f"VLMEvalKit's dataset modules do not import here: {exc}")
    yield types.SimpleNamespace(dynamath=dynamath, image_mcq=image_mcq)
    unload()


def test_vlmeval_wemath_evaluate_scores_our_export(tmp_path, vlmeval_datasets, monkeypatch):
    if not hasattr(pd.DataFrame, "_append"):
        # VLMEvalKit's WeMath tables use DataFrame._append, which pandas 3 removed; stand in with its documented
        # equivalent so the scoring itself runs unchanged.
        monkeypatch.setattr(
            pd.DataFrame, "_append",
            lambda self, row, ignore_index=False: pd.concat([self, pd.DataFrame([row])], ignore_index=ignore_index),
            raising=False,
        )
    parquet = converted(tmp_path, "wemath", wemath_tsv_rows(wemath_native_records()), "WeMath")
    jsonl = responses_jsonl(tmp_path / "responses.jsonl", parquet, wemath_predictions(parquet))
    path = export_vlmeval(rows_from_jsonl(jsonl), tmp_path / "run", model="M")["wemath"]
    WeMath = vlmeval_datasets.image_mcq.WeMath
    score = WeMath.evaluate(WeMath.__new__(WeMath), str(path)).iloc[0]  # judge "exact_matching": the rule path
    # Counts are in parentheses; rates and scores divide by the full benchmark's 525 problems.
    assert score["CompleteMastery (Strict)"].endswith("(1)")
    assert score["RoteMemorization (Strict)"].endswith("(1)")
    assert score["CompleteMastery (Loose)"].endswith("(2)")
    assert score["RoteMemorization (Loose)"].endswith("(0)")
    assert score["InsufficientKnowledge (Strict)"].endswith("(0)")
    assert score["Score (Strict)"] == f"{(525 - 1) / 525:.2%}"
    assert score["Score (Loose)"] == "100.00%"
    assert score["Two-step(S2)"] == "100.00%" and score["Three-step(S3)"] == "100.00%"
    assert score["One-step(S1)"] == f"{4 / 5:.2%}"  # 5 one-step questions, index 4 read as wrong


def test_vlmeval_dynamath_evaluate_scores_our_export(tmp_path, vlmeval_datasets, monkeypatch):
    class NoJudge:
        system_prompt = None

        def generate(self, *args, **kwargs):
            raise AssertionError("the rule path asked the judge")

    monkeypatch.setattr(vlmeval_datasets.dynamath, "build_judge", lambda **kwargs: NoJudge())
    parquet = converted(tmp_path, "dynamath", dynamath_tsv_rows(), "DynaMath")
    # seed 1: variant 1 right (|2.094 - 2.0944| <= 0.001), variant 2 wrong; seed 2: both right (JSON, then a bare
    # letter). Average 3/4, worst case 1/2.
    preds = {1: json.dumps({"solution": "2pi/3", "short answer": "2.094"}),
             502: json.dumps({"solution": "pi", "short answer": "3.0"}),
             2: json.dumps({"solution": "graph 2", "short answer": "B"}),
             503: "D"}
    jsonl = responses_jsonl(tmp_path / "responses.jsonl", parquet, preds)
    path = export_vlmeval(rows_from_jsonl(jsonl), tmp_path / "run", model="M")["dynamath"]
    Dynamath = vlmeval_datasets.dynamath.Dynamath
    score = Dynamath.evaluate(Dynamath.__new__(Dynamath), str(path)).set_index("Setting")
    assert score.loc["Average", "Overall"] == pytest.approx(0.75)
    assert score.loc["Worst Case", "Overall"] == pytest.approx(0.5)
    assert score.loc["Average", "Subject-graph theory"] == pytest.approx(1.0)
