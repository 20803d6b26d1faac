"""Pass-rate histogram as PNG (matplotlib's Agg canvas: no display, no global pyplot state)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from data_prep.atomic import atomic_path
from verl_rise.passrate.buckets import BUCKET_NAMES, HARD, INCONSISTENT, SOLVED, UNSEEN, BucketThresholds


def write_histogram(
    path: str | os.PathLike,
    pass_rate: np.ndarray,
    codes: np.ndarray,
    thresholds: BucketThresholds,
    title: str,
    bins: int = 20,
) -> Path:
    """Write a histogram of the pass rates of the classified prompts, atomically.

    The exact-0 and exact-1 prompts get their own bars (hard / solved with the default thresholds) so they do
    not vanish into the first and last bins; the legend gives the count of every bucket, unseen included.

    Args:
        path: PNG file to write.
        pass_rate: float array ``(P,)``.
        codes: bucket codes ``(P,)`` from :func:`verl_rise.passrate.buckets.classify`.
        thresholds: drawn as vertical lines.
        title: figure title (e.g. the step).
        bins: bins over the open interval (0, 1).

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.bincount(codes, minlength=4)
    classified = codes != UNSEEN
    rates = pass_rate[classified]
    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 1.0 / bins
    interior = rates[(rates > 0) & (rates < 1)]
    ax.hist(interior, bins=np.linspace(0, 1, bins + 1), color="#4C72B0", label="0 < pass rate < 1")
    ax.bar([-width], [int((rates == 0).sum())], width=width, color="#C44E52", label="pass rate = 0")
    ax.bar([1 + width], [int((rates == 1).sum())], width=width, color="#55A868", label="pass rate = 1")
    for x in (thresholds.hard_threshold, thresholds.solved_threshold):
        ax.axvline(x, color="gray", linestyle="--", linewidth=0.8)
    summary = ", ".join(f"{BUCKET_NAMES[c]} {int(counts[c])}" for c in (HARD, INCONSISTENT, SOLVED, UNSEEN))
    ax.set_title(f"{title}\n{summary}", fontsize=9)
    ax.set_xlabel("pass rate (fraction of sampled responses that are correct)")
    ax.set_ylabel("prompts")
    ax.set_xlim(-2 * width, 1 + 2 * width)
    ax.legend(fontsize=8, loc="upper center")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
