"""Build a tiny, randomly initialised Qwen2.5-VL in Hugging Face format, for CPU tests and CI.

    python -m verl_rise.tiny_model --processor ../shared/models/qwen2.5-vl-7b-instruct-processor --out /tmp/tiny
    python -m verl_rise.tiny_model --no-files --out /tmp/tiny-nofiles

The architecture is the real one (``Qwen2_5_VLForConditionalGeneration``: ViT with window attention and a 2x2
patch merger, M-RoPE text decoder), shrunk to 2 text layers of hidden size 64 and a 2-block vision tower of
hidden size 64, in float32 (the 7B config says bfloat16, which CPUs run slowly and imprecisely).

Two sources of tokenizer and processor:

* ``--processor DIR``: the tokenizer, chat template and image-processor files of a real Qwen2.5-VL checkpoint
  (e.g. ../shared/models/qwen2.5-vl-7b-instruct-processor); the model config is the 7B ``config.json`` found
  there, shrunk. The vocabulary (152064 rows) is kept, so token ids match the real model.
* ``--no-files``: nothing is read. A small byte-level BPE tokenizer is trained with the ``tokenizers`` library on a
  built-in corpus, with the Qwen2.5-VL special tokens (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``,
  ``<|vision_start|>``, ``<|vision_end|>``, ``<|image_pad|>``, ``<|video_pad|>``, ...) appended after the BPE
  vocabulary as in Qwen's layout, the Qwen2.5-VL chat template, and the Qwen2.5-VL image-processor settings.

The same ``--seed`` gives byte-identical weights (and, in ``--no-files`` mode, the same tokenizer).
Output is written to a temporary directory beside ``--out`` and renamed into place.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Qwen2.5-VL's special tokens in the order Qwen's tokenizer numbers them (tokenizer_config.json,
#: added_tokens_decoder 151643..151656).
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: The Qwen2.5-VL-Instruct chat template (chat_template.json of Qwen/Qwen2.5-VL-7B-Instruct, Apache-2.0).
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Qwen2.5-VL image-processor settings (preprocessor_config.json of Qwen/Qwen2.5-VL-7B-Instruct).
QWEN2_5_VL_IMAGE_PROCESSOR = dict(
    min_pixels=3136,
    max_pixels=12845056,
    patch_size=14,
    temporal_patch_size=2,
    merge_size=2,
    image_mean=[0.48145466, 0.4578275, 0.40821073],
    image_std=[0.26862954, 0.26130258, 0.27577711],
)


@dataclass(frozen=True)
class TinySize:
    """Sizes of the tiny model. Defaults: 2 text layers of width 64, a 2-block ViT of width 64.

    ``head_dim`` (hidden / heads) is 16, so the M-RoPE sections (temporal, height, width) must sum to 8.
    """

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    mrope_section: tuple[int, int, int] = (2, 3, 3)
    vision_depth: int = 2
    vision_hidden_size: int = 64
    vision_intermediate_size: int = 128
    vision_num_heads: int = 4


def _no_files_corpus() -> list[str]:
    """A fixed corpus for the ``--no-files`` BPE: the Metis-RISE prompt, math words, digits, LaTeX, tags."""
    from data_prep.prompts import METIS_RISE_SYSTEM_PROMPT

    words = (
        "the a an of to in is and or what which how many much number answer question image picture figure "
        "triangle square circle angle side length area perimeter sum product difference total value equal "
        "greater less than more most least each every point line segment radius diameter degree degrees "
        "choose option correct following shown below above left right top bottom first second third last "
        "think answer boxed frac sqrt times cdot pi cm m kg hours minutes days year years"
    ).split()
    corpus = [METIS_RISE_SYSTEM_PROMPT, " ".join(words), "0123456789 10 12 15 20 25 30 45 60 90 100 180 360"]
    corpus += [f"<think> {a} + {b} = {a + b} </think><answer> $\\boxed{{{a + b}}}$ </answer>" for a in range(10) for b in range(10)]
    corpus += [f"Option ({c}) is correct. The answer is {c}." for c in "ABCDE"]
    corpus += ["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?()[]{}<>=+-*/^_$\\|'\"\n"]
    return corpus


def train_bpe_tokenizer(vocab_size: int = 512):
    """Train a byte-level BPE tokenizer (``tokenizers``) with Qwen2.5-VL's special tokens and chat template.

    Args:
        vocab_size: size of the BPE vocabulary (256 byte tokens + merges); the 14 special tokens come after it.

    Returns:
        A ``transformers`` fast tokenizer: eos ``<|im_end|>``, pad ``<|endoftext|>``, chat template of Qwen2.5-VL.

    Method: GPT-2/Qwen byte-level BPE (``tokenizers.models.BPE`` + ``ByteLevel`` pre-tokenizer and decoder).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_no_files_corpus(), trainer=trainer)
    tok.add_special_tokens(list(QWEN_SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )


def build_no_files_processor(vocab_size: int = 512):
    """A Qwen2.5-VL processor that needs no files: :func:`train_bpe_tokenizer` + Qwen2.5-VL image settings."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tokenizer = train_bpe_tokenizer(vocab_size)
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**QWEN2_5_VL_IMAGE_PROCESSOR),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )


def tiny_config(tokenizer, base_config=None, size: TinySize = TinySize()):
    """Shrink a Qwen2.5-VL config (or build one) to :class:`TinySize`, with token ids taken from ``tokenizer``.

    Args:
        tokenizer: the tokenizer the model will be used with; its special-token ids go into the config.
        base_config: a ``Qwen2_5_VLConfig`` to shrink (its vocab size and RoPE theta are kept), or None.
        size: the tiny sizes.

    Returns:
        ``Qwen2_5_VLConfig`` in float32 whose ``vocab_size`` covers every token id of ``tokenizer``.

    Raises:
        ValueError: if the tokenizer lacks a Qwen2.5-VL special token.
    """
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    missing = [t for t, i in ids.items() if i is None or i == tokenizer.unk_token_id]
    if missing:
        raise ValueError(f"tokenizer lacks the Qwen2.5-VL special tokens {missing}")
    vocab = len(tokenizer)
    if base_config is not None:
        vocab = max(vocab, base_config.text_config.vocab_size)
        rope_theta = base_config.text_config.rope_parameters.get("rope_theta", 1e6)
        max_pos = base_config.text_config.max_position_embeddings
    else:
        rope_theta, max_pos = 1e6, 32768
    text = dict(
        vocab_size=vocab,
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        num_key_value_heads=size.num_key_value_heads,
        max_position_embeddings=max_pos,
        max_window_layers=size.num_hidden_layers,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta, "mrope_section": list(size.mrope_section)},
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        dtype="float32",
    )
    vision = dict(
        depth=size.vision_depth,
        hidden_size=size.vision_hidden_size,
        intermediate_size=size.vision_intermediate_size,
        num_heads=size.vision_num_heads,
        out_hidden_size=size.hidden_size,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[size.vision_depth - 1],
        tokens_per_second=2,
    )
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
        architectures=["Qwen2_5_VLForConditionalGeneration"],
        dtype="float32",
    )
    return config


def build_tiny_model(out: str | os.PathLike, processor_dir: str | None = None, seed: int = 0,
                     size: TinySize = TinySize(), bpe_vocab_size: int = 512, overwrite: bool = False) -> Path:
    """Write a tiny random Qwen2.5-VL (weights, config, generation config, tokenizer, processor) to ``out``.

    Args:
        out: output directory; must not exist (or be empty) unless ``overwrite``.
        processor_dir: directory with a real Qwen2.5-VL tokenizer/processor (and optionally its config.json);
            None for the no-files mode (:func:`build_no_files_processor`).
        seed: torch seed for the random weights (same seed, same bytes).
        size: model sizes.
        bpe_vocab_size: BPE vocabulary size in no-files mode.
        overwrite: replace an existing non-empty ``out``.

    Returns:
        The output path.

    Raises:
        FileExistsError: ``out`` is non-empty and ``overwrite`` is False.
        FileNotFoundError: ``processor_dir`` does not exist.
    """
    import torch
    from transformers import AutoProcessor, GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass --overwrite to replace it)")
    if processor_dir is not None:
        processor_dir = Path(processor_dir)
        if not processor_dir.is_dir():
            raise FileNotFoundError(f"processor directory {processor_dir} does not exist")
        processor = AutoProcessor.from_pretrained(str(processor_dir))
        base = Qwen2_5_VLConfig.from_pretrained(str(processor_dir)) if (processor_dir / "config.json").is_file() else None
    else:
        processor = build_no_files_processor(bpe_vocab_size)
        base = None
    tokenizer = processor.tokenizer
    config = tiny_config(tokenizer, base, size)

    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32).eval()
    # A neutral generation config: EOS ids as Qwen2.5-VL's (im_end, endoftext), no sampling defaults that would
    # silently override the rollout's own temperature/top_p/top_k.
    eos_ids = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id, eos_token_id=eos_ids, pad_token_id=eos_ids[1]
    )

    return save_model_dir(model, processor, out)


def save_model_dir(model, processor, out: str | os.PathLike) -> Path:
    """Write an HF model and its processor to ``out`` atomically: into a temporary sibling, then renamed over ``out``
    (an existing ``out`` is swapped out and removed), so an interrupted write never leaves a half-written model.

    Args:
        model: a ``transformers`` model (its generation config is written with it).
        processor: its processor (or tokenizer).
        out: the output directory.

    Returns:
        ``out`` as a Path. Files get the usual permissions under the process umask (not mkdtemp's 0700).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; the renamed output should look like any directory
        model.save_pretrained(str(tmp), safe_serialization=True)
        processor.save_pretrained(str(tmp))
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~umask)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_rise.tiny_model", description=__doc__.split("\n")[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--processor", help="directory with real Qwen2.5-VL tokenizer/processor files")
    src.add_argument("--no-files", action="store_true", help="train a small BPE tokenizer instead of reading files")
    parser.add_argument("--out", required=True, help="output directory (HF format)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bpe-vocab-size", type=int, default=512, help="no-files mode: BPE vocabulary size")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    path = build_tiny_model(
        args.out, processor_dir=args.processor, seed=args.seed, bpe_vocab_size=args.bpe_vocab_size,
        overwrite=args.overwrite,
    )
    print(f"tiny Qwen2.5-VL written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
