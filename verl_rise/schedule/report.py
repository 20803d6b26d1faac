"""The run report: ``<run_dir>/report/report.md`` and its PNGs, from what the stages left in the run directory.

    python -m verl_rise.schedule.report --run-dir runs/rise_7b

Sections: the stage x benchmark accuracy table (base / RL / RL+SFT rows, one column per data_source, pass@k when
evaluated; eval/results.json), the paper's table (MathVista, MathVision, MathVerse, DynaMath, WeMath, LogicVista
and their average; base strict and lenient, RL, RISE, and the model card's published rows of
``eval.reference_size``; also ``benchmarks.png`` and, machine-readable, ``summary.json["benchmarks"]``), the RL
reward and response-length curves (verl's file-logger JSONL of the RL stage:
``critic/score/mean``, ``response_length/mean``), the pass-rate split and histogram after RL (the export's
``summary.json`` and ``pass_rate_hist.png``), the SFT set's composition (sft_data ``stats.json`` / ``stats.png``),
the SFT loss curve, and each stage's wall time (the manifests). Missing inputs leave a note in their section instead
of failing, so a partial run (``--until``) still gets a report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from data_prep.atomic import atomic_path, write_text_atomic
from verl_rise.file_logger import read_step_metrics
from verl_rise.processes import format_seconds
from verl_rise.schedule import STAGES
from verl_rise.schedule.manifest import read_manifest

ROW_LABELS = {"base": "base model", "rl": "+ RL (GRPO)", "sft": "+ RL + SFT (Metis-RISE)"}

#: The paper's table: benchmark key -> column title, in the model card's order.
BENCHMARK_COLUMNS = {"mathvista": "MathVista", "mathvision": "MathVision", "mathverse": "MathVerse",
                     "dynamath": "DynaMath", "wemath": "WeMath", "logicvista": "LogicVista"}
#: Rows of our models in the benchmark table: (label, model, extraction).
BENCHMARK_ROWS = (("base model (strict)", "base", "strict"), ("base model (lenient)", "base", "lenient"),
                  ("+ RL (GRPO)", "rl", "lenient"), ("+ RL + SFT (Metis-RISE)", "sft", "lenient"))
#: The Metis-RISE model card's OpenCompass reasoning rows (percent; MathVista, MathVision, MathVerse, DynaMath,
#: WeMath, LogicVista, then the card's average), by size.
PUBLISHED = {
    "7b": {"Qwen2.5-VL-7B": (68.1, 25.4, 41.1, 21.8, 36.2, 47.9, 40.1),
           "Metis-RISE-7B": (75.8, 28.7, 51.0, 27.7, 45.2, 49.7, 46.4)},
    "72b": {"Qwen2.5-VL-72B": (74.2, 39.3, 47.3, 35.9, 49.1, 55.7, 50.3),
            "Metis-RISE-72B": (80.4, 42.7, 59.8, 42.5, 55.1, 58.8, 56.6)},
}
#: The data_source (VLMEvalKit dataset, i.e. split) the leaderboard's numbers are on, per benchmark.
LEADERBOARD_SOURCES = {"mathvista": "MathVista_MINI", "mathvision": "MathVision",
                       "mathverse": "MathVerse_MINI_Vision_Only", "dynamath": "DynaMath", "wemath": "WeMath",
                       "logicvista": "LogicVista"}
#: What each benchmark's column reports (verl_rise.evaluation.HEADLINE).
HEADLINE_NOTE = "DynaMath: worst-case accuracy over each seed question's variants; WeMath: strict score; " \
                "the others: accuracy"


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def accuracy_columns(results: dict) -> dict[str, str]:
    """``{column: data_source}`` of the accuracy table: the held-out set's name when it has one data_source, else
    ``set/family`` per data_source (family: the data_source's last ``/`` part, e.g. ``demo_test/learnable`` for
    ``verl-rise/demo/learnable``). Data sources of no held-out set keep their own name."""
    columns: dict[str, str] = {}
    for name, info in results.get("held_out", {}).items():
        sources = info.get("data_sources", [])
        for ds in sources:
            columns[name if len(sources) == 1 else f"{name}/{ds.rsplit('/', 1)[-1]}"] = ds
    for ds in results.get("data_sources", []):
        if ds not in columns.values():
            columns[ds] = ds
    return columns


def accuracy_summary(results: dict) -> dict[str, dict[str, float]]:
    """``{"base"|"rl"|"rise": {column: accuracy in [0, 1]}}`` (:func:`accuracy_columns`); models not evaluated are
    left out. ``rise`` is the RL + SFT model (results.json's ``sft``)."""
    columns = accuracy_columns(results)
    out = {}
    for key, label in (("base", "base"), ("rl", "rl"), ("sft", "rise")):
        acc = results.get("models", {}).get(key, {}).get("acc")
        if acc:
            out[label] = {col: float(acc[ds]) for col, ds in columns.items() if ds in acc}
    return out


def results_table(run_dir: Path) -> str:
    """The accuracy table as markdown: one row per model, one accuracy column per held-out set (per family of a
    set with several data_sources, :func:`accuracy_columns`; + average when there are several), then pass@k
    columns when evaluated. Values in percent.

    Raises:
        FileNotFoundError: ``eval/results.json`` does not exist.
    """
    results = json.loads((Path(run_dir) / "eval" / "results.json").read_text())
    columns = accuracy_columns(results)
    models = results["models"]
    k = results.get("k")
    has_pass = any("pass_at_k" in m for m in models.values())
    header = ["model"] + [f"{col} acc" for col in columns]
    if len(columns) > 1:
        header.append("avg acc")
    if has_pass:
        header += [f"{col} pass@{k}" for col in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in ("base", "rl", "sft"):
        if key not in models:
            continue
        m = models[key]
        acc = m.get("acc", {})
        row = [ROW_LABELS[key]] + [_pct(acc.get(ds)) for ds in columns.values()]
        if len(columns) > 1:
            vals = [acc[ds] for ds in columns.values() if ds in acc]
            row.append(_pct(sum(vals) / len(vals)) if vals else "–")
        if has_pass:
            row += [_pct(m.get("pass_at_k", {}).get(ds)) for ds in columns.values()]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def answers_table(results: dict, top: int = 5) -> list[str]:
    """Markdown: per column and model, the greedy answers given most often (``answers`` of results.json), so a
    model that gives one answer everywhere is visible beside its accuracy. Empty when no model has answers."""
    columns = accuracy_columns(results)
    models = results.get("models", {})
    if not any("answers" in m for m in models.values()):
        return []
    lines = ["| model | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for key in ("base", "rl", "sft"):
        answers = models.get(key, {}).get("answers")
        if answers is None:
            continue
        cells = []
        for ds in columns.values():
            counts = answers.get(ds, {})
            shown = ", ".join(f"`{a}` {n}" for a, n in list(counts.items())[:top])
            rest = sum(list(counts.values())[top:])
            cells.append(shown + (f", other {rest}" if rest else "") or "–")
        lines.append(f"| {ROW_LABELS[key]} | " + " | ".join(cells) + " |")
    return lines


def plot_accuracy(accuracy: dict[str, dict[str, float]], out: Path) -> Optional[Path]:
    """Grouped bars: one group per accuracy column, one bar per model (percent). None when nothing to plot."""
    if not accuracy:
        return None
    columns = list(dict.fromkeys(c for row in accuracy.values() for c in row))
    labels = {"base": ROW_LABELS["base"], "rl": ROW_LABELS["rl"], "rise": ROW_LABELS["sft"]}
    fig, ax = _figure(1, width=max(5.0, 1.6 * len(columns) + 2))
    ax = ax[0]
    width = 0.8 / len(accuracy)
    for i, (model, row) in enumerate(accuracy.items()):
        xs = [j + (i - (len(accuracy) - 1) / 2) * width for j in range(len(columns))]
        vals = [100 * row.get(c, float("nan")) for c in columns]
        bars = ax.bar(xs, vals, width=width, label=labels.get(model, model))
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    _save(fig, out)
    return out


def benchmark_table(results: dict, reference_size: Optional[str]) -> dict:
    """The paper's table as data: ``{"columns": [...], "rows": [{"label", "model", "extraction", "values":
    {column: percent or None}, "average", "average_over": [columns], "published": bool}]}``.

    Our rows come from ``results["models"][model]["benchmarks"]`` (the benchmark's headline metric, strict or
    lenient extraction); a benchmark not evaluated is None and the row's average is over the present columns only
    (``average_over`` names them; None when none is present). The published rows of ``reference_size`` follow.
    """
    columns = list(BENCHMARK_COLUMNS.values())
    rows = []
    for label, model, mode in BENCHMARK_ROWS:
        bench = results.get("models", {}).get(model, {}).get("benchmarks")
        if not bench:
            continue
        values = {title: (100 * bench[key][mode]["headline"] if key in bench else None)
                  for key, title in BENCHMARK_COLUMNS.items()}
        present = [c for c in columns if values[c] is not None]
        missing = {BENCHMARK_COLUMNS[k]: e["missing"] for k, e in bench.items() if e.get("missing")}
        rows.append({"label": label, "model": model, "extraction": mode, "values": values,
                     "average": sum(values[c] for c in present) / len(present) if present else None,
                     "average_over": present, "published": False, "missing_rows": missing})
    for name, numbers in PUBLISHED.get(reference_size or "", {}).items():
        rows.append({"label": f"{name} (model card)", "model": name, "extraction": "judge (VLMEvalKit)",
                     "values": dict(zip(columns, numbers[:6])), "average": numbers[6], "average_over": columns,
                     "published": True, "missing_rows": {}})
    return {"columns": columns, "rows": rows, "reference_size": reference_size}


def _cell(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.1f}"


def _avg_cell(row: dict, ncols: int) -> str:
    if row["average"] is None:
        return "–"
    return _cell(row["average"]) + ("" if len(row["average_over"]) == ncols else "*")


def benchmark_markdown(table: dict) -> list[str]:
    """The table's markdown lines; an average over fewer than all six columns is starred and explained."""
    cols = table["columns"]
    lines = ["| model | " + " | ".join(cols) + " | Avg |", "|---|" + "---|" * (len(cols) + 1)]
    partial = False
    for row in table["rows"]:
        partial |= row["average"] is not None and len(row["average_over"]) < len(cols)
        label = f"_{row['label']}_" if row["published"] else row["label"]
        lines.append(f"| {label} | " + " | ".join(_cell(row["values"][c]) for c in cols)
                     + f" | {_avg_cell(row, len(cols))} |")
    if partial:
        lines += ["", "\\* average over the benchmarks present in that row only (\"–\": not evaluated), so it is "
                      "not comparable with the six-benchmark average of the published rows."]
    return lines


def plot_benchmark_table(table: dict, out: Path) -> Path:
    """The benchmark table as a PNG (matplotlib table; published rows in grey italics)."""
    cols = table["columns"]
    fig, (ax,) = _figure(1, width=10, height=0.6 + 0.35 * (len(table["rows"]) + 1))
    ax.axis("off")
    cells = [[r["label"]] + [_cell(r["values"][c]) for c in cols] + [_avg_cell(r, len(cols))] for r in table["rows"]]
    tab = ax.table(cellText=cells or [["(no benchmark results)"] + [""] * (len(cols) + 1)],
                   colLabels=["model"] + cols + ["Avg"], loc="center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.auto_set_column_width(list(range(len(cols) + 2)))
    for i, row in enumerate(table["rows"], start=1):
        if row["published"]:
            for j in range(len(cols) + 2):
                tab[i, j].set_text_props(color="#666666", style="italic")
    ax.set_title("OpenCompass reasoning benchmarks (percent)", fontsize=9)
    _save(fig, out)
    return out


def generation_note(config: Optional[dict]) -> str:
    """One line on the benchmark runs' generation settings (from the resolved run config)."""
    from verl_rise.verl_commands import MODEL_CARD_MAX_NEW_TOKENS, MODEL_CARD_MAX_PIXELS, MODEL_CARD_MIN_PIXELS

    ev = (config or {}).get("eval") or {}
    if ev.get("generation", "model_card") == "model_card":
        return (f"Generation (model card): greedy, the Metis-RISE system prompt (in the data), images between "
                f"{MODEL_CARD_MIN_PIXELS} (128·28·28) and {MODEL_CARD_MAX_PIXELS} (16384·28·28) pixels, up to "
                f"{MODEL_CARD_MAX_NEW_TOKENS} new tokens, prompts up to {ev.get('max_prompt_length', 17408)} tokens.")
    return ("Generation: the RL profile's own settings (eval.generation: profile), greedy, the Metis-RISE system "
            "prompt (in the data); not the model card's, so not comparable with the published rows.")


def _figure(ncols: int, width: float = 5.0, height: float = 3.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def plot_rl_curves(metrics: dict[int, dict], out: Path) -> Optional[Path]:
    """Reward (mean RISE score of the rollouts) and mean response length per RL step, with the held-out accuracy
    at the validated steps. Returns the PNG path, or None when no training step was logged."""
    train = {s: m for s, m in metrics.items() if "critic/score/mean" in m}
    if not train:
        return None
    fig, (ax1, ax2) = _figure(2)
    steps = list(train)
    ax1.plot(steps, [train[s]["critic/score/mean"] for s in steps], marker="o", label="rollout reward (score)")
    val = {s: [v for k, v in m.items() if k.startswith("val-core/") and "/acc/mean@" in k] for s, m in metrics.items()}
    val = {s: sum(v) / len(v) for s, v in val.items() if v}
    if val:
        ax1.plot(list(val), list(val.values()), marker="s", linestyle="--", label="held-out accuracy")
    ax1.set_xlabel("RL step")
    ax1.set_ylabel("mean")
    ax1.set_ylim(-0.05, 1.05)
    ax1.set_title("reward")
    ax1.legend(fontsize=8)
    ax2.plot(steps, [train[s].get("response_length/mean", float("nan")) for s in steps], marker="o", color="#DD8452")
    ax2.set_xlabel("RL step")
    ax2.set_ylabel("tokens")
    ax2.set_title("mean response length")
    _save(fig, out)
    return out


def plot_sft_loss(metrics: dict[int, dict], out: Path) -> Optional[Path]:
    """SFT training loss per step (verl's ``train/loss``); None when not logged."""
    points = {s: m["train/loss"] for s, m in metrics.items() if "train/loss" in m}
    if not points:
        return None
    fig, (ax,) = _figure(1)
    ax.plot(list(points), list(points.values()), marker="o")
    ax.set_xlabel("SFT step")
    ax.set_ylabel("loss")
    ax.set_title("SFT loss")
    _save(fig, out)
    return out


def stage_times(run_dir: Path) -> list[dict]:
    """Per stage: status, attempts (how often the stage was started: the most attempts of any of its steps, so a
    stage of two steps that each ran once counts 1), wall time (seconds; resumed attempts add up) from the
    manifests."""
    rows = []
    for name in STAGES[:-1]:  # the report stage is the one writing this
        try:
            manifest = read_manifest(Path(run_dir) / name)
        except ValueError:
            manifest = None
        if manifest is None:
            rows.append({"stage": name, "status": "not run", "attempts": 0, "wall_s": 0.0})
            continue
        attempts = max((len(s.attempts) for s in manifest.steps.values()), default=0)
        rows.append({"stage": name, "status": manifest.status, "attempts": attempts, "wall_s": manifest.wall_s})
    return rows


def plot_stage_times(rows: list[dict], out: Path) -> Path:
    fig, (ax,) = _figure(1, width=7)
    names = [r["stage"] for r in rows]
    ax.barh(names[::-1], [r["wall_s"] / 60 for r in rows][::-1], color="#4C72B0")
    ax.set_xlabel("wall time (minutes)")
    ax.set_title("stage wall time")
    _save(fig, out)
    return out


def _copy(src: Path, dst: Path) -> Optional[Path]:
    if not src.is_file():
        return None
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def _load_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _load_yaml(path: Path) -> Optional[dict]:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _settings(run_dir: Path) -> list[str]:
    import yaml

    path = run_dir / "config.resolved.yaml"
    if not path.is_file():
        return []
    cfg = yaml.safe_load(path.read_text())
    lines = [f"- model: `{cfg['model']}`", f"- RL profile `{cfg['profiles']['rl']}`, SFT profile `{cfg['profiles']['sft']}`",
             f"- training prompts: `{cfg['data']['train']}`; held-out: "
             + ", ".join(f"{k} `{v}`" for k, v in cfg["data"]["held_out"].items()),
             f"- sweep: k = {cfg['sweep']['k']} responses per prompt at temperature {cfg['sweep']['temperature']}"]
    for stage, items in (cfg.get("overrides") or {}).items():
        if items:
            lines.append(f"- overrides.{stage}: `{' '.join(items)}`")
    return lines


#: The sweep's buckets (verl_rise.passrate.buckets), in the report's order.
BUCKETS = ("hard", "inconsistent", "solved", "unseen")


def _bucket_rows(export_dir: Path) -> list[dict]:
    """``{"data_source", "bucket", "passrate"}`` of every row of the export's bucket files (none when missing)."""
    import pyarrow.parquet as pq

    rows = []
    for bucket in BUCKETS:
        path = Path(export_dir) / f"{bucket}.parquet"
        if path.is_file():
            for r in pq.read_table(path, columns=["data_source", "passrate"]).to_pylist():
                rows.append({"data_source": r["data_source"], "bucket": bucket, "passrate": r["passrate"]})
    return rows


def family_buckets(rows: list[dict]) -> dict[str, dict[str, int]]:
    """``{data_source: {bucket: training prompts}}`` of the export's bucket rows (:func:`_bucket_rows`)."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        counts = out.setdefault(r["data_source"], {b: 0 for b in BUCKETS})
        counts[r["bucket"]] += 1
    return dict(sorted(out.items()))


def plot_pass_rates_by_source(bucket_rows: list[dict], out: Path, bins: int = 10) -> Optional[Path]:
    """Stacked histogram of the training prompts' post-RL pass rates (the export's bucket rows,
    :func:`_bucket_rows`), one colour per data_source (the demo's families), exact 0 and 1 in bars of their own.
    None when there are no classified rows."""
    import numpy as np

    rows = [r for r in bucket_rows if r["passrate"] is not None and r["bucket"] != "unseen"]
    if not rows:
        return None
    sources = sorted({r["data_source"] for r in rows})
    edges = np.linspace(0, 1, bins + 1)
    fig, ax = _figure(1, width=7.0, height=4.0)
    ax = ax[0]
    bottom = np.zeros(bins + 2)
    width = 1.0 / bins
    xs = np.concatenate([[-width], (edges[:-1] + edges[1:]) / 2, [1 + width]])
    for ds in sources:
        rates = np.array([r["passrate"] for r in rows if r["data_source"] == ds])
        interior = rates[(rates > 0) & (rates < 1)]
        counts = np.concatenate([[np.sum(rates == 0)], np.histogram(interior, bins=edges)[0], [np.sum(rates == 1)]])
        ax.bar(xs, counts, width=width * 0.9, bottom=bottom, label=f"{ds} ({len(rates)})")
        bottom += counts
    ax.set_xticks([-width, 0.25, 0.5, 0.75, 1 + width], ["0\n(hard)", "0.25", "0.5", "0.75", "1\n(solved)"])
    ax.set_xlabel("pass rate after RL (fraction of sweep samples correct)")
    ax.set_ylabel("training prompts")
    ax.legend(fontsize=8)
    _save(fig, out)
    return out


def write_report(run_dir: Path) -> Path:
    """Write ``<run_dir>/report/report.md`` and its PNGs. Returns the markdown path."""
    run_dir = Path(run_dir)
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    md = ["# Metis-RISE run report", "",
          f"Run directory `{run_dir}`, written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.", ""]
    md += _settings(run_dir) + [""]

    md += ["## Held-out accuracy", ""]
    results = _load_json(run_dir / "eval" / "results.json")
    if results is None:
        md += ["_No evaluation results (eval/results.json): the eval stage has not run._", ""]
    else:
        md += [results_table(run_dir), ""]
        md.append("Accuracy = pass@1 with greedy decoding, in percent, verl's `val-core/<data_source>/acc` on the "
                  "held-out sets with the RISE reward (a response counts when the last `\\boxed{}` matches).")
        for key, m in results["models"].items():
            if "source" in m:
                md.append(f"- {ROW_LABELS.get(key, key)}: {m['source']} (step {m['step']})")
        if results.get("k"):
            md.append(f"- pass@{results['k']}: unbiased estimator (Chen et al. 2021) from sampled responses per "
                      f"prompt at the sweep temperature")
        for name, info in results["held_out"].items():
            md.append(f"- held-out set `{name}`: {info['rows']} rows, data_source {', '.join(info['data_sources'])}")
        md.append("")
        png = plot_accuracy(accuracy_summary(results), out / "accuracy.png")
        if png:
            md += [f"![held-out accuracy]({png.name})", ""]
        answers = answers_table(results)
        if answers:
            md += ["Greedy answers given most often (the extracted `\\boxed{}` content, count of held-out rows):", ""]
            md += answers + [""]
        for key, m in results["models"].items():
            if "answers_error" in m:
                md.append(f"- no answer counts for {ROW_LABELS.get(key, key)}: {m['answers_error']}")

    md += ["## Benchmarks (the paper's table)", ""]
    config = _load_yaml(run_dir / "config.resolved.yaml")
    reference = ((config or {}).get("eval") or {}).get("reference_size")
    table = benchmark_table(results or {}, reference)
    if not any(not r["published"] for r in table["rows"]):
        md += ["_No benchmark results (eval.benchmarks not set, or the eval stage has not run)._", ""]
    else:
        md += benchmark_markdown(table) + [""]
        png = plot_benchmark_table(table, out / "benchmarks.png")
        md += [f"![benchmarks]({png.name})", "",
               f"Percent. {HEADLINE_NOTE}. Extraction: _strict_ = the RISE contract (the answer in the last "
               f"`\\boxed{{}}`); _lenient_ = rule-based extraction from free text (box, answer tags, \"the answer "
               f"is\", option letter or text, numbers with units); the RL and RISE rows use lenient extraction "
               f"(both modes for every model are in summary.json). The published rows are the model card's "
               f"(OpenCompass leaderboard, VLMEvalKit with a gpt-4o-mini answer-extraction judge).",
               "", f"- {generation_note(config)}"]
        for key, info in (results or {}).get("benchmark_files", {}).items():
            split = "" if info["data_sources"] == [LEADERBOARD_SOURCES.get(key)] else (
                f"; data_source {', '.join(info['data_sources'])}, not the leaderboard's "
                f"{LEADERBOARD_SOURCES.get(key)}, so not comparable with the published rows")
            md.append(f"- {BENCHMARK_COLUMNS.get(key, key)}: {info['rows']} rows (`{info['path']}`){split}")
        for row in table["rows"]:
            for col, n in row["missing_rows"].items():
                md.append(f"- {row['label']}: {n} {col} rows had no response (dropped by verl's prompt-length "
                          f"filter?) and count as wrong")
        md.append("")
    export_summary = _load_json(run_dir / "export" / "summary.json")
    bucket_rows = _bucket_rows(run_dir / "export")
    by_source = family_buckets(bucket_rows)
    summary = {
        "accuracy": accuracy_summary(results or {}),
        "buckets": {b: int((export_summary or {}).get("prompts_per_bucket", {}).get(b, 0)) for b in BUCKETS},
        "buckets_by_data_source": by_source,
        "benchmarks": {**table, "generation": generation_note(config), "headline": HEADLINE_NOTE},
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")

    md += ["## RL (GRPO)", ""]
    rl_metrics = read_step_metrics(run_dir / "rl" / "metrics", missing_ok=True)
    rl_png = plot_rl_curves(rl_metrics, out / "rl_curves.png")
    if rl_png:
        md += [f"![RL curves]({rl_png.name})", ""]
        last = max(s for s, m in rl_metrics.items() if "critic/score/mean" in m)
        md.append(f"{last} RL steps; last step: reward {rl_metrics[last]['critic/score/mean']:.3f}, mean response "
                  f"length {rl_metrics[last].get('response_length/mean', float('nan')):.1f} tokens.")
        md.append("")
    else:
        md += ["_No RL training metrics (rl/metrics/*.jsonl)._", ""]

    md += ["## Pass rates after RL", ""]
    summary = export_summary
    if summary is None:
        md += ["_No pass-rate export (export/summary.json)._", ""]
    else:
        per = summary["prompts_per_bucket"]
        md += ["| bucket | prompts | SFT treatment |", "|---|---|---|",
               f"| hard (pass rate 0) | {per.get('hard', 0)} | expert trajectories |",
               f"| inconsistent | {per.get('inconsistent', 0)} | self-distillation (the RL model's own correct "
               f"responses) |",
               f"| solved (pass rate 1) | {per.get('solved', 0)} | dropped |",
               f"| unseen | {per.get('unseen', 0)} | none (no sweep samples) |", ""]
        if len(by_source) > 1:
            md += ["| data_source | " + " | ".join(BUCKETS) + " |", "|" + "---|" * (len(BUCKETS) + 1)]
            md += [f"| {ds} | " + " | ".join(str(n.get(b, 0)) for b in BUCKETS) + " |" for ds, n in by_source.items()]
            md.append("")
            hist = plot_pass_rates_by_source(bucket_rows, out / "pass_rate_hist.png")
        else:
            hist = _copy(run_dir / "export" / "pass_rate_hist.png", out / "pass_rate_hist.png")
        if hist:
            md += [f"![pass-rate histogram]({hist.name})", ""]

    md += ["## SFT set", ""]
    stats = _load_json(run_dir / "sft_data" / "stats.json")
    if stats is None:
        md += ["_No SFT set (sft_data/stats.json)._", ""]
    else:
        md += ["| source | bucket | rows |", "|---|---|---|"]
        for source, buckets in stats["rows_by_source_and_bucket"].items():
            for bucket, n in (buckets.items() if isinstance(buckets, dict) else [("", buckets)]):
                md.append(f"| {source} | {bucket} | {n} |")
        cov = stats["coverage"]
        md += ["", f"{stats['sft_rows']} rows. Hard prompts covered: {cov['hard']['covered']} of "
                   f"{cov['hard']['prompts']}; inconsistent prompts covered: {cov['inconsistent']['covered']} of "
                   f"{cov['inconsistent']['prompts']}.", ""]
        png = _copy(run_dir / "sft_data" / "stats.png", out / "sft_set.png")
        if png:
            md += [f"![SFT set]({png.name})", ""]
    sft_png = plot_sft_loss(read_step_metrics(run_dir / "sft" / "metrics", missing_ok=True), out / "sft_loss.png")
    if sft_png:
        md += [f"![SFT loss]({sft_png.name})", ""]

    md += ["## Stages", ""]
    rows = stage_times(run_dir)
    md += ["| stage | status | attempts | wall time |", "|---|---|---|---|"]
    md += [f"| {r['stage']} | {r['status']} | {r['attempts']} | {format_seconds(r['wall_s'])} |" for r in rows]
    total = sum(r["wall_s"] for r in rows)
    md += [f"| total | | | {format_seconds(total)} |", ""]
    png = plot_stage_times(rows, out / "stage_times.png")
    md += [f"![stage wall time]({png.name})", ""]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(md))
    return path


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point: write the report, print its path."""
    parser = argparse.ArgumentParser(prog="python -m verl_rise.schedule.report", description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    path = write_report(args.run_dir)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
