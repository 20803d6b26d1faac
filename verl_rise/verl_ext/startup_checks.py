"""The checks verl's own entry points make before they need a GPU, run without starting anything.

Pre-flight (:mod:`verl_rise.schedule.preflight`) and the recipe tests call these on composed profiles, so that a
config verl would refuse is refused before any GPU time is spent.
"""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def shared_tokenizer_loads() -> Iterator[None]:
    """While active, verl's model configs load each (tokenizer path, options) once, not once per check.

    verl 0.9.1's ``HFModelConfig.__post_init__`` (``verl/workers/config/model.py:161-162``) loads the tokenizer and the
    processor every time a model section is converted to its dataclass: pre-flight converts one per stage (RL, sweep,
    each evaluation, SFT), i.e. 8 loads of the same Qwen2.5-VL files at ~1.2 s each (measured: 9.9 of a 31 s
    pre-flight). The names ``hf_tokenizer``/``hf_processor`` in ``verl.workers.config.model`` are replaced by cached
    wrappers for the duration of the block and restored afterwards; the cache lives only as long as the block.
    """
    import functools

    import verl.workers.config.model as model_config

    from verl_rise.verl_ext.compat import require_attr

    originals = {name: require_attr(model_config, name, "verl/workers/config/model.py:21",
                                    "verl_rise/verl_ext/startup_checks.py (shared_tokenizer_loads)")
                 for name in ("hf_tokenizer", "hf_processor")}

    def cached(load):
        results: dict = {}

        @functools.wraps(load)
        def wrapper(path, **kwargs):
            key = (str(path), tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
            if key not in results:
                results[key] = load(path, **kwargs)
            return results[key]

        return wrapper

    for name, load in originals.items():
        setattr(model_config, name, cached(load))
    try:
        yield
    finally:
        for name, load in originals.items():
            setattr(model_config, name, load)


def verl_ppo_startup_checks(cfg):
    """What ``main_ppo`` checks before it needs a GPU: verl's ``validate_config``, resolution, the v1 trainer's
    constructor (replay buffer / DAPO filter checks) and the dataclass conversion of the sections the workers
    convert (verl/trainer/main_ppo.py main, trainer/ppo/v1 TaskRunnerV1.run, workers/engine_workers.py).

    Returns:
        The v1 trainer object verl built (its replay buffer and checkpoint callback are the configured ones).

    Raises:
        Exception: whatever verl raises.
    """
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.utils.config import omega_conf_to_dataclass, validate_config
    from verl.utils.device import auto_set_device

    cfg = cfg.copy()
    auto_set_device(cfg)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    OmegaConf.resolve(cfg)
    trainer = get_trainer_cls(cfg.trainer.v1.trainer_mode)(config=cfg)
    sections = ["actor_rollout_ref.model", "actor_rollout_ref.actor", "actor_rollout_ref.rollout",
                "actor_rollout_ref.rollout.checkpoint_engine", "algorithm"]
    if need_reference_policy(cfg):
        sections.append("actor_rollout_ref.ref")
    if need_critic(cfg):
        sections.append("critic")
    for section in sections:
        omega_conf_to_dataclass(OmegaConf.select(cfg, section))
    return trainer


def verl_sft_startup_checks(cfg) -> None:
    """The dataclass conversions ``verl.trainer.sft_trainer.SFTTrainer._build_config`` does first.

    Raises:
        Exception: whatever verl raises.
    """
    from verl.utils.config import omega_conf_to_dataclass

    for section in ("model", "engine", "optim", "checkpoint", "profiler"):
        omega_conf_to_dataclass(cfg[section])
