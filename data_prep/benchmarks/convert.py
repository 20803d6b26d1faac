"""Benchmark files -> verl parquet for validation/evaluation, through the shared :func:`data_prep.pipeline.convert`.

Usage::

    # VLMEvalKit's TSV (the leaderboard's own file, e.g. ~/LMUData/WeMath.tsv)
    python -m data_prep.benchmarks.convert --benchmark wemath --tsv WeMath.tsv -o data/eval/wemath.parquet
    # a benchmark's own release layout
    python -m data_prep.benchmarks.convert --benchmark mathvista --native MathVista/data/testmini.json -o mathvista.parquet
    python -m data_prep.benchmarks.convert --benchmark dynamath --native v1/dataset.json v2/dataset.json ... -o dynamath.parquet

Rows are written in file order; a row is rejected (with its reason in the rejects file) for a missing required
column, a bad index, an index seen before, an answer that names no option, or a missing/corrupt image. Unlike
training files, a problem that repeats another's content is kept: benchmark rows are identified by their index.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, Iterable

import pyarrow as pa

from data_prep.benchmarks.native import NATIVE_READERS
from data_prep.benchmarks.specs import IMAGE_COLUMNS, BenchmarkSpec, get_spec, problem_from_record
from data_prep.benchmarks.tsv import iter_vlmeval_tsv, read_header
from data_prep.cli import add_common_args, config_from_args, finish
from data_prep.errors import BAD_ROW, RowRejected
from data_prep.pipeline import ConversionStats, ConvertConfig, SourceRow, convert
from data_prep.schema import ARROW_SCHEMA


def benchmark_schema(columns: Iterable[str]) -> pa.Schema:
    """:data:`~data_prep.schema.ARROW_SCHEMA` with ``extra_info.benchmark`` and ``extra_info.vlmeval`` (one text
    field per TSV column, image columns left out)."""
    cols = [c for c in columns if c not in IMAGE_COLUMNS]
    extra = ARROW_SCHEMA.field("extra_info").type
    fields = [extra.field(i) for i in range(extra.num_fields)]
    fields += [pa.field("benchmark", pa.string()), pa.field("vlmeval", pa.struct([(c, pa.string()) for c in cols]))]
    return ARROW_SCHEMA.set(ARROW_SCHEMA.get_field_index("extra_info"), pa.field("extra_info", pa.struct(fields)))


def convert_benchmark(
    spec: BenchmarkSpec, rows: Iterable[SourceRow], columns: list[str], config: ConvertConfig
) -> ConversionStats:
    """Convert benchmark records into ``config.output`` (rejects beside it).

    Args:
        spec: the benchmark (:func:`data_prep.benchmarks.specs.get_spec`).
        rows: :class:`SourceRow` records from :func:`~data_prep.benchmarks.tsv.iter_vlmeval_tsv` or a reader of
            :mod:`data_prep.benchmarks.native`.
        columns: the TSV columns the rows carry (the schema of ``extra_info["vlmeval"]``; a missing one is null).
        config: output options (``reject_duplicates`` is taken as off: rows are told apart by index).

    Returns:
        the pipeline's :class:`ConversionStats` (``read == written + rejected``).
    """
    config = dataclasses.replace(config, reject_duplicates=False)
    cols = [c for c in columns if c not in IMAGE_COLUMNS]
    seen: dict[int, int] = {}

    def to_problem(record: Any) -> Any:
        problem = problem_from_record(spec, record)
        index = problem.extra_info["index"]
        if index in seen:
            raise RowRejected("index", BAD_ROW, f"index {index} repeats data row {seen[index]}")
        seen[index] = len(seen)
        problem.extra_info["vlmeval"] = {c: problem.extra_info["vlmeval"].get(c) for c in cols}
        return problem

    return convert(rows, to_problem, config, desc=spec.key, schema=benchmark_schema(cols))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (see :mod:`data_prep.cli`)."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.benchmarks.convert", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--benchmark", "-b", required=True, choices=sorted(NATIVE_READERS))
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--tsv", help="VLMEvalKit TSV file (e.g. ~/LMUData/MathVista_MINI.tsv)")
    src.add_argument(
        "--native", nargs="+", help="the benchmark's release file (DynaMath: one dataset.json per variant, variant 1 first)"
    )
    parser.add_argument("--root", default=None, help="directory image paths are relative to (default: beside the input)")
    parser.add_argument("--query", default=None, help="MathVista: query.json (default: beside testmini.json)")
    parser.add_argument("--version", default="Vision Only", help="MathVerse: problem version to keep (default: Vision Only)")
    add_common_args(parser, data_source="", split="test")
    args = parser.parse_args(argv)
    spec = get_spec(args.benchmark)
    if not args.data_source:
        args.data_source = spec.data_source
    config = config_from_args(args)
    if args.tsv:
        rows, columns = iter_vlmeval_tsv(args.tsv, root=args.root), read_header(args.tsv)
    else:
        kwargs: dict[str, Any] = {"root": args.root}
        if spec.key == "mathvista":
            kwargs["query"] = args.query
        if spec.key == "mathverse":
            kwargs["version"] = args.version
        first = args.native if spec.key == "dynamath" else args.native[0]
        if spec.key != "dynamath" and len(args.native) != 1:
            parser.error(f"--native takes one file for {spec.key}")
        rows, columns = NATIVE_READERS[spec.key](first, **kwargs), list(spec.native_columns)
    stats = convert_benchmark(spec, rows, columns, config)
    return finish(stats, config, args.max_reject_fraction)



if __name__ == "__main__":
    sys.exit(main())
