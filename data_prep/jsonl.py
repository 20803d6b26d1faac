"""Generic JSONL (or parquet) with a field mapping -> verl RL parquet. Images by path, base64 or ``data:`` URI.

Each record names its question, answer, optional option list and image(s) in fields chosen on the command line.
Questions may hold ``<image>`` placeholders, ``<imageN>`` markers, or neither (then the images go first).

Usage::

    python -m data_prep.jsonl --input problems.jsonl --output data/problems.parquet \\
        --question-field question --answer-field answer --options-field choices --image-field image_path
"""

from __future__ import annotations

import argparse
import sys

from data_prep.cli import add_common_args, config_from_args, finish
from data_prep.fields import add_field_args, field_map_from_args
from data_prep.pipeline import convert
from data_prep.records import count_rows, iter_records

DATA_SOURCE = "jsonl"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (see :mod:`data_prep.cli`)."""
    parser = argparse.ArgumentParser(prog="python -m data_prep.jsonl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", "-i", required=True, help="input .jsonl (also .json lines or .parquet)")
    add_field_args(parser, question="question", answer="answer", options="options", images="image")
    add_common_args(parser, data_source=DATA_SOURCE)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    fields = field_map_from_args(args, args.input)
    rows = iter_records(args.input)
    stats = convert(rows, fields.to_problem, config, total=count_rows(args.input), desc="jsonl")
    return finish(stats, config, args.max_reject_fraction)


if __name__ == "__main__":
    sys.exit(main())
