"""Run a plan's stages: skip what is done, resume what was interrupted, rerun what changed.

Rules, per step (a stage is its steps in order):

* **fingerprint** = hash of the command (the interpreter path left out), the environment it adds, the content
  hashes of its inputs, the fingerprints of the upstream stages it reads and of the earlier steps it follows.
  A changed input file, override or recipe changes the fingerprint of that step, hence of its stage, hence of every
  step downstream: they all run again.
* **skip** when the manifest says ``completed`` with the same fingerprint and every output exists.
* **resume** when the last attempt had the same fingerprint but did not complete (killed, failed) and the step is
  resumable (RL / SFT: verl's ``resume_mode=auto`` continues from the newest checkpoint in the same directory).
* otherwise **start over**: the step's outputs are deleted first (a half-written model or a checkpoint of a run with
  other inputs must not be resumed).

``--from STAGE`` reruns STAGE and everything after it whatever their manifests say (earlier stages are used as they
are); ``--until STAGE`` stops after STAGE. A stage still running in another process (its recorded pid is alive) is
refused, and one run directory admits one runner at a time (an flock on ``<run_dir>/.verl-rise/lock``).

Each attempt logs to ``<stage>/logs/<step>.attempt-<n>.log`` and stays in the step's manifest history (fresh starts
included), numbered as its log. An attempt still recorded ``running`` whose process is gone (the runner was killed
with it) is marked ``killed`` when the next run starts. A rich progress line shows the stage, the elapsed time and
the log's last line (as text: a log line is never read as rich markup).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from verl_rise.processes import format_seconds, kill_process_tree, last_log_line, log_tail
from verl_rise.schedule import STAGES
from verl_rise.schedule.fingerprint import HashCache, stable_hash
from verl_rise.schedule.manifest import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    RUNNING,
    Attempt,
    StageManifest,
    StepRecord,
    mark_killed,
    now,
    read_manifest,
    write_manifest,
)
from verl_rise.schedule.plan import PlanError, Stage, Step

STATE_DIR = ".verl-rise"


class StageFailed(RuntimeError):
    """A step exited non-zero; the message names the stage, the step, the exit status and the log."""


class RunInterrupted(RuntimeError):
    """The runner was interrupted (SIGINT / SIGTERM); the running step was stopped and marked interrupted."""


@dataclass
class RunOptions:
    """How :func:`run_plan` behaves.

    Attributes:
        from_stage: rerun this stage and every later one, whatever their manifests say.
        until_stage: stop after this stage.
        poll_s: how often the progress line reads the step's log.
        stop_grace_s: after SIGTERM, how long a stopped step may take before SIGKILL.
    """

    from_stage: Optional[str] = None
    until_stage: Optional[str] = None
    poll_s: float = 1.0
    stop_grace_s: float = 20.0


def stage_window(names: list[str] | tuple[str, ...] = STAGES, from_stage: Optional[str] = None,
                 until_stage: Optional[str] = None) -> tuple[int, int]:
    """Indices ``[first, last]`` into the stage ``names`` selected by ``--from`` / ``--until``.

    Raises:
        ValueError: an unknown stage name, or ``--from`` after ``--until``.
    """
    names = list(names)
    for name in (from_stage, until_stage):
        if name is not None and name not in names:
            raise ValueError(f"unknown stage {name!r}; stages: {', '.join(names)}")
    first = names.index(from_stage) if from_stage else 0
    last = names.index(until_stage) if until_stage else len(names) - 1
    if first > last:
        raise ValueError(f"--from {from_stage} comes after --until {until_stage}")
    return first, last


def format_dry_run(stages: list[Stage], first: int = 0, last: Optional[int] = None) -> str:
    """Every command of the stages ``first..last`` (indices, inclusive) as a shell script with comments."""
    last = len(stages) - 1 if last is None else last
    lines = ["#!/usr/bin/env bash", "# verl-rise run --dry-run: the schedule's commands, in order.", "set -euo pipefail"]
    for stage in stages[first:last + 1]:
        lines.append("")
        lines.append(f"# === stage {stage.name}: {stage.description}")
        for step in stage.steps:
            if step.note:
                lines.append(f"# {step.note}")
            lines.append(f"mkdir -p {stage.directory} && cd {stage.directory}")
            lines.append(step.shell_command())
    return "\n".join(lines) + "\n"


def _interpreter_free(argv: list[str]) -> list[str]:
    # The interpreter's path is not part of what a step computes: another venv must not rerun everything.
    if argv and Path(argv[0]).name.startswith("python"):
        return ["python", *argv[1:]]
    return argv


def _pid_alive(pid: Optional[int], started: Optional[float]) -> bool:
    import psutil

    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # dead, waiting for a parent (or an init) to reap it
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.Error:
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


class _RunDirLock:
    """An exclusive flock on ``<run_dir>/.verl-rise/lock`` (not inherited by the steps' processes)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / STATE_DIR / "lock"
        self.fd: Optional[int] = None

    def __enter__(self) -> "_RunDirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise PlanError(f"another verl-rise run is using {self.path.parent.parent} (lock {self.path})") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


class Runner:
    """Executes stages with manifests (see the module docstring).

    Args:
        run_dir: the run directory (manifests live in ``<run_dir>/<stage>/``).
        stages: the plan (:func:`verl_rise.schedule.plan.build_plan`), in schedule order.
        options: :class:`RunOptions`.
        console: where progress and messages go.
    """

    def __init__(self, run_dir: Path, stages: list[Stage], options: RunOptions = RunOptions(),
                 console: Optional[Console] = None) -> None:
        self.run_dir = run_dir
        self.stages = stages
        self.options = options
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.hashes = HashCache(run_dir / STATE_DIR / "hashes.json")
        self.fingerprints: dict[str, str] = {}
        #: (stage, step, action) for every step considered: action is "skipped", "ran" or "resumed".
        self.actions: list[tuple[str, str, str]] = []

    # ---------------------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Run the selected stages.

        Raises:
            StageFailed: a step exited non-zero (later stages did not run).
            RunInterrupted: SIGINT/SIGTERM arrived; the running step was stopped and recorded as interrupted.
            PlanError: a stage could not start (a pre-step check failed, a stage is running elsewhere, ...).
        """
        first, last = stage_window([s.name for s in self.stages], self.options.from_stage,
                                   self.options.until_stage)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            with _RunDirLock(self.run_dir):
                for stage in self.stages:
                    self._mark_killed(stage)
                for index, stage in enumerate(self.stages):
                    if index < first:
                        self._adopt(stage)
                        continue
                    if index > last:
                        break
                    self._run_stage(stage, force=self.options.from_stage is not None)
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.hashes.save()

    # ---------------------------------------------------------------------------------------------------------
    def _mark_killed(self, stage: Stage) -> None:
        """Record as ``killed`` the attempts a killed runner left ``running`` (their processes are gone)."""
        try:
            manifest = read_manifest(stage.directory)
        except ValueError:
            return  # reported when the stage runs
        if manifest is None:
            return
        marked = mark_killed(manifest, _pid_alive)
        if marked:
            write_manifest(stage.directory, manifest)
            self.console.print(f"[yellow]note[/]: {escape(stage.name)}: {escape(', '.join(marked))} was killed "
                               f"without its end being recorded (process gone); marked killed")

    def _adopt(self, stage: Stage) -> None:
        """A stage before ``--from``: take its recorded fingerprint; its outputs are used as they are."""
        manifest = read_manifest(stage.directory)
        if manifest is None or manifest.status != COMPLETED:
            self.console.print(f"[yellow]note[/]: stage {stage.name} is before --from and has no completed manifest; "
                               f"its outputs in {escape(str(stage.directory))} are used as they are")
            self.fingerprints[stage.name] = f"external:{stage.name}"
        else:
            self.fingerprints[stage.name] = manifest.fingerprint

    def _step_fingerprint(self, step: Step, done: dict[str, str], inputs: dict[str, dict]) -> tuple[str, dict]:
        upstream = {}
        for name in step.upstream:
            if name not in self.fingerprints:
                raise PlanError(f"step {step.name} reads stage {name}, which has not run in this plan")
            upstream[name] = self.fingerprints[name]
        if step.after is None:
            after = dict(list(done.items())[-1:])
        else:
            after = {name: done[name] for name in step.after}
        fp = stable_hash({
            "argv": _interpreter_free(step.shell_argv()),
            "env": step.env,
            "inputs": {k: v["sha256"] for k, v in inputs.items()},
            "upstream": upstream,
            "after": after,
        })
        return fp, upstream

    def _run_stage(self, stage: Stage, force: bool) -> None:
        manifest = read_manifest(stage.directory) or StageManifest(stage=stage.name)
        manifest.started = manifest.started or now()
        done: dict[str, str] = {}
        for step in stage.steps:
            try:
                inputs = self.hashes.describe(step.inputs)
            except FileNotFoundError as exc:
                raise PlanError(f"stage {stage.name} step {step.name}: {exc}") from None
            self.hashes.save()
            fp, upstream = self._step_fingerprint(step, done, inputs)
            rec = manifest.steps.get(step.name)
            outputs_exist = all(p.exists() for p in step.outputs)
            if rec is not None and rec.fingerprint == fp and rec.status == COMPLETED and outputs_exist and not force:
                self.console.print(f"[dim]= {stage.name}/{step.name}: unchanged, skipped[/]")
                self.actions.append((stage.name, step.name, "skipped"))
                done[step.name] = fp
                continue
            if rec is not None and rec.status == RUNNING and rec.attempts and _pid_alive(
                    rec.attempts[-1].pid, rec.attempts[-1].pid_started):
                raise PlanError(f"stage {stage.name} step {step.name} is still running (pid {rec.attempts[-1].pid}); "
                                f"stop it or wait for it")
            resume = (rec is not None and rec.fingerprint == fp and rec.status != COMPLETED and step.resumable
                      and not force)
            if not resume:
                for path in step.outputs:
                    _remove(path)
            # Earlier attempts stay in the history, fresh start or not (each is marked resumed or not).
            attempts = rec.attempts if rec is not None else []
            if step.precheck is not None:
                step.precheck()
            argv = step.resolved_argv()
            number = _next_attempt(stage.directory / "logs", step.name, attempts)
            rec = StepRecord(name=step.name, fingerprint=fp, command=step.shell_command(number),
                             argv=argv, inputs=inputs, outputs=[str(p) for p in step.outputs], upstream=upstream,
                             attempts=attempts)
            manifest.steps[step.name] = rec
            manifest.status = RUNNING
            manifest.finished = None
            # Drop records of steps the plan no longer has (e.g. pass@k switched off).
            manifest.steps = {s.name: manifest.steps[s.name] for s in stage.steps if s.name in manifest.steps}
            self._execute(stage, step, rec, manifest, argv, number, resumed=resume)
            done[step.name] = fp
        fingerprint = stable_hash([done[s.name] for s in stage.steps])
        if manifest.status != COMPLETED or manifest.fingerprint != fingerprint:
            manifest.fingerprint = fingerprint
            manifest.status = COMPLETED
            manifest.finished = now()
            write_manifest(stage.directory, manifest)
        self.fingerprints[stage.name] = fingerprint

    # ---------------------------------------------------------------------------------------------------------
    def _execute(self, stage: Stage, step: Step, rec: StepRecord, manifest: StageManifest, argv: list[str],
                 number: int, resumed: bool) -> None:
        import psutil

        log_dir = stage.directory / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{step.name}.attempt-{number}.log"
        env = dict(os.environ)
        env.update({k: v.replace("{attempt}", str(number)) for k, v in step.env.items()})
        if "VERL_FILE_LOGGER_PATH" in step.env:  # verl opens the file without creating its directory
            Path(env["VERL_FILE_LOGGER_PATH"]).parent.mkdir(parents=True, exist_ok=True)
        verb = "resuming" if resumed else "running"
        self.console.print(f"[bold cyan]> {stage.name}/{step.name}[/]: {verb} (attempt {number}, log "
                           f"{escape(str(log))})")
        attempt = Attempt(number=number, started=now(), log=str(log), resumed=resumed)
        rec.attempts.append(attempt)
        rec.status = RUNNING
        with open(log, "w") as out:
            out.write(f"$ {rec.command}\n")
            out.flush()
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=stage.directory, env=env,
                                    start_new_session=True)
        attempt.pid = proc.pid
        try:
            attempt.pid_started = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            attempt.pid_started = None
        write_manifest(stage.directory, manifest)
        start = time.monotonic()
        try:
            with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[name]}[/]"), TimeElapsedColumn(),
                          TextColumn("{task.description}"), console=self.console, transient=True) as progress:
                task = progress.add_task(escape(last_log_line(log)), name=f"{stage.name}/{step.name}")
                while True:
                    try:
                        proc.wait(timeout=self.options.poll_s)
                        break
                    except subprocess.TimeoutExpired:
                        progress.update(task, description=escape(last_log_line(log)))
        except KeyboardInterrupt:
            self.console.print(f"[yellow]stopping {stage.name}/{step.name} (pid {proc.pid})[/]")
            kill_process_tree(proc, self.options.stop_grace_s)
            self._finish(attempt, rec, INTERRUPTED, proc.returncode, start)
            write_manifest(stage.directory, manifest)
            raise RunInterrupted(f"interrupted during {stage.name}/{step.name}; rerun the same command to "
                                 f"{'resume' if step.resumable else 'restart'} it") from None
        code = proc.returncode
        status = COMPLETED if code == 0 else FAILED
        missing = [str(p) for p in step.outputs if not p.exists()] if code == 0 else []
        if missing:
            status = FAILED
        self._finish(attempt, rec, status, code, start)
        write_manifest(stage.directory, manifest)
        self.actions.append((stage.name, step.name, "resumed" if resumed else "ran"))
        if status == FAILED:
            why = f"exit status {code}" if code != 0 else f"exit status 0 but outputs missing: {missing}"
            raise StageFailed(f"stage {stage.name} step {step.name} failed ({why}); log: {log}\n"
                              f"--- last lines of the log ---\n{log_tail(log)}")
        self.console.print(f"[green]✓ {stage.name}/{step.name}[/] {format_seconds(attempt.wall_s or 0)}")

    @staticmethod
    def _finish(attempt: Attempt, rec: StepRecord, status: str, code: Optional[int], start: float) -> None:
        attempt.finished = now()
        attempt.wall_s = time.monotonic() - start
        attempt.exit_status = code
        attempt.status = status
        rec.status = status


def _next_attempt(log_dir: Path, step: str, attempts: list[Attempt]) -> int:
    """The next attempt's number: after every recorded attempt and every log on disk (logs outlive manifests and
    fresh starts; an earlier attempt's log is never overwritten)."""
    logged = []
    for p in log_dir.glob(f"{step}.attempt-*.log"):
        try:
            logged.append(int(p.name.rsplit("attempt-", 1)[1].split(".")[0]))
        except ValueError:
            continue
    return max([a.number for a in attempts] + logged, default=0) + 1


def _raise_interrupt(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def run_plan(run_dir: Path, stages: list[Stage], options: RunOptions = RunOptions(),
             console: Optional[Console] = None) -> Runner:
    """Run ``stages`` in ``run_dir`` (see :class:`Runner`); returns the runner (its ``actions`` list what ran).

    Raises:
        StageFailed, RunInterrupted, PlanError: see :meth:`Runner.run`.
    """
    runner = Runner(run_dir, stages, options, console)
    runner.run()
    return runner
