"""verl's ``MultiTurnSFTDataset`` for SFT sets that mix text-only and image rows (the Metis-RISE mixed-modality mix).

verl 0.9.1's ``SFTTensorCollator`` (``verl/utils/dataset/dataset_utils.py``, ``pad_mode=no_padding``, the default of
``sft_trainer_engine.yaml``) collects the union of the samples' keys but reads ``batch[0][key]``: a batch whose FIRST
sample is a text-only row (no ``multi_modal_inputs``) and that holds an image row fails with
``KeyError: 'multi_modal_inputs'``. verl's engines already accept a ``None`` entry per sample ("Mixed pure text and
multi-modal dataset", ``verl.utils.model.extract_multi_modal_inputs``), so a text-only row only has to carry the key
with ``None``. That is all this subclass changes.

Use it when the SFT parquet has text-only rows::

    data.custom_cls.path=pkg://verl_rise.sft_data.verl_dataset data.custom_cls.name=MixedModalSFTDataset
"""

from __future__ import annotations

from typing import Any

from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset


class MixedModalSFTDataset(MultiTurnSFTDataset):
    """``MultiTurnSFTDataset`` whose text-only samples carry ``multi_modal_inputs=None`` when a processor is set.

    Same constructor and outputs as the parent (``input_ids``, ``loss_mask``, ``position_ids``, ... per sample).
    """

    def __getitem__(self, item: int) -> dict[str, Any]:
        sample = super().__getitem__(item)
        if self.processor is not None:
            sample.setdefault("multi_modal_inputs", None)
        return sample
