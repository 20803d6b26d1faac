"""The demo's base model: the tiny random Qwen2.5-VL taught the Metis-RISE answer format, with guessed answers.

Metis-RISE starts RL from an instruct model (Qwen2.5-VL-7B-Instruct) that already follows the system prompt's
``<think> ... </think><answer> ... \\boxed{} ... </answer>`` layout and is right some of the time. A randomly
initialised tiny model writes neither, so every RISE reward would be 0, every GRPO advantage 0, every prompt "hard",
and the demo would exercise neither the policy gradient nor self-distillation. This module stands in for the instruct
model: a few seconds of teacher forcing on the training prompts (images included) with responses of the form

    <think> I look at the picture and choose. </think><answer> The answer is $\\boxed{G}$ </answer>

where G is a guess: each option letter of a multiple-choice prompt equally often, or a random small integer for a
free-form prompt. The model learns the format and a uniform guess, not the task: sampled at temperature 1 it is right
on about 1/(number of options) of the choice prompts (pass rate between 0 and 1: self-distillation) and almost never
on the free-form ones (hard: expert trajectories). It is a demo fixture, not a stage of Metis-RISE.

    python -m verl_rise.demo.base_model --model tiny/ --data train.parquet --out base/
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

from verl_rise.demo.chat import rl_row_messages
from verl_rise.recipes import cpu_tiny_pixel_range

#: Image pixel range of the cpu_tiny recipes (data.mm_processor_kwargs): the prompts look as they will in RL.
CPU_TINY_MM_KWARGS = cpu_tiny_pixel_range()
GUESS_TEMPLATE = "<think> I guess. </think><answer> $\\boxed{{{}}}$ </answer>"


def guesses(row: dict, per_prompt: int, rng: random.Random) -> list[str]:
    """The guessed answers trained for one RL parquet row: every option letter in turn, or random integers 0-20."""
    options = row["extra_info"].get("options")
    options = [] if options is None else list(options)  # parquet gives a numpy array
    if options:
        letters = [chr(ord("A") + i) for i in range(len(options))]
        return [letters[i % len(letters)] for i in range(max(per_prompt, len(letters)))]
    return [str(rng.randint(0, 20)) for _ in range(per_prompt)]


def _prompt_batch(processor, row: dict, per_prompt: int, seed: int) -> dict:
    """Prompt inputs (one copy, image included) and the padded guessed responses of one row."""
    import torch

    pid = str(row["extra_info"]["prompt_id"])
    rng = random.Random(int(hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest()[:8], 16))
    messages, images = rl_row_messages(row)
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    enc = processor(text=[prompt], images=images, return_tensors="pt", **CPU_TINY_MM_KWARGS)
    tok = processor.tokenizer
    responses = [tok(GUESS_TEMPLATE.format(g) + "<|im_end|>", add_special_tokens=False)["input_ids"]
                 for g in guesses(row, per_prompt, rng)]
    width = max(len(r) for r in responses)
    ids = torch.full((len(responses), width), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(responses), width), -100, dtype=torch.long)
    for i, r in enumerate(responses):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, : len(r)] = torch.tensor(r)
    prompt_inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw",
                                         "mm_token_type_ids") if k in enc}
    return {"prompt": prompt_inputs, "ids": ids, "labels": labels}


def _loss(model, batch: dict):
    """Mean token cross-entropy of the responses. The prompt (with its image) runs once and its KV cache is
    shared by the row's responses, so a step costs one prompt instead of ``per_prompt`` of them."""
    import torch

    n = batch["ids"].shape[0]
    pre = model.model(**batch["prompt"], use_cache=True)
    cache = pre.past_key_values
    cache.batch_repeat_interleave(n)
    post = model.model(input_ids=batch["ids"][:, :-1], past_key_values=cache, use_cache=True)
    hidden = torch.cat([pre.last_hidden_state[:, -1:].expand(n, -1, -1), post.last_hidden_state], dim=1)
    logits = model.lm_head(hidden)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1),
                                             ignore_index=-100)


def warm_up(model_dir: Path, data: Path, out: Path, *, steps: int = 60, lr: float = 1e-2, per_prompt: int = 4,
            seed: int = 0, max_prompts: int = 8) -> dict:
    """Teach ``model_dir`` the answer format with guessed answers (module docstring); write the model to ``out``.

    Args:
        model_dir: HF model directory (the tiny model, processor files included).
        data: RL parquet (data_prep output); its first ``max_prompts`` rows are used.
        out: output directory (written to a temporary sibling, then renamed).
        steps: Adam steps over all (prompt, guess) pairs; lr: learning rate.
        per_prompt: guesses per prompt (at least one per option letter).

    Returns:
        ``{"steps", "sequences", "first_loss", "last_loss"}`` (mean token cross-entropy of the responses).
    """
    import pandas as pd
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(str(model_dir))
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=torch.float32)
    rows = pd.read_parquet(data).head(max_prompts).to_dict("records")
    batches = [_prompt_batch(processor, row, per_prompt, seed) for row in rows]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        total = 0.0
        for batch in batches:
            loss = _loss(model, batch) / len(batches)
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        losses.append(total)
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(str(tmp))
        processor.save_pretrained(str(tmp))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"steps": steps, "sequences": sum(b["ids"].shape[0] for b in batches), "first_loss": losses[0],
            "last_loss": losses[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_rise.demo.base_model", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="tiny model (python -m verl_rise.tiny_model)")
    parser.add_argument("--data", type=Path, required=True, help="RL parquet (python -m data_prep.generator)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--max-prompts", type=int, default=8, help="training rows used (the format is the same)")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    info = warm_up(args.model, args.data, args.out, steps=args.steps, lr=args.lr, seed=args.seed,
                   max_prompts=args.max_prompts)
    print(f"base model written to {args.out}: {info['sequences']} sequences, loss {info['first_loss']:.3f} -> "
          f"{info['last_loss']:.3f} in {info['steps']} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
