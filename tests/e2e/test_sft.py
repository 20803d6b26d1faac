"""End to end on a CPU: Metis-RISE stage 2 from the tiny model's GRPO checkpoint, with verl's own tools.

All tests read the schedule run (fixture ``rise_schedule``, tests/e2e/schedule_run.py): verl's model merger on the
RL checkpoint (stage merge_rl), the SFT set (stage sft_data, ``python -m verl_rise.sft_data build``: self-distilled
responses of the tiny model, real expert traces for hard prompts), verl's SFT trainer with images on this CPU (stage
sft: ``torchrun -m verl.trainer.sft_trainer``, recipe rise_sft_cpu_tiny) and the merger again on the SFT checkpoint
(stage merge_sft). The merged model must load with transformers and generate from an image.
"""

from __future__ import annotations

import io
import json
import math

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.schedule_run import e2e_marks

pytestmark = e2e_marks()


@dataclass
class SFTChain:
    """Where the schedule's stage-2 stages left their outputs."""

    rl_step_dir: Path  # <RL ckpt>/global_step_N/actor: verl's FSDP checkpoint the SFT stage starts from
    rl_hf: Path  # that checkpoint merged to HF format by verl's model merger
    sweep_rows: list[dict]  # the rows whose pass rates the sweep measured (the training rows)
    export_dir: Path  # python -m verl_rise.passrate export output
    sft_dir: Path  # python -m verl_rise.sft_data build output
    build_stats: dict  # its stats.json
    sft_step_dir: Path  # <sft ckpt>/global_step_N
    sft_hf: Path  # the SFT checkpoint merged to HF format
    sft_metrics: dict  # verl's file-logger metrics of the SFT run, by step


@pytest.fixture(scope="module")
def e2e_sft(rise_schedule):
    from verl_rise.schedule.manifest import read_manifest
    from verl_rise.file_logger import read_step_metrics

    s = rise_schedule
    rl_step = int((s.ckpt_dir / "latest_checkpointed_iteration.txt").read_text().strip())
    sft_ckpt = s.stage("sft") / "ckpt"
    sft_step = int((sft_ckpt / "latest_checkpointed_iteration.txt").read_text().strip())
    [attempt] = read_manifest(s.stage("sft")).steps["sft_trainer"].attempts  # one attempt: its metrics file
    return SFTChain(
        rl_step_dir=s.ckpt_dir / f"global_step_{rl_step}" / "actor", rl_hf=s.stage("merge_rl") / "hf",
        sweep_rows=s.train_rows, export_dir=s.stage("export"), sft_dir=s.stage("sft_data"),
        build_stats=json.loads((s.stage("sft_data") / "stats.json").read_text()),
        sft_step_dir=sft_ckpt / f"global_step_{sft_step}", sft_hf=s.stage("merge_sft") / "hf",
        sft_metrics=read_step_metrics(s.stage("sft") / "metrics" / f"attempt-{attempt.number}.jsonl"),
    )


def _shard_state(step_dir) -> dict:
    """The rank-0 FSDP shard of a one-rank checkpoint as plain tensors (DTensors to local)."""
    import torch

    state = torch.load(step_dir / "model_world_size_1_rank_0.pt", map_location="cpu", weights_only=False)
    return {k: (v.to_local() if hasattr(v, "to_local") else v) for k, v in state.items()}


def _hf_state(model_dir) -> dict:
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32)
    return {k: v.detach() for k, v in model.state_dict().items()}


def _assert_merge_is_the_checkpoint_in_bf16(step_dir, merged_dir):
    """verl's merger casts every tensor to bfloat16 (fsdp_model_merger.py); otherwise it must change nothing."""
    import torch

    shard, merged = _shard_state(step_dir), _hf_state(merged_dir)
    assert set(shard) <= set(merged), sorted(set(shard) - set(merged))[:5]
    for key, tensor in shard.items():
        assert torch.equal(merged[key], tensor.bfloat16().float()), key
    assert json.loads((merged_dir / "config.json").read_text())["dtype"] == "bfloat16"


@pytest.fixture(scope="module")
def sft_model(e2e_sft):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(e2e_sft.sft_hf))
    model = AutoModelForImageTextToText.from_pretrained(str(e2e_sft.sft_hf), dtype=torch.float32).eval()
    return model, processor


def test_rl_checkpoint_merges_to_hf(e2e_sft):
    _assert_merge_is_the_checkpoint_in_bf16(e2e_sft.rl_step_dir, e2e_sft.rl_hf)
    # The processor and chat template travel with the merged model (from the checkpoint's huggingface/ dir).
    assert (e2e_sft.rl_hf / "chat_template.jinja").is_file() and (e2e_sft.rl_hf / "tokenizer.json").is_file()


