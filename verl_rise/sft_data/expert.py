"""Verify one expert candidate against its prompt: rewrite into the RISE format, keep only what the reward accepts.

Shared by the expert-file, endpoint and text-only sources, so all three apply exactly the same gate
(:func:`verl_rise.sft_data.rewrite.to_rise_format`).
"""

from __future__ import annotations

from verl_rise.sft_data.inputs import PromptRow
from verl_rise.sft_data.records import Candidate, Reject
from verl_rise.sft_data.rewrite import MIN_REASONING_CHARS, to_rise_format


def verify_candidate(
    cand: Candidate,
    row: PromptRow,
    *,
    model_answer: object = None,
    reasoning: object = None,
    min_reasoning_chars: int = MIN_REASONING_CHARS,
) -> Reject | None:
    """Rewrite ``cand.response`` for ``row`` and verify it.

    On success sets ``cand.text`` (the RISE-format response), ``cand.method`` and ``cand.pred`` and returns None;
    otherwise returns the :class:`Reject` (reasons: ``empty_response``, ``no_final_answer``, ``wrong_answer``,
    ``bad_format``, ``no_reasoning``).
    """
    result = to_rise_format(
        cand.response,
        row.ground_truth,
        row.options,
        model_answer=model_answer,
        reasoning=reasoning,
        data_source=row.data_source,
        min_reasoning_chars=min_reasoning_chars,
    )
    cand.method, cand.pred = result.method, result.pred
    if not result.ok:
        return Reject(cand, result.reason, result.detail)
    cand.text = result.text
    return None
