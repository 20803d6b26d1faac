"""The one place that says which verl verl-rise supports and which verl internals it touches.

verl-rise is built and tested against verl 0.9.1. Every module of :mod:`verl_rise.verl_ext` that reaches past verl's
public hooks checks what it needs at import or registration time and fails with :class:`VerlCompatError` (naming
the verl file and line it expected) instead of misbehaving on another verl version.

Internals touched (verl 0.9.1 file:line), by module:

==========================  ==========================================================================================
module                      verl internals
==========================  ==========================================================================================
``cpu_platform``            ``utils/distributed.py:61,83`` (process-group start-up), ``utils/fsdp_utils.py:43`` and
                            ``workers/engine/fsdp/transformer_impl.py:43`` (``CPUOffloadPolicy``),
                            ``plugin/platform`` (``PlatformBase``, ``PlatformRegistry``)
``hf_rollout``              ``workers/rollout/base.py:88`` (``_ROLLOUT_REGISTRY``), ``workers/rollout/replica.py:299``
                            (``RolloutReplicaRegistry``), ``workers/config`` (``HFModelConfig``, ``RolloutConfig``)
``vision_freeze``           ``workers/config/actor.py:161`` (``freeze_vision_tower``), the FSDP engine's module build
``passrate_hooks``          ``trainer/ppo/v1/replay_buffer.py`` (``ReplayBuffer._clear_groups``, ``_materialize_batch``,
                            ``sample``, ``_sync_metadata_from_transfer_queue``), ``trainer/ppo/checkpoint_callback.py``
``replay_poll``             ``trainer/ppo/v1/replay_buffer.py:144,408`` (``ReplayBuffer.__init__``'s ``poll_interval``)
``nccl_timeout``            ``workers/engine_workers.py:89,539`` (``ActorRolloutRefWorker.init_model``), ``utils/distributed.py:83``
``sft_dataset``             ``utils/dataset/multiturn_sft_dataset.py`` (``MultiTurnSFTDataset._build_messages``)
``rl_dataset``              ``utils/dataset/rl_dataset.py:197`` (``RLHFDataset.maybe_filter_out_long_prompts``)
``reward_loader``           ``trainer/ppo/reward.py`` (``get_custom_reward_fn``)
``startup_checks``          ``utils/config.py`` (``validate_config``, ``omega_conf_to_dataclass``),
                            ``workers/config/model.py:21`` (``hf_tokenizer``/``hf_processor``, cached in pre-flight),
                            ``trainer/ppo/utils.py``, ``trainer/ppo/v1`` (``get_trainer_cls``), ``utils/device.py``
==========================  ==========================================================================================
"""

from __future__ import annotations

from typing import Any

#: Supported verl versions: ``>= SUPPORTED_VERL[0]`` and ``< SUPPORTED_VERL[1]`` (pyproject pins the same range).
SUPPORTED_VERL = ("0.9.1", "0.10")


class VerlCompatError(RuntimeError):
    """The installed verl is not one verl-rise supports, or an internal we use is not where verl 0.9.1 has it."""


def version_tuple(version: str) -> tuple[int, ...]:
    """``"0.9.1+cu12"`` -> ``(0, 9, 1)``: the numeric release part of a version string."""
    return tuple(int(p) for p in version.split("+")[0].split(".")[:3] if p.isdigit())


def version_supported(version: str) -> bool:
    """True when ``version`` is within :data:`SUPPORTED_VERL`."""
    lo, hi = SUPPORTED_VERL
    return version_tuple(lo) <= version_tuple(version) < version_tuple(hi)


def installed_verl_version() -> str:
    """verl's ``__version__`` ("unknown" when it has none).

    Works inside ``import verl``: verl/__init__.py sets ``__version__`` before it loads plugins.

    Raises:
        ImportError: verl is not installed.
    """
    import verl

    return getattr(verl, "__version__", "unknown")


def require_supported_verl(feature: str) -> str:
    """The installed verl version, checked against :data:`SUPPORTED_VERL`.

    Args:
        feature: what needs the check, for the message (e.g. ``"the CPU platform"``).

    Raises:
        VerlCompatError: verl is outside the supported range.
    """
    version = installed_verl_version()
    if not version_supported(version):
        lo, hi = SUPPORTED_VERL
        raise VerlCompatError(f"verl-rise's {feature} uses verl {lo} internals, but verl {version} is installed; "
                              f"pin verl>={lo},<{hi}")
    return version


def require_attr(owner: Any, name: str, where: str, fix: str) -> Any:
    """``getattr(owner, name)``, or a :class:`VerlCompatError` saying where verl 0.9.1 had it.

    Args:
        owner: a verl module or class.
        name: the attribute verl-rise needs.
        where: its verl 0.9.1 location, e.g. ``"verl/utils/distributed.py:83"``.
        fix: the verl-rise file to update when verl moves it.

    Raises:
        VerlCompatError: ``owner`` has no ``name``.
    """
    if not hasattr(owner, name):
        label = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", repr(owner))
        raise VerlCompatError(f"{label}.{name} not found ({where} in verl 0.9.1): verl moved it, update {fix}")
    return getattr(owner, name)
