"""Policy priming: teacher-force a tiny Qwen2.5-VL to give chosen responses to RL prompts (images included).

Metis-RISE starts RL from an instruct model that already follows the ``<think> ... </think><answer> ... </answer>``
layout. A randomly initialised tiny model writes neither, so every RISE reward, every GRPO advantage and every
actor update would be 0. :func:`prime_policy` fits the tiny model for a few seconds so that, sampled at
temperature 1, each prompt gets its chosen responses with the frequencies given: the demo's base model
(:mod:`verl_rise.demo.base_model`, guessed answers) and the CPU end-to-end test's policy (tests/e2e, right or
wrong option letters per prompt) are both made here.

Speed: every lm_head row outside the few tokens of the responses is set to zero, so those logits are exactly 0
for any hidden state and the full-vocabulary softmax is exactly ``logsumexp(response-token logits, log N_rest)``:
training costs the responses' 20-odd rows instead of the vocabulary's. Only the decoder layers and those rows are
trained (embeddings and vision tower stay as initialised), and each prompt's KV cache is shared by its responses.
The trained rows are multiplied by ``sharpen`` at the end (sampling at temperature ``1 / sharpen`` over the
response tokens): the template comes out whole, and a prompt fitted to one answer gives it with probability ~1
(measured on MATH-Vision rows: > 0.9999 at 3, 0.86 at 1 after 100 steps), while a prompt fitted to two answers 4:4
stays near 50/50.

Example (the tiny model of :mod:`verl_rise.tiny_model`, one data_prep row)::

    prime_policy("tiny/", [(row, ["<think> ok </think><answer> $\\\\boxed{A}$ </answer>"] * 8)], "primed/")
"""

from __future__ import annotations

import os
from typing import Sequence

from verl_rise.demo.chat import rl_row_messages
from verl_rise.recipes import cpu_tiny_pixel_range
from verl_rise.tiny_model import save_model_dir

#: Image pixel range of the cpu_tiny recipes (data.mm_processor_kwargs): the prompts look as they will in RL.
CPU_TINY_MM_KWARGS = cpu_tiny_pixel_range()
#: Qwen2.5-VL's end-of-turn token: every primed response ends with it, so generation stops after the answer.
END_OF_TURN = "<|im_end|>"


def _encode_examples(processor, examples: Sequence[tuple[dict, Sequence[str]]]):
    """Per example: the prompt inputs (one copy, image included) and its response token ids."""
    tok = processor.tokenizer
    encoded = []
    for row, responses in examples:
        if not responses:
            raise ValueError(f"no responses for prompt {row.get('extra_info', {}).get('prompt_id')!r}")
        messages, images = rl_row_messages(row)
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        x = processor(text=[text], images=images, return_tensors="pt", **CPU_TINY_MM_KWARGS)
        prompt = {k: x[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values",
                                    "image_grid_thw") if k in x}
        ids = [tok(r + END_OF_TURN, add_special_tokens=False)["input_ids"] for r in responses]
        encoded.append((prompt, ids))
    return encoded


