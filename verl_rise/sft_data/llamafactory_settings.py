"""The LLaMA-Factory training settings that match verl-rise's SFT recipe, written beside the LLaMA-Factory export.

The export (``llamafactory/``, :func:`verl_rise.sft_data.outputs.write_llamafactory`) loads in LLaMA-Factory as is,
but LLaMA-Factory's own defaults differ from the RISE SFT recipe (recipes/rise_sft.yaml) where it matters: images at
32x32..768x768 pixels instead of the Metis-RISE range, and ``cutoff_len`` 2048 tokens, which cuts most rows of the
set. ``<name>_train.yaml`` holds the settings to merge into a LLaMA-Factory training config (``llamafactory-cli
train``): the dataset, the ``qwen2_vl`` template (Qwen2/2.5-VL), the pixel range and ``cutoff_len`` the set was
built and length-checked with, and the recipe's optimisation and freezing settings (LLaMA-Factory's Qwen2.5-VL full
SFT example, which the recipe follows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml

from data_prep.atomic import write_text_atomic
from data_prep.prompts import MAX_PIXELS, MIN_PIXELS

#: recipes/rise_sft_7b.yaml's data.max_length, used when the build was given no max_length.
DEFAULT_CUTOFF_LEN = 21504


def llamafactory_settings(export_dir: Path, name: str, pixels: Optional[tuple[int, int]],
                          max_length: Optional[int]) -> dict:
    """The LLaMA-Factory settings (a mapping of its config keys) for an export in ``export_dir``.

    Args:
        export_dir: the ``llamafactory/`` folder (becomes ``dataset_dir``, absolute).
        name: the dataset name in ``dataset_info.json``.
        pixels: ``(min_pixels, max_pixels)`` of the SFT profile; None: the Metis-RISE range (data_prep.prompts).
        max_length: the SFT profile's ``data.max_length``; None: :data:`DEFAULT_CUTOFF_LEN`.
    """
    lo, hi = pixels if pixels is not None else (MIN_PIXELS, MAX_PIXELS)
    return {
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full",
        "dataset_dir": str(Path(export_dir).resolve()),
        "dataset": name,
        "template": "qwen2_vl",
        "image_min_pixels": int(lo),
        "image_max_pixels": int(hi),
        "cutoff_len": int(max_length or DEFAULT_CUTOFF_LEN),
        "freeze_vision_tower": True,
        "freeze_multi_modal_projector": True,
        "freeze_language_model": False,
        "learning_rate": 1.0e-5,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.1,
        "num_train_epochs": 3.0,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 2,
        "bf16": True,
    }


def write_llamafactory_settings(export_dir: Path, name: str, pixels: Optional[tuple[int, int]],
                                max_length: Optional[int]) -> Path:
    """Write ``<export_dir>/<name>_train.yaml`` (atomically). Returns its path."""
    path = Path(export_dir) / f"{name}_train.yaml"
    header = ("# LLaMA-Factory settings matching verl-rise's SFT recipe (recipes/rise_sft.yaml) and this export.\n"
              "# Merge into your training config (model_name_or_path, output_dir, deepspeed ...), then\n"
              "#   llamafactory-cli train <that config>\n"
              "# per_device_train_batch_size x gradient_accumulation_steps x 8 GPUs = 16 rows per step, as the recipe.\n")
    body = yaml.safe_dump(llamafactory_settings(export_dir, name, pixels, max_length), sort_keys=False)
    write_text_atomic(path, header + body)
    return path
