"""Pass-rate buckets (Metis-RISE's data split) and the per-step metrics logged through verl's logger.

Metis-RISE (arXiv 2506.13056, Sec. "SFT Enhancement") splits prompts by the RL model's pass rate: pass rate 0
("hard": expert trajectories), 0 < pass rate < 1 ("inconsistent": the model's own correct responses),
pass rate 1 ("solved": dropped). With thresholds ``hard_threshold`` (default 0) and ``solved_threshold``
(default 1) a prompt with ``attempts >= min_attempts`` is

* **hard** when ``pass_rate <= hard_threshold``,
* **solved** when ``pass_rate >= solved_threshold``,
* **inconsistent** otherwise;

a prompt with fewer than ``min_attempts`` attempts is **unseen** (not classified). With the defaults the edges
are exact: ``correct == 0`` is hard and ``correct == attempts`` is solved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNSEEN, HARD, INCONSISTENT, SOLVED = 0, 1, 2, 3
BUCKET_NAMES = ("unseen", "hard", "inconsistent", "solved")
METRIC_PREFIX = "passrate"


@dataclass(frozen=True)
class BucketThresholds:
    """Where the buckets start (see the module docstring).

    Attributes:
        solved_threshold: pass rate at or above which a prompt is solved, in ``(hard_threshold, 1]``.
        hard_threshold: pass rate at or below which a prompt is hard, in ``[0, solved_threshold)``.
        min_attempts: attempts needed before a prompt is classified, ``>= 1``.

    Raises:
        ValueError: thresholds out of range or not ordered, or ``min_attempts < 1``.
    """

    solved_threshold: float = 1.0
    hard_threshold: float = 0.0
    min_attempts: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.hard_threshold < self.solved_threshold <= 1.0:
            raise ValueError(
                "need 0 <= hard_threshold < solved_threshold <= 1, got "
                f"hard_threshold={self.hard_threshold}, solved_threshold={self.solved_threshold}"
            )
        if int(self.min_attempts) != self.min_attempts or self.min_attempts < 1:
            raise ValueError(f"min_attempts must be an integer >= 1, got {self.min_attempts!r}")


def classify(attempts: np.ndarray, correct: np.ndarray, thresholds: BucketThresholds) -> np.ndarray:
    """Bucket code per prompt.

    Args:
        attempts, correct: integer arrays of shape ``(P,)``.
        thresholds: the bucket edges.

    Returns:
        int8 array of shape ``(P,)`` with values :data:`UNSEEN`, :data:`HARD`, :data:`INCONSISTENT`,
        :data:`SOLVED` (index into :data:`BUCKET_NAMES`).
    """
    attempts = np.asarray(attempts)
    correct = np.asarray(correct)
    rate = correct / np.maximum(attempts, 1)
    codes = np.full(attempts.shape, INCONSISTENT, np.int8)
    codes[rate <= thresholds.hard_threshold] = HARD
    codes[rate >= thresholds.solved_threshold] = SOLVED
    codes[attempts < thresholds.min_attempts] = UNSEEN
    return codes


def bucket_metrics(
    codes: np.ndarray,
    prev_codes: np.ndarray | None,
    pass_rate: np.ndarray | None = None,
    prefix: str = METRIC_PREFIX,
) -> dict[str, float]:
    """Scalar metrics for verl's ``Tracking`` logger (console, wandb, tensorboard, file, ...).

    Args:
        codes: bucket codes now, shape ``(P,)``.
        prev_codes: codes at the previous call, shape ``(P0,)`` with ``P0 <= P`` (prompts are appended, so
            dense id ``i`` is the same prompt in both); prompts beyond ``P0`` count as previously unseen. None:
            no previous step (no movement metrics).
        pass_rate: pass rate per prompt, shape ``(P,)``, for ``{prefix}/mean_pass_rate`` over classified prompts.

    Returns:
        ``{prefix}/num_prompts``, ``{prefix}/num_{bucket}`` for the four buckets,
        ``{prefix}/{hard,inconsistent,solved}_frac`` (share of classified prompts; 0 when none),
        ``{prefix}/mean_pass_rate``, and with ``prev_codes``: ``{prefix}/moved`` (prompts whose bucket changed)
        and ``{prefix}/moved/{a}_to_{b}`` for every pair of different buckets.
    """
    counts = np.bincount(codes, minlength=4)
    classified = int(counts[HARD] + counts[INCONSISTENT] + counts[SOLVED])
    out: dict[str, float] = {f"{prefix}/num_prompts": float(len(codes))}
    for code, name in enumerate(BUCKET_NAMES):
        out[f"{prefix}/num_{name}"] = float(counts[code])
    for code in (HARD, INCONSISTENT, SOLVED):
        out[f"{prefix}/{BUCKET_NAMES[code]}_frac"] = float(counts[code] / classified) if classified else 0.0
    if pass_rate is not None:
        mask = codes != UNSEEN
        out[f"{prefix}/mean_pass_rate"] = float(pass_rate[mask].mean()) if mask.any() else 0.0
    if prev_codes is not None:
        before = np.full(len(codes), UNSEEN, np.int8)
        before[: len(prev_codes)] = prev_codes
        pair = np.bincount(before.astype(np.int64) * 4 + codes, minlength=16).reshape(4, 4)
        out[f"{prefix}/moved"] = float(pair.sum() - np.trace(pair))
        for a, name_a in enumerate(BUCKET_NAMES):
            for b, name_b in enumerate(BUCKET_NAMES):
                if a != b:
                    out[f"{prefix}/moved/{name_a}_to_{name_b}"] = float(pair[a, b])
    return out
