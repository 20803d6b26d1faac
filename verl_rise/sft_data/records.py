"""The SFT builder's vocabulary: sources, reject reasons, and the candidate/reject records every step passes on.

A *candidate* is one assistant response proposed for one prompt by one source. It ends up either in the SFT set or
in ``rejects.jsonl`` with exactly one reason code, so ``candidates == kept + rejected`` holds per source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Sources (the ``extra_info.sft_source`` of an SFT row). Metis-RISE (arXiv 2506.13056), SFT stage: self-distilled
# trajectories for inconsistent prompts, expert trajectories for hard prompts; text-only data mixed in.
SELF_DISTILLED = "self_distilled"
EXPERT_FILE = "expert_file"
EXPERT_ENDPOINT = "expert_endpoint"
TEXT_ONLY = "text_only"
SOURCES = (SELF_DISTILLED, EXPERT_FILE, EXPERT_ENDPOINT, TEXT_ONLY)

# Reject reasons. Stable strings: tests, dashboards and users grep for them.
NOT_CORRECT = "not_correct"  # self-distillation: the RISE reward says acc 0 (the export claimed it was correct)
BAD_FORMAT = "bad_format"  # the (rewritten) response fails the RISE format check
EMPTY_RESPONSE = "empty_response"  # no response text (null, blank, or a non-string)
NO_FINAL_ANSWER = "no_final_answer"  # unparseable: no \boxed{}, no final-answer sentence, no verifiable bare answer
WRONG_ANSWER = "wrong_answer"  # a final answer was found; the RISE reward says it does not match the ground truth
NO_REASONING = "no_reasoning"  # correct, but (almost) nothing besides the final answer: nothing to learn from
TRUNCATED = "truncated"  # the endpoint stopped at max_tokens (finish_reason "length")
REQUEST_FAILED = "request_failed"  # the endpoint request failed after all retries (or a non-retryable status)
PROMPT_NOT_FOUND = "prompt_not_found"  # an expert record whose key matches no input prompt
PROMPT_NOT_HARD = "prompt_not_hard"  # an expert record for a prompt that is not in the hard bucket
BAD_RECORD = "bad_record"  # an input record that cannot be read (missing field, unreadable image, bad JSON)
DUPLICATE = "duplicate"  # the same (prompt, response) as a row already kept
NEAR_DUPLICATE = "near_duplicate"  # word 3-gram Jaccard similarity >= threshold with a response already kept
OVER_CAP = "over_cap"  # verified, but the prompt already has its maximum number of responses from this source
OVER_RATIO = "over_ratio"  # a verified text-only row left out to keep the configured text/multimodal ratio
OVER_MAX_LENGTH = "over_max_length"  # the row (prompt + image tokens + response) exceeds the SFT max_length

REASONS = (
    NOT_CORRECT,
    BAD_FORMAT,
    EMPTY_RESPONSE,
    NO_FINAL_ANSWER,
    WRONG_ANSWER,
    NO_REASONING,
    TRUNCATED,
    REQUEST_FAILED,
    PROMPT_NOT_FOUND,
    PROMPT_NOT_HARD,
    BAD_RECORD,
    DUPLICATE,
    NEAR_DUPLICATE,
    OVER_CAP,
    OVER_RATIO,
    OVER_MAX_LENGTH,
)


@dataclass
class Candidate:
    """One proposed assistant response for one prompt.

    Attributes:
        source: one of :data:`SOURCES`.
        prompt_id: the prompt's ``extra_info.prompt_id`` ("" when the record could not be mapped to a prompt).
        response: the response text as the source gave it.
        origin: where it came from, for the rejects file and traceability, e.g. ``{"file": ..., "line": 3,
            "model": "gemini-pro-vision"}`` or ``{"sample": 2, "model": ...}``.
        text: the RISE-format text that goes into the SFT set (set once verified).
        method: how the final answer was found (:mod:`verl_rise.sft_data.rewrite`), ``"as_is"`` for
            self-distilled responses.
        pred: the final answer the RISE reward extracted from ``text``.
    """

    source: str
    prompt_id: str
    response: Any
    origin: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    method: str = ""
    pred: str = ""


@dataclass(frozen=True)
class Reject:
    """A candidate that did not make it into the SFT set, with one reason from :data:`REASONS`."""

    candidate: Candidate
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown reject reason {self.reason!r}; expected one of {REASONS}")

    def to_json(self) -> dict[str, Any]:
        """The ``rejects.jsonl`` record (response text cut to 2000 characters to keep the file readable)."""
        c = self.candidate
        text = c.response if isinstance(c.response, str) else repr(c.response)
        return {
            "source": c.source,
            "prompt_id": c.prompt_id,
            "reason": self.reason,
            "detail": self.detail,
            "origin": c.origin,
            "method": c.method,
            "pred": c.pred,
            "response": text[:2000],
        }