def prime_policy(model_dir: str | os.PathLike, examples: Sequence[tuple[dict, Sequence[str]]],
                 out_dir: str | os.PathLike, *, steps: int = 100, lr: float = 1e-2, seed: int = 0,
                 sharpen: float = 3.0, embedding_std: float | None = None) -> dict:
    """Fit ``model_dir`` to answer each prompt with its responses (module docstring); write it to ``out_dir``.

    Args:
        model_dir: tiny Qwen2.5-VL in HF format, processor files included.
        examples: ``(row, responses)`` pairs: ``row`` an RL parquet row (data_prep output, as a dict), ``responses``
            the texts it is fitted to answer, as an empirical distribution (``[a] * 8``: always ``a``; ``[a, b] * 4``:
            each half of the time). :data:`END_OF_TURN` is appended to each.
        out_dir: output directory (model, processor, generation config); written to a temporary sibling, then
            renamed, so an interrupted run leaves no half-written model.
        steps: Adam steps, each over every (prompt, response) pair; lr: Adam learning rate; seed: torch seed.
        sharpen: factor on the fitted lm_head rows (module docstring).
        embedding_std: if given, the input embeddings are first rescaled to this standard deviation. The tiny
            model's are initialised at 0.02 and then normalised by the first RMSNorm, so a policy-gradient step of
            ordinary size (Adam, lr 1e-4) turns the embeddings of the response tokens around: measured on the
            demo's model, 94 % of the first GRPO gradient's norm was in ``embed_tokens`` and the answer format was
            gone after 3-10 steps; at std 1.0 the gradient sits in ``lm_head`` and the format survives.

    Returns:
        ``{"steps", "sequences", "first_loss", "last_loss"}``: mean token cross-entropy (nats) over all
        response tokens, before the first and the last step.

    Raises:
        ValueError: no examples, or an example without responses.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if not examples:
        raise ValueError("prime_policy needs at least one (row, responses) example")
    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(str(model_dir))
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=torch.float32)
    if embedding_std is not None:
        with torch.no_grad():
            emb = model.get_input_embeddings().weight
            emb.mul_(embedding_std / emb.std())
    encoded = _encode_examples(processor, examples)
    subset = sorted({t for _, ids in encoded for r in ids for t in r})
    remap = {t: i for i, t in enumerate(subset)}
    sub = torch.tensor(subset)
    lm = model.lm_head.weight
    rest = torch.ones(lm.shape[0], dtype=torch.bool)
    rest[sub] = False
    log_rest = torch.log(torch.tensor(float(rest.sum())))
    pad = processor.tokenizer.pad_token_id
    batches = []
    for prompt, ids in encoded:
        width = max(len(r) for r in ids)
        inputs = torch.full((len(ids), width), pad, dtype=torch.long)
        targets = torch.full((len(ids), width), -100, dtype=torch.long)  # -100: padding, no loss
        for i, r in enumerate(ids):
            inputs[i, : len(r)] = torch.tensor(r)
            targets[i, : len(r)] = torch.tensor([remap[t] for t in r])
        batches.append((prompt, inputs, targets))

    # The 152k-row embedding/lm_head and the vision tower stay as initialised: a step stays cheap.
    for p in model.parameters():
        p.requires_grad_(False)
    layers = model.model.language_model.layers
    for p in layers.parameters():
        p.requires_grad_(True)
    head = torch.nn.Parameter(lm[sub].detach().clone())  # written back into lm_head at the end
    optimizer = torch.optim.Adam([head, *layers.parameters()], lr=lr)
    losses = []
    for _ in range(steps):
        total = tokens = 0
        for prompt, inputs, targets in batches:
            pre = model.model(**prompt, use_cache=True)  # the prompt (image included) runs once per step
            n = inputs.shape[0]
            cache = pre.past_key_values
            cache.batch_repeat_interleave(n)
            post = model.model(input_ids=inputs[:, :-1], past_key_values=cache, use_cache=True)
            hidden = torch.cat([pre.last_hidden_state[:, -1:].expand(n, -1, -1), post.last_hidden_state], dim=1)
            logits = hidden @ head.T
            full = torch.cat([logits, log_rest.expand(*logits.shape[:-1], 1)], dim=-1)
            total = total + torch.nn.functional.cross_entropy(
                full.reshape(-1, full.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum")
            tokens += int((targets != -100).sum())
        loss = total / tokens
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        lm[rest] = 0.0
        lm[sub] = head * sharpen
    for p in model.parameters():
        p.requires_grad_(True)
    save_model_dir(model, processor, out_dir)
    return {"steps": steps, "sequences": sum(inputs.shape[0] for _, inputs, _ in batches),
            "first_loss": losses[0] if losses else float("nan"), "last_loss": losses[-1] if losses else float("nan")}

