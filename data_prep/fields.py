"""Field mapping for row-per-problem inputs (JSONL, HF-datasets parquet, text-only sets): which column holds what.

Shared by :mod:`data_prep.jsonl`, :mod:`data_prep.hf_parquet` and :mod:`data_prep.text_only`, which differ only in
their defaults and input reader.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_prep.errors import BAD_ROW, MISSING_IMAGE, RowRejected
from data_prep.images import DEFAULT_MAX_IMAGE_BYTES, read_image_bytes
from data_prep.schema import Problem, answer_text, option_texts
from reward_fns.extract import last_boxed


def _extract_boxed(text: str) -> str:
    # The RISE reward's own extraction, so SFT/RL data and the reward agree on what "the boxed answer" is.
    found = last_boxed(text, max_chars=len(text))
    return found.content or ""


@dataclass(frozen=True)
class FieldMap:
    """Where a record keeps each part of a problem.

    Attributes:
        question: key of the question text.
        answer: key of the answer (or of a solution text when ``answer_from_boxed``).
        options: key of the option list (a list, or a JSON-encoded list); None: no options.
        images: key of the image value(s): one value or a list of ``{"bytes","path"}`` dicts, paths, base64
            strings; None: a text-only input.
        image_root: the dataset root: relative image paths resolve against it, and no path may lead out of it.
        image_encoding: how string image values are read: ``auto``/``path``/``base64``
            (see :func:`data_prep.images.read_image_bytes`).
        answer_from_boxed: take the answer from the last ``\\boxed{}`` in the answer field.
        max_image_bytes: largest encoded image read (see :func:`data_prep.images.read_image_bytes`).
    """

    question: str
    answer: str
    options: str | None = None
    images: str | None = None
    image_root: Path | None = None
    image_encoding: str = "auto"
    answer_from_boxed: bool = False
    max_image_bytes: int | None = DEFAULT_MAX_IMAGE_BYTES

    def columns(self) -> list[str]:
        """The input columns this mapping reads (lets a parquet reader skip the others)."""
        return [c for c in (self.question, self.answer, self.options, self.images) if c]

    def to_problem(self, record: dict[str, Any]) -> Problem:
        """Map one record to a :class:`Problem` (images read, not decoded).

        Raises:
            RowRejected: ``bad_row`` (missing question/answer key, options not a list, a garbage answer or option:
                :func:`data_prep.schema.answer_text`), ``missing_image`` (an image
                field that is null or empty), and the image read errors of
                :func:`data_prep.images.read_image_bytes`.
        """
        for key in (self.question, self.answer):
            if key not in record:
                raise RowRejected(key, BAD_ROW, f"missing field {key!r}; record has {sorted(record)}")
        question = record[self.question]
        if not isinstance(question, str):
            raise RowRejected(self.question, BAD_ROW, f"question must be text, got {type(question).__name__}")
        answer = answer_text(record[self.answer], self.answer)
        if self.answer_from_boxed:
            answer = _extract_boxed(answer)
        options = self._options(record)
        images = []
        if self.images is not None:
            value = record.get(self.images)
            values = value if isinstance(value, list) else ([] if value is None else [value])
            if not values:
                raise RowRejected(self.images, MISSING_IMAGE, "no image in a multimodal input")
            images = [
                read_image_bytes(
                    v, root=self.image_root, encoding=self.image_encoding, field=self.images,
                    max_bytes=self.max_image_bytes,
                )
                for v in values
            ]
        return Problem(question=question, answer=answer, options=options, images=images)

    def _options(self, record: dict[str, Any]) -> list[str]:
        if self.options is None:
            return []
        value = record.get(self.options)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise RowRejected(self.options, BAD_ROW, f"options string is not a JSON list: {exc}") from exc
        return option_texts(value, self.options)


def add_field_args(
    parser: argparse.ArgumentParser,
    *,
    question: str,
    answer: str,
    options: str | None,
    images: str | None,
    with_images: bool = True,
) -> None:
    """Add ``--question-field`` etc. with the given defaults (``with_images=False``: no image options)."""
    g = parser.add_argument_group("fields")
    g.add_argument("--question-field", default=question, help=f"question text field (default: {question})")
    g.add_argument("--answer-field", default=answer, help=f"answer field (default: {answer})")
    g.add_argument(
        "--options-field", default=options, help=f"option list field; '' for none (default: {options or 'none'})"
    )
    g.add_argument(
        "--answer-from-boxed",
        action="store_true",
        help="the answer field is a worked solution: take the answer from its last \\boxed{}",
    )
    if with_images:
        g.add_argument("--image-field", default=images, help=f"image field (default: {images})")
        g.add_argument(
            "--image-root", default=None, help="directory for relative image paths (default: the input's directory)"
        )
        g.add_argument(
            "--image-encoding",
            choices=("auto", "path", "base64"),
            default="auto",
            help="how string image values are read (auto: data: URIs are base64, other strings are paths)",
        )


def field_map_from_args(args: argparse.Namespace, input_path: str | os.PathLike) -> FieldMap:
    """Build a :class:`FieldMap` from options added by :func:`add_field_args`."""
    image_field = getattr(args, "image_field", None) or None
    root = getattr(args, "image_root", None)
    return FieldMap(
        question=args.question_field,
        answer=args.answer_field,
        options=args.options_field or None,
        images=image_field,
        image_root=Path(root) if root else Path(input_path).resolve().parent,
        image_encoding=getattr(args, "image_encoding", "auto"),
        answer_from_boxed=args.answer_from_boxed,
        max_image_bytes=getattr(args, "max_image_bytes", DEFAULT_MAX_IMAGE_BYTES),
    )
