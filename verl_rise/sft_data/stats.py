"""The SFT set's stats report: token lengths with the real Qwen2.5-VL tokenizer, summaries, and the PNG.

Token lengths are what verl's ``MultiTurnSFTDataset`` will feed the model: the chat template over the three
messages, with each ``<image>`` expanded to ``<|vision_start|>`` + n ``<|image_pad|>`` + ``<|vision_end|>`` where n
follows Qwen2.5-VL's ``smart_resize`` (qwen-vl-utils; 14-pixel patches merged 2x2, so one token per 28x28 pixels,
within qwen-vl-utils' default pixel range, which is what verl's ``process_image`` applies). ``prompt`` counts up to
and including the generation prompt ``<|im_start|>assistant\\n``; ``response`` is the rest (the loss-masked part).
"""

from __future__ import annotations

import io
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

VISION_BLOCK = "<|vision_start|><|image_pad|><|vision_end|>"


def image_token_count(data: bytes, patch_size: int = 14, merge_size: int = 2,
                      pixels: tuple[int, int] | None = None) -> int:
    """Number of ``<|image_pad|>`` tokens Qwen2.5-VL gives an encoded image (qwen-vl-utils ``smart_resize``).

    ``pixels``: the ``(min_pixels, max_pixels)`` range the image is resized into (an SFT profile's
    ``data.mm_processor_kwargs``, applied by ``RiseSFTDataset``); None: qwen-vl-utils' default range.
    """
    from qwen_vl_utils.vision_process import IMAGE_MAX_TOKEN_NUM, IMAGE_MIN_TOKEN_NUM, smart_resize

    factor = patch_size * merge_size
    lo, hi = pixels if pixels is not None else (IMAGE_MIN_TOKEN_NUM * factor**2, IMAGE_MAX_TOKEN_NUM * factor**2)
    with Image.open(io.BytesIO(data)) as im:
        width, height = im.size
    h, w = smart_resize(height, width, factor=factor, min_pixels=lo, max_pixels=hi)
    return (h // factor) * (w // factor)


class TokenCounter:
    """Prompt/response token counts of SFT rows with a Hugging Face tokenizer (e.g. the Qwen2.5-VL processor dir).

    Args:
        tokenizer_path: a directory ``AutoTokenizer.from_pretrained`` accepts.
        pixels: ``(min_pixels, max_pixels)`` images are resized into (see :func:`image_token_count`).
    """

    def __init__(self, tokenizer_path: str | os.PathLike, pixels: tuple[int, int] | None = None) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
        self.path = str(tokenizer_path)
        self.pixels = pixels

    def _ids(self, messages: list[dict[str, str]], generation_prompt: bool) -> int:
        ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
        if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return len(ids)

    def count(self, row: dict[str, Any]) -> dict[str, int]:
        """``{"prompt", "response", "total", "image"}`` token counts of one SFT row dict."""
        messages = [{"role": m["role"], "content": m["content"].replace("<image>", VISION_BLOCK)}
                    for m in row["messages"]]
        image = sum(image_token_count(im["bytes"], pixels=self.pixels) for im in row["images"])
        # Each vision block above holds one <|image_pad|>; the real expansion adds n - 1 more per image.
        extra = image - len(row["images"])
        prompt = self._ids(messages[:-1], True) + extra
        total = self._ids(messages, False) + extra
        return {"prompt": prompt, "response": total - prompt, "total": total, "image": image}


def summarize(values: list[int]) -> dict[str, float]:
    """``{"n", "mean", "p50", "p90", "p99", "max"}`` of a list of numbers (zeros when empty)."""
    if not values:
        return {"n": 0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    a = np.asarray(values, dtype=float)
    return {"n": int(a.size), "mean": round(float(a.mean()), 1), "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def counts_by(rows: list[dict[str, Any]], *keys: str) -> dict:
    """Nested counts of SFT rows by ``extra_info`` keys, e.g. ``counts_by(rows, "sft_source", "passrate_bucket")``."""
    if len(keys) == 1:
        return dict(Counter(str(r["extra_info"][keys[0]]) for r in rows))
    groups: dict[str, list] = defaultdict(list)
    for r in rows:
        groups[str(r["extra_info"][keys[0]])].append(r)
    return {k: counts_by(v, *keys[1:]) for k, v in groups.items()}


def write_png(path: str | os.PathLike, by_source_bucket: dict[str, dict[str, int]],
              lengths: dict[str, list[int]], length_label: str, title: str) -> None:
    """Two panels: SFT rows by source and bucket (stacked bars), and the length histogram per source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from data_prep.atomic import atomic_path

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    sources = sorted(by_source_bucket)
    buckets = sorted({b for d in by_source_bucket.values() for b in d})
    bottom = np.zeros(len(sources))
    for bucket in buckets:
        heights = np.array([by_source_bucket[s].get(bucket, 0) for s in sources], dtype=float)
        ax1.bar(sources, heights, bottom=bottom, label=bucket)
        bottom += heights
    for x, total in enumerate(bottom):
        ax1.text(x, total, f"{int(total)}", ha="center", va="bottom")
    ax1.set_ylabel("SFT rows")
    ax1.set_title("rows by source and pass-rate bucket")
    if buckets:
        ax1.legend(title="bucket")
    all_values = [v for vs in lengths.values() for v in vs]
    if all_values:
        bins = np.linspace(0, max(all_values) + 1, 40)
        for source, values in sorted(lengths.items()):
            if values:
                ax2.hist(values, bins=bins, alpha=0.6, label=f"{source} (n={len(values)})")
        ax2.legend()
    ax2.set_xlabel(length_label)
    ax2.set_ylabel("rows")
    ax2.set_title("length distribution")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
