"""Agreement of our answer extraction + scoring with the benchmarks' official judgements, on real labelled responses.

Inputs (not part of this project; get them from the benchmarks' own repositories):

* MathVista: ``results/<model>/output_<model>.json`` of github lupantech/MathVista (testmini, one entry per pid with
  the problem's fields, the model's ``response`` and the official ``true_false``), e.g.
  ``git clone https://github.com/lupantech/MathVista`` then pass ``MathVista/results/bard/output_bard.json ...``.
* MATH-Vision: ``outputs/`` of github mathllm/MATH-V (``*.jsonl`` with ``id``, ``response``, ``correct``) plus its
  ``data/test.jsonl`` (the problems: ``answer``, ``options``).

For each benchmark and source model it prints how often strict, lenient (and judge, with ``--judge-endpoint``)
scoring agrees with the official label, the counts of disagreements in each direction, and lists the official
labels that are demonstrably wrong (MATH-V marks a response wrong although its final answer states the right
option's text, or the right letter) instead of counting them as our disagreements. The table is also written as PNG.

    python benchmarks/bench_eval_agreement.py \\
        --mathvista MathVista/results/{bard/output_bard,chatgpt/output_chatgpt}.json \\
                    MathVista/results/{claude/output_claude,gpt4/output_gpt4}.json \\
        --mathv-outputs MATH-V/outputs --mathv-test MATH-V/data/test.jsonl --png agreement.png
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

from verl_rise.evaluation.benchmarks import score_row
from verl_rise.evaluation.choices import read_letter

GOAL = 0.95


def mathvista_cases(path: Path) -> list[dict]:
    """One case per pid of a MathVista results file: ``{model, id, row, response, label}`` (label None dropped)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    model = path.stem.removeprefix("output_")
    cases = []
    for pid, item in data.items():
        if item.get("true_false") is None:
            continue
        row = {k: item.get(k) for k in ("question_type", "answer_type", "precision", "unit", "answer")}
        row["choices"] = repr(item["choices"]) if item.get("choices") else None
        row["question"] = item.get("query") or item.get("question")
        cases.append({"model": model, "id": pid, "row": row, "response": item.get("response") or "",
                      "label": bool(item["true_false"])})
    return cases


def mathv_cases(outputs: Path, test_file: Path, models: list[str] | None = None) -> list[dict]:
    """Cases of every ``*.jsonl`` under MATH-V's ``outputs/`` (its problems from ``data/test.jsonl``)."""
    problems = {}
    for line in test_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            p = json.loads(line)
            problems[str(p["id"])] = p
    cases = []
    for f in sorted(outputs.rglob("*.jsonl")):
        model = f.stem
        if models and model not in models:
            continue
        for line in f.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            p = problems[str(r["id"])]
            row = {"answer": str(p["answer"]), "choices": repr(p.get("options") or []), "question": p["question"]}
            cases.append({"model": model, "id": str(r["id"]), "row": row, "response": r.get("response") or "",
                          "label": bool(r.get("correct")), "model_answer": r.get("model_answer")})
    return cases


def official_label_wrong(case: dict, lenient: dict) -> bool:
    """MATH-V: the official check said wrong, but the response's final answer names the right option (by its text
    or its letter): a mislabel, as the MATH-V paper's grader only compares the lowered extracted string."""
    if case["label"] or not lenient["acc"]:
        return False
    row = case["row"]
    options = eval(row["choices"]) if row.get("choices") else []  # noqa: S307 - our own repr() output
    if not options or not re.fullmatch(r"[A-E]", row["answer"]):
        return False
    return read_letter(lenient["extracted"], options, len(options)) == row["answer"]


