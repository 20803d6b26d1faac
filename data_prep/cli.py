"""Command-line options shared by every converter, and the exit-code rule.

Exit codes: 0 = done, rejected fraction within ``--max-reject-fraction``; 1 = more rows rejected than allowed, or
no input rows at all (the output files are still written, so the rejects can be inspected).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from data_prep.image_pool import default_workers
from data_prep.images import DEFAULT_MAX_IMAGE_BYTES
from data_prep.pipeline import ConversionStats, ConvertConfig
from data_prep.prompts import MAX_PIXELS, METIS_RISE_SYSTEM_PROMPT, MIN_PIXELS

EXIT_OK = 0
EXIT_TOO_MANY_REJECTS = 1


def add_common_args(parser: argparse.ArgumentParser, *, data_source: str, split: str = "train") -> None:
    """Add the output, prompt, image-range and reject-threshold options to ``parser``."""
    g = parser.add_argument_group("output")
    g.add_argument("--output", "-o", type=Path, required=True, help="destination .parquet file (written atomically)")
    g.add_argument("--rejects", type=Path, default=None, help="rejects JSONL (default: <output stem>.rejects.jsonl)")
    g.add_argument("--split", default=split, help=f"extra_info.split value (default: {split})")
    g.add_argument("--data-source", default=data_source, help=f"data_source column (default: {data_source})")
    g.add_argument("--row-group-size", type=int, default=256, help="parquet rows per row group (bounds memory)")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    g = parser.add_argument_group("prompt")
    sp = g.add_mutually_exclusive_group()
    sp.add_argument("--system-prompt", default=None, help="system prompt text (default: the Metis-RISE prompt)")
    sp.add_argument("--system-prompt-file", type=Path, default=None, help="read the system prompt from a file")
    sp.add_argument("--no-system-prompt", action="store_true", help="write no system message")
    g.add_argument(
        "--allow-option-text",
        action="store_true",
        help="accept a choice answer given as the exact text of an option (mapped to its letter)",
    )
    g = parser.add_argument_group("images")
    g.add_argument("--min-pixels", type=int, default=MIN_PIXELS, help=f"smallest image area (default {MIN_PIXELS})")
    g.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help=f"largest image area (default {MAX_PIXELS})")
    g.add_argument(
        "--max-image-bytes",
        type=int,
        default=DEFAULT_MAX_IMAGE_BYTES,
        help=f"reject an encoded image larger than this many bytes (default {DEFAULT_MAX_IMAGE_BYTES})",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes that decode and check images (0: in this process; default: the CPU count, "
        f"{default_workers()} here); the output is the same either way",
    )
    g = parser.add_argument_group("checks")
    g.add_argument(
        "--max-reject-fraction",
        type=float,
        default=0.05,
        help="exit with status 1 when more than this fraction of rows is rejected (default 0.05)",
    )


def config_from_args(args: argparse.Namespace) -> ConvertConfig:
    """Build a :class:`ConvertConfig` from options added by :func:`add_common_args`."""
    if args.no_system_prompt:
        system_prompt = None
    elif args.system_prompt_file is not None:
        system_prompt = args.system_prompt_file.read_text(encoding="utf-8").strip()
    elif args.system_prompt is not None:
        system_prompt = args.system_prompt
    else:
        system_prompt = METIS_RISE_SYSTEM_PROMPT
    return ConvertConfig(
        output=args.output,
        rejects=args.rejects,
        split=args.split,
        data_source=args.data_source,
        system_prompt=system_prompt,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        max_image_bytes=args.max_image_bytes,
        allow_option_text=args.allow_option_text,
        row_group_size=args.row_group_size,
        progress=not args.no_progress,
        workers=max(0, args.workers),
    )


def finish(stats: ConversionStats, config: ConvertConfig, max_reject_fraction: float) -> int:
    """Print the counts and file paths; return the exit code."""
    print(stats.summary())
    print(f"output:  {config.output}")
    print(f"rejects: {config.rejects_path()}")
    if stats.read == 0:
        print("error: no input rows")
        return EXIT_TOO_MANY_REJECTS
    if stats.rejected_fraction > max_reject_fraction:
        print(
            f"error: rejected fraction {stats.rejected_fraction:.3f} exceeds --max-reject-fraction "
            f"{max_reject_fraction}; see {config.rejects_path()}"
        )
        return EXIT_TOO_MANY_REJECTS
    return EXIT_OK
