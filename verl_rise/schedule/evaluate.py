"""The numbers of the evaluation table: accuracy (pass@1) and pass@k per model and data_source.

    python -m verl_rise.schedule.evaluate --out eval/results.json --held-out testmini=testmini.parquet \\
        --greedy base=rl/metrics@first --greedy rl=rl/metrics@last --greedy sft=eval/sft/greedy/metrics.jsonl@first \\
        [--sampled sft=eval/sft/sampled/dumps --k 8]

* **accuracy** is verl's own validation metric ``val-core/<data_source>/acc/mean@N`` (greedy decoding, N = 1:
  pass@1), read from verl's file-logger JSONL (``trainer.logger`` with ``file``). ``PATH@first`` takes the
  validation logged at step 0 (a validation-only run, or an RL run's ``val_before_train``: the base model);
  ``PATH@last`` the validation with the highest step (an RL run's final validation: the RL model). ``PATH`` is a
  JSONL file or a directory of them (one per attempt of a resumed run, read in attempt order).
* **pass@k** comes from the validation dumps (``trainer.validation_data_dir``) of a run that sampled n >= k
  responses per prompt with the reward ``verl_rise.passrate.sweep_reward`` (the RISE reward plus the prompt id):
  per prompt with c correct of n, pass@k = 1 - C(n-c, k) / C(n, k), the unbiased estimator of Chen et al. 2021
  (arXiv 2107.03374, "Evaluating Large Language Models Trained on Code", Eq. 1), averaged over the prompts of each
  data_source (prompt id -> data_source from the held-out parquet files).

* **benchmark metrics** (``--benchmark-file KEY=PARQUET`` for each of ``eval.benchmarks``, ``--benchmarks
  MODEL=DUMPS_DIR`` per model): the dumps of a validation run with the benchmark reward
  (:mod:`verl_rise.schedule.benchmark_reward`: per response ``acc_strict``, ``acc_lenient`` and ``row_key``) are
  joined by ``row_key`` to the converted rows' benchmark fields (``extra_info["vlmeval"]``), and each benchmark's
  metrics are computed by :func:`verl_rise.evaluation.aggregate` (DynaMath worst case over a seed question's
  variants, WeMath's four dimensions and strict score, accuracy elsewhere), once with strict and once with lenient
  extraction. A row with no response in the dumps (e.g. dropped by verl's prompt-length filter) counts as wrong,
  so every metric is over the whole benchmark; ``missing`` says how many.

* **answers** (``--greedy-dumps MODEL=DUMPS_DIR``): how often each extracted answer (the reward's ``pred``) was
  given, per data_source, in the greedy validation's dump at the selected step (``<step>.jsonl``). verl writes one
  line per held-out row, in no fixed order and without the row's data_source; each line is matched to the rows by
  ground truth and question text (:func:`greedy_answers`), and a dump that cannot be matched is reported as
  ``answers_error``, not guessed at. A model that answers the same thing everywhere shows here, whatever its
  accuracy.

Writes ``results.json`` atomically: ``{"models": {model: {"acc": {ds: x}, "format": {ds: x}, "step": s,
"source": str, "answers": {ds: {pred: count}}, "pass_at_k": {ds: x}, "pass_prompts": {ds: n}, "benchmarks": {key: {"strict": metrics,
"lenient": metrics, "rows": n, "missing": m, "source": dumps}}}}, "k": k, "data_sources": [...], "held_out":
{name: {"path", "rows", "data_sources"}}, "benchmark_files": {key: {"path", "rows", "data_sources"}}}``
(metrics: :func:`verl_rise.evaluation.aggregate`'s dict, ``headline`` the leaderboard's number).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Optional

from data_prep.atomic import write_text_atomic
from verl_rise.file_logger import read_step_metrics

_ACC = re.compile(r"^val-core/(?P<ds>.+)/acc/mean@(?P<n>\d+)$")
_FMT = re.compile(r"^val-aux/(?P<ds>.+)/format/mean@(?P<n>\d+)$")


class EvalError(ValueError):
    """Missing or inconsistent evaluation inputs; the message names the file."""


def validation_points(path: Path) -> dict[int, dict[str, float]]:
    """``{step: metrics}`` of every logged step holding validation metrics (``val-core/...``), from verl's file
    logger (:func:`verl_rise.file_logger.read_step_metrics`: later attempts replace earlier ones at the same step).

    Raises:
        EvalError: the metrics file or directory is missing or holds a line that is not verl's.
    """
    try:
        per_step = read_step_metrics(path)
    except (FileNotFoundError, ValueError) as exc:
        raise EvalError(str(exc)) from None
    return {step: {k: v for k, v in data.items() if k.startswith(("val-core/", "val-aux/"))}
            for step, data in per_step.items() if any(k.startswith("val-core/") for k in data)}


def select_validation(path: Path, which: str) -> tuple[int, dict[str, float]]:
    """The validation metrics at ``which`` = ``first`` (step 0), ``last`` (highest step) or a step number.

    Raises:
        EvalError: no validation at that step (the message lists the steps found).
    """
    points = validation_points(path)
    if which == "first":
        step = 0
    elif which == "last":
        if not points:
            raise EvalError(f"{path}: no validation metrics (val-core/...) logged")
        step = max(points)
    else:
        step = int(which)
    if step not in points:
        raise EvalError(f"{path}: no validation metrics at step {step} (steps with validation: {sorted(points)})")
    return step, points[step]


def per_source(metrics: dict[str, float], pattern: re.Pattern) -> dict[str, float]:
    """``{data_source: value}`` of the metrics matching ``pattern``, at the largest ``@n`` logged."""
    best: dict[str, tuple[int, float]] = {}
    for key, value in metrics.items():
        m = pattern.match(key)
        if m and (m["ds"] not in best or int(m["n"]) > best[m["ds"]][0]):
            best[m["ds"]] = (int(m["n"]), float(value))
    return {ds: v for ds, (_, v) in sorted(best.items())}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one prompt with ``c`` correct among ``n`` samples (Chen et al. 2021, Eq. 1).

    Raises:
        ValueError: ``k > n`` or ``c`` outside ``[0, n]``.

    >>> pass_at_k(4, 0, 2), pass_at_k(4, 4, 2), round(pass_at_k(4, 1, 2), 3)
    (0.0, 1.0, 0.5)
    """
    if not 0 <= c <= n or k > n or k < 1:
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def held_out_sources(held_out: dict[str, Path]) -> tuple[dict[str, str], dict[str, dict]]:
    """``(prompt_id -> data_source, {name: {"path", "rows", "data_sources"}})`` of the held-out parquet files."""
    import pyarrow.parquet as pq

    ids: dict[str, str] = {}
    info = {}
    for name, path in held_out.items():
        table = pq.read_table(path, columns=["data_source", "extra_info"]).to_pylist()
        sources = sorted({r["data_source"] for r in table})
        for r in table:
            ids.setdefault(str((r["extra_info"] or {}).get("prompt_id")), r["data_source"])
        info[name] = {"path": str(path), "rows": len(table), "data_sources": sources}
    return ids, info


