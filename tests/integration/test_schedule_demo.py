"""``verl-rise demo``'s pieces (the full demo run is measured by hand: see the README) and the example configs."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.support.paths import QWEN_PROCESSOR, REPO_ROOT, require
from verl_rise.demo import cli as demo
from verl_rise.schedule.config import load_config, parse_config
from verl_rise.demo.base_model import GUESS_TEMPLATE, guesses, warm_up
from verl_rise.demo.expert import iter_expert_records, write_expert_file
from verl_rise.schedule.plan import build_plan
from verl_rise.schedule.preflight import preflight
from verl_rise.schedule.runner import format_dry_run


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    from data_prep import generator

    root = tmp_path_factory.mktemp("gen")
    assert generator.main(["--num", "40", "--seed", "0", "--output", str(root / "train.parquet"), "--no-progress"]) == 0
    assert generator.main(["--num", "4", "--seed", "1", "--split", "test", "--output", str(root / "test.parquet"),
                           "--no-progress"]) == 0
    return root


def test_demo_expert_solutions_are_verified_by_the_sft_gate_for_the_generated_prompts(generated, tmp_path):
    from verl_rise.sft_data.rewrite import to_rise_format

    rows = {r["extra_info"]["prompt_id"]: r for r in pd.read_parquet(generated / "train.parquet").to_dict("records")}
    records = list(iter_expert_records(40, 0))
    assert [r["prompt_id"] for r in records] == list(rows)  # same problems, same ids, same order
    assert {r["task"] for r in records} == {"count", "bar", "triangle", "clock"}
    for rec in records:
        row = rows[rec["prompt_id"]]
        options = [] if row["extra_info"]["options"] is None else list(row["extra_info"]["options"])
        result = to_rise_format(rec["response"], row["reward_model"]["ground_truth"], options)
        assert result.ok and result.method == "as_is", (rec, result)
    assert write_expert_file(tmp_path / "e.jsonl", 40, 0) == 40
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == 40


def test_guesses_cover_every_option_or_are_numbers():
    import random

    choice = {"extra_info": {"options": ["3", "4", "5", "6"]}}
    assert guesses(choice, 4, random.Random(0)) == ["A", "B", "C", "D"]
    assert guesses(choice, 8, random.Random(0)) == ["A", "B", "C", "D"] * 2
    free = guesses({"extra_info": {"options": None}}, 4, random.Random(0))
    assert len(free) == 4 and all(g.isdigit() and 0 <= int(g) <= 20 for g in free)
    import reward_fns

    assert reward_fns.compute_score("x", GUESS_TEMPLATE.format("B"), "B", {"options": choice["extra_info"]["options"]})[
        "format"] == 1.0


def test_warm_up_fits_the_guess_format(generated, tmp_path):
    from transformers import AutoModelForImageTextToText

    from verl_rise.tiny_model import build_tiny_model

    tiny = build_tiny_model(tmp_path / "tiny")
    info = warm_up(tiny, generated / "train.parquet", tmp_path / "base", steps=3, max_prompts=1)
    assert info["sequences"] == 4 and info["last_loss"] < info["first_loss"]
    model = AutoModelForImageTextToText.from_pretrained(str(tmp_path / "base"))
    assert (tmp_path / "base" / "tokenizer.json").is_file() and model.config.text_config.vocab_size < 1000


def test_demo_on_a_gpu_machine_only_explains(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "gpu_count", lambda: 8)
    args = argparse.Namespace(out=tmp_path / "demo", cpu=False, fresh=False, recipes_dir=None)
    assert demo.cmd_demo(args) == 0
    out = capsys.readouterr().out
    assert "This machine has 8 GPU(s)" in out and "verl-rise run my_run.yaml" in out and "--cpu" in out
    assert not (tmp_path / "demo").exists()


def test_demo_config_passes_the_preflight(tmp_path):
    """The demo's run configuration on the demo's own inputs (both families, no system prompt, the demo expert)."""
    from verl_rise.demo import families

    require(QWEN_PROCESSOR)
    counts = {f: 3 for f in families.FAMILIES}
    families.write_split(tmp_path / "train.parquet", counts, "train", 0, system_prompt=None)
    families.write_split(tmp_path / "test.parquet", counts, "test", 0, system_prompt=None)
    families.write_expert_file(tmp_path / "expert.jsonl", counts, 0)
    raw = demo.demo_config(tmp_path, tmp_path, REPO_ROOT / "recipes", seed=3)
    raw["model"] = str(QWEN_PROCESSOR)  # a real processor stands in for the demo's base model
    assert "actor_rollout_ref.rollout.seed=3" in raw["overrides"]["rl"] and "trainer.seed=3" in raw["overrides"]["sft"]
    assert "sweep" not in raw["overrides"] and "eval" not in raw["overrides"]  # so the RL validation is reused
    result = preflight(parse_config(raw, tmp_path))
    assert result.errors == []


@pytest.mark.parametrize("name", ["rise_7b.yaml", "rise_72b.yaml"])
def test_example_configs_load_and_print_their_commands(name):
    config = load_config(REPO_ROOT / "examples" / name)
    text = format_dry_run(build_plan(config))
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    assert f"--config-name {config.profiles.rl}" in text and f"--config-name {config.profiles.sft}" in text
    assert (REPO_ROOT / "recipes" / f"{config.profiles.rl}.yaml").is_file()
