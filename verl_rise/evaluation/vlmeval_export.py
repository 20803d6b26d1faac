"""Write our generations in VLMEvalKit's prediction-file layout, so its ``run.py --mode eval`` can re-score them.

VLMEvalKit's prediction file (``vlmeval/smp/file.py`` ``get_pred_file_path``) is
``{work_dir}/{model}/{run id}/{model}_{dataset}.xlsx`` (``.tsv`` / ``.json`` when ``PRED_FORMAT`` says so): the
benchmark TSV's rows without ``image``/``image_path``, plus a ``prediction`` column. Its ``evaluate()`` reads only
this file, with pandas (``read_excel`` / ``read_csv(sep="\\t")``), and compares cells with numbers (``varid == 1``,
``index`` keys): :func:`build_frame` writes the columns to a TSV and reads them back as VLMEvalKit reads its TSV, so the
file holds numbers exactly where VLMEvalKit's own prediction file does. ``run.py --mode eval`` takes a file only
when it has a prediction for every index of the benchmark.

Inputs:

* rows with ``extra_info`` and a response: our converted parquet joined with responses (:func:`rows_from_jsonl`
  reads JSONL lines ``{"response": str, "extra_info": {...}}`` or ``{"prediction": ...}`` with the TSV columns at top
  level, as ``verl-rise score`` reads them);
* verl's validation dumps (``trainer.validation_data_dir``; lines ``{"input", "output", "gts", "score", "step",
  <the reward's extra keys>}``): they carry no ``extra_info``, so :func:`rows_from_verl_dump` joins each line to the
  converted parquet by the row's ``index`` (and ``benchmark``, when several are mixed) that the evaluation reward
  returns among its extra keys, or by ``prompt_id``.

xlsx cells hold at most 32,767 characters (Excel's limit; longer text is cut by the writers): a longer prediction
is refused, use ``fmt="tsv"`` (and ``PRED_FORMAT=tsv`` for run.py).
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pandas as pd
import pyarrow.parquet as pq

from data_prep.atomic import AtomicFile
from data_prep.records import read_jsonl_lines

#: Excel's limit on the characters of one cell.
XLSX_MAX_CELL_CHARS = 32767
FORMATS = ("xlsx", "tsv")
#: VLMEvalKit dataset name of each benchmark key (the leaderboard split), as in the evaluation contract.
DATASET_NAMES = {
    "mathvista": "MathVista_MINI",
    "mathvision": "MathVision",
    "mathverse": "MathVerse_MINI_Vision_Only",
    "dynamath": "DynaMath",
    "wemath": "WeMath",
    "logicvista": "LogicVista",
}


class ExportError(ValueError):
    """Input that cannot become a prediction file; the message names the file, line and field."""


def prediction_file_name(model: str, dataset: str, fmt: str = "xlsx") -> str:
    """``{model}_{dataset}.{fmt}``: the name ``run.py`` looks for (``get_pred_file_path``)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    return f"{model}_{dataset}.{fmt}"


def build_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The prediction table: the TSV columns typed as VLMEvalKit's TSV load types them, then ``prediction``.

    Args:
        rows: dicts ``{"vlmeval": {column: str | None}, "prediction": str}``; all rows of one benchmark.

    Returns:
        a DataFrame sorted by ``index`` whose columns are the rows' TSV columns (first-seen order; a column that is
        None in every row is left out) and ``prediction`` (text).

    Raises:
        ExportError: no rows, a row without ``index``, or an index given twice.
    """
    rows = list(rows)
    if not rows:
        raise ExportError("no rows to export")
    columns: dict[str, None] = {}
    for r in rows:
        # verl's dataset loader merges the files of several benchmarks into the union of their columns, None where a
        # benchmark has no such column: a column empty in every row is not one of this benchmark's.
        columns.update(dict.fromkeys(k for k, v in r["vlmeval"].items() if v is not None))
    if "index" not in columns:
        raise ExportError("rows carry no 'index' column in extra_info['vlmeval']")
    cols = list(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(cols)
    for r in rows:
        writer.writerow(["" if r["vlmeval"].get(c) is None else r["vlmeval"][c] for c in cols])
    buf.seek(0)
    frame = pd.read_csv(buf, sep="\t")  # VLMEvalKit's load_tsv, so numbers get the types run.py sees
    dupes = frame["index"][frame["index"].duplicated()].tolist()
    if dupes:
        raise ExportError(f"index given more than once: {dupes[:10]}")
    frame["prediction"] = [str(r["prediction"]) for r in rows]
    return frame.sort_values("index", kind="stable", ignore_index=True)


def write_predictions(frame: pd.DataFrame, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write the table atomically as ``.xlsx`` (openpyxl) or ``.tsv``.

    Raises:
        ExportError: an xlsx cell over :data:`XLSX_MAX_CELL_CHARS` characters (naming its index and column).
        ImportError: xlsx without openpyxl installed.
    """
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "xlsx":
        for col in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[col]):
                long = frame[col].astype(str).str.len() > XLSX_MAX_CELL_CHARS
                if long.any():
                    idx = frame.loc[long, "index"].tolist()[:5]
                    raise ExportError(
                        f"{path}: column {col!r} of index {idx} is longer than an xlsx cell "
                        f"({XLSX_MAX_CELL_CHARS} chars); write .tsv and run VLMEvalKit with PRED_FORMAT=tsv"
                    )
    out = AtomicFile(path)
    try:
        if fmt == "xlsx":
            frame.to_excel(out.tmp, index=False, engine="openpyxl")
        else:
            frame.to_csv(out.tmp, sep="\t", index=False, quoting=csv.QUOTE_ALL)
    except BaseException:
        out.abort()
        raise
    out.commit()
    return path


