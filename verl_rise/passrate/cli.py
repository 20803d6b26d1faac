"""Command line: ``python -m verl_rise.passrate {sweep,export,ingest-dumps,summary} ...`` (``--help`` on each)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from verl_rise.passrate.buckets import BucketThresholds
from verl_rise.passrate.prompt_index import PromptIdCollision
from verl_rise.passrate.records import RecordError


def _threshold_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--solved-threshold", type=float, default=1.0,
                   help="pass rate at or above which a prompt is solved (default 1.0: all responses correct)")
    p.add_argument("--hard-threshold", type=float, default=0.0,
                   help="pass rate at or below which a prompt is hard (default 0.0: no response correct)")
    p.add_argument("--min-attempts", type=int, default=1,
                   help="attempts needed before a prompt is classified; fewer -> unseen (default 1)")
    p.add_argument("--basis", choices=["window", "overall"], default="window",
                   help="pass rate used: the prompt's latest window (default) or all its records")
    p.add_argument("--window-steps", type=int, default=None,
                   help="steps per window the stats were counted with (default: from the newest snapshot)")
    p.add_argument("--prompt-id-key", default="prompt_id", help="prompt id key in extra_info / the dumps")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verl_rise.passrate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sw = sub.add_parser(
        "sweep",
        help="sample k responses per prompt from an HF model with verl (main_ppo, validation only), ingest them",
        description="Runs python -m verl.trainer.main_ppo with trainer.val_only=true, val_kwargs.n=K, sampling at "
        "--temperature, the sweep reward and trainer.validation_data_dir=OUT/dumps, then ingests the dumps into "
        "OUT/stats for `export --stats OUT/stats`. Extra arguments are Hydra overrides for main_ppo.",
    )
    sw.add_argument("--model", required=True,
                    help="HF model directory (merge an RL checkpoint first: python -m verl.model_merger merge "
                         "--backend fsdp --local_dir CKPT/global_step_N/actor --target_dir DIR)")
    sw.add_argument("--data", required=True, help="RL parquet written by data_prep (the RL training prompts)")
    sw.add_argument("--out", required=True, help="output directory (dumps/, stats/, validation.log, sweep.json)")
    sw.add_argument("--k", type=int, default=8, help="responses per prompt (default 8)")
    sw.add_argument("--temperature", type=float, default=1.0, help="sampling temperature, > 0 (default 1.0)")
    sw.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0)")
    sw.add_argument("--recipe", default=None,
                    help="verl-rise profile to run (default rise_grpo_7b; rise_grpo_cpu_tiny on a CPU)")
    sw.add_argument("--config-path", default=None, help="recipes directory (default: the installed verl_rise.recipes)")
    sw.add_argument("--timeout", type=float, default=None, help="kill main_ppo after this many seconds")
    sw.add_argument("--quiet", action="store_true", help="no progress display")
    sw.add_argument("overrides", nargs="*", help="Hydra overrides for main_ppo, e.g. data.max_prompt_length=4096")

    ex = sub.add_parser("export", help="write hard/inconsistent/solved/unseen parquet, summary.json, histogram")
    ex.add_argument("--stats", required=True, help="tracker directory (RL run's passrate dir, or ingest-dumps --dir)")
    ex.add_argument("--dataset", required=True, help="the RL parquet written by data_prep")
    ex.add_argument("--out", required=True, help="output directory")
    ex.add_argument("--max-responses", type=int, default=0,
                    help="distinct correct responses kept per inconsistent prompt (default 0: all)")
    ex.add_argument("--quiet", action="store_true", help="no progress bars")
    _threshold_args(ex)

    ing = sub.add_parser("ingest-dumps", help="add verl validation JSONL dumps (the post-RL sweep) to a tracker dir")
    ing.add_argument("dumps", nargs="+", help="dump files or directories of <step>.jsonl (trainer.validation_data_dir)")
    ing.add_argument("--dir", required=True, help="tracker directory to add the records to")
    ing.add_argument("--window-steps", type=int, default=1)
    ing.add_argument("--prompt-id-key", default="prompt_id")
    ing.add_argument("--quiet", action="store_true")

    sm = sub.add_parser("summary", help="print bucket counts of a tracker directory as JSON")
    sm.add_argument("--dir", required=True)
    _threshold_args(sm)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 on bad input, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    from verl_rise.passrate.export import ExportError
    from verl_rise.validation_run import ValidationRunError

    try:
        if args.command == "sweep":
            from verl_rise.passrate.sweep import run_sweep
            from verl_rise.validation_run import DEFAULT_RECIPE

            doc = run_sweep(
                args.model, args.data, args.out, k=args.k, temperature=args.temperature, top_p=args.top_p,
                recipe=args.recipe or DEFAULT_RECIPE, config_path=args.config_path, overrides=args.overrides,
                timeout_s=args.timeout, progress=not args.quiet,
            )
            print(json.dumps({k: doc[k] for k in ("records", "prompts", "buckets", "stats_dir", "seconds")}, indent=2))
        elif args.command == "export":
            from verl_rise.passrate.export import export

            summary = export(
                args.stats,
                args.dataset,
                args.out,
                thresholds=BucketThresholds(args.solved_threshold, args.hard_threshold, args.min_attempts),
                basis=args.basis,
                window_steps=args.window_steps,
                prompt_id_key=args.prompt_id_key,
                max_responses=args.max_responses,
                progress=not args.quiet,
            )
            print(json.dumps({k: summary[k] for k in ("rows", "rows_per_bucket", "prompts_per_bucket")}, indent=2))
        elif args.command == "ingest-dumps":
            from verl_rise.passrate.dumps import ingest_dumps
            from verl_rise.passrate.recorder import PassRateConfig

            config = PassRateConfig(dir=args.dir, window_steps=args.window_steps, prompt_id_key=args.prompt_id_key)
            print(json.dumps(ingest_dumps(args.dumps, config, progress=not args.quiet), indent=2))
        else:
            from verl_rise.passrate.export import stats_window_steps
            from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder

            if not Path(args.dir).is_dir():
                raise FileNotFoundError(f"pass-rate tracker directory not found: {args.dir}")
            config = PassRateConfig(
                dir=args.dir,
                window_steps=args.window_steps or stats_window_steps(args.dir),
                basis=args.basis,
                solved_threshold=args.solved_threshold,
                hard_threshold=args.hard_threshold,
                min_attempts=args.min_attempts,
                histogram=False,
            )
            print(json.dumps(PassRateRecorder.open_readonly(config).summary(), indent=2))
    except (ExportError, RecordError, PromptIdCollision, FileNotFoundError, FileExistsError, ValueError,
            ValidationRunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
