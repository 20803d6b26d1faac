"""The schedule's benchmark evaluation (issue 12 item 6): ``eval.benchmarks`` in the run config, the eval stage's
benchmark runs (composed with Hydra), ``verl_rise.schedule.evaluate`` on synthetic verl dumps of the six
benchmarks, and the report's paper table (markdown, PNG, summary.json). No trainer starts."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.support.paths import QWEN_PROCESSOR, REPO_ROOT, require
from verl_rise.schedule.config import ConfigError, dump_config, parse_config
from verl_rise.schedule.evaluate import main as evaluate_main
from verl_rise.schedule.plan import build_plan
from verl_rise.schedule.preflight import _stand_in, compose, hydra_call
from verl_rise.schedule.report import benchmark_markdown, benchmark_table, write_report
from verl_rise.verl_commands import EVAL_BENCHMARK_REWARD

RECIPES = REPO_ROOT / "recipes"

# --------------------------------------------------------------------------------------------------------------
# synthetic converted benchmarks and verl dumps (row_key / acc_strict / acc_lenient, as benchmark_reward writes)

DATA_SOURCE = {"mathvista": "MathVista_MINI", "mathvision": "MathVision", "mathverse": "MathVerse_MINI_Vision_Only",
               "dynamath": "DynaMath", "wemath": "WeMath", "logicvista": "LogicVista"}

# (benchmark, index, extra TSV fields, strict acc, lenient acc); None: no response in the dumps.
ROWS = [
    # MathVista: strict 2/4, lenient 3/4
    *[("mathvista", i, {}, s, l) for i, s, l in [(1, 1, 1), (2, 0, 1), (3, 0, 0), (4, 1, 1)]],
    # MathVision: strict 0/2, lenient 1/2
    ("mathvision", 1, {}, 0, 0), ("mathvision", 2, {}, 0, 1),
    # MathVerse: row 2 has no response (counts wrong): 1/2 both
    ("mathverse", 1, {}, 1, 1), ("mathverse", 2, {}, None, None),
    # DynaMath: seed 1 (3 variants) strict [1,1,0] lenient [1,1,1]; seed 2 (2 variants) strict [0,0] lenient [1,0]
    # -> strict average 2/5, worst case 0/2; lenient average 4/5, worst case 1/2
    ("dynamath", 1, {"qid": "1", "varid": "1"}, 1, 1), ("dynamath", 2, {"qid": "1", "varid": "2"}, 1, 1),
    ("dynamath", 3, {"qid": "1", "varid": "3"}, 0, 1), ("dynamath", 4, {"qid": "2", "varid": "1"}, 0, 1),
    ("dynamath", 5, {"qid": "2", "varid": "2"}, 0, 0),
    # WeMath, two 2-step groups. lenient: group 1 all right (CM), group 2 subs [1,0] multi 1 (RM strict)
    # -> score_strict (2 - 0.5*0 - 1 - 0)/2 = 0.5. strict: group 1 subs right multi wrong (IG), group 2 all wrong
    # (IK) -> (2 - 0.5 - 0 - 1)/2 = 0.25
    ("wemath", 1, {"ID": "1", "key": "2steps_1"}, 1, 1), ("wemath", 2, {"ID": "1", "key": "2steps_2"}, 1, 1),
    ("wemath", 3, {"ID": "1", "key": "2steps_multi"}, 0, 1), ("wemath", 4, {"ID": "2", "key": "2steps_1"}, 0, 1),
    ("wemath", 5, {"ID": "2", "key": "2steps_2"}, 0, 0), ("wemath", 6, {"ID": "2", "key": "2steps_multi"}, 0, 1),
    # LogicVista: strict 0/1, lenient 1/1
    ("logicvista", 1, {}, 0, 1),
]
# headline metric in percent, by hand from ROWS
EXPECTED = {"strict": {"mathvista": 50.0, "mathvision": 0.0, "mathverse": 50.0, "dynamath": 0.0, "wemath": 25.0,
                       "logicvista": 0.0},
            "lenient": {"mathvista": 75.0, "mathvision": 50.0, "mathverse": 50.0, "dynamath": 50.0, "wemath": 50.0,
                        "logicvista": 100.0}}


def write_benchmarks(root: Path, keys=tuple(DATA_SOURCE)) -> dict[str, Path]:
    """One converted parquet per benchmark (data_source, extra_info.{benchmark,index,vlmeval}, like
    data_prep.benchmarks writes; vlmeval cells are text)."""
    files = {}
    for key in keys:
        rows = [{"data_source": DATA_SOURCE[key],
                 "extra_info": {"benchmark": key, "index": i,
                                "vlmeval": {"index": str(i), "answer": "A", **fields}}}
                for b, i, fields, _, _ in ROWS if b == key]
        files[key] = root / f"{key}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), files[key])
    return files


def write_dumps(dumps: Path, keys=tuple(DATA_SOURCE), flip: bool = False) -> Path:
    """verl's validation dump of a benchmark run (``0.jsonl``), rows in shuffled order."""
    dumps.mkdir(parents=True)
    lines = []
    for b, i, _, s, l in reversed(ROWS):
        if b in keys and s is not None:
            lines.append({"input": "q", "output": "r", "gts": "A", "score": float(l), "step": 0,
                          "acc_strict": float(s), "acc_lenient": float(l), "acc": float(l), "pred": "A",
                          "row_key": f"{b}:{i}"})
    (dumps / "0.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return dumps


# --------------------------------------------------------------------------------------------------------------
# configuration


def _raw(root: Path, **eval_cfg) -> dict:
    return {"run_dir": "run", "model": "model", "data": {"train": "train.parquet", "held_out": {"t": "test.parquet"}},
            "recipes_dir": str(RECIPES), "profiles": {"rl": "rise_grpo_cpu_tiny", "sft": "rise_sft_cpu_tiny"},
            "eval": eval_cfg}


def test_config_benchmarks_paths_keys_and_reference_size(tmp_path):
    cfg = parse_config(_raw(tmp_path, benchmarks={"wemath": "b/we.parquet", "mathvista": "/abs/mv.parquet"},
                            reference_size="7B"), tmp_path)
    # paper column order, paths relative to the config's directory, size case-insensitive
    assert list(cfg.eval.benchmarks) == ["mathvista", "wemath"]
    assert cfg.eval.benchmarks["wemath"] == tmp_path / "b" / "we.parquet"
    assert cfg.eval.reference_size == "7b" and cfg.eval.generation == "model_card"
    assert parse_config(yaml.safe_load(dump_config(cfg)), tmp_path) == cfg  # run dir's resolved config re-parses
    assert parse_config(_raw(tmp_path), tmp_path).eval.benchmarks == {}


@pytest.mark.parametrize("eval_cfg, message", [
    ({"benchmarks": {"mathvistaa": "x.parquet"}}, "unknown benchmark 'mathvistaa'"),
    ({"reference_size": "32b"}, "eval.reference_size"),
    ({"generation": "card"}, "eval.generation"),
    ({"benchmark": {"mathvista": "x.parquet"}}, "eval.benchmark"),
])
def test_bad_benchmark_config_names_the_field(tmp_path, eval_cfg, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(_raw(tmp_path, **eval_cfg), tmp_path)


# --------------------------------------------------------------------------------------------------------------
# the eval stage's benchmark runs


def _eval_stage(tmp_path, **eval_cfg):
    cfg = parse_config(_raw(tmp_path, **eval_cfg), tmp_path)
    return cfg, next(s for s in build_plan(cfg) if s.name == "eval")


def test_no_benchmarks_no_benchmark_steps(tmp_path):
    _, stage = _eval_stage(tmp_path)
    assert not any("benchmarks" in s.name for s in stage.steps)
    assert "--benchmarks" not in stage.steps[-1].argv


def test_eval_stage_runs_each_model_on_the_benchmarks_with_model_card_settings(tmp_path):
    """One validation-only run per model on all benchmark files, with the benchmark reward (row ids echoed) and the
    model card's generation settings, composed by Hydra on the 7B GPU profile; collect gets every file and dump."""
    cfg, stage = _eval_stage(tmp_path, benchmarks={"mathvista": "mv.parquet", "dynamath": "dm.parquet"},
                             reference_size="7b")
    steps = {s.name: s for s in stage.steps}
    assert [n for n in steps if n.endswith("_benchmarks")] == ["base_benchmarks", "rl_benchmarks", "sft_benchmarks"]
    assert steps["sft_benchmarks"].upstream == ["merge_sft"]
    # owned: a user override of a generation key is refused by the pre-flight
    assert "data.max_response_length" in steps["base_benchmarks"].owned_keys
    run = cfg.run_dir / "eval"
    collect = steps["collect"].argv
    for pair in (["--benchmark-file", f"mathvista={tmp_path / 'mv.parquet'}"],
                 ["--benchmark-file", f"dynamath={tmp_path / 'dm.parquet'}"],
                 ["--benchmarks", f"rl={run / 'rl' / 'benchmarks' / 'dumps'}"]):
        assert any(collect[i:i + 2] == pair for i in range(len(collect))), pair
    assert set(steps["collect"].after) >= {"base_benchmarks", "rl_benchmarks", "sft_benchmarks"}

    config_dir, name, overrides = hydra_call(steps["rl_benchmarks"].argv)
    composed = compose(config_dir, "rise_grpo_7b", overrides)  # the GPU profile the model card settings are for
    assert composed.reward.custom_reward_function.path == EVAL_BENCHMARK_REWARD[0]
    assert composed.data.max_response_length == 8192
    assert composed.data.max_prompt_length == 17408
    assert dict(composed.data.mm_processor_kwargs) == {"min_pixels": 128 * 28 * 28, "max_pixels": 16384 * 28 * 28}
    assert composed.actor_rollout_ref.rollout.max_model_len == 17408 + 8192
    assert composed.actor_rollout_ref.rollout.max_num_batched_tokens == 17408 + 8192
    assert list(composed.data.val_files) == [str(tmp_path / "mv.parquet"), str(tmp_path / "dm.parquet")]
    assert composed.actor_rollout_ref.model.path == str(run.parent / "merge_rl" / "hf")
    assert composed.trainer.val_only is True
    assert composed.trainer.validation_data_dir == str(run / "rl" / "benchmarks" / "dumps")
    assert composed.actor_rollout_ref.rollout.val_kwargs.do_sample is False  # greedy
    # and verl accepts it (its own start-up checks, as the pre-flight runs them)
    require(QWEN_PROCESSOR)
    from verl_rise.verl_ext.startup_checks import verl_ppo_startup_checks

    verl_ppo_startup_checks(compose(config_dir, "rise_grpo_7b",
                                    _stand_in(overrides, QWEN_PROCESSOR, ("actor_rollout_ref.model.path",))))


def test_profile_generation_keeps_the_recipe_settings(tmp_path):
    """eval.generation: profile (e.g. the CPU profile) leaves the recipe's budgets alone; the reward is the same."""
    _, stage = _eval_stage(tmp_path, benchmarks={"logicvista": "lv.parquet"}, generation="profile")
    step = next(s for s in stage.steps if s.name == "base_benchmarks")
    config_dir, name, overrides = hydra_call(step.argv)
    composed = compose(config_dir, name, overrides)
    assert composed.data.max_response_length == 32
    assert composed.data.mm_processor_kwargs.max_pixels == 100352
    assert composed.reward.custom_reward_function.path == EVAL_BENCHMARK_REWARD[0]


# --------------------------------------------------------------------------------------------------------------
# evaluate.py on dumps


def test_benchmark_reward_echoes_the_row_key():
    from verl_rise.schedule.benchmark_reward import compute_score

    fields = {"index": "7", "question": "Which?", "answer": "B", "A": "1", "B": "2"}
    out = compute_score("LogicVista", "The answer is B.", "B", {"benchmark": "logicvista", "index": 7,
                                                               "vlmeval": fields})
    assert out["row_key"] == "logicvista:7" and {"acc_strict", "acc_lenient", "score"} <= set(out)
    with pytest.raises(ValueError, match="benchmark"):
        compute_score("LogicVista", "B", "B", {"vlmeval": fields})


def _evaluate(tmp_path, files, dumps: dict[str, Path]) -> dict:
    out = tmp_path / "results.json"
    held = tmp_path / "held.parquet"
    pq.write_table(pa.Table.from_pylist([{"data_source": "gen", "extra_info": {"prompt_id": "p1"}}]), held)
    argv = ["--out", str(out), "--held-out", f"t={held}"]
    argv += [w for k, p in files.items() for w in ("--benchmark-file", f"{k}={p}")]
    argv += [w for m, p in dumps.items() for w in ("--benchmarks", f"{m}={p}")]
    assert evaluate_main(argv) == 0
    return json.loads(out.read_text())


def test_evaluate_computes_each_benchmarks_metric_from_the_dumps(tmp_path):
    files = write_benchmarks(tmp_path)
    results = _evaluate(tmp_path, files, {"base": write_dumps(tmp_path / "base")})
    bench = results["models"]["base"]["benchmarks"]
    for mode, expected in EXPECTED.items():
        assert {k: round(100 * bench[k][mode]["headline"], 6) for k in bench} == expected, mode
    dyn, we = bench["dynamath"], bench["wemath"]
    assert (dyn["strict"]["average_acc"], dyn["lenient"]["average_acc"]) == (0.4, 0.8)
    assert (we["strict"]["IG"], we["strict"]["IK"]) == (1, 1)
    assert (we["lenient"]["CM_strict"], we["lenient"]["RM_strict"]) == (1, 1)
    assert bench["mathverse"]["missing"] == 1 and bench["mathvista"]["missing"] == 0
    assert results["benchmark_files"]["wemath"]["rows"] == 6
    assert results["benchmark_files"]["dynamath"]["data_sources"] == ["DynaMath"]


def test_evaluate_refuses_dumps_of_another_reward(tmp_path, capsys):
    files = write_benchmarks(tmp_path, ("logicvista",))
    dumps = tmp_path / "d"
    dumps.mkdir()
    (dumps / "0.jsonl").write_text(json.dumps({"score": 1.0, "acc": 1.0}) + "\n")
    argv = ["--out", str(tmp_path / "r.json"), "--benchmark-file", f"logicvista={files['logicvista']}",
            "--benchmarks", f"base={dumps}"]
    assert evaluate_main(argv) == 2
    assert "verl_rise.schedule.benchmark_reward" in capsys.readouterr().err
    (dumps / "0.jsonl").write_text(json.dumps({"row_key": "logicvista:99", "acc_strict": 1, "acc_lenient": 1}) + "\n")
    assert evaluate_main(argv) == 2
    assert "logicvista:99" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# the report


def test_report_table_png_and_summary(tmp_path):
    """Base strict/lenient over all six, RL over two benchmarks ("–" elsewhere, starred partial average), no SFT
    benchmarks (no row), and the model card's 7B rows."""
    files = write_benchmarks(tmp_path)
    run_dir = tmp_path / "run"
    results = _evaluate(tmp_path, files, {"base": write_dumps(tmp_path / "base")})
    rl_files = {k: files[k] for k in ("mathvista", "dynamath")}
    rl = _evaluate(tmp_path, rl_files, {"rl": write_dumps(tmp_path / "rl", tuple(rl_files))})
    results["models"]["rl"] = rl["models"]["rl"]
    (run_dir / "eval").mkdir(parents=True)
    (run_dir / "eval" / "results.json").write_text(json.dumps(results))
    raw = _raw(tmp_path, reference_size="7b")
    (run_dir / "config.resolved.yaml").write_text(dump_config(parse_config(raw, tmp_path)))

    md = write_report(run_dir).read_text()
    assert ("| model | MathVista | MathVision | MathVerse | DynaMath | WeMath | LogicVista | Avg |" in md)
    # base strict: (50 + 0 + 50 + 0 + 25 + 0) / 6 = 20.8; lenient: (75 + 50 + 50 + 50 + 50 + 100) / 6 = 62.5
    assert "| base model (strict) | 50.0 | 0.0 | 50.0 | 0.0 | 25.0 | 0.0 | 20.8 |" in md
    assert "| base model (lenient) | 75.0 | 50.0 | 50.0 | 50.0 | 50.0 | 100.0 | 62.5 |" in md
    # RL (lenient) on MathVista 75 and DynaMath 50 only: average (75 + 50) / 2 = 62.5, starred
    assert "| + RL (GRPO) | 75.0 | – | – | 50.0 | – | – | 62.5* |" in md
    assert "average over the benchmarks present in that row only" in md
    assert "RL + SFT (Metis-RISE) |" not in md.split("## RL (GRPO)")[0].split("## Benchmarks")[1]
    assert "| _Qwen2.5-VL-7B (model card)_ | 68.1 | 25.4 | 41.1 | 21.8 | 36.2 | 47.9 | 40.1 |" in md
    assert "| _Metis-RISE-7B (model card)_ | 75.8 | 28.7 | 51.0 | 27.7 | 45.2 | 49.7 | 46.4 |" in md
    assert "72B" not in md
    assert "up to 8192 new tokens" in md and "100352 (128·28·28)" in md and "12845056 (16384·28·28)" in md
    assert "_lenient_ = rule-based extraction" in md and "1 MathVerse rows had no response" in md
    assert f"- WeMath: 6 rows (`{files['wemath']}`)\n" in md  # the leaderboard's split: no remark

    png = run_dir / "report" / "benchmarks.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run_dir / "report" / "summary.json").read_text())["benchmarks"]
    assert summary["columns"] == ["MathVista", "MathVision", "MathVerse", "DynaMath", "WeMath", "LogicVista"]
    rows = {r["label"]: r for r in summary["rows"]}
    assert rows["+ RL (GRPO)"]["values"]["MathVision"] is None
    assert rows["+ RL (GRPO)"]["average_over"] == ["MathVista", "DynaMath"]
    assert rows["base model (strict)"]["average"] == pytest.approx(125 / 6)
    assert rows["Metis-RISE-7B (model card)"]["published"] is True
    assert summary["reference_size"] == "7b" and "8192" in summary["generation"]


def test_report_names_a_split_the_leaderboard_does_not_use(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "eval").mkdir(parents=True)
    files = write_benchmarks(tmp_path, ("mathvision",))
    table = pq.read_table(files["mathvision"]).to_pylist()
    pq.write_table(pa.Table.from_pylist([{**r, "data_source": "MathVision_MINI"} for r in table]), files["mathvision"])
    results = _evaluate(tmp_path, files, {"sft": write_dumps(tmp_path / "sft", ("mathvision",))})
    (run_dir / "eval" / "results.json").write_text(json.dumps(results))
    md = write_report(run_dir).read_text()
    assert "data_source MathVision_MINI, not the leaderboard's MathVision, so not comparable" in md
    assert "| + RL + SFT (Metis-RISE) | – | 50.0 | – | – | – | – | 50.0* |" in md


def test_report_without_benchmarks_says_so(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    md = write_report(run_dir).read_text()
    assert "_No benchmark results" in md
    assert json.loads((run_dir / "report" / "summary.json").read_text())["benchmarks"]["rows"] == []
    # reference rows alone are shown in the data, not as a table of ours
    table = benchmark_table({}, "72b")
    assert [r["label"] for r in table["rows"]] == ["Qwen2.5-VL-72B (model card)", "Metis-RISE-72B (model card)"]
    assert "| _Metis-RISE-72B (model card)_ | 80.4 | 42.7 | 59.8 | 42.5 | 55.1 | 58.8 | 56.6 |" in \
        "\n".join(benchmark_markdown(table))


# --------------------------------------------------------------------------------------------------------------
# a real converted benchmark (data_prep.benchmarks): pre-flight checks, reward -> dumps -> evaluate


@pytest.fixture
def logicvista(tmp_path) -> Path:
    """LogicVista in its release layout (dataset.json + images), converted: two rows, answers "C" and "B, D"."""
    import io

    from PIL import Image

    from data_prep.benchmarks.convert import main as convert_main

    (tmp_path / "images").mkdir()
    data = {}
    for k, answer in enumerate(["C", "B, D"]):
        buf = io.BytesIO()
        Image.new("RGB", (330, 310), (30 * k, 90, 200)).save(buf, format="PNG")
        (tmp_path / "images" / f"v1_{k}.png").write_bytes(buf.getvalue())
        data[f"v1_{k}"] = {"imagename": f"v1_{k}.png", "question": f"Which choice fits? ({k})", "answer": answer,
                           "reasoning": "pattern", "skill": ["inductive"], "broad_capability": ["diagram"],
                           "specific_capability": ["sequence pattern"], "imagesource": "x", "sourcelink": "y",
                           "liscenced": "false"}
    (tmp_path / "dataset.json").write_text(json.dumps(data))
    out = tmp_path / "logicvista.parquet"
    assert convert_main(["-b", "logicvista", "--native", str(tmp_path / "dataset.json"), "-o", str(out),
                         "--no-progress"]) == 0
    return out


def test_preflight_checks_the_benchmark_files(tmp_path, logicvista):
    from verl_rise.schedule.preflight import preflight

    synthetic = write_benchmarks(tmp_path, ("wemath",))["wemath"]
    cfg = parse_config(_raw(tmp_path, benchmarks={"logicvista": str(logicvista), "mathvista": str(logicvista),
                                                  "wemath": str(synthetic), "dynamath": "nowhere.parquet"}),
                       tmp_path)
    errors = [e for e in preflight(cfg, compose_recipes=False).errors if e.startswith("eval.")]
    # the converted LogicVista file passes; the others are named with their fault
    assert errors == [
        f"eval.benchmarks.mathvista: {logicvista} holds rows of data_source ['LogicVista'], not mathvista",
        f"eval.benchmarks.dynamath: file not found: {tmp_path / 'nowhere.parquet'}",
        f"eval.benchmarks.wemath: {synthetic} lacks the columns ['prompt', 'reward_model'] (write it with "
        f"python -m data_prep.*)",
    ]


def test_converted_rows_through_the_reward_and_evaluate(tmp_path, logicvista):
    """Each converted row scored by the eval stage's reward as verl calls it; its returned keys written as verl's
    dump lines; evaluate joins them back by row_key: "B, D" answered in prose counts only with lenient extraction."""
    from verl_rise.schedule.benchmark_reward import compute_score

    rows = pq.read_table(logicvista).to_pylist()
    responses = ["<think>...</think><answer>\\boxed{C}</answer>", "The answer is B, D."]
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    with open(dumps / "0.jsonl", "w") as f:
        for row, response in zip(rows, responses):
            result = compute_score(row["data_source"], response, row["reward_model"]["ground_truth"],
                                   row["extra_info"])
            f.write(json.dumps({"input": "q", "output": response, "gts": row["reward_model"]["ground_truth"],
                                "score": result["score"], "step": 0, **result}) + "\n")
    results = _evaluate(tmp_path, {"logicvista": logicvista}, {"base": dumps})
    entry = results["models"]["base"]["benchmarks"]["logicvista"]
    assert (entry["strict"]["acc"], entry["lenient"]["acc"], entry["missing"]) == (0.5, 1.0, 0)
