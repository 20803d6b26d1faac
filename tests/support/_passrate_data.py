"""RL parquet for the pass-rate tests: real MATH-Vision rows from ../shared through data_prep's own converter."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from data_prep import mathvision
from tests.support.paths import MATHVISION, require


def mathvision_parquet(tmp_dir: Path, n: int, duplicate_rows: tuple[int, ...] = ()) -> tuple[Path, list[dict]]:
    """Convert the first ``n`` rows of ../shared's MATH-Vision train split with ``python -m data_prep.mathvision``.

    Args:
        tmp_dir: where the subset, the parquet and its rejects file go.
        n: rows to take.
        duplicate_rows: row numbers appended again at the end (data_prep itself rejects duplicates; export must
            still place each copy).

    Returns:
        ``(parquet path, rows as dicts)``; written with small row groups so readers see several.
    """
    src = require(MATHVISION / "train.jsonl")
    subset = tmp_dir / "subset.jsonl"
    with open(src, encoding="utf-8") as f:
        subset.write_text("".join(line for _, line in zip(range(n), f)), encoding="utf-8")
    out = tmp_dir / "train.parquet"
    assert mathvision.main(["-i", str(subset), "--root", str(MATHVISION), "-o", str(out), "--no-progress"]) == 0
    table = pq.read_table(out)
    assert table.num_rows == n
    if duplicate_rows:
        table = pa.concat_tables([table, table.take(list(duplicate_rows))])
    pq.write_table(table, out, row_group_size=7)
    return out, table.to_pylist()