def held_out_rows(held_out: dict[str, Path]) -> list[tuple[str, str, str]]:
    """``(data_source, ground_truth, question text)`` of every held-out row; the text is the last user message
    without its ``<image>`` placeholders (what verl's dump shows of it)."""
    import pyarrow.parquet as pq

    rows = []
    for name in sorted(held_out):
        for r in pq.read_table(held_out[name], columns=["data_source", "reward_model", "prompt"]).to_pylist():
            user = [m["content"] for m in (r["prompt"] or []) if m["role"] == "user"]
            text = (user[-1] if user else "").replace("<image>", "").strip()
            rows.append((r["data_source"], str((r["reward_model"] or {}).get("ground_truth")), text))
    return rows


def greedy_answers(dump: Path, rows: list[tuple[str, str, str]]) -> dict[str, dict[str, int]]:
    """``{data_source: {answer: count}}`` of a greedy validation dump (one line per held-out row).

    verl writes the lines in the order the generations finished, with the prompt text (``input``), the ground
    truth (``gts``) and the reward's fields, not the row's data_source. A line is given the data_source of the
    held-out rows with its ground truth whose question text is in its input; the answer is the reward's ``pred``
    (the last ``\\boxed{}``'s content; ``(none)`` when there is none).

    Raises:
        EvalError: the dump is missing, has another number of lines than ``rows``, or a line matches no held-out
            row, or rows of several data_sources.
    """
    if not dump.is_file():
        raise EvalError(f"no validation dump {dump}")
    lines = [json.loads(line) for line in dump.read_text().splitlines() if line.strip()]
    if len(lines) != len(rows):
        raise EvalError(f"{dump}: {len(lines)} lines for {len(rows)} held-out rows")
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for i, line in enumerate(lines):
        gts, text = str(line.get("gts")), str(line.get("input", ""))
        sources = {ds for ds, gt, q in rows if gt == gts and q in text}
        if len(sources) != 1:
            raise EvalError(f"{dump}: line {i + 1} (ground truth {gts!r}) matches held-out rows of "
                            f"{len(sources)} data_sources ({sorted(sources)})")
        pred = str(line.get("pred") or "") or "(none)"
        ds = sources.pop()
        out[ds][pred] = out[ds].get(pred, 0) + 1
    return {ds: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for ds, c in sorted(out.items())}


