"""Helpers for the CPU end-to-end run (tests/e2e/schedule_run.py): training rows with roles and the answers the
policy is primed to give them.

The priming itself is the demo's (:func:`verl_rise.demo.priming.prime_policy`: one implementation); this module
chooses what each role's prompt is fitted to answer: the right option letter half of the time (mixed groups:
non-zero advantages and a real policy-gradient step), always the right one (all-correct groups) or, on a
free-form prompt, always a letter (all-wrong groups). The last two are the groups DAPO dynamic sampling throws
away and the pass-rate tracker must still record.
"""

from __future__ import annotations

from typing import Any

from verl_rise.demo.chat import rl_row_messages as row_messages
from verl_rise.demo.priming import CPU_TINY_MM_KWARGS

#: Option letters of MATH-Vision's multiple-choice rows.
LETTERS = "ABCDE"


def answer_template(letter: str) -> str:
    """A Metis-RISE formatted answer (format reward 1) choosing ``letter``."""
    return f"<think> ok </think><answer> $\\boxed{{{letter}}}$ </answer>"


def coin_flip(row: dict) -> list[str]:
    """Answer letters for a row whose GRPO groups should be mixed: the right option and the next letter, 4 each.

    After priming (:func:`verl_rise.demo.priming.prime_policy`) the row is right about half the time, so a group of
    n is all-correct or all-wrong with probability about 2 / 2**n (1/8 for the e2e run's n = 4; DAPO filters it).
    """
    answer = row["reward_model"]["ground_truth"]
    if answer not in LETTERS:
        raise ValueError(f"coin_flip needs an option-letter row, got ground truth {answer!r}")
    return [answer] * 4 + [LETTERS[(LETTERS.index(answer) + 1) % len(LETTERS)]] * 4


def primed_examples(rows: list[dict], answers: list[list[str]]) -> list[tuple[dict, list[str]]]:
    """``(row, responses)`` pairs for :func:`verl_rise.demo.priming.prime_policy`: each row answered with its
    letters in :func:`answer_template`.

    Raises:
        ValueError: a letter outside A-E, or ``answers`` of another length than ``rows``.
    """
    if len(answers) != len(rows) or any(c not in LETTERS for a in answers for c in a):
        raise ValueError(f"answers must give letters from {LETTERS!r} for each of the {len(rows)} rows: {answers!r}")
    return [(row, [answer_template(c) for c in letters]) for row, letters in zip(rows, answers)]


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