def run(cases: list[dict], benchmark: str, judged: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Per source model: agreement counts; plus the list of official labels shown wrong.

    ``judged`` maps (benchmark, model, id) to the judge-mode result when a judge endpoint was given."""
    by_model: dict[str, Counter] = {}
    mislabelled = []
    for case in cases:
        c = by_model.setdefault(case["model"], Counter())
        strict = score_row(benchmark, case["row"], case["response"], "strict")
        lenient = score_row(benchmark, case["row"], case["response"], "lenient")
        if benchmark == "mathvision" and official_label_wrong(case, lenient):
            mislabelled.append({**case, "extracted": lenient["extracted"]})
            c["mislabelled"] += 1
            continue
        c["n"] += 1
        c["official"] += case["label"]
        for mode, res in (("strict", strict), ("lenient", lenient)):
            agree = bool(res["acc"]) == case["label"]
            c[f"{mode}_agree"] += agree
            c[f"{mode}_acc"] += res["acc"]
            if not agree:
                c[f"{mode}_{'fp' if res['acc'] else 'fn'}"] += 1
        if judged is not None:
            res = judged[(benchmark, case["model"], case["id"])]
            c["judge_agree"] += bool(res["acc"]) == case["label"]
    table = []
    for model, c in by_model.items():
        table.append({"benchmark": benchmark, "model": model, **c})
    return table, mislabelled


def _pct(a: int, n: int) -> str:
    return f"{100 * a / n:5.1f}" if n else "  -  "


def print_table(rows: list[dict], with_judge: bool) -> list[list[str]]:
    header = ["benchmark", "model", "n", "official acc", "strict agree", "lenient agree", "lenient fp/fn",
              "mislabelled"]
    if with_judge:
        header.insert(6, "judge agree")
    out = [header]
    for r in rows:
        line = [r["benchmark"], r["model"], str(r["n"]), _pct(r["official"], r["n"]), _pct(r["strict_agree"], r["n"]),
                _pct(r["lenient_agree"], r["n"]), f"{r.get('lenient_fp', 0)}/{r.get('lenient_fn', 0)}",
                str(r.get("mislabelled", 0))]
        if with_judge:
            line.insert(6, _pct(r.get("judge_agree", 0), r["n"]))
        out.append(line)
    widths = [max(len(x[i]) for x in out) for i in range(len(header))]
    for line in out:
        print("  ".join(s.ljust(w) for s, w in zip(line, widths)))
    return out


def write_png(table: list[list[str]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 0.5 + 0.26 * len(table)))
    ax.axis("off")
    t = ax.table(cellText=table[1:], colLabels=table[0], loc="center", cellLoc="left")
    t.auto_set_font_size(False)
    t.set_fontsize(8)
    t.auto_set_column_width(list(range(len(table[0]))))
    ax.set_title(f"Agreement with the official labels (%), goal lenient >= {100 * GOAL:.0f}%", fontsize=10)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mathvista", type=Path, nargs="*", default=[], help="MathVista results/<m>/output_<m>.json files")
    ap.add_argument("--mathv-outputs", type=Path, help="MATH-V outputs/ folder")
    ap.add_argument("--mathv-test", type=Path, help="MATH-V data/test.jsonl")
    ap.add_argument("--mathv-models", nargs="*", help="only these MATH-V output files (stem names)")
    ap.add_argument("--png", type=Path, help="also write the table as PNG")
    ap.add_argument("--show-disagreements", type=int, default=0, help="print up to N lenient disagreements")
    ap.add_argument("--judge-endpoint", help="OpenAI-compatible base URL of an extraction judge (adds a judge column)")
    ap.add_argument("--judge-model", default="gpt-4o-mini")
    ap.add_argument("--judge-cache", type=Path, default=Path("judge_cache.sqlite"))
    args = ap.parse_args(argv)
    if (args.mathv_outputs is None) != (args.mathv_test is None):
        ap.error("--mathv-outputs and --mathv-test go together")

    suites = []
    for p in args.mathvista:
        suites.append(("mathvista", mathvista_cases(p)))
    if args.mathv_outputs:
        suites.append(("mathvision", mathv_cases(args.mathv_outputs, args.mathv_test, args.mathv_models)))
    if not suites:
        ap.error("give --mathvista files and/or --mathv-outputs with --mathv-test")

    judged: dict | None = None
    if args.judge_endpoint:
        from verl_rise.evaluation.judge import judge_config, judge_scores

        cfg = judge_config(args.judge_endpoint, args.judge_model)
        judged = {}
        for benchmark, cases in suites:
            results = judge_scores(benchmark, [c["row"] for c in cases], [c["response"] for c in cases], cfg,
                                   args.judge_cache)
            for c, r in zip(cases, results, strict=True):
                judged[(benchmark, c["model"], c["id"])] = r

    start = time.perf_counter()
    rows, mislabelled, total = [], [], 0
    for benchmark, cases in suites:
        table, wrong = run(cases, benchmark, judged)
        rows += table
        mislabelled += wrong
        total += len(cases)
        if args.show_disagreements:
            shown = 0
            for case in cases:
                res = score_row(benchmark, case["row"], case["response"], "lenient")
                mislabel = benchmark == "mathvision" and official_label_wrong(case, res)
                if bool(res["acc"]) != case["label"] and not mislabel:
                    print(f"--- {benchmark} {case['model']} {case['id']} official={case['label']} ours={res['acc']} "
                          f"pred={res['pred']!r} extracted={res['extracted'][:80]!r} method={res['method']} "
                          f"answer={case['row']['answer']!r} model_answer={case.get('model_answer')!r}")
                    print("   ", case["response"][-300:].replace("\n", " | "))
                    shown += 1
                    if shown >= args.show_disagreements:
                        break
    seconds = time.perf_counter() - start
    table = print_table(rows, with_judge=judged is not None)
    for benchmark in dict.fromkeys(r["benchmark"] for r in rows):
        part = [r for r in rows if r["benchmark"] == benchmark]
        nb = sum(r["n"] for r in part)
        print(f"{benchmark}: n={nb} strict {_pct(sum(r['strict_agree'] for r in part), nb)}%  "
              f"lenient {_pct(sum(r['lenient_agree'] for r in part), nb)}%  "
              f"mislabelled (not counted) {sum(r.get('mislabelled', 0) for r in part)}")
    n = sum(r["n"] for r in rows)
    agree = {m: sum(r[f"{m}_agree"] for r in rows) for m in ("strict", "lenient")}
    print(f"all: n={n} strict {_pct(agree['strict'], n)}%  lenient {_pct(agree['lenient'], n)}%  "
          f"(goal lenient >= {100 * GOAL:.0f}%); {total} responses scored twice in {seconds:.1f}s")
    worst = min(rows, key=lambda r: r["lenient_agree"] / max(r["n"], 1))
    print(f"lowest lenient agreement: {worst['benchmark']} {worst['model']} "
          f"{_pct(worst['lenient_agree'], worst['n'])}%")
    if mislabelled:
        by_letter = sum(bool(re.fullmatch(r"\(?[A-E]\)?\.?", m["extracted"].strip())) for m in mislabelled)
        print(f"\n{len(mislabelled)} official labels shown wrong (the final answer names the right option: "
              f"{len(mislabelled) - by_letter} by the option's text, {by_letter} by its letter that MATH-V's string "
              "extraction garbled, e.g. '(D) 5/7' read as 'd5/7'); not counted above:")
        for m in mislabelled:
            print(f"  {m['model']} id={m['id']} answer={m['row']['answer']} "
                  f"official_model_answer={m.get('model_answer')!r} "
                  f"our extraction={m['extracted'][:60]!r}")
    if args.png:
        write_png(table, args.png)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
