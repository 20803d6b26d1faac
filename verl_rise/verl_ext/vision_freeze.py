"""``actor_rollout_ref.actor.freeze_vision_tower=true`` for verl 0.9.1's FSDP actor.

verl 0.9.1 declares ``ActorConfig.freeze_vision_tower`` (workers/config/actor.py:161) but no code reads it, so the
option silently does nothing. This module makes it work: when a process builds an FSDP actor config with the flag
set, the FSDP engine it then builds for training marks the vision encoder's parameters ``requires_grad=False``
before FSDP wrapping and optimizer creation. The vision-language merger (Qwen2.5-VL's ``visual.merger``, the
projector into the LLM) stays trainable, as in EasyR1's ``freeze_vision_tower``: the paper is silent on what RL
trains, and the merger is the cheap part that adapts the image features to the policy.

Frozen parameters get no gradient, so AdamW leaves them unchanged and FSDP2 reduces no gradient for them.

The SFT trainer uses the same engine hook through its engine config (:mod:`verl_rise.verl_ext.sft_freeze`), with
LLaMA-Factory's defaults: vision tower and projector frozen.
"""

from __future__ import annotations

import functools
import logging

from verl_rise.verl_ext.registry import registration_step

logger = logging.getLogger("verl_rise")

#: Attribute names of vision encoders on HF multimodal models (Qwen2/2.5-VL: ``visual``; LLaVA-style:
#: ``vision_tower``; others: ``vision_model``), looked up on the model and on its ``.model``.
VISION_TOWER_ATTRS = ("visual", "vision_tower", "vision_model")
#: Sub-modules of the vision encoder that stay trainable (the projector into the language model).
TRAINABLE_PARTS = ("merger", "multi_modal_projector")

_freeze_requested = False


def find_vision_tower(model):
    """The vision encoder sub-module of an HF multimodal model, or None.

    Looks for :data:`VISION_TOWER_ATTRS` on ``model`` and on ``model.model`` (transformers 5 nests the encoder
    there for Qwen2.5-VL).
    """
    for owner in (model, getattr(model, "model", None)):
        if owner is None:
            continue
        for attr in VISION_TOWER_ATTRS:
            tower = getattr(owner, attr, None)
            if tower is not None and hasattr(tower, "parameters"):
                return tower
    return None


def freeze_vision_tower(model, trainable_parts: tuple[str, ...] = TRAINABLE_PARTS) -> int:
    """Set ``requires_grad=False`` on the vision encoder's parameters, except ``trainable_parts``.

    Args:
        model: an HF multimodal model (e.g. ``Qwen2_5_VLForConditionalGeneration``).
        trainable_parts: names of encoder sub-modules to keep trainable.

    Returns:
        The number of parameter tensors frozen.

    Raises:
        ValueError: the model has no vision encoder (freezing was asked for a text-only model).
    """
    tower = find_vision_tower(model)
    if tower is None:
        raise ValueError(
            f"freeze_vision_tower=true but {type(model).__name__} has no vision encoder "
            f"(looked for {', '.join(VISION_TOWER_ATTRS)} on the model and on model.model)"
        )
    frozen = 0
    for name, param in tower.named_parameters():
        if any(part in name.split(".") for part in trainable_parts):
            continue
        param.requires_grad_(False)
        frozen += 1
    return frozen


def freeze_vision_parts(model, tower: bool, projector: bool) -> int:
    """Freeze the vision encoder (``tower``, its projector excepted) and/or its projector (``projector``).

    Returns:
        The number of parameter tensors frozen.

    Raises:
        ValueError: the model has no vision encoder.
    """
    if tower:
        frozen = freeze_vision_tower(model, trainable_parts=() if projector else TRAINABLE_PARTS)
        return frozen
    if not projector:
        return 0
    tower_module = find_vision_tower(model)
    if tower_module is None:
        raise ValueError(f"freeze_multi_modal_projector=true but {type(model).__name__} has no vision encoder")
    frozen = 0
    for name, param in tower_module.named_parameters():
        if any(part in name.split(".") for part in TRAINABLE_PARTS):
            param.requires_grad_(False)
            frozen += 1
    return frozen


def patch_engine_build_module() -> None:
    """Make verl's FSDP engine freeze vision parts right after it builds the model (idempotent).

    What is frozen: the RL actor's ``freeze_vision_tower`` (tower only), or the SFT engine config's
    ``freeze_vision_tower`` / ``freeze_multi_modal_projector`` (:class:`verl_rise.verl_ext.sft_freeze.FreezeFSDPEngineConfig`).
    """
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    original = FSDPEngine._build_module
    if getattr(original, "_verl_rise_freeze", False):
        return

    @functools.wraps(original)
    def _build_module(self):
        module = original(self)
        if self.engine_config.forward_only:
            return module
        tower = _freeze_requested or bool(getattr(self.engine_config, "freeze_vision_tower", False))
        projector = bool(getattr(self.engine_config, "freeze_multi_modal_projector", False))
        if tower or projector:
            count = freeze_vision_parts(module, tower, projector)
            logger.warning("verl-rise: froze %d vision parameter tensors (tower %s, projector %s)", count,
                           "frozen" if tower else "trainable", "frozen" if projector else "trainable")
        return module

    _build_module._verl_rise_freeze = True
    FSDPEngine._build_module = _build_module


def _asks_for_freeze(cfg) -> bool:
    return bool(cfg.actor_rollout_ref.actor.get("freeze_vision_tower", False))


@registration_step("freeze_vision_tower", requested_by=_asks_for_freeze,
                   feature="actor_rollout_ref.actor.freeze_vision_tower=true")
def _register() -> None:
    # Only the config class is patched at `import verl` (cheap); the engine module is imported and patched in the
    # process that actually asks for freezing (the actor worker), when it builds its actor config.
    from verl.workers.config.actor import FSDPActorConfig

    original = FSDPActorConfig.__post_init__
    if getattr(original, "_verl_rise_freeze", False):
        return

    @functools.wraps(original)
    def __post_init__(self):
        global _freeze_requested
        original(self)
        if self.freeze_vision_tower:
            _freeze_requested = True
            patch_engine_build_module()

    __post_init__._verl_rise_freeze = True
    FSDPActorConfig.__post_init__ = __post_init__
