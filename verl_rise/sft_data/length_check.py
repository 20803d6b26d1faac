"""Token lengths of SFT rows, and the rows too long for the SFT profile's ``data.max_length``.

verl's SFT dataset has no length filter and the RISE SFT recipe sets ``data.truncation: error`` (cutting the right
end would drop the ``<answer>``), so one row longer than ``max_length`` stops the SFT run when the data loader
reaches it, possibly hours in. Expert trajectories have no length cap, so the builder counts every row as verl
will see it (chat template, image tokens from the profile's pixel range; :class:`~verl_rise.sft_data.stats.
TokenCounter`) and moves longer rows to the rejects with reason ``over_max_length``.
"""

from __future__ import annotations

from typing import Any, Optional

from tqdm import tqdm

from verl_rise.sft_data import records as R
from verl_rise.sft_data.stats import TokenCounter


def count_and_filter(rows: list[dict[str, Any]], candidates: list[R.Candidate], counter: TokenCounter,
                     max_length: Optional[int], progress: bool = False
                     ) -> tuple[list[dict[str, Any]], list[dict[str, int]], list[R.Reject]]:
    """Token counts of SFT rows; rows over ``max_length`` tokens become rejects.

    Args:
        rows: SFT row dicts (``messages``, ``images`` as ``{"bytes": ...}``).
        candidates: the candidate each row was made from (same order and length as ``rows``).
        counter: token counter (the model's tokenizer and the profile's pixel range).
        max_length: the SFT profile's ``data.max_length`` in tokens; None keeps every row.
        progress: show a progress bar.

    Returns:
        ``(kept rows, their counts {"prompt", "response", "total", "image"}, rejects)``; kept + rejected = input.
    """
    if len(rows) != len(candidates):
        raise ValueError(f"{len(rows)} rows but {len(candidates)} candidates")
    kept, counts, rejects = [], [], []
    for row, cand in tqdm(list(zip(rows, candidates)), desc="token lengths", unit="row", disable=not progress):
        c = counter.count(row)
        if max_length is not None and c["total"] > max_length:
            rejects.append(R.Reject(cand, R.OVER_MAX_LENGTH,
                                    f"{c['total']} tokens ({c['prompt']} prompt incl. {c['image']} image, "
                                    f"{c['response']} response) > max_length {max_length}"))
            continue
        kept.append(row)
        counts.append(c)
    return kept, counts, rejects
