"""Helpers for the CPU end-to-end run (tests/e2e/schedule_run.py): policy priming and training rows with roles.

Why prime: a randomly initialised policy never writes ``<think>..</think><answer>..\\boxed{..}</answer>``, so every
RISE reward is 0, every GRPO advantage is 0 and the actor update is a no-op. :func:`prime_policy` fits the tiny
model for a few seconds (teacher forcing on the training prompts, images included) to answer in the Metis-RISE
format with chosen option letters per prompt: the right one half of the time (mixed groups: non-zero advantages
and a real policy-gradient step), always the right one (all-correct groups) or, on a free-form prompt, always a
letter (all-wrong groups). The last two are the groups DAPO dynamic sampling throws away and the pass-rate
tracker must still record.

Speed tricks: all lm_head rows outside the few tokens of the answer template are set to zero, so their logits are
exactly 0 for any hidden state and the full-vocabulary softmax is exactly ``logsumexp(template logits, log N_rest)``:
training costs the template's 20-odd rows instead of Qwen's 152k. Only the decoder layers and those rows are
trained (embeddings and vision tower stay random), and each prompt's KV cache is shared by its answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from tests.support.paths import REPO_ROOT
from verl_rise.demo.chat import rl_row_messages as row_messages
from verl_rise.recipes import cpu_tiny_pixel_range

RECIPES_DIR = REPO_ROOT / "recipes"

#: Image pixel range of the cpu_tiny recipe (data.mm_processor_kwargs).
CPU_TINY_MM_KWARGS = cpu_tiny_pixel_range()

#: Option letters of MATH-Vision's multiple-choice rows.
LETTERS = "ABCDE"


def answer_template(letter: str) -> str:
    """A Metis-RISE formatted answer (format reward 1) choosing ``letter``."""
    return f"<think> ok </think><answer> $\\boxed{{{letter}}}$ </answer>"


def coin_flip(row: dict) -> list[str]:
    """Answer letters for a row whose GRPO groups should be mixed: the right option and the next letter, 4 each.

    After :func:`prime_policy` the row is right about half the time, so a group of 8 is all-correct or all-wrong
    with probability about 2 / 2**8 (DAPO would filter it).
    """
    answer = row["reward_model"]["ground_truth"]
    if answer not in LETTERS:
        raise ValueError(f"coin_flip needs an option-letter row, got ground truth {answer!r}")
    return [answer] * 4 + [LETTERS[(LETTERS.index(answer) + 1) % len(LETTERS)]] * 4


def prime_policy(model_dir: Path, rows: list[dict], out_dir: Path, steps: int = 100, seed: int = 0,
                 lr: float = 1e-2, answers: Optional[list[list[str]]] = None, sharpen: float = 3.0) -> Path:
    """Fit the tiny model to answer each row in the Metis-RISE format with given option letters (module docstring).

    Args:
        model_dir: tiny Qwen2.5-VL (HF format).
        rows: RL parquet rows (dicts).
        out_dir: where the primed model (and the processor files) are written.
        steps: Adam steps over all rows.
        answers: per row, the option letters (A-E) it is fitted to answer, as an empirical distribution:
            ``[gt] * 8`` makes the row always right, letters on a free-form row always wrong. Default
            :func:`coin_flip` for every row (needs option-letter rows).
        sharpen: factor on the fitted lm_head rows, i.e. sampling at temperature ``1 / sharpen`` over the template
            tokens: the template comes out whole and a row fitted to one letter gives it with probability ~1
            (measured on MATH-Vision rows: > 0.9999 at 3, 0.86 at 1 after 100 steps), while a row fitted to two
            letters 4:4 stays near 50/50.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: a letter outside A-E, or ``answers`` of another length than ``rows``.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(str(model_dir))
    tok = processor.tokenizer
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=torch.float32)
    answers = [coin_flip(r) for r in rows] if answers is None else answers
    if len(answers) != len(rows) or any(c not in LETTERS for a in answers for c in a):
        raise ValueError(f"answers must give letters from {LETTERS!r} for each of the {len(rows)} rows: {answers!r}")
    responses = {c: tok(answer_template(c) + "<|im_end|>", add_special_tokens=False)["input_ids"] for c in LETTERS}
    subset = sorted({t for ids in responses.values() for t in ids})
    sub = torch.tensor(subset)
    remap = {t: i for i, t in enumerate(subset)}
    lm = model.lm_head.weight
    rest = torch.ones(lm.shape[0], dtype=torch.bool)
    rest[sub] = False
    log_rest = torch.log(torch.tensor(float(rest.sum())))
    # Train only the decoder layers and the template's lm_head rows (a separate small parameter, written back at the
    # end): the 152k-row embedding/lm_head and the vision tower stay as initialised, which keeps a step cheap.
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.model.language_model.layers.parameters():
        p.requires_grad_(True)
    head = torch.nn.Parameter(lm[sub].detach().clone())

    batches = []
    for row, choices in zip(rows, answers):
        messages, images = row_messages(row)
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        x = processor(text=[text], images=images, return_tensors="pt", **CPU_TINY_MM_KWARGS)
        batches.append(dict(
            prompt={k: x[k] for k in ("input_ids", "mm_token_type_ids", "pixel_values", "image_grid_thw")},
            responses=torch.tensor([responses[c] for c in choices]),
            targets=torch.tensor([[remap[t] for t in responses[c]] for c in choices]),
        ))
    optimizer = torch.optim.Adam([head, *model.model.language_model.layers.parameters()], lr=lr)
    for _ in range(steps):
        loss = 0.0
        for b in batches:
            # The prompt (image included) runs once; its KV cache is shared by all answers of the row.
            pre = model.model(**b["prompt"], use_cache=True)
            n = b["responses"].shape[0]
            cache = pre.past_key_values
            cache.batch_repeat_interleave(n)
            post = model.model(input_ids=b["responses"][:, :-1], past_key_values=cache, use_cache=True)
            hidden = torch.cat([pre.last_hidden_state[:, -1:].expand(n, -1, -1), post.last_hidden_state], dim=1)
            logits = hidden @ head.T
            full = torch.cat([logits, log_rest.expand(*logits.shape[:-1], 1)], dim=-1)
            loss = loss + torch.nn.functional.cross_entropy(full.reshape(-1, full.shape[-1]), b["targets"].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        lm[rest] = 0.0
        lm[sub] = head * sharpen
    for p in model.parameters():
        p.requires_grad_(True)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    processor.save_pretrained(str(out_dir))
    model.generation_config.save_pretrained(str(out_dir))
    return out_dir


#: Roles of the training rows of the e2e run, in parquet (= dataloader) order. DAPO dynamic sampling is on, so
#: step 1 draws the first two (mixed, solved), throws the all-correct group away and refills with the next ones.
ROLES = ("mixed", "solved", "hard", "mixed", "overlong")


def prompt_tokens(processor: Any, row: dict) -> int:
    """Prompt length in tokens (chat template + image tokens at the cpu_tiny pixel range), as verl's dataset
    length filter counts it (rl_dataset.py doc2len)."""
    messages, images = row_messages(row)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return int(processor(text=[text], images=images, return_tensors="pt", **CPU_TINY_MM_KWARGS)["input_ids"].shape[1])


def pick_training_rows(rows: list[dict], processor: Any, max_prompt_length: int, margin: int = 16
                       ) -> tuple[list[dict], list[str]]:
    """Real MATH-Vision rows for the :data:`ROLES`: option-letter rows that fit ``max_prompt_length`` (mixed,
    solved), a free-form row that fits (hard: the policy only ever answers a letter) and a row longer than
    ``max_prompt_length`` (verl's dataset drops it, so the pass-rate export must report it unseen).

    Returns:
        ``(rows in ROLES order, roles)``.
    """
    def fits(r: dict) -> bool:
        return prompt_tokens(processor, r) <= max_prompt_length - margin

    gt = lambda r: r["reward_model"]["ground_truth"]  # noqa: E731
    letters = (r for r in rows if gt(r) in LETTERS and fits(r))
    # The solved row's answer differs from both mixed rows' answers, so ground truths tell its group apart.
    mixed1 = next(letters)
    solved = next(r for r in letters if gt(r) != gt(mixed1))
    mixed2 = next(r for r in letters if gt(r) != gt(solved))
    hard = next(r for r in rows if r["extra_info"]["answer_type"] == "free_form"
                and not any(c in r["reward_model"]["ground_truth"] for c in LETTERS) and fits(r))
    overlong = next(r for r in rows if prompt_tokens(processor, r) > max_prompt_length + margin)
    return [mixed1, solved, hard, mixed2, overlong], list(ROLES)


def priming_answers(rows: list[dict], roles: list[str]) -> tuple[list[dict], list[list[str]]]:
    """Rows to prime and their answer letters: mixed -> :func:`coin_flip`, solved -> always the right letter,
    hard -> every letter (a free-form answer is never a letter); the overlong row is not primed."""
    plan = {"mixed": coin_flip, "solved": lambda r: [r["reward_model"]["ground_truth"]] * 8,
            "hard": lambda r: list(LETTERS) + list(LETTERS[:3])}
    picked = [(r, plan[role](r)) for r, role in zip(rows, roles) if role in plan]
    return [r for r, _ in picked], [a for _, a in picked]
