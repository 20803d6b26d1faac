"""Hugging Face ``datasets``-style parquet -> verl RL parquet.

The layout of hiyouga/geometry3k and most multimodal math sets on the hub: an image column of ``{"bytes", "path"}``
dicts (the ``datasets.Image`` storage form) or a list of them, a question column (often already holding
``<image>``), an answer column, optionally an option-list column. Column names are arguments; only those columns
are read, in batches.

Usage (geometry3k)::

    python -m data_prep.hf_parquet --input geometry3k/train-00000-of-00001.parquet --output data/geo3k_train.parquet \\
        --question-field problem --answer-field answer --image-field images --data-source hiyouga/geometry3k
"""

from __future__ import annotations

import argparse
import sys

from data_prep.cli import add_common_args, config_from_args, finish
from data_prep.fields import add_field_args, field_map_from_args
from data_prep.pipeline import convert
from data_prep.records import count_rows, iter_parquet

DATA_SOURCE = "hf_parquet"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (see :mod:`data_prep.cli`)."""
    parser = argparse.ArgumentParser(prog="python -m data_prep.hf_parquet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", "-i", required=True, help="input .parquet file")
    add_field_args(parser, question="problem", answer="answer", options=None, images="images")
    add_common_args(parser, data_source=DATA_SOURCE)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    fields = field_map_from_args(args, args.input)
    rows = iter_parquet(args.input, columns=fields.columns(), batch_size=config.row_group_size)
    stats = convert(rows, fields.to_problem, config, total=count_rows(args.input), desc="hf_parquet")
    return finish(stats, config, args.max_reject_fraction)


if __name__ == "__main__":
    sys.exit(main())
