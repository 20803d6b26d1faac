"""``verl-rise run CONFIG``: pre-flight checks, then the schedule (or its commands with ``--dry-run``).

Exit status: 0 done (or dry run printed), 1 a stage failed or was interrupted, 2 the configuration or a pre-flight
check failed (nothing ran).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from data_prep.atomic import write_text_atomic
from verl_rise.schedule import STAGES
from verl_rise.schedule.config import ConfigError, RunConfig, dump_config, load_config
from verl_rise.schedule.plan import PlanError
from verl_rise.schedule.preflight import preflight_and_plan
from verl_rise.schedule.runner import RunInterrupted, RunOptions, StageFailed, format_dry_run, run_plan, stage_window

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` sub-command's options."""
    parser.add_argument("config", type=Path, help="run configuration (YAML; see verl_rise/schedule/config.py)")
    parser.add_argument("--dry-run", action="store_true", help="print every stage's command and exit")
    parser.add_argument("--from", dest="from_stage", choices=STAGES, help="rerun this stage and all later ones")
    parser.add_argument("--until", dest="until_stage", choices=STAGES, help="stop after this stage")


def execute(config: RunConfig, *, dry_run: bool = False, from_stage: str | None = None,
            until_stage: str | None = None, console: Console | None = None) -> int:
    """Pre-flight, then run (or print) the schedule of ``config``. Returns the exit status (module docstring)."""
    console = console or Console(stderr=True, soft_wrap=True)
    out = Console()
    try:
        first, last = stage_window(STAGES, from_stage, until_stage)
    except ValueError as exc:
        console.print(f"[red]error[/]: {escape(str(exc))}")
        return EXIT_CONFIG
    console.print("pre-flight checks (files, overrides, recipes composed against verl's config) ...")
    result, stages = preflight_and_plan(config, device_check=not dry_run)
    for warning in result.warnings:
        console.print(f"[yellow]warning[/]: {escape(warning)}")
    if not result.ok:
        for error in result.errors:
            console.print(f"[red]error[/]: {escape(error)}")
        console.print(f"[red]{len(result.errors)} pre-flight error(s): nothing was run[/]")
        return EXIT_CONFIG
    if dry_run:
        out.print(format_dry_run(stages, first, last), markup=False, highlight=False, soft_wrap=True)
        return EXIT_OK
    config.run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(config.run_dir / "config.resolved.yaml", dump_config(config))
    try:
        run_plan(config.run_dir, stages, RunOptions(from_stage=from_stage, until_stage=until_stage), console)
    except (StageFailed, RunInterrupted) as exc:  # the message quotes the step's log: text, not markup
        console.print(f"[red]{escape(str(exc))}[/]")
        return EXIT_FAILED
    except PlanError as exc:
        console.print(f"[red]error[/]: {escape(str(exc))}")
        return EXIT_FAILED
    except KeyboardInterrupt:  # between steps (hashing, checks): nothing was running
        console.print("[red]interrupted[/]")
        return EXIT_FAILED
    report = config.run_dir / "report" / "report.md"
    if last == len(STAGES) - 1 and report.is_file():
        from verl_rise.schedule.report import results_table

        console.print(f"\nreport: {escape(str(report))}")
        out.print(results_table(config.run_dir), markup=False, highlight=False)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Entry of ``verl-rise run``."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        console.print(f"[red]error[/]: {escape(str(exc))}")  # markup=False would print the [red] tags themselves
        return EXIT_CONFIG
    return execute(config, dry_run=args.dry_run, from_stage=args.from_stage, until_stage=args.until_stage,
                   console=console)