def test_sft_set_has_self_distilled_and_expert_rows_all_verified(e2e_sft):
    from reward_fns import compute_score

    stats = e2e_sft.build_stats
    by_source = stats["rows_by_source"]
    cov = stats["coverage"]
    # Self-distillation wherever the tiny model got anything right (its correct responses are identical per
    # prompt, so one distinct response each; how many prompts that is depends on the sweep's samples); real expert
    # traces for the hard prompts they cover (the hard-role prompt always, and every training row has a trace).
    inconsistent = pd.read_parquet(e2e_sft.export_dir / "inconsistent.parquet")
    assert by_source["self_distilled"] >= cov["inconsistent"]["covered"] == cov["inconsistent"]["prompts"] == len(
        inconsistent)
    assert by_source["expert_file"] >= cov["hard"]["covered"] == cov["hard"]["prompts"] >= 1
    assert stats["sft_rows"] == sum(by_source.values())
    truth = {r["extra_info"]["prompt_id"]: r for r in e2e_sft.sweep_rows}
    rows = pd.read_parquet(e2e_sft.sft_dir / "sft.parquet").to_dict("records")
    assert len(rows) == stats["sft_rows"]
    for row in rows:
        messages = list(row["messages"])
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        assert messages[1]["content"].count("<image>") == len(row["images"]) == 1
        rl_row = truth[row["extra_info"]["prompt_id"]]
        scored = compute_score(rl_row["data_source"], messages[2]["content"], rl_row["reward_model"]["ground_truth"],
                               extra_info=dict(rl_row["extra_info"]))
        assert (scored["acc"], scored["format"]) == (1.0, 1.0), (row["extra_info"], messages[2]["content"][:200])


def test_sft_trainer_ran_on_the_cpu_with_images(e2e_sft):
    import torch

    metrics = e2e_sft.sft_metrics
    steps = int(e2e_sft.sft_step_dir.name.rsplit("_", 1)[1])
    assert sorted(metrics) == list(range(1, steps + 1)) and steps >= 2
    for step, m in metrics.items():
        assert math.isfinite(m["train/loss"]) and m["train/loss"] > 0
        assert math.isfinite(m["train/grad_norm"]) and m["train/grad_norm"] > 0
        assert m["train/global_tokens"] > 0
    # Compared in full precision: the SFT run started from the merger's bfloat16 copy of the RL weights and its own
    # checkpoint is float32. (The merged SFT model is bfloat16 too, where a small AdamW step on a weight near 1,
    # e.g. a norm scale, rounds back to the same value.)
    rl = {k: v.bfloat16().float() for k, v in _shard_state(e2e_sft.rl_step_dir).items()}
    sft = _shard_state(e2e_sft.sft_step_dir)
    assert set(rl) == set(sft)
    assert all(v.dtype == torch.float32 for v in sft.values())
    vision = [k for k in rl if ".visual." in k]
    language = [k for k in rl if ".visual." not in k]
    assert vision and language
    # AdamW without weight decay (rise_sft) moves only parameters that got a gradient: the vision tower moved, so
    # the SFT batches went through it (pixel values, not just text).
    assert all(not torch.equal(rl[k], sft[k]) for k in vision)
    assert sum(not torch.equal(rl[k], sft[k]) for k in language) >= len(language) // 2


def test_sft_checkpoint_merges_to_hf(e2e_sft):
    _assert_merge_is_the_checkpoint_in_bf16(e2e_sft.sft_step_dir, e2e_sft.sft_hf)


def test_merged_sft_model_generates_from_an_image(e2e_sft, sft_model):
    import torch
    from PIL import Image
    from transformers import Qwen2_5_VLForConditionalGeneration

    from verl_rise.demo.priming import CPU_TINY_MM_KWARGS
    from verl_rise.demo.chat import rl_row_messages as row_messages

    model, processor = sft_model
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration)
    row = e2e_sft.sweep_rows[0]
    messages, images = row_messages(row)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=images, return_tensors="pt", **CPU_TINY_MM_KWARGS)
    assert int(inputs["image_grid_thw"].prod()) > 0
    with torch.no_grad():
        out = model.generate(**inputs, do_sample=False, max_new_tokens=12)
    new = out[0, inputs["input_ids"].shape[1]:]
    assert new.numel() > 0
    assert isinstance(processor.tokenizer.decode(new, skip_special_tokens=True), str)
    # The image is part of the computation: another picture gives other next-token logits.
    other = Image.open(io.BytesIO(e2e_sft.sweep_rows[-1]["images"][0]["bytes"])).convert("RGB")
    swapped = processor(text=[text], images=[other], return_tensors="pt", **CPU_TINY_MM_KWARGS)
    with torch.no_grad():
        a = model(**inputs).logits[0, -1]
        b = model(**swapped).logits[0, -1]
    assert not torch.allclose(a, b)
