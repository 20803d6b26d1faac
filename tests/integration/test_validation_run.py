"""verl_rise.validation_run (main_ppo validation-only runs) and the sweep's argument checks, without starting verl.

The real run (main_ppo on the merged e2e checkpoint) is the schedule's sweep stage (tests/e2e/test_passrate.py);
here: the command line composes on every profile into the config verl will run, and every failure mode ends in a
clear error naming the log.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tests.support.paths import QWEN_PROCESSOR, REPO_ROOT
from verl_rise import validation_run
from verl_rise.file_logger import merged_metrics
from verl_rise.passrate import cli
from verl_rise.passrate.sweep import run_sweep
from verl_rise.verl_commands import SWEEP_REWARD
from verl_rise.validation_run import (
    ValidationRunConfig,
    ValidationRunError,
    build_command,
    run_validation,
)

RECIPES = REPO_ROOT / "recipes"


def _cfg(tmp_path: Path, **kw) -> ValidationRunConfig:
    (tmp_path / "model").mkdir(exist_ok=True)
    (tmp_path / "data.parquet").write_bytes(b"")
    return ValidationRunConfig(model=tmp_path / "model", data=tmp_path / "data.parquet", out_dir=tmp_path / "out",
                               config_path=RECIPES, **kw)


@pytest.mark.parametrize("recipe", ["rise_grpo_7b", "rise_grpo_72b", "rise_grpo_cpu_tiny"])
def test_command_composes_on_every_profile_into_a_validation_only_run(tmp_path, recipe):
    cfg = _cfg(tmp_path, n=4, temperature=0.7, top_p=0.9, recipe=recipe, reward=SWEEP_REWARD,
               overrides=("data.max_prompt_length=512",))
    cmd = build_command(cfg, python="python")
    assert cmd[:3] == ["python", "-m", "verl.trainer.main_ppo"]
    assert cmd[cmd.index("--config-path") + 1] == str(RECIPES) and cmd[cmd.index("--config-name") + 1] == recipe
    overrides = [a for a in cmd[7:] if not a.startswith("hydra.")]
    # Hydra accepts them (keys exist, no '+' needed) and the composed config is the run we want.
    with initialize_config_dir(config_dir=str(RECIPES), version_base=None):
        c = compose(config_name=recipe, overrides=overrides)
    out = (tmp_path / "out").resolve()
    assert c.trainer.val_only is True and c.trainer.val_before_train is True
    assert c.trainer.resume_mode == "disable" and c.trainer.default_local_dir == str(out / "ckpt")
    assert c.trainer.validation_data_dir == str(out / "dumps")
    data = str((tmp_path / "data.parquet").resolve())
    assert list(c.data.val_files) == [data] and c.data.train_files == data
    assert c.data.val_max_samples == -1 and c.data.max_prompt_length == 512  # caller's overrides come last
    v = c.actor_rollout_ref.rollout.val_kwargs
    assert (v.n, v.do_sample, v.temperature, v.top_p, v.top_k) == (4, True, 0.7, 0.9, -1)
    assert (c.reward.custom_reward_function.path, c.reward.custom_reward_function.name) == SWEEP_REWARD
    assert c.actor_rollout_ref.model.path == str((tmp_path / "model").resolve())


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="n \\(responses per prompt\\)"):
        _cfg(tmp_path, n=0)
    with pytest.raises(ValueError, match="top_p"):
        _cfg(tmp_path, top_p=0.0)
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        run_validation(ValidationRunConfig(model=tmp_path / "nope", data=tmp_path, out_dir=tmp_path / "o"))


def _fake_trainer(monkeypatch, script: str) -> None:
    """Replace main_ppo by a Python snippet (the log/exit/timeout handling is what is under test)."""
    monkeypatch.setattr(validation_run, "build_command", lambda cfg: [sys.executable, "-c", script])


def test_failed_run_names_the_log_and_quotes_its_end(tmp_path, monkeypatch):
    _fake_trainer(monkeypatch, "import sys; print('loading'); print('KeyError: actor_rollout_ref', file=sys.stderr); "
                               "sys.exit(3)")
    cfg = _cfg(tmp_path)
    with pytest.raises(ValidationRunError) as err:
        run_validation(cfg, progress=False)
    message = str(err.value)
    assert "exit status 3" in message and str(cfg.log_path.resolve()) in message
    assert "KeyError: actor_rollout_ref" in message and "loading" in message


def test_a_run_without_dumps_is_an_error(tmp_path, monkeypatch):
    _fake_trainer(monkeypatch, "print('validation skipped')")
    with pytest.raises(ValidationRunError, match="wrote no validation dump"):
        run_validation(_cfg(tmp_path), progress=False)


def test_timeout_kills_the_run(tmp_path, monkeypatch):
    _fake_trainer(monkeypatch, "import time; print('stuck', flush=True); time.sleep(60)")
    with pytest.raises(ValidationRunError, match="killed after the 1s timeout"):
        run_validation(_cfg(tmp_path), timeout_s=1, progress=False, poll_s=0.1)


def test_dumps_and_metrics_are_returned(tmp_path, monkeypatch):
    script = (
        "import json, os, pathlib; d = pathlib.Path('dumps'); d.mkdir(); (d / '0.jsonl').write_text('{}\\n'); "
        "open(os.environ['VERL_FILE_LOGGER_PATH'], 'w').write(json.dumps({'step': 0, 'data': {'val-core/x/acc': 0.5}}))"
    )
    _fake_trainer(monkeypatch, script)  # the run's working directory is out_dir
    cfg = _cfg(tmp_path)
    result = run_validation(cfg, progress=False)
    assert result.dump_files == [(tmp_path / "out" / "dumps" / "0.jsonl").resolve()]
    assert result.metrics == {"val-core/x/acc": 0.5} == merged_metrics(result.metrics_path)
    # A second run into the same directory would overwrite verl's dump: refused.
    with pytest.raises(FileExistsError, match="already holds validation dumps"):
        run_validation(cfg, progress=False)


def test_sweep_refuses_greedy_sampling_and_a_used_output_dir(tmp_path, capsys):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        run_sweep(tmp_path, tmp_path, tmp_path / "out", temperature=0.0)
    (tmp_path / "out" / "stats" / "records").mkdir(parents=True)
    code = cli.main(["sweep", "--model", str(QWEN_PROCESSOR), "--data", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2 and "a previous sweep is there" in capsys.readouterr().err
