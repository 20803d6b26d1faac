"""Issue 13 row 9: SFT freezes the vision tower and the projector by default (LLaMA-Factory's settings, which
Metis-RISE's SFT ran with), through the same FSDP-engine hook as the RL option, in verl's real FSDP2 engine."""

import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import QWEN_PROCESSOR, REPO_ROOT, require


@pytest.fixture(scope="module")
def tiny_vl(tmp_path_factory):
    from verl_rise.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", processor_dir=str(require(QWEN_PROCESSOR)), seed=0)


def _probe(tiny, tower: bool, projector: bool, port: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.vision_freeze_probe", str(tiny), str(tower).lower(), str(port), "sft",
         str(projector).lower()],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sft_recipe_defaults_freeze_tower_and_projector():
    from tests.integration.test_recipes_compose import compose_profile

    for name in ("rise_sft_7b", "rise_sft_72b", "rise_sft_cpu_tiny"):
        engine = compose_profile(REPO_ROOT / "recipes", name).engine
        assert engine._target_ == "verl_rise.verl_ext.sft_freeze.FreezeFSDPEngineConfig"
        # The CPU profile trains the whole tiny model: its end-to-end test checks that images reach the ViT.
        expected = name != "rise_sft_cpu_tiny"
        assert (engine.freeze_vision_tower, engine.freeze_multi_modal_projector) == (expected, expected)


def test_sft_default_trains_only_the_language_model(tiny_vl):
    r = _probe(tiny_vl, True, True, 29621)
    assert r["engine_config"] == "FreezeFSDPEngineConfig"
    assert r["tower_moved"][1] > 0 and r["tower_moved"][0] == 0 and r["tower_requires_grad"] == 0
    assert r["merger_moved"][1] > 0 and r["merger_moved"][0] == 0
    assert r["language_moved"][0] > 0


def test_sft_switches_train_the_vision_parts_again(tiny_vl):
    r = _probe(tiny_vl, False, False, 29622)
    assert r["tower_moved"][0] > 0 and r["merger_moved"][0] == r["merger_moved"][1] > 0