def sampled_pass_at_k(dumps: Path, k: int, prompt_sources: dict[str, str]) -> tuple[dict[str, float], dict[str, int]]:
    """Mean pass@k per data_source from a sampled validation run's dumps, and the prompts counted per source.

    Raises:
        EvalError: no dump files, a line without ``prompt_id``/``acc`` (the run did not use the sweep reward),
            a prompt id not in the held-out sets, or fewer than k samples for a prompt.
    """
    files = sorted(dumps.glob("*.jsonl")) if dumps.is_dir() else []
    if not files:
        raise EvalError(f"no validation dumps (*.jsonl) in {dumps}")
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f in files:
        for line_no, line in enumerate(f.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("prompt_id") is None or row.get("acc") is None:
                raise EvalError(f"{f}:{line_no}: no prompt_id/acc (the run must use "
                                f"reward.custom_reward_function.path=pkg://verl_rise.passrate.sweep_reward)")
            c = counts[str(row["prompt_id"])]
            c[0] += 1
            c[1] += int(float(row["acc"]) == 1.0)
    by_source: dict[str, list[float]] = defaultdict(list)
    for pid, (n, c) in counts.items():
        if pid not in prompt_sources:
            raise EvalError(f"{dumps}: prompt id {pid} is in no held-out file")
        if n < k:
            raise EvalError(f"{dumps}: prompt {pid} has {n} samples, fewer than k={k}")
        by_source[prompt_sources[pid]].append(pass_at_k(n, c, k))
    return ({ds: sum(v) / len(v) for ds, v in sorted(by_source.items())},
            {ds: len(v) for ds, v in sorted(by_source.items())})


#: Extraction modes scored per benchmark response (the benchmark reward's ``acc_<mode>`` keys).
EXTRACTIONS = ("strict", "lenient")


def benchmark_rows(key: str, path: Path) -> tuple[dict[str, dict], dict]:
    """``({row_key: benchmark fields}, {"path", "rows", "data_sources"})`` of a converted benchmark parquet.

    Raises:
        EvalError: a row without ``extra_info["vlmeval"]``/``index``, of another benchmark, or a repeated index.
    """
    import pyarrow.parquet as pq

    from verl_rise.evaluation import benchmark_of
    from verl_rise.schedule.benchmark_reward import row_key

    try:
        table = pq.read_table(path, columns=["data_source", "extra_info"]).to_pylist()
    except (OSError, ValueError, KeyError) as exc:
        raise EvalError(f"{path}: cannot read the benchmark parquet ({exc})") from None
    rows: dict[str, dict] = {}
    for i, r in enumerate(table):
        extra = r["extra_info"] or {}
        fields = extra.get("vlmeval")
        if not isinstance(fields, dict) or extra.get("index") is None:
            raise EvalError(f"{path}: row {i} has no extra_info.vlmeval/index (convert it with data_prep.benchmarks)")
        if benchmark_of(r["data_source"]) != key:
            raise EvalError(f"{path}: row {i} has data_source {r['data_source']!r}, not a {key} source")
        rk = row_key(key, extra["index"])
        if rk in rows:
            raise EvalError(f"{path}: row {i} repeats index {extra['index']}")
        rows[rk] = fields
    if not rows:
        raise EvalError(f"{path}: no rows")
    return rows, {"path": str(path), "rows": len(rows), "data_sources": sorted({r["data_source"] for r in table})}


def _dump_files(dumps: Path) -> list[Path]:
    """verl's dump files (``<step>.jsonl``), lowest step first, so a later step's line replaces an earlier one."""
    files = sorted(dumps.glob("*.jsonl")) if dumps.is_dir() else []
    return sorted(files, key=lambda f: (0, int(f.stem)) if f.stem.isdigit() else (1, f.stem))


def benchmark_metrics(files: dict[str, dict[str, dict]], dumps: Path) -> dict[str, dict]:
    """Per benchmark: strict and lenient metrics (:func:`verl_rise.evaluation.aggregate`) of one model's dumps.

    Args:
        files: ``{benchmark key: {row_key: benchmark fields}}`` (:func:`benchmark_rows`).
        dumps: the validation dumps directory of the model's benchmark run.

    Raises:
        EvalError: no dump files; a dump line without ``row_key``/``acc_strict``/``acc_lenient`` (the run did not
            use the eval stage's benchmark reward); a ``row_key`` that is in no benchmark file.
    """
    from verl_rise.evaluation import aggregate

    paths = _dump_files(dumps)
    if not paths:
        raise EvalError(f"no validation dumps (*.jsonl) in {dumps}")
    scores: dict[str, dict[str, int]] = {}
    owner = {rk: key for key, rows in files.items() for rk in rows}
    for f in paths:
        for line_no, line in enumerate(f.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            rk = row.get("row_key")
            if rk is None or any(row.get(f"acc_{m}") is None for m in EXTRACTIONS):
                raise EvalError(f"{f}:{line_no}: no row_key/acc_strict/acc_lenient (the run must use "
                                f"reward.custom_reward_function.path=pkg://verl_rise.schedule.benchmark_reward)")
            if rk not in owner:
                raise EvalError(f"{f}:{line_no}: row_key {rk!r} is in no benchmark file")
            scores[rk] = {m: int(float(row[f"acc_{m}"]) == 1.0) for m in EXTRACTIONS}
    out: dict[str, dict] = {}
    for key, rows in files.items():
        missing = [rk for rk in rows if rk not in scores]
        entry: dict = {"rows": len(rows), "missing": len(missing), "source": str(dumps)}
        for mode in EXTRACTIONS:
            scored = [{**fields, "acc": scores.get(rk, {}).get(mode, 0)} for rk, fields in rows.items()]
            try:
                entry[mode] = aggregate(key, scored)
            except ValueError as exc:
                raise EvalError(f"{key}: {exc}") from None
        out[key] = entry
    return out


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise EvalError(f"{what} {item!r}: expected NAME=VALUE")
        name, value = item.split("=", 1)
        out[name] = value
    return out


def collect(held_out: dict[str, Path], greedy: dict[str, str], sampled: dict[str, Path],
            k: Optional[int], benchmark_files: Optional[dict[str, Path]] = None,
            benchmark_dumps: Optional[dict[str, Path]] = None,
            greedy_dumps: Optional[dict[str, Path]] = None) -> dict:
    """Build the results dict (see the module docstring).

    Args:
        held_out: ``{name: parquet}``.
        greedy: ``{model: "PATH@first|last|STEP"}`` (verl file-logger JSONL or a directory of them).
        sampled: ``{model: dumps dir}`` of pass@k runs (requires ``k``).
        k: the k of pass@k.
        benchmark_files: ``{benchmark key: converted parquet}``.
        benchmark_dumps: ``{model: dumps dir}`` of the benchmark runs (requires ``benchmark_files``).
        greedy_dumps: ``{model: dumps dir}`` of the greedy runs in ``greedy`` (answer counts, ``answers``).

    Raises:
        EvalError: see :func:`select_validation` and :func:`sampled_pass_at_k`.
    """
    prompt_sources, info = held_out_sources(held_out)
    answer_rows = held_out_rows(held_out) if greedy_dumps else []
    models: dict[str, dict] = {}
    for model, spec in greedy.items():
        path, _, which = spec.rpartition("@")
        if not path:
            raise EvalError(f"--greedy {model}={spec}: expected PATH@first|last|STEP")
        step, metrics = select_validation(Path(path), which)
        acc = per_source(metrics, _ACC)
        if not acc:
            raise EvalError(f"{path}: validation at step {step} has no val-core/<data_source>/acc metric")
        models[model] = {"acc": acc, "format": per_source(metrics, _FMT), "step": step, "source": f"{path}@{which}"}
        if model in (greedy_dumps or {}):
            try:
                models[model]["answers"] = greedy_answers(Path(greedy_dumps[model]) / f"{step}.jsonl", answer_rows)
            except EvalError as exc:  # the accuracy stands without it; say why the counts are missing
                models[model]["answers_error"] = str(exc)
    if sampled and k is None:
        raise EvalError("--sampled needs --k")
    for model, dumps in sampled.items():
        values, prompts = sampled_pass_at_k(Path(dumps), k, prompt_sources)
        models.setdefault(model, {})
        models[model]["pass_at_k"] = values
        models[model]["pass_prompts"] = prompts
    bench_info: dict[str, dict] = {}
    if benchmark_dumps and not benchmark_files:
        raise EvalError("--benchmarks needs --benchmark-file")
    if benchmark_files:
        from verl_rise.evaluation.benchmarks import check_benchmark

        files = {}
        for key, path in benchmark_files.items():
            try:
                bkey = check_benchmark(key)
            except ValueError as exc:
                raise EvalError(str(exc)) from None
            files[bkey], bench_info[bkey] = benchmark_rows(bkey, Path(path))
        for model, dumps in (benchmark_dumps or {}).items():
            models.setdefault(model, {})["benchmarks"] = benchmark_metrics(files, Path(dumps))
    sources = sorted({ds for m in models.values() for key in ("acc", "pass_at_k") for ds in m.get(key, {})})
    return {"models": models, "k": k, "data_sources": sources, "held_out": info, "benchmark_files": bench_info}


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point; exit status 0, or 2 with a message naming the file on bad input."""
    parser = argparse.ArgumentParser(prog="python -m verl_rise.schedule.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="results.json to write")
    parser.add_argument("--held-out", action="append", default=[], help="NAME=PARQUET (repeatable)")
    parser.add_argument("--greedy", action="append", default=[], help="MODEL=METRICS@first|last|STEP")
    parser.add_argument("--greedy-dumps", action="append", default=[],
                        help="MODEL=DUMPS_DIR of a --greedy run (answer counts per data_source)")
    parser.add_argument("--sampled", action="append", default=[], help="MODEL=DUMPS_DIR of a pass@k run")
    parser.add_argument("--k", type=int, default=None, help="k of pass@k")
    parser.add_argument("--benchmark-file", action="append", default=[], help="KEY=PARQUET of a benchmark "
                        "(data_prep.benchmarks output; repeatable)")
    parser.add_argument("--benchmarks", action="append", default=[], help="MODEL=DUMPS_DIR of a benchmark run")
    args = parser.parse_args(argv)
    try:
        held_out = {name: Path(p) for name, p in _pairs(args.held_out, "--held-out").items()}
        results = collect(held_out, _pairs(args.greedy, "--greedy"),
                          {m: Path(p) for m, p in _pairs(args.sampled, "--sampled").items()}, args.k,
                          {b: Path(p) for b, p in _pairs(args.benchmark_file, "--benchmark-file").items()},
                          {m: Path(p) for m, p in _pairs(args.benchmarks, "--benchmarks").items()},
                          {m: Path(p) for m, p in _pairs(args.greedy_dumps, "--greedy-dumps").items()})
    except (EvalError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_text_atomic(args.out, json.dumps(results, indent=2) + "\n")
    for model, m in results["models"].items():
        print(model, {ds: round(v, 4) for ds, v in m.get("acc", {}).items()},
              {ds: round(v, 4) for ds, v in m.get("pass_at_k", {}).items()},
              {b: {mode: round(e[mode]["headline"], 4) for mode in EXTRACTIONS}
               for b, e in m.get("benchmarks", {}).items()})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
