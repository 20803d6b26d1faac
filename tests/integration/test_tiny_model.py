"""verl_rise.tiny_model: a tiny random Qwen2.5-VL with real or self-trained tokenizer files."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image

from tests.support.paths import QWEN_PROCESSOR, REPO_ROOT, require
from verl_rise.tiny_model import QWEN_SPECIAL_TOKENS, build_tiny_model


@pytest.fixture(scope="module")
def no_files(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("nofiles") / "m", processor_dir=None, seed=3)


def _load(path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    return AutoProcessor.from_pretrained(str(path)), AutoModelForImageTextToText.from_pretrained(str(path))


def test_no_files_mode_is_a_working_qwen2_5_vl(no_files):
    processor, model = _load(no_files)
    tok = processor.tokenizer
    cfg = model.config
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration" and model.dtype == torch.float32
    assert cfg.text_config.num_hidden_layers == 2 and cfg.text_config.hidden_size == 64
    assert cfg.vision_config.depth == 2 and cfg.vision_config.out_hidden_size == 64
    # Special tokens come after the BPE vocabulary, in Qwen's order, and the config points at them.
    ids = [tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS]
    assert ids == list(range(ids[0], ids[0] + len(ids))) and ids[0] == 512
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.text_config.vocab_size >= len(tok) and tok.eos_token == "<|im_end|>"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert "<|vision_start|><|image_pad|><|vision_end|>" in text and text.endswith("<|im_start|>assistant\n")
    image = Image.new("RGB", (112, 56), (200, 30, 30))
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 8]]  # 56x112 pixels in 14-pixel patches
    assert int((inputs["input_ids"] == cfg.image_token_id).sum()) == 8  # 2x2 patches merge into one token
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4
    # The BPE round-trips text without unknown tokens (byte-level).
    assert tok.decode(tok("<think> 12 + 3 = 15 </think>")["input_ids"]) == "<think> 12 + 3 = 15 </think>"


def test_same_seed_same_bytes_other_seed_other_weights(no_files, tmp_path):
    again = build_tiny_model(tmp_path / "again", processor_dir=None, seed=3)
    other = build_tiny_model(tmp_path / "other", processor_dir=None, seed=4)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (no_files / name).read_bytes(), name
    assert (other / "model.safetensors").read_bytes() != (no_files / "model.safetensors").read_bytes()


def test_refuses_to_overwrite_without_the_flag(no_files):
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_tiny_model(no_files, processor_dir=None)


def test_cli_with_the_real_processor_files(tmp_path):
    require(QWEN_PROCESSOR)
    out = tmp_path / "tiny"
    subprocess.run([sys.executable, "-m", "verl_rise.tiny_model", "--processor", str(QWEN_PROCESSOR), "--out",
                    str(out)], check=True, cwd=REPO_ROOT, capture_output=True, timeout=300)
    processor, model = _load(out)
    # Real token ids (151643.. for the special tokens) and the 7B vocabulary size, tiny sizes.
    assert model.config.image_token_id == 151655 == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.text_config.vocab_size == 152064 and model.config.text_config.num_hidden_layers == 2
    assert processor.image_processor.merge_size == 2 and processor.tokenizer.eos_token == "<|im_end|>"
    assert sum(p.numel() for p in model.parameters()) < 25_000_000
