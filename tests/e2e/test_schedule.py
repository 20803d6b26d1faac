"""The whole Metis-RISE schedule on real input (fixture ``rise_schedule``, tests/e2e/schedule_run.py): what every
stage left in the run directory, the resume of the interrupted RL stage, the evaluation numbers against verl's own,
the report, and the rerun that skips everything. The stages' insides are checked in test_rl.py, test_passrate.py
and test_sft.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.schedule_run import e2e_marks, SWEEP_K
from verl_rise.schedule import STAGES
from verl_rise.schedule.evaluate import held_out_sources, sampled_pass_at_k, validation_points
from verl_rise.schedule.manifest import COMPLETED, INTERRUPTED, read_manifest

pytestmark = e2e_marks()


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _safetensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    state = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        state.update(load_file(str(f)))
    return state


def _differs(a: dict, b: dict) -> bool:
    import torch

    assert a.keys() == b.keys()
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_the_schedule_ran_to_the_end(rise_schedule):
    s = rise_schedule
    assert s.full.returncode == 0, s.full.output[-6000:]
    for name in STAGES:
        m = read_manifest(s.stage(name))
        assert m is not None and m.status == COMPLETED, name
        assert all(step.status == COMPLETED for step in m.steps.values()), name
    times = {name: read_manifest(s.stage(name)).wall_s for name in STAGES}
    print("stage wall times (s):", {k: round(v) for k, v in times.items()},
          f"prep {s.prep_seconds:.0f}s, interrupted run {s.interrupted.seconds:.0f}s, full run {s.full.seconds:.0f}s, "
          f"rerun {s.rerun.seconds:.0f}s")


def test_interrupted_rl_stage_resumed_from_its_checkpoint(rise_schedule):
    s = rise_schedule
    assert s.interrupted.returncode == 1 and "interrupted during rl/main_ppo" in s.interrupted.output
    rec = read_manifest(s.stage("rl")).steps["main_ppo"]
    assert [a.status for a in rec.attempts] == [INTERRUPTED, COMPLETED]
    assert "resuming" in s.full.output and "rl/main_ppo: resuming (attempt 2" in s.full.output
    first, second = (_jsonl(s.stage("rl") / "metrics" / f"attempt-{i}.jsonl") for i in (1, 2))
    trained = lambda lines: sorted({x["step"] for x in lines if "critic/score/mean" in x["data"]})  # noqa: E731
    # Attempt 1 trained step 1: the fixture stops it once step 1 is logged (after its checkpoint) and synced.
    assert trained(first) == [1]
    assert trained(second) == [2]  # step 1 was not trained again
    assert (s.stage("rl") / "ckpt" / "latest_checkpointed_iteration.txt").read_text().strip() == "2"


def test_rl_model_is_the_last_checkpoint_merged_and_differs_from_the_base(rise_schedule):
    s = rise_schedule
    hf = s.stage("merge_rl") / "hf"
    for name in ("config.json", "preprocessor_config.json", "chat_template.jinja"):
        assert (hf / name).is_file() or name != "config.json", name
    assert (hf / "config.json").is_file()
    merged = _safetensors(hf)
    assert _differs(merged, _safetensors(s.base_model))  # GRPO updated the policy


def test_sweep_sampled_k_responses_for_every_training_prompt(rise_schedule):
    s = rise_schedule
    lines = [x for f in sorted((s.stage("sweep") / "dumps").glob("*.jsonl")) for x in _jsonl(f)]
    ids = [p for p, role in s.roles.items() if role != "overlong"]  # verl's dataset drops the overlong row
    assert sorted({x["prompt_id"] for x in lines}) == sorted(ids)
    assert all(sum(x["prompt_id"] == pid for x in lines) == SWEEP_K for pid in ids)


def test_export_split_accounts_for_every_row_and_matches_the_sweep(rise_schedule):
    s = rise_schedule
    summary = json.loads((s.stage("export") / "summary.json").read_text())
    per = summary["prompts_per_bucket"]
    overlong = {p for p, role in s.roles.items() if role == "overlong"}
    assert sum(per.values()) == len(s.train_rows) and per["unseen"] == len(overlong) == 1
    # the primed policy answers option letters: free-form prompts it saw are never right
    hard = pd.read_parquet(s.stage("export") / "hard.parquet")
    free = {r["extra_info"]["prompt_id"] for r in s.train_rows if r["extra_info"]["answer_type"] == "free_form"}
    assert free - overlong and free - overlong <= set(hard["extra_info"].map(lambda e: e["prompt_id"]))
    # pass@1 from the sweep's dumps (the eval code) equals the export's mean pass rate per prompt
    sources, _ = held_out_sources({"train": s.workdir / "train.parquet"})
    pass1, counted = sampled_pass_at_k(s.stage("sweep") / "dumps", 1, sources)
    rates = pd.concat([pd.read_parquet(s.stage("export") / f"{b}.parquet") for b in
                       ("hard", "inconsistent", "solved")])["passrate"]
    swept = len(s.train_rows) - len(overlong)
    assert sum(counted.values()) == swept == len(rates)
    assert sum(pass1[ds] * counted[ds] for ds in pass1) / swept == pytest.approx(rates.mean())


def test_sft_set_has_expert_rows_for_hard_prompts_and_adds_up(rise_schedule):
    s = rise_schedule
    stats = json.loads((s.stage("sft_data") / "stats.json").read_text())
    sft = pd.read_parquet(s.stage("sft_data") / "sft.parquet")
    assert stats["sft_rows"] == len(sft) > 0
    # every training prompt but the overlong one has a usable trace: every hard prompt gets expert rows
    assert stats["rows_by_source"]["expert_file"] >= stats["coverage"]["hard"]["prompts"] >= 1
    assert stats["coverage"]["hard"]["covered"] == stats["coverage"]["hard"]["prompts"]
    assert sum(stats["rows_by_source"].values()) == len(sft)


def test_sft_trained_the_rl_model(rise_schedule):
    s = rise_schedule
    losses = [x["data"]["train/loss"] for f in sorted((s.stage("sft") / "metrics").glob("*.jsonl"))
              for x in _jsonl(f) if "train/loss" in x["data"]]
    assert losses and all(v == v for v in losses)  # logged, not NaN
    assert _differs(_safetensors(s.stage("merge_sft") / "hf"), _safetensors(s.stage("merge_rl") / "hf"))


def test_eval_numbers_are_verls_own_and_reuse_the_rl_validation(rise_schedule):
    s = rise_schedule
    results = json.loads((s.stage("eval") / "results.json").read_text())
    models = results["models"]
    assert set(models) == {"base", "rl", "sft"}
    [ds] = results["data_sources"]
    rl_points = validation_points(s.stage("rl") / "metrics")
    assert sorted(rl_points) == [0, 1, 2]  # before training, at the resume (step 1), after the last step
    assert models["base"]["step"] == 0 and models["rl"]["step"] == 2
    key = f"val-core/{ds}/acc/mean@1"
    assert models["base"]["acc"][ds] == rl_points[0][key]
    assert models["rl"]["acc"][ds] == rl_points[2][key]
    # the SFT model's own validation run: verl's metric equals the share of correct greedy responses it dumped
    dumps = _jsonl(s.stage("eval") / "sft" / "greedy" / "dumps" / "0.jsonl")
    assert len(dumps) == len(s.held_out_rows)
    assert models["sft"]["acc"][ds] == pytest.approx(sum(x["acc"] for x in dumps) / len(dumps))
    # only the SFT model needed its own evaluation run
    assert [n for n in read_manifest(s.stage("eval")).steps] == ["sft_greedy", "collect"]


def test_report_has_the_table_and_the_plots(rise_schedule):
    from PIL import Image

    s = rise_schedule
    report = (s.stage("report") / "report.md").read_text()
    results = json.loads((s.stage("eval") / "results.json").read_text())
    [ds] = results["data_sources"]
    [column] = results["held_out"]  # one data_source in the set: its column is named after the set
    assert f"| model | {column} acc |" in report
    for key, label in (("base", "base model"), ("rl", "+ RL (GRPO)"), ("sft", "+ RL + SFT (Metis-RISE)")):
        assert f"| {label} | {100 * results['models'][key]['acc'][ds]:.1f} |" in report
    for png in ("rl_curves.png", "pass_rate_hist.png", "sft_set.png", "sft_loss.png", "stage_times.png"):
        assert f"]({png})" in report
        with Image.open(s.stage("report") / png) as im:
            assert im.format == "PNG" and im.size[0] > 300
    for name in STAGES[:-1]:
        assert f"| {name} | completed |" in report
    # attempts: the interrupted RL stage was started twice; the sweep (two steps) once
    assert "| rl | completed | 2 |" in report and "| sweep | completed | 1 |" in report
    assert "report:" in s.full.output and f"| model | {column} acc |" in s.full.output
    summary = json.loads((s.stage("report") / "summary.json").read_text())
    assert summary["accuracy"]["rise"] == {column: results["models"]["sft"]["acc"][ds]}
    export = json.loads((s.stage("export") / "summary.json").read_text())
    assert summary["buckets"] == export["prompts_per_bucket"] and sum(summary["buckets"].values()) == export["prompts"]


def test_rerun_skips_every_stage(rise_schedule):
    s = rise_schedule
    assert s.rerun.returncode == 0, s.rerun.output[-3000:]
    skipped = [line for line in s.rerun.output.splitlines() if "unchanged, skipped" in line]
    assert len(skipped) == sum(len(read_manifest(s.stage(n)).steps) for n in STAGES)
    assert "running (attempt" not in s.rerun.output and "resuming" not in s.rerun.output
