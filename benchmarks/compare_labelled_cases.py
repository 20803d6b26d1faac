"""Ours vs plain math-verify on the labelled reward cases (benchmarks/reward_cases), per category.

Plain math-verify here is its usual use: ``verify(parse("$ground_truth$"), parse(response))``, with option
letters compared as math-verify compares them. Prints, per category, how many labels each one matches,
and lists the cases where math-verify is right and we are wrong (the goal: none).

Run:  python benchmarks/compare_labelled_cases.py [--show-mv-misses]
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--show-mv-misses", action="store_true", help="list the cases plain math-verify gets wrong")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    from math_verify import parse, verify

    from reward_fns import score_accuracy
    from benchmarks.reward_cases import load_cases

    ours_ok, mv_ok, total = collections.Counter(), collections.Counter(), collections.Counter()
    mv_only, mv_misses = [], []
    for case in load_cases():
        cat, label = case["category"], case["expected_acc"]
        ours = score_accuracy(case["response"], case["ground_truth"], case["options"], timeout_s=10).acc
        try:
            gold = parse(f"${case['ground_truth']}$")
            mv = float(bool(gold) and verify(gold, parse(case["response"])))
        except Exception:  # noqa: BLE001 - math-verify raising counts as a 0 verdict
            mv = 0.0
        total[cat] += 1
        ours_ok[cat] += ours == label
        mv_ok[cat] += mv == label
        if mv == label and ours != label:
            mv_only.append(case["id"])
        if mv != label:
            mv_misses.append((case["id"], label, case["note"][:90]))
    print(f"{'category':<15}{'cases':>7}{'ours':>8}{'math-verify':>13}")
    for cat in sorted(total):
        print(f"{cat:<15}{total[cat]:>7}{ours_ok[cat]:>8}{mv_ok[cat]:>13}")
    print(f"{'all':<15}{sum(total.values()):>7}{sum(ours_ok.values()):>8}{sum(mv_ok.values()):>13}")
    print(f"cases math-verify gets right and we get wrong: {len(mv_only)} {mv_only}")
    if args.show_mv_misses:
        for case_id, label, note in mv_misses:
            print(f"  math-verify wrong on {case_id} (label {label}): {note}")


if __name__ == "__main__":
    main()
