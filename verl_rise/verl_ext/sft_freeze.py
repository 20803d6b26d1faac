"""Freezing the vision tower and the projector in verl's SFT trainer, as LLaMA-Factory does by default.

Metis-RISE (arXiv 2506.13056) ran its SFT stage in LLaMA-Factory, whose defaults for Qwen2.5-VL are
``freeze_vision_tower: true`` and ``freeze_multi_modal_projector: true`` (``freeze_language_model: false``;
src/llamafactory/hparams/finetuning_args.py): only the language model trains. verl 0.9.1's SFT trainer has no such
option, so the RISE SFT recipe names this engine config class (Hydra ``_target_``), which adds the two switches to
verl's ``FSDPEngineConfig``; verl's FSDP engine then freezes the parts right after it builds the model, before FSDP
wrapping and optimizer creation (the same hook as the RL option, :mod:`verl_rise.verl_ext.vision_freeze`).

    engine:
      _target_: verl_rise.verl_ext.sft_freeze.FreezeFSDPEngineConfig
      freeze_vision_tower: true            # the ViT blocks and patch embedding
      freeze_multi_modal_projector: true   # Qwen2.5-VL's visual.merger
"""

from __future__ import annotations

from dataclasses import dataclass

from verl.workers.config import FSDPEngineConfig


@dataclass
class FreezeFSDPEngineConfig(FSDPEngineConfig):
    """verl's ``FSDPEngineConfig`` plus LLaMA-Factory's two vision switches (both on by default).

    Attributes:
        freeze_vision_tower: ``requires_grad=False`` on the vision encoder except its projector.
        freeze_multi_modal_projector: ``requires_grad=False`` on the projector (``visual.merger``).
    """

    freeze_vision_tower: bool = True
    freeze_multi_modal_projector: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.freeze_vision_tower or self.freeze_multi_modal_projector:
            from verl_rise.verl_ext.vision_freeze import patch_engine_build_module

            patch_engine_build_module()
