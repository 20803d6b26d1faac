"""Text-only math problems (no images) -> verl RL parquet, e.g. for the SFT mixture's text part.

Input is JSONL or parquet with a question and an answer field; ``--answer-from-boxed`` takes the answer from the
last ``\\boxed{}`` of a worked solution (the MATH dataset layout: ``problem`` + ``solution``). Rows get an empty
``images`` list; a question holding an ``<image>`` placeholder is rejected (``placeholder_mismatch``).

Usage::

    python -m data_prep.text_only --input math_train.jsonl --output data/math_text.parquet \\
        --question-field problem --answer-field solution --answer-from-boxed
"""

from __future__ import annotations

import argparse
import sys

from data_prep.cli import add_common_args, config_from_args, finish
from data_prep.fields import add_field_args, field_map_from_args
from data_prep.pipeline import convert
from data_prep.records import count_rows, iter_records

DATA_SOURCE = "text_math"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (see :mod:`data_prep.cli`)."""
    parser = argparse.ArgumentParser(prog="python -m data_prep.text_only", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", "-i", required=True, help="input .jsonl / .json lines / .parquet")
    add_field_args(parser, question="problem", answer="answer", options=None, images=None, with_images=False)
    add_common_args(parser, data_source=DATA_SOURCE)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    fields = field_map_from_args(args, args.input)
    stats = convert(iter_records(args.input), fields.to_problem, config, total=count_rows(args.input), desc="text")
    return finish(stats, config, args.max_reject_fraction)


if __name__ == "__main__":
    sys.exit(main())
