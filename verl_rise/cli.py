"""``verl-rise``: the command-line entry point.

Sub-commands:
  demo     the README's main job: the whole Metis-RISE schedule on the CPU (tiny model, generated problems)
  run      the whole Metis-RISE schedule from a YAML config (verl_rise/schedule)
  score    score a JSONL/parquet file of responses with the RISE reward (or any verl reward function), or by a
           benchmark's own rules (--benchmark, --extract strict|lenient|judge)
  doctor   check that verl loads the plugin and the rewards work (same as ``python -m verl_rise.doctor``)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.writer import write_jsonl
from verl_rise.evaluation.benchmarks import BENCHMARKS
from verl_rise.evaluation.extract import EXTRACT_MODES
from verl_rise.scoring import read_rows, score_benchmark_rows, score_rows
from verl_rise.verl_ext.reward_loader import DEFAULT_REWARD_PATH, load_reward_fn


def _print_report(scored, report, show_rows: bool) -> None:
    if show_rows:
        print(f"{'id':<10} {'score':>5} {'acc':>4} {'fmt':>4}  {'pred':<22} reason")
        for row in scored:
            print(f"{str(row.get('id', '')):<10} {row['reward_score']:>5.2f} {row['reward_acc']:>4.0f} "
                  f"{row['reward_format']:>4.0f}  {str(row['reward_pred'])[:22]:<22} {row['reward_reason']}")
    means = ", ".join(f"mean {k.removeprefix('reward_')} {v:.3f}" for k, v in report.means.items())
    print(f"read {report.read} = scored {report.scored} + rejected {report.rejected}; {means}; "
          f"{report.scored / max(report.seconds, 1e-9):.0f} responses/s")


def cmd_score(args: argparse.Namespace) -> int:
    if args.benchmark:
        return _score_benchmark(args)
    reward_fn = load_reward_fn(args.reward_path, args.reward_name)
    scored, rejects, report = score_rows(read_rows(args.input), reward_fn, source=str(args.input))
    write_jsonl(args.out, scored)
    if rejects:
        write_jsonl(args.out.with_suffix(".rejects.jsonl"), rejects)
    _print_report(scored, report, show_rows=False)
    print(f"wrote {args.out}" + (f" and {args.out.with_suffix('.rejects.jsonl')}" if rejects else ""))
    return 0


def _score_benchmark(args: argparse.Namespace) -> int:
    judge = None
    if args.extract == "judge":
        if not args.judge_endpoint:
            raise SystemExit("--extract judge needs --judge-endpoint")
        from verl_rise.evaluation.judge import judge_config

        judge = (judge_config(args.judge_endpoint, args.judge_model), args.judge_cache)
    scored, rejects, report, metrics = score_benchmark_rows(
        read_rows(args.input), args.benchmark, args.extract, source=str(args.input), judge=judge)
    write_jsonl(args.out, scored)
    if rejects:
        write_jsonl(args.out.with_suffix(".rejects.jsonl"), rejects)
    print(f"read {report.read} = scored {report.scored} + rejected {report.rejected}; {args.benchmark} "
          f"({args.extract} extraction): " + ", ".join(
              f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
    print(f"wrote {args.out}" + (f" and {args.out.with_suffix('.rejects.jsonl')}" if rejects else ""))
    return 0


def cmd_doctor(_: argparse.Namespace) -> int:
    from verl_rise.doctor import main as doctor_main

    return doctor_main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verl-rise", description="Metis-RISE for verl.")
    sub = parser.add_subparsers(dest="command", required=True)

    from verl_rise.schedule.command import add_run_arguments, cmd_run
    from verl_rise.demo.cli import add_demo_arguments, cmd_demo

    demo = sub.add_parser("demo", help="the main job: the whole Metis-RISE schedule on the CPU with a tiny model")
    add_demo_arguments(demo)
    demo.set_defaults(func=cmd_demo)

    score = sub.add_parser("score", help="score a JSONL/parquet of responses")
    score.add_argument("input", type=Path, help="rows with response, ground_truth (or reward_model), options")
    score.add_argument("--out", type=Path, required=True, help="scored JSONL (rejects go beside it)")
    score.add_argument("--reward-path", default=DEFAULT_REWARD_PATH, help="pkg:// path or file, as in verl")
    score.add_argument("--reward-name", default="compute_score")
    score.add_argument("--benchmark", choices=BENCHMARKS,
                       help="score by this benchmark's own rules (rows carry its VLMEvalKit TSV columns and response)")
    score.add_argument("--extract", choices=EXTRACT_MODES, default="lenient",
                       help="answer extraction with --benchmark: strict (last \\boxed{}), lenient (free text), judge")
    score.add_argument("--judge-endpoint",
                       help="OpenAI-compatible base URL for --extract judge, e.g. http://host:8000/v1")
    score.add_argument("--judge-model", default="gpt-4o-mini")
    score.add_argument("--judge-cache", type=Path, default=Path("judge_cache.sqlite"),
                       help="SQLite cache of judge replies")
    score.set_defaults(func=cmd_score)

    run = sub.add_parser("run", help="the whole Metis-RISE schedule from a YAML config (RL -> sweep -> SFT -> eval)")
    add_run_arguments(run)
    run.set_defaults(func=cmd_run)

    doctor = sub.add_parser("doctor", help="check the installation")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
