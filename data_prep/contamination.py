"""Contamination check: training rows that leak held-out problems (e.g. MATH-Vision testmini) into RL/SFT data.

Works on converted parquet files (the :mod:`data_prep.schema` row contract). A training row is flagged when

* ``same_image_exact``: one of its images has the same bytes (SHA-256) as a held-out image;
* ``same_image_phash``: one of its images is perceptually the same as a held-out image: 64-bit DCT perceptual
  hash (``imagehash.phash``, Zauner 2010) within ``image_distance`` bits (default 4; distinct MATH-Vision figures
  are >= 6 bits apart, a resized or re-encoded copy is 0-2);
* ``same_question_similar_image``: its question is near-identical to a held-out question (difflib ratio >=
  ``question_similarity`` after lower-casing and dropping image markers) AND an image is within the looser
  ``loose_image_distance`` (default 12 bits: a 1-2% crop or a re-scan; the same-wording MATH-Vision pairs
  are 28 bits apart);
* ``same_question_text_only``: text-only rows (no images on either side) with the same normalised question.

Same wording with a different picture is *not* contamination: MATH-Vision repeats "Which number should be written in
place of the question mark?" over many different figures.

Usage::

    python -m data_prep.contamination --train data/mathvision_train.parquet \\
        --heldout data/mathvision_testmini.parquet --report contamination.jsonl [--drop --output clean.parquet]
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import io
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

from data_prep.records import iter_parquet
from data_prep.writer import JsonlWriter, ParquetRowWriter

_MARKERS = re.compile(r"<image\d*>")
_SPACE = re.compile(r"\s+")


def normalize_question(text: str) -> str:
    """Lower-case, image placeholders/markers removed, whitespace collapsed."""
    return _SPACE.sub(" ", _MARKERS.sub(" ", text)).strip().lower()


def question_similarity(a: str, b: str) -> float:
    """difflib ``SequenceMatcher`` ratio (0..1) of the normalised questions."""
    return difflib.SequenceMatcher(None, normalize_question(a), normalize_question(b), autojunk=False).ratio()


def image_fingerprint(data: bytes) -> tuple[str, int]:
    """``(sha256 hex of the bytes, 64-bit perceptual hash as an int)`` of one encoded image.

    Raises:
        PIL.UnidentifiedImageError / OSError: bytes that do not decode.
    """
    bits = imagehash.phash(Image.open(io.BytesIO(data))).hash.flatten()
    return hashlib.sha256(data).hexdigest(), int.from_bytes(np.packbits(bits).tobytes(), "big")


@dataclass(frozen=True)
class RowRef:
    """A row of a converted parquet file."""

    file: str
    row: int
    prompt_id: str
    question: str


@dataclass
class HeldOutIndex:
    """Fingerprints of every held-out row, for matching training rows against.

    Memory: one 64-bit hash, one SHA-256 and one reference per held-out image (held-out sets are small).
    """

    exact: dict[str, RowRef] = field(default_factory=dict)
    phashes: list[int] = field(default_factory=list)
    phash_refs: list[RowRef] = field(default_factory=list)
    text_only: dict[str, RowRef] = field(default_factory=dict)
    _array: np.ndarray | None = None

    def add_file(self, path: str | Path, progress: bool = True) -> int:
        """Index every row of one converted parquet file; returns the number of rows read."""
        n = 0
        for src in tqdm(
            iter_parquet(path, columns=["images", "extra_info"]), desc=f"index {Path(path).name}", disable=not progress
        ):
            n += 1
            info = src.record["extra_info"]
            ref = RowRef(src.file, src.row, info["prompt_id"], info["question"])
            images = src.record["images"] or []
            if not images:
                self.text_only.setdefault(normalize_question(info["question"]), ref)
            for im in images:
                sha, ph = image_fingerprint(im["bytes"])
                self.exact.setdefault(sha, ref)
                self.phashes.append(ph)
                self.phash_refs.append(ref)
        self._array = None
        return n

    def _hash_array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.array(self.phashes, dtype=np.uint64)
        return self._array

    def match(
        self,
        question: str,
        image_bytes: list[bytes],
        *,
        image_distance: int = 4,
        loose_image_distance: int = 12,
        min_question_similarity: float = 0.9,
    ) -> dict[str, Any] | None:
        """The first held-out row a training problem collides with, or None.

        Returns:
            ``{"reason", "heldout": RowRef, "distance": int | None, "question_similarity": float | None}``.
        """
        if not image_bytes:
            ref = self.text_only.get(normalize_question(question))
            if ref is None:
                return None
            return {"reason": "same_question_text_only", "heldout": ref, "distance": None, "question_similarity": 1.0}
        hashes = self._hash_array()
        for data in image_bytes:
            sha, ph = image_fingerprint(data)
            if sha in self.exact:
                return {"reason": "same_image_exact", "heldout": self.exact[sha], "distance": 0,
                        "question_similarity": None}
            if not len(hashes):
                continue
            dist = np.bitwise_count(hashes ^ np.uint64(ph))
            best = int(dist.argmin())
            if dist[best] <= image_distance:
                return {"reason": "same_image_phash", "heldout": self.phash_refs[best], "distance": int(dist[best]),
                        "question_similarity": None}
            for k in np.flatnonzero(dist <= loose_image_distance):
                sim = question_similarity(question, self.phash_refs[k].question)
                if sim >= min_question_similarity:
                    return {"reason": "same_question_similar_image", "heldout": self.phash_refs[k],
                            "distance": int(dist[k]), "question_similarity": round(sim, 4)}
        return None


@dataclass
class ContaminationStats:
    """Counts of one check: ``checked == kept + flagged``."""

    checked: int = 0
    flagged: int = 0
    by_reason: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.by_reason.items())) or "none"
        return f"checked {self.checked} training rows: flagged {self.flagged} ({reasons})"


def check_contamination(
    train: str | Path,
    heldout: list[str | Path],
    *,
    report: str | Path,
    output: str | Path | None = None,
    image_distance: int = 4,
    loose_image_distance: int = 12,
    min_question_similarity: float = 0.9,
    progress: bool = True,
) -> ContaminationStats:
    """Flag training rows that collide with held-out rows; optionally write the training file without them.

    Args:
        train: converted training parquet.
        heldout: converted held-out parquet files.
        report: JSONL written atomically, one record per flagged row (training file/row/prompt_id, reason,
            held-out file/row/prompt_id, hash distance, question similarity).
        output: if given, the training rows that were NOT flagged, written atomically (rows unchanged).
        image_distance, loose_image_distance: perceptual-hash thresholds in bits (0..64).
        min_question_similarity: difflib ratio threshold (0..1) for the question rule.

    Returns:
        :class:`ContaminationStats`.
    """
    index = HeldOutIndex()
    for path in heldout:
        index.add_file(path, progress=progress)
    stats = ContaminationStats()
    writer = ParquetRowWriter(output, pq.ParquetFile(train).schema_arrow) if output is not None else None
    try:
        with JsonlWriter(report) as rep:
            for src in tqdm(iter_parquet(train), desc="check", disable=not progress):
                stats.checked += 1
                info = src.record["extra_info"]
                hit = index.match(
                    info["question"],
                    [im["bytes"] for im in src.record["images"] or []],
                    image_distance=image_distance,
                    loose_image_distance=loose_image_distance,
                    min_question_similarity=min_question_similarity,
                )
                if hit is None:
                    if writer is not None:
                        writer.write(src.record)
                    continue
                stats.flagged += 1
                stats.by_reason[hit["reason"]] += 1
                ref: RowRef = hit["heldout"]
                rep.write({
                    "file": src.file, "row": src.row, "prompt_id": info["prompt_id"], "reason": hit["reason"],
                    "heldout_file": ref.file, "heldout_row": ref.row, "heldout_prompt_id": ref.prompt_id,
                    "distance": hit["distance"], "question_similarity": hit["question_similarity"],
                })
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return stats


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point. Exit status 1 with ``--fail-if-contaminated`` when a row was flagged."""
    parser = argparse.ArgumentParser(prog="python -m data_prep.contamination", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, type=Path, help="converted training parquet")
    parser.add_argument("--heldout", required=True, nargs="+", type=Path, help="converted held-out parquet file(s)")
    parser.add_argument("--report", type=Path, default=None, help="flag report JSONL (default: <train stem>.contamination.jsonl)")
    parser.add_argument("--drop", action="store_true", help="also write the training file without flagged rows")
    parser.add_argument("--output", type=Path, default=None, help="with --drop: cleaned parquet (default: <train stem>.clean.parquet)")
    parser.add_argument("--image-distance", type=int, default=4, help="phash bits for 'same image' (default 4)")
    parser.add_argument("--loose-image-distance", type=int, default=12, help="phash bits for the question rule (default 12)")
    parser.add_argument("--question-similarity", type=float, default=0.9, help="difflib ratio for 'same question' (default 0.9)")
    parser.add_argument("--fail-if-contaminated", action="store_true", help="exit 1 when any row is flagged")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    report = args.report or args.train.with_name(args.train.stem + ".contamination.jsonl")
    output = (args.output or args.train.with_name(args.train.stem + ".clean.parquet")) if args.drop else None
    stats = check_contamination(
        args.train, args.heldout, report=report, output=output, image_distance=args.image_distance,
        loose_image_distance=args.loose_image_distance, min_question_similarity=args.question_similarity,
        progress=not args.no_progress,
    )
    print(stats.summary())
    print(f"report: {report}")
    if output is not None:
        print(f"kept {stats.checked - stats.flagged} rows in {output}")
    return 1 if (args.fail_if_contaminated and stats.flagged) else 0


if __name__ == "__main__":
    sys.exit(main())
