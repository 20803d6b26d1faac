"""verl's reward loader, for our command-line tools: the reward callable exactly as verl's trainer builds it."""

from __future__ import annotations

DEFAULT_REWARD_PATH = "pkg://reward_fns.rise"


def load_reward_fn(path: str = DEFAULT_REWARD_PATH, name: str = "compute_score", reward_kwargs: dict | None = None):
    """The reward callable as verl builds it (``verl.trainer.ppo.reward.get_custom_reward_fn``).

    Args:
        path: ``pkg://module`` or a file path, as ``reward.custom_reward_function.path``.
        name: function name, as ``reward.custom_reward_function.name``.
        reward_kwargs: as ``reward.custom_reward_function.reward_kwargs``.

    Raises:
        FileNotFoundError, ImportError, AttributeError: from verl's loader when the path or name is wrong.
    """
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = {"reward": {"custom_reward_function": {"path": path, "name": name, "reward_kwargs": reward_kwargs or {}}}}
    return get_custom_reward_fn(OmegaConf.create(cfg))
