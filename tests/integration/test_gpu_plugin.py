"""Issue 13: a run that asks for a feature whose verl-rise registration step failed stops before any worker starts
(verl itself would ignore e.g. ``freeze_vision_tower=true`` and train the ViT anyway)."""

from __future__ import annotations

import pytest

from tests.support.paths import QWEN_PROCESSOR, REPO_ROOT, require


@pytest.fixture
def failed_freeze_step(monkeypatch):
    from verl_rise.verl_ext.registry import STATE

    monkeypatch.setitem(STATE.errors, "freeze_vision_tower", "ImportError: simulated")
    yield


def _cfg(freeze: bool):
    from verl_rise.schedule.preflight import compose

    return compose(str(REPO_ROOT / "recipes"), "rise_grpo_cpu_tiny", [
        f"actor_rollout_ref.model.path={require(QWEN_PROCESSOR)}",
        f"actor_rollout_ref.actor.freeze_vision_tower={str(freeze).lower()}"])


def test_main_ppo_driver_refuses_a_feature_whose_step_failed(failed_freeze_step):
    import verl  # noqa: F401  (loads the plugin)
    import verl.utils.config
    from verl.trainer import main_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy

    # main_ppo's own reference to validate_config is the checked one.
    assert main_ppo.validate_config is verl.utils.config.validate_config
    cfg = _cfg(True)
    with pytest.raises(RuntimeError, match=r"freeze_vision_tower=true but verl-rise's 'freeze_vision_tower' "
                                           r"registration step failed .*ImportError: simulated"):
        main_ppo.validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg),
                                 use_critic=need_critic(cfg))


def test_a_config_not_asking_for_it_is_not_refused(failed_freeze_step):
    from verl_rise.verl_ext.registry import check_requested, failed_requests

    assert failed_requests(_cfg(False)) == []
    check_requested(_cfg(False))
    assert len(failed_requests(_cfg(True))) == 1
