"""verl ``MultiTurnSFTDataset`` subclasses for the Metis-RISE SFT set (``python -m verl_rise.sft_data build`` output).

Two things verl 0.9.1's dataset does not do for this set:

1. **Text-only rows beside image rows** (the Metis-RISE mixed-modality mix). verl's ``SFTTensorCollator``
   (``verl/utils/dataset/dataset_utils.py``, ``pad_mode=no_padding``, the default of ``sft_trainer_engine.yaml``)
   collects the union of the samples' keys but reads ``batch[0][key]``: a batch whose FIRST sample is a text-only
   row (no ``multi_modal_inputs``) and that holds an image row fails with ``KeyError: 'multi_modal_inputs'``.
   verl's engines already accept a ``None`` entry per sample ("Mixed pure text and multi-modal dataset",
   ``verl.utils.model.extract_multi_modal_inputs``), so a text-only row only has to carry the key with ``None``
   (:class:`MixedModalSFTDataset`).
2. **The image pixel range.** verl's SFT data config has no pixel setting: each image goes through
   ``qwen_vl_utils.fetch_image`` with qwen-vl-utils' defaults (4..16384 visual tokens) and then through the
   processor. :class:`RiseSFTDataset` reads ``data.mm_processor_kwargs: {min_pixels, max_pixels}`` (the key the RL
   recipes use for the same range) and hands both to ``fetch_image`` with each image, which resizes it with the
   processor's own ``smart_resize`` rule (sides multiples of 28, area within the range). The RL prompts and the SFT
   rows then show the model the same image sizes. (Passing them through ``data.apply_chat_template_kwargs`` does not
   work in verl 0.9.1 with transformers 5.10: the Hydra node is a ``DictConfig``, not a ``dict``, and the
   processor replaces ``processor_kwargs`` wholesale when any other unknown kwarg such as ``enable_thinking`` is
   present.)

Use them with::

    data.custom_cls.path=pkg://verl_rise.verl_ext.sft_dataset data.custom_cls.name=RiseSFTDataset
    +data.mm_processor_kwargs.min_pixels=100352 +data.mm_processor_kwargs.max_pixels=12845056

(the ``rise_sft`` recipes set both).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

from verl_rise.verl_ext.compat import require_attr

#: The keys of ``data.mm_processor_kwargs`` that :class:`RiseSFTDataset` applies (and the only ones it accepts).
PIXEL_KEYS = ("min_pixels", "max_pixels")

require_attr(MultiTurnSFTDataset, "_build_messages", "verl/utils/dataset/multiturn_sft_dataset.py",
             "verl_rise/verl_ext/sft_dataset.py (RiseSFTDataset resizes images there)")


class MixedModalSFTDataset(MultiTurnSFTDataset):
    """``MultiTurnSFTDataset`` whose text-only samples carry ``multi_modal_inputs=None`` when a processor is set.

    Same constructor and outputs as the parent (``input_ids``, ``loss_mask``, ``position_ids``, ... per sample).
    """

    def __getitem__(self, item: int) -> dict[str, Any]:
        sample = super().__getitem__(item)
        if self.processor is not None:
            sample.setdefault("multi_modal_inputs", None)
        return sample


def pixel_range(config: Any) -> Optional[dict[str, int]]:
    """The ``{min_pixels, max_pixels}`` of ``config.mm_processor_kwargs`` (a dict or DictConfig), or None if unset.

    Args:
        config: verl's SFT ``data`` config.

    Returns:
        ``{"min_pixels": int, "max_pixels": int}`` (pixels, i.e. height x width of the resized image), or None
        when ``mm_processor_kwargs`` is absent or empty.

    Raises:
        ValueError: a key other than min_pixels/max_pixels, only one of the two, a non-positive value, or
            min_pixels > max_pixels.
    """
    raw = config.get("mm_processor_kwargs", None) if config is not None else None
    if raw is None or len(raw) == 0:
        return None
    raw = dict(raw.items())
    unknown = sorted(set(raw) - set(PIXEL_KEYS))
    if unknown:
        raise ValueError(
            f"data.mm_processor_kwargs: RiseSFTDataset applies only {list(PIXEL_KEYS)} (to qwen_vl_utils.fetch_image), "
            f"got {unknown}"
        )
    missing = [key for key in PIXEL_KEYS if raw.get(key) is None]
    if missing:
        raise ValueError(f"data.mm_processor_kwargs: set both min_pixels and max_pixels, missing {missing}")
    lo, hi = int(raw["min_pixels"]), int(raw["max_pixels"])
    if lo <= 0 or lo > hi:
        raise ValueError(f"data.mm_processor_kwargs: need 0 < min_pixels <= max_pixels, got {lo} and {hi}")
    return {"min_pixels": lo, "max_pixels": hi}


def _with_pixel_range(image: Any, pixels: dict[str, int]) -> dict[str, Any]:
    """The image entry as a ``fetch_image`` dict carrying the pixel range (a copy; the row is left as it is)."""
    if isinstance(image, Mapping):
        entry = dict(image)
    else:  # a PIL image or a path/URL: fetch_image reads both from the "image" key
        entry = {"image": image}
    entry.update(pixels)
    return entry


class RiseSFTDataset(MixedModalSFTDataset):
    """The dataset class of the ``rise_sft`` recipes: :class:`MixedModalSFTDataset` plus the image pixel range.

    Reads ``data.mm_processor_kwargs`` (``min_pixels``/``max_pixels``, pixels); without it, images are resized
    exactly as verl's ``MultiTurnSFTDataset`` does. Loss masking is verl's: only assistant tokens (the response and
    its ``<|im_end|>``) have ``loss_mask == 1``.

    Raises:
        ValueError: on construction, for a malformed ``data.mm_processor_kwargs`` (see :func:`pixel_range`).
    """

    def __init__(self, parquet_files, tokenizer, config, processor=None, max_samples: int = -1):
        self.pixel_range = pixel_range(config)
        super().__init__(parquet_files, tokenizer=tokenizer, config=config, processor=processor,
                         max_samples=max_samples)

    def _build_messages(self, example: dict):
        images = example.get(self.image_key) if self.pixel_range is not None else None
        if images is not None and len(images) > 0:
            example = {**example, self.image_key: [_with_pixel_range(img, self.pixel_range) for img in images]}
        return super()._build_messages(example)
