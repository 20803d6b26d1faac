"""Reward functions for Metis-RISE, usable from any verl project.

* :func:`compute_score` (``reward_fns.rise``): the RISE reward, weighted accuracy + format, returning a
  dict verl logs as metrics. Point verl at it with ``reward.custom_reward_function.path=pkg://reward_fns.rise``.
* :func:`accuracy_reward` / :func:`score_accuracy` (``reward_fns.accuracy``): last-``\\boxed{}`` accuracy with
  math-verify at the core, multiple choice, units, percent, separators, and a hard time limit.
* :func:`format_reward` / :func:`format_check` (``reward_fns.format``): the strict think/answer format.

Depends only on math-verify and cachetools, not on verl or torch.
"""

from reward_fns.accuracy import AccuracyResult, accuracy_reward, score_accuracy
from reward_fns.format import format_check, format_reward
from reward_fns.rise import compute_score

__all__ = [
    "AccuracyResult",
    "accuracy_reward",
    "compute_score",
    "format_check",
    "format_reward",
    "score_accuracy",
]
