"""Self-distillation: the RL model's own correct responses for inconsistent prompts (0 < pass rate < 1).

Metis-RISE (arXiv 2506.13056), SFT stage: for prompts the RL model solves only sometimes, its own correct
trajectories are distilled back so that it applies the reasoning it has more consistently. The export's
``correct_responses`` (and their scores) are NOT trusted: every response is re-scored here with
``reward_fns.compute_score`` and kept only with acc 1 AND format 1, unchanged (no rewriting: these are the
policy's own words). Among the survivors :func:`verl_rise.sft_data.selection.select` picks at most m.
"""

from __future__ import annotations

from reward_fns import compute_score
from reward_fns.format import format_check
from verl_rise.sft_data.inputs import PromptRow
from verl_rise.sft_data.records import BAD_FORMAT, EMPTY_RESPONSE, NOT_CORRECT, SELF_DISTILLED, Candidate, Reject
from verl_rise.sft_data.selection import NEAR_DUP_THRESHOLD, select

#: Default m: most self-distilled responses kept per inconsistent prompt.
MAX_PER_PROMPT = 4


def self_distill(
    row: PromptRow,
    *,
    max_per_prompt: int = MAX_PER_PROMPT,
    seed: int = 0,
    near_dup_threshold: float = NEAR_DUP_THRESHOLD,
) -> tuple[list[Candidate], list[Reject]]:
    """Re-verify and select the correct responses the export lists for one inconsistent prompt.

    Args:
        row: an inconsistent prompt; ``row.responses`` is its ``correct_responses`` list.
        max_per_prompt: m, the most kept (0: all distinct verified ones).
        seed, near_dup_threshold: see :func:`verl_rise.sft_data.selection.select`.

    Returns:
        ``(kept, rejects)`` with ``len(kept) + len(rejects) == len(row.responses)``. Reject reasons:
        ``empty_response``, ``not_correct`` (the reward's acc is 0; detail has its reason and the export's score),
        ``bad_format`` (detail has the format check's reason), ``duplicate``, ``near_duplicate``, ``over_cap``.
    """
    verified: list[Candidate] = []
    rejects: list[Reject] = []
    extra = {"options": row.options}
    for i, item in enumerate(row.responses):
        item = item or {}
        cand = Candidate(
            SELF_DISTILLED,
            row.prompt_id,
            item.get("response"),
            origin={"file": row.file, "row": row.row, "response_index": i, "step": item.get("step"),
                    "export_score": item.get("score")},
            method="as_is",
        )
        text = cand.response
        if not isinstance(text, str) or not text.strip():
            rejects.append(Reject(cand, EMPTY_RESPONSE))
            continue
        score = compute_score(row.data_source, text, row.ground_truth, extra)
        cand.pred = score["pred"]
        if score["acc"] != 1.0:
            rejects.append(Reject(cand, NOT_CORRECT, f"reward: {score['reason']} (export score "
                                                     f"{item.get('score')})"))
            continue
        if score["format"] != 1.0:
            rejects.append(Reject(cand, BAD_FORMAT, f"format: {format_check(text)[1]}"))
            continue
        cand.text = text
        verified.append(cand)
    kept, dropped = select(verified, max_per_prompt=max_per_prompt, seed=seed, near_dup_threshold=near_dup_threshold)
    return kept, rejects + dropped
