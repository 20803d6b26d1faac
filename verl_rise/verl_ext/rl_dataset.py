"""verl ``RLHFDataset`` subclass for the RL recipes: the overlong-prompt filter without hashing the tokenizer.

verl 0.9.1's ``RLHFDataset.maybe_filter_out_long_prompts`` (``verl/utils/dataset/rl_dataset.py:197-275``) calls
``datasets.Dataset.filter`` with a lambda that closes over the dataset object, tokenizer and processor included.
HF ``datasets`` fingerprints every transform it is not given a fingerprint for by dill-pickling the function with
everything it reaches: with Qwen2.5-VL's 11 MB tokenizer that is 5-10 s per dataset on a CPU (measured: 10.8 s of
a 10.8 s construction of a 4-row MATH-Vision dataset, 95 % of it in ``_save_transformersPreTrainedTokenizerBase``),
whatever the dataset's size. Every ``main_ppo`` start pays it twice (train and val sets): a fixed cost that is
noise on a GPU cluster and a third of a CPU run's start-up.

:class:`RiseRLDataset` runs verl's own filter, unchanged, with the two keyword arguments ``datasets`` offers for
this: ``new_fingerprint`` (a hash of what decides the result: the data's own fingerprint, the length limit, the
processor's settings) and ``keep_in_memory=True`` (so no cache file is written or looked up under that fingerprint,
and a stale cache can never be read). verl's ``num_proc`` is kept, except 1 (verl's default on machines with fewer
than 8 cores), which ``datasets`` runs in a one-process pool that the filter function, tokenizer included, is
pickled to (~5 s): ``num_proc=None`` filters in the calling process instead. The kept rows are exactly verl's.

Use it with::

    data.custom_cls.path=pkg://verl_rise.verl_ext.rl_dataset data.custom_cls.name=RiseRLDataset

(``recipes/rise_grpo.yaml`` sets both).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from verl.utils.dataset.rl_dataset import RLHFDataset

from verl_rise.verl_ext.compat import installed_verl_version, require_attr

require_attr(RLHFDataset, "maybe_filter_out_long_prompts", "verl/utils/dataset/rl_dataset.py",
             "verl_rise/verl_ext/rl_dataset.py (RiseRLDataset fingerprints the overlong-prompt filter)")


def _describe(obj: Any) -> Any:
    """What of a tokenizer or processor decides prompt lengths, as JSON-able text (no pickling of the vocabulary)."""
    if obj is None:
        return None
    parts = {"class": type(obj).__name__, "name_or_path": getattr(obj, "name_or_path", None),
             "chat_template": getattr(obj, "chat_template", None)}
    tokenizer = getattr(obj, "tokenizer", obj)
    parts["vocab"] = len(tokenizer) if hasattr(tokenizer, "__len__") else None
    image_processor = getattr(obj, "image_processor", None)
    if image_processor is not None and hasattr(image_processor, "to_json_string"):
        parts["image_processor"] = image_processor.to_json_string()
    return parts


def filter_fingerprint(dataset: "RLHFDataset", dataframe: Any) -> str:
    """A ``datasets`` fingerprint for the overlong-prompt filter of ``dataframe`` by ``dataset``.

    Args:
        dataset: the :class:`RLHFDataset` whose settings decide each prompt's length.
        dataframe: the HF ``datasets.Dataset`` about to be filtered (its ``_fingerprint`` identifies its rows).

    Returns:
        64 hex digits (sha256) over the data's fingerprint, verl's version, ``max_prompt_length``, the prompt and
        image keys, ``mm_processor_kwargs``, chat-template kwargs, tool schemas, and the tokenizer's and
        processor's class, path, chat template, vocabulary size and image-processor settings.
    """
    config = {key: getattr(dataset, key, None) for key in (
        "max_prompt_length", "prompt_key", "image_key", "video_key", "audio_key", "image_patch_size", "chat_template_func")}
    for key in ("mm_processor_kwargs", "apply_chat_template_kwargs", "tool_schemas"):
        value = getattr(dataset, key, None)
        config[key] = dict(value) if hasattr(value, "items") else value
    doc = {"data": getattr(dataframe, "_fingerprint", None), "verl": installed_verl_version(), "config": config,
           "tokenizer": _describe(dataset.tokenizer), "processor": _describe(dataset.processor)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


class RiseRLDataset(RLHFDataset):
    """verl's ``RLHFDataset`` whose overlong-prompt filter is fingerprinted cheaply (module docstring).

    Same constructor, rows and samples as the parent; only the construction is faster.
    """

    def maybe_filter_out_long_prompts(self, dataframe=None):
        if dataframe is None or not self.filter_overlong_prompts:
            return super().maybe_filter_out_long_prompts(dataframe)
        original = dataframe.filter
        fingerprint = filter_fingerprint(self, dataframe)

        def filter_once(*args, **kwargs):
            if kwargs.get("num_proc") == 1:
                # datasets runs num_proc=1 in a one-process pool, which dill-pickles the filter function (tokenizer
                # included) to send it there; None filters in this process, with the same result.
                kwargs["num_proc"] = None
            return original(*args, new_fingerprint=fingerprint, keep_in_memory=True, **kwargs)

        # verl calls dataframe.filter(...); an instance attribute shadows the method for that one call.
        dataframe.filter = filter_once
        try:
            filtered = super().maybe_filter_out_long_prompts(dataframe)
        finally:
            del dataframe.filter
        vars(filtered).pop("filter", None)  # datasets copies the instance dict into the filtered dataset
        return filtered
