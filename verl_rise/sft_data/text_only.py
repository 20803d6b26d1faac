"""Text-only SFT data mixed into the multimodal set (Metis-RISE reports that mixed-modality SFT data helps).

Input: a parquet of RL rows as ``python -m data_prep.text_only`` writes them (``prompt`` with the Metis-RISE system
message, ``images`` = [], ``reward_model.ground_truth``, ``extra_info.prompt_id``) plus ONE extra string column
holding a worked solution, by default ``response`` (e.g. MATH's ``solution``, joined onto the data_prep output).
Each solution goes through the same gate as expert trajectories (:func:`verl_rise.sft_data.expert.verify_candidate`):
rewritten into the RISE format and kept only when the RISE reward gives acc 1 and format 1.

The mix: with ``ratio`` r, ``round(r * multimodal rows)`` verified text rows are kept, chosen in the seeded order
of :func:`verl_rise.sft_data.selection.order_key`; the other verified rows are rejected as ``over_ratio``. When
fewer verified rows exist, all are kept and the stats report the shortfall.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq

from verl_rise.sft_data.expert import verify_candidate
from verl_rise.sft_data.inputs import PromptRow, SFTInputError, row_from_dict
from verl_rise.sft_data.records import OVER_RATIO, TEXT_ONLY, Candidate, Reject
from verl_rise.sft_data.selection import order_key

TEXT_BUCKET = "none"


def read_text_only(
    path: str | os.PathLike, *, response_column: str = "response", min_reasoning_chars: int
) -> tuple[list[tuple[Candidate, PromptRow]], list[Reject], int]:
    """Verify every row of a text-only parquet.

    Returns:
        ``(verified (candidate, row) pairs in file order, rejects, rows read)``.

    Raises:
        FileNotFoundError: no such file.
        SFTInputError: the response column is missing, a row holds images, or a row breaks the RL row contract
            (naming the file and row).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text-only parquet not found: {path}")
    table = pq.read_table(path)
    if response_column not in table.column_names:
        raise SFTInputError(f"{path}: no column {response_column!r} (the worked solutions); has {table.column_names}")
    verified, rejects = [], []
    for i, d in enumerate(table.to_pylist()):
        d.setdefault("passrate", None)
        row = row_from_dict(d, TEXT_BUCKET, path, i)
        if row.images:
            raise SFTInputError(f"{path}: row {i}: images has {len(row.images)} entr(y/ies); text-only rows have none")
        cand = Candidate(TEXT_ONLY, row.prompt_id, d.get(response_column), origin={"file": str(path), "row": i})
        reject = verify_candidate(cand, row, min_reasoning_chars=min_reasoning_chars)
        if reject is None:
            verified.append((cand, row))
        else:
            rejects.append(reject)
    return verified, rejects, table.num_rows


def apply_ratio(
    verified: list[tuple[Candidate, PromptRow]], ratio: float, multimodal_rows: int, seed: int
) -> tuple[list[tuple[Candidate, PromptRow]], list[Reject], int]:
    """Keep ``round(ratio * multimodal_rows)`` verified text rows (seeded order), reject the rest as ``over_ratio``.

    Returns:
        ``(kept in file order, rejects, target count)``.

    Raises:
        ValueError: ``ratio < 0``.
    """
    if ratio < 0:
        raise ValueError(f"text ratio must be >= 0, got {ratio}")
    target = round(ratio * multimodal_rows)
    ranked = sorted(range(len(verified)), key=lambda i: order_key(seed, verified[i][0].prompt_id,
                                                                  verified[i][0].text))
    keep = set(ranked[:target])
    kept = [pair for i, pair in enumerate(verified) if i in keep]
    rejects = [Reject(verified[i][0], OVER_RATIO, f"ratio {ratio} of {multimodal_rows} multimodal rows = {target}")
               for i in range(len(verified)) if i not in keep]
    return kept, rejects, target
