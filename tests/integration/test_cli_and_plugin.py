"""The plugin entry point, the doctor and the CLI, run as users run them."""

import json
import logging
import os
import subprocess
import sys

import pytest

from tests.support.paths import REPO_ROOT
from verl_rise.verl_ext import registry as plugin


def _run(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=cwd, timeout=600)


def test_import_verl_loads_the_plugin_through_its_entry_point():
    out = _run("-c", "import sys, verl; from verl_rise.verl_ext.registry import STATE; "
                     "print(sys.modules['verl_rise.verl_ext.plugin'] is not None, STATE.loaded, sorted(STATE.errors))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "[]"]


def test_a_failing_registration_step_is_logged_and_recorded(monkeypatch, caplog):
    def broken():
        raise ImportError("no module named 'vllm_cpu'")

    monkeypatch.setattr(plugin, "STATE", plugin.PluginState())
    monkeypatch.setattr(plugin, "_STEPS", [("broken_step", broken), ("fine_step", lambda: None)])
    with caplog.at_level(logging.WARNING, logger="verl_rise"):
        state = plugin.load()
    assert state.errors == {"broken_step": "ImportError: no module named 'vllm_cpu'"}
    assert state.registered == ["fine_step"]
    assert "broken_step" in caplog.text and "vllm_cpu" in caplog.text


def test_doctor_passes_here_and_fails_when_verl_skips_plugins():
    ok = _run("-m", "verl_rise.doctor")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verl-rise is active." in ok.stdout
    skipped = _run("-m", "verl_rise.doctor", env={"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert skipped.returncode == 1
    assert "[FAIL] plugin" in skipped.stdout


def test_score_command_scores_the_bundled_sample_batch(tmp_path):
    sample = REPO_ROOT / "verl_rise" / "assets" / "sample_responses.jsonl"
    out = _run("-m", "verl_rise.cli", "score", str(sample), "--out", str(tmp_path / "scores.jsonl"))
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and "read 12 = scored 12 + rejected 0" in out.stdout
    by_id = {r["id"]: r for r in rows}
    assert by_id["clock-1"]["reward_score"] == pytest.approx(1.0)
    assert by_id["choice-3"]["reward_reason"] == "hedged_choice"
    assert by_id["hack-1"]["reward_format"] == 0.0


def test_score_command_keeps_every_row(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [
        {"response": "<think>a</think><answer>\\boxed{3}</answer>", "ground_truth": "3"},
        {"response": "\\boxed{B}", "reward_model": {"ground_truth": "B"}, "options": ["1", "2"]},
        {"response": None, "ground_truth": "1"},
        {"response": "\\boxed{1}"},
    ]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = _run("-m", "verl_rise.cli", "score", str(src), "--out", str(tmp_path / "out.jsonl"))
    assert out.returncode == 0, out.stderr[-2000:]
    scored = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    rejects = [json.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert len(scored) + len(rejects) == len(rows)
    assert [r["reward_acc"] for r in scored] == [1.0, 1.0]
    assert [(r["row"], r["field"]) for r in rejects] == [(2, "response"), (3, "ground_truth")]
