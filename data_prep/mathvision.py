"""MATH-Vision (MATH-V) raw layout -> verl RL parquet.

Input: the jsonl files of github.com/mathllm/MATH-V (``data/test.jsonl``, ``data/testmini.jsonl``): one object
per line with ``question`` (holding ``<image1>``, ``<image2>``, ... markers), ``options`` (option texts, A first;
empty for free-form), ``answer`` (the letter for choice problems) and ``image`` (path relative to the dataset
root, one composite picture per problem; a list of paths is accepted too). Markers become verl ``<image>``
placeholders as :func:`data_prep.schema.place_image_placeholders` describes.

Usage::

    python -m data_prep.mathvision --input ../shared/data/mathvision/train.jsonl --output data/mathvision_train.parquet
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from data_prep.cli import add_common_args, config_from_args, finish
from data_prep.errors import BAD_ROW, RowRejected
from data_prep.images import DEFAULT_MAX_IMAGE_BYTES, read_image_bytes
from data_prep.pipeline import convert, resolve_root
from data_prep.records import iter_jsonl
from data_prep.schema import IMAGE_MARKER_RE, LETTERS, Problem, answer_text, option_texts

DATA_SOURCE = "MathLLMs/MathVision"


def problem_from_record(
    record: dict[str, Any], root: str | os.PathLike, *, max_image_bytes: int | None = DEFAULT_MAX_IMAGE_BYTES
) -> Problem:
    """One MATH-V jsonl object -> :class:`Problem` (images read from ``root``, not yet decoded).

    Raises:
        RowRejected: ``bad_row`` for a missing ``question``/``answer``/``image`` key, a garbage answer or option
            (:func:`data_prep.schema.answer_text`, :func:`~data_prep.schema.option_texts`);
            ``missing_image``/``bad_image_path``/``unreadable_image``/``image_too_large`` from
            :func:`data_prep.images.read_image_bytes` (paths must stay inside ``root``).
    """
    for key in ("question", "answer", "image"):
        if key not in record:
            raise RowRejected(key, BAD_ROW, f"missing key {key!r}")
    answer = answer_text(record["answer"], "answer")
    options = option_texts(record.get("options") or [], "options")
    if options and all(isinstance(o, str) and IMAGE_MARKER_RE.fullmatch(o.strip()) for o in options):
        # Options that are only picture markers ("<image1>".."<image5>"): the choices are drawn, labelled A-E, in
        # the composite picture, so they are letter options like the ["A", ..., "E"] rows.
        options = list(LETTERS[: len(options)])
    paths = record["image"] if isinstance(record["image"], list) else [record["image"]]
    images = [
        read_image_bytes(p, root=root, encoding="path", field="image", max_bytes=max_image_bytes) for p in paths
    ]
    return Problem(question=record["question"], answer=answer, options=options, images=images)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (see :mod:`data_prep.cli`)."""
    parser = argparse.ArgumentParser(prog="python -m data_prep.mathvision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", "-i", required=True, help="MATH-V jsonl file (e.g. data/test.jsonl)")
    parser.add_argument("--root", default=None, help="dataset root that `image` paths are relative to (default: the input's directory)")
    add_common_args(parser, data_source=DATA_SOURCE)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    root = resolve_root(args.input, args.root)
    stats = convert(
        iter_jsonl(args.input),
        lambda rec: problem_from_record(rec, root, max_image_bytes=config.max_image_bytes),
        config,
        desc="MATH-Vision",
    )
    return finish(stats, config, args.max_reject_fraction)


if __name__ == "__main__":
    sys.exit(main())