def export_vlmeval(
    rows: Iterable[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    model: str,
    fmt: str = "xlsx",
    datasets: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Group rows by benchmark and write one prediction file each, ``out_dir/{model}_{dataset}.{fmt}``.

    Args:
        rows: dicts ``{"benchmark": key, "vlmeval": {...}, "prediction": str}`` (:func:`rows_from_jsonl`,
            :func:`rows_from_verl_dump`).
        out_dir: where the files go (for ``run.py --mode eval``: ``{work_dir}/{model}/T{YYYYMMDD}-{HHMMSS}/``).
        model: the model name in the file names (and run.py's ``--model``).
        fmt: ``"xlsx"`` (VLMEvalKit's default) or ``"tsv"``.
        datasets: VLMEvalKit dataset name per benchmark key where it is not the leaderboard split of
            :data:`DATASET_NAMES` (e.g. ``{"mathvision": "MathVision_MINI"}``).

    Returns:
        ``{benchmark: path written}``.
    """
    by_benchmark: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_benchmark[r["benchmark"]].append(r)
    written = {}
    for key, group in by_benchmark.items():
        if key not in DATASET_NAMES:
            raise ExportError(f"unknown benchmark {key!r}; expected one of {', '.join(DATASET_NAMES)}")
        dataset = (datasets or {}).get(key, DATASET_NAMES[key])
        path = Path(out_dir) / prediction_file_name(model, dataset, fmt)
        written[key] = write_predictions(build_frame(group), path, fmt)
    return written


def _jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    for item in read_jsonl_lines(path):
        if item.error is not None:
            raise ExportError(f"{path}: line {item.line}: {item.error}")
        yield item.line, item.record


def _text_columns(values: Mapping[str, Any]) -> dict[str, str | None]:
    return {k: (None if v is None else str(v)) for k, v in values.items()}


def rows_from_jsonl(path: str | os.PathLike, *, benchmark: str | None = None) -> Iterator[dict[str, Any]]:
    """Read a JSONL of responses into export rows.

    Each line is either ``{"response"|"prediction": str, "extra_info": {"benchmark", "vlmeval", ...}}`` (a converted
    row plus its response) or the TSV columns at top level plus ``response``/``prediction`` (then ``benchmark``
    must be given, or be a field of the line).

    Raises:
        ExportError: a line without a response, without TSV columns, or of no known benchmark (file and line named).
    """
    for line_no, obj in _jsonl(path):
        where = f"{path}: line {line_no}"
        response = obj.get("response", obj.get("prediction"))
        if not isinstance(response, str):
            raise ExportError(f"{where}: no 'response' (or 'prediction') text")
        extra = obj.get("extra_info")
        if isinstance(extra, Mapping) and isinstance(extra.get("vlmeval"), Mapping):
            key, columns = extra.get("benchmark") or benchmark, extra["vlmeval"]
        else:
            key = obj.get("benchmark") or benchmark
            columns = {k: v for k, v in obj.items() if k not in ("response", "prediction", "benchmark")}
        if key is None:
            raise ExportError(f"{where}: which benchmark? (no extra_info.benchmark; pass benchmark=)")
        if "index" not in columns:
            raise ExportError(f"{where}: no 'index' among the TSV columns")
        yield {"benchmark": key, "vlmeval": _text_columns(columns), "prediction": response}


def rows_from_verl_dump(
    dump: str | os.PathLike, parquet: str | os.PathLike | list[str | os.PathLike], *, sample: int | None = None
) -> Iterator[dict[str, Any]]:
    """Join verl validation-dump lines to the converted benchmark parquet they were generated from.

    A line is matched by ``(benchmark, index)`` when it has an ``index`` key (``benchmark`` may be missing when the
    parquet files hold one benchmark), else by ``prompt_id``; both are keys the evaluation reward returns.

    Args:
        dump: a ``<step>.jsonl`` file of ``trainer.validation_data_dir``.
        parquet: the converted benchmark file(s) (:mod:`data_prep.benchmarks.convert`).
        sample: with ``val_kwargs.n > 1`` a row has several responses: take the ``sample``-th (0-based, dump order).
            None: a row with several responses is an error.

    Raises:
        ExportError: a line matching no row, or a row with several responses and ``sample`` None.
    """
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    by_prompt: dict[str, list[tuple[str, int]]] = defaultdict(list)
    paths = parquet if isinstance(parquet, list) else [parquet]
    for p in paths:
        for batch in pq.ParquetFile(p).iter_batches(columns=["extra_info"]):
            for extra in batch.column("extra_info").to_pylist():
                if not extra.get("benchmark") or extra.get("vlmeval") is None:
                    raise ExportError(
                        f"{p}: rows carry no extra_info.benchmark/vlmeval (convert with data_prep.benchmarks)"
                    )
                key = (extra["benchmark"], int(extra["index"]))
                by_key[key] = extra
                by_prompt[extra["prompt_id"]].append(key)
    benchmarks = {k for k, _ in by_key}
    responses: dict[tuple[str, int], list[str]] = defaultdict(list)
    for line_no, obj in _jsonl(dump):
        where = f"{dump}: line {line_no}"
        if "output" not in obj:
            raise ExportError(f"{where}: no 'output' (is this a validation dump?)")
        if obj.get("index") is not None:
            bench = obj.get("benchmark") or (next(iter(benchmarks)) if len(benchmarks) == 1 else None)
            if bench is None:
                raise ExportError(f"{where}: 'index' without 'benchmark', and the parquet holds {sorted(benchmarks)}")
            key = (bench, int(obj["index"]))
        elif obj.get("prompt_id") in by_prompt and len(by_prompt[obj["prompt_id"]]) == 1:
            key = by_prompt[obj["prompt_id"]][0]
        else:
            raise ExportError(
                f"{where}: no 'index' key, and its prompt_id names no single row (have the reward return index)"
            )
        if key not in by_key:
            raise ExportError(f"{where}: {key[0]} index {key[1]} is not in the parquet")
        responses[key].append(str(obj["output"]))
    for key, outs in responses.items():
        if sample is None and len(outs) > 1:
            raise ExportError(
                f"{key[0]} index {key[1]} has {len(outs)} responses (val_kwargs.n > 1): choose one with sample="
            )
        pick = 0 if sample is None else sample
        if pick >= len(outs):
            raise ExportError(f"{key[0]} index {key[1]} has {len(outs)} responses, sample={sample} asked")
        extra = by_key[key]
        yield {"benchmark": key[0], "vlmeval": dict(extra["vlmeval"]), "prediction": outs[pick]}


def main(argv: list[str] | None = None) -> int:
    """``python -m verl_rise.evaluation.vlmeval_export``: write prediction files; prints one path per benchmark."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m verl_rise.evaluation.vlmeval_export", description=__doc__.split("\n\n")[0]
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--responses", help="JSONL of {response, extra_info} lines (or TSV columns + response)")
    src.add_argument("--dump", help="a verl validation dump (trainer.validation_data_dir/<step>.jsonl)")
    parser.add_argument("--parquet", nargs="+", help="with --dump: the converted benchmark parquet file(s)")
    parser.add_argument("--benchmark", default=None, help="with --responses: the benchmark of lines without extra_info")
    parser.add_argument("--sample", type=int, default=None, help="with --dump: which response of a row to take (0-based)")
    parser.add_argument("--model", required=True, help="model name in the file names (run.py --model)")
    parser.add_argument("--out", required=True, help="directory, e.g. outputs/MODEL/T20260101-000000")
    parser.add_argument("--format", choices=FORMATS, default="xlsx", help="xlsx (VLMEvalKit's default) or tsv")
    parser.add_argument(
        "--dataset", action="append", default=[], metavar="KEY=NAME",
        help="VLMEvalKit dataset name for a benchmark other than the leaderboard split, e.g. mathvision=MathVision_MINI",
    )
    args = parser.parse_args(argv)
    if args.dump and not args.parquet:
        parser.error("--dump needs --parquet")
    if any("=" not in d for d in args.dataset):
        parser.error("--dataset takes KEY=NAME")
    datasets = dict(d.split("=", 1) for d in args.dataset)
    rows = (
        rows_from_verl_dump(args.dump, list(args.parquet), sample=args.sample)
        if args.dump
        else rows_from_jsonl(args.responses, benchmark=args.benchmark)
    )
    try:
        written = export_vlmeval(rows, args.out, model=args.model, fmt=args.format, datasets=datasets)
    except ExportError as exc:
        print(f"error: {exc}")
        return 1
    for key, path in sorted(written.items()):
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
