"""Throughput and latency of the RISE reward against plain math-verify, on a realistic GRPO batch.

The batch: every MATH-Vision training problem in ../shared x 8 responses in the RISE format with 1-2 KB of
reasoning, the final answer in several right surface forms (plain, ``\\text{}``, units, degrees, ``x =``,
fractions, letters, option text), near-miss wrong answers, hedges and missing boxes. Each response
carries the label it was built with, so both scorers are also checked for agreement with the labels.

Scorers, measured in the same run, one response at a time on one thread:
  * ours: ``reward_fns.compute_score`` (format + accuracy), caches cleared before the run; the verifier
    subprocess is started before timing (a one-time cost per process, like math-verify's import);
  * math-verify (full): ``verify(parse("$gt$"), parse(response))``, the usual way to use it;
  * math-verify (last box): ``verify(parse("$gt$"), parse("\\boxed{<last box>}"))``.

Run:  python benchmarks/bench_rewards.py [--n 8] [--limit 400] [--plot latency.png]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "mathvision" / "train.jsonl"

_FILLER = [
    "First, I look carefully at the figure to identify every labelled part.",
    "The image shows {a} regions, and {b} of them are shaded, which matters for the count.",
    "Let me write down what is given: the side lengths are {a} and {b}, and the total is asked for.",
    "If we add {a} and {b} we get {c}, but we must check whether any piece is counted twice.",
    "Looking again at the diagram, the pattern repeats every {a} steps, so I can use that period.",
    "Each row contains {b} items; with {a} rows that gives {c} items before removing the overlap.",
    "I should double-check this with a different method to make sure the reasoning is consistent.",
    "Suppose the unknown is $x$. Then the condition in the question gives $x + {a} = {c}$.",
    "The angle at the top is ${a}^\\circ$, and the angles of a triangle add up to $180^\\circ$.",
    "Counting the small squares along the edge gives {b}, and along the other edge {a}.",
    "Hmm, wait. Let me reconsider the case where the figure is rotated, which changes nothing here.",
    "So the relation between the quantities is linear, and the ratio is $\\frac{{{a}}}{{{b}}}$.",
]


def _reasoning(rng: random.Random) -> str:
    target = rng.randint(1000, 2000)
    parts = []
    while sum(len(p) for p in parts) < target:
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        parts.append(rng.choice(_FILLER).format(a=a, b=b, c=a + b))
    return " ".join(parts)


def _right_forms(answer: str, options: list[str]) -> list[str]:
    if options:
        forms = [answer, f"({answer})", f"\\text{{{answer}}}", f"{answer}.", f"\\text{{({answer})}}"]
        text = options[ord(answer) - ord("A")]
        if text.strip("$ ") not in "ABCDE":
            forms += [f"{answer}. {text.strip('$')}", text.strip("$")]
        return forms
    forms = [answer, f"\\text{{{answer}}}", f"x = {answer}", f"{answer}.", f"{{{answer}}}"]
    try:
        value = float(answer)
    except ValueError:
        return forms
    if value == int(value):
        n = int(value)
        forms += [f"{n} \\text{{ cm}}", f"{n}^\\circ", f"\\frac{{{2 * n}}}{{2}}", f"{n}.0"]
        if n >= 1000:
            forms.append(f"{n:,}")
    return forms


def _wrong_forms(answer: str, options: list[str]) -> list[str]:
    if options:
        others = [c for c in "ABCDE" if c != answer]
        return others + [f"{others[0]}, {answer}"]
    try:
        value = float(answer)
    except ValueError:
        return [answer + "1"]
    n = int(value) if value == int(value) else value
    forms = [str(n + 1), str(n - 1), f"{n + 1}^\\circ"]
    return forms + ([str(n * 2), f"\\frac{{{n}}}{{3}}"] if n else [])


def build_batch(path: Path, n: int, limit: int, seed: int = 0) -> list[dict]:
    """``limit`` problems x ``n`` responses: dicts with ground_truth, options, response, label (1/0)."""
    rng = random.Random(seed)
    rows = [json.loads(line) for line in path.read_text().splitlines()[:limit]]
    batch = []
    for row in rows:
        answer, options = row["answer"], row["options"] or []
        for i in range(n):
            kind = ("right", "right", "right", "right", "wrong", "wrong", "wrong", "nobox")[i % 8]
            think = _reasoning(rng)
            if kind == "nobox":
                final, label = f"The answer is {answer}.", 0
            elif kind == "right":
                final, label = f"The answer is $\\boxed{{{rng.choice(_right_forms(answer, options))}}}$", 1
            else:
                final, label = f"The answer is $\\boxed{{{rng.choice(_wrong_forms(answer, options))}}}$", 0
            response = f"<think>{think}</think><answer>{final}</answer>"
            batch.append({"ground_truth": answer, "options": options, "response": response, "label": label})
    return batch


def _time_all(fn, batch: list[dict], desc: str) -> tuple[list[float], list[int]]:
    latencies, verdicts = [], []
    for item in tqdm(batch, desc=desc, unit="resp", leave=False, mininterval=2.0):
        start = time.perf_counter()
        verdict = fn(item)
        latencies.append(time.perf_counter() - start)
        verdicts.append(verdict)
    return latencies, verdicts


def _summary(name: str, latencies: list[float], verdicts: list[int], labels: list[int]) -> dict:
    total = sum(latencies)
    qs = statistics.quantiles(latencies, n=100)
    agree = sum(v == y for v, y in zip(verdicts, labels, strict=True))
    return {
        "scorer": name,
        "responses_per_s": len(latencies) / total,
        "p50_ms": qs[49] * 1e3,
        "p99_ms": qs[98] * 1e3,
        "agree_with_labels": agree,
        "n": len(labels),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MATH-Vision jsonl (default: ../shared train)")
    ap.add_argument("--n", type=int, default=8, help="responses per problem (GRPO group size)")
    ap.add_argument("--limit", type=int, default=400, help="number of problems")
    ap.add_argument("--plot", type=Path, default=None, help="write a latency histogram PNG here")
    args = ap.parse_args(argv)

    import logging

    logging.disable(logging.WARNING)  # math-verify logs each parse failure
    from math_verify import parse, verify

    from reward_fns import compute_score
    from reward_fns.accuracy import clear_cache
    from reward_fns.extract import last_boxed
    from reward_fns.verifier import default_pool

    batch = build_batch(args.data, args.n, args.limit)
    labels = [item["label"] for item in batch]
    print(f"batch: {len(batch)} responses ({args.limit} problems x {args.n}), "
          f"mean length {statistics.mean(len(b['response']) for b in batch):.0f} chars")

    def ours(item):
        r = compute_score("mathvision", item["response"], item["ground_truth"], {"options": item["options"]})
        return int(r["acc"])

    def mv_full(item):
        gold = parse(f"${item['ground_truth']}$")
        return int(bool(gold) and verify(gold, parse(item["response"])))

    def mv_last_box(item):
        gold = parse(f"${item['ground_truth']}$")
        box = last_boxed(item["response"], 1000).content
        return int(bool(gold) and box is not None and verify(gold, parse(f"\\boxed{{{box}}}")))

    clear_cache()
    assert default_pool().equivalent("1", "1", 60).value is True  # start the verifier before timing
    results = []
    for name, fn in (("ours (reward_fns)", ours), ("math-verify (full)", mv_full), ("math-verify (last box)", mv_last_box)):
        latencies, verdicts = _time_all(fn, batch, name)
        results.append((_summary(name, latencies, verdicts, labels), latencies))

    print(f"\n{'scorer':<24}{'resp/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'agree w/ labels':>18}")
    for s, _ in results:
        print(f"{s['scorer']:<24}{s['responses_per_s']:>10.0f}{s['p50_ms']:>10.3f}{s['p99_ms']:>10.2f}"
              f"{s['agree_with_labels']:>12}/{s['n']}")
    ours_rate = results[0][0]["responses_per_s"]
    for s, _ in results[1:]:
        print(f"speed-up of ours over {s['scorer']}: {ours_rate / s['responses_per_s']:.1f}x")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for s, latencies in results:
            ax.hist([max(x * 1e3, 1e-3) for x in latencies], bins=60, alpha=0.5, label=s["scorer"], log=True)
        ax.set_xscale("log")
        ax.set_xlabel("latency per response (ms, log)")
        ax.set_ylabel("responses")
        ax.set_title(f"Reward latency, {len(batch)} responses")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"latency histogram: {args.plot}")


if __name__ == "__main__":
    main()
