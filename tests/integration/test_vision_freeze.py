"""``actor.freeze_vision_tower`` (declared but unimplemented in verl 0.9.1) works in verl's real FSDP2 engine."""

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


def _probe(tiny, freeze: bool, port: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.vision_freeze_probe", str(tiny), str(freeze).lower(), str(port)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_frozen_tower_does_not_move_while_merger_and_llm_train(tiny_vl):
    r = _probe(tiny_vl, True, 29611)
    moved, total = r["tower_moved"]
    assert total > 0 and moved == 0 and r["tower_requires_grad"] == 0
    assert r["merger_moved"][0] == r["merger_moved"][1] > 0
    assert r["language_moved"][0] > 0


def test_without_the_flag_the_tower_trains(tiny_vl):
    r = _probe(tiny_vl, False, 29612)
    assert r["tower_moved"][0] > 0 and r["tower_requires_grad"] == r["tower_moved"][1]


def test_freezing_a_text_only_model_is_an_error():
    import torch

    from verl_rise.verl_ext.vision_freeze import freeze_vision_tower

    with pytest.raises(ValueError, match="no vision encoder"):
        freeze_vision_tower(torch.nn.Linear(2, 2))
