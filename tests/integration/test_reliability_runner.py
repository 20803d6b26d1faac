"""The schedule runner after ``kill -9`` and with text that looks like rich markup (issue 14, item 15).

* A rerun after the runner and its step were killed keeps the killed attempt in the step's history, marked
  ``killed`` (found on the next run: its pid is gone), and numbers the new attempt as its log is named.
* Messages print as plain text: no raw ``[red]error[/]``, and a log line or error text holding ``[/...]`` is shown
  as it is instead of crashing the runner's progress line.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from tests.support.paths import REPO_ROOT
from verl_rise.schedule.manifest import COMPLETED, KILLED, RUNNING, read_manifest
from verl_rise.schedule.plan import Stage, Step
from verl_rise.schedule.runner import RunOptions, run_plan

# A step that marks that it started, sleeps as long as <root>/sleep.txt says (read at run time, so not part of the
# fingerprint), prints a line, then writes its output.
_SLEEPER = ("import pathlib, sys, time; out = pathlib.Path(sys.argv[1]); out.parent.mkdir(parents=True, "
            "exist_ok=True); (out.parent / 'started').write_text('1'); print(sys.argv[3], flush=True); "
            "time.sleep(float(pathlib.Path(sys.argv[2]).read_text())); out.write_text('done')")


def sleepy_plan(root: Path, line: str = "sampling") -> list[Stage]:
    """``first`` (writes a file at once), then ``sweep`` (one non-resumable sleeping step)."""
    first, sweep = root / "first", root / "sweep"
    return [
        Stage("first", first, [Step("write", [sys.executable, "-c", _SLEEPER, str(first / "out.txt"),
                                              str(root / "zero.txt"), "first"], outputs=[first / "out.txt"])],
              "quick"),
        Stage("sweep", sweep, [Step("sample", [sys.executable, "-c", _SLEEPER, str(sweep / "out.txt"),
                                               str(root / "sleep.txt"), line], outputs=[sweep / "out.txt"],
                                    upstream=["first"])], "slow, not resumable"),
    ]


def _quiet() -> Console:
    return Console(file=io.StringIO())


def _wait_gone(pid: int, timeout: float = 20) -> None:
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still alive")


def test_kill_9_during_a_stage_keeps_the_killed_attempt_and_numbers_the_next_as_its_log(tmp_path):
    (tmp_path / "zero.txt").write_text("0")
    (tmp_path / "sleep.txt").write_text("120")
    code = ("import sys; from pathlib import Path; from tests.integration.test_reliability_runner import sleepy_plan; "
            "from verl_rise.schedule.runner import RunOptions, run_plan; root = Path(sys.argv[1]); "
            "run_plan(root, sleepy_plan(root), RunOptions(poll_s=0.05))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    runner = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO_ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "sweep" / "started").exists():
        assert runner.poll() is None and time.monotonic() < deadline, "the sweep step did not start"
        time.sleep(0.05)
    rec = read_manifest(tmp_path / "sweep").steps["sample"]
    child = rec.attempts[-1].pid
    # kill -9 of the whole job (what a scheduler or the OOM killer does): runner and step, no cleanup.
    runner.kill()
    runner.wait()
    os.killpg(child, signal.SIGKILL)
    _wait_gone(child)
    assert read_manifest(tmp_path / "sweep").steps["sample"].status == RUNNING  # what the kill left behind

    # The next run finds the attempt dead even when it does not reach that stage.
    run_plan(tmp_path, sleepy_plan(tmp_path), RunOptions(poll_s=0.05, until_stage="first"), _quiet())
    manifest = read_manifest(tmp_path / "sweep")
    killed = manifest.steps["sample"].attempts[0]
    assert (manifest.status, manifest.steps["sample"].status, killed.status) == (KILLED, KILLED, KILLED)
    assert killed.exit_status is None and killed.finished is not None and killed.wall_s >= 0

    (tmp_path / "sleep.txt").write_text("0")
    run_plan(tmp_path, sleepy_plan(tmp_path), RunOptions(poll_s=0.05), _quiet())
    manifest = read_manifest(tmp_path / "sweep")
    rec = manifest.steps["sample"]
    assert [(a.number, a.status) for a in rec.attempts] == [(1, KILLED), (2, COMPLETED)]
    assert [Path(a.log).name for a in rec.attempts] == ["sample.attempt-1.log", "sample.attempt-2.log"]
    assert sorted(p.name for p in (tmp_path / "sweep" / "logs").iterdir()) == ["sample.attempt-1.log",
                                                                               "sample.attempt-2.log"]
    assert [a.resumed for a in rec.attempts] == [False, False]  # not resumable: the second one started over
    # The killed attempt's work was discarded (a fresh start): the stage's time is the completing attempt's.
    assert manifest.status == COMPLETED and manifest.wall_s == pytest.approx(rec.attempts[-1].wall_s)


def test_log_lines_and_errors_that_look_like_markup_are_printed_as_they_are(tmp_path):
    (tmp_path / "zero.txt").write_text("0")
    (tmp_path / "sleep.txt").write_text("0.5")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    run_plan(tmp_path, sleepy_plan(tmp_path, line="[/] [/usr/lib] closing tags"), RunOptions(poll_s=0.05), console)
    assert (tmp_path / "sweep" / "out.txt").read_text() == "done"


def test_config_errors_print_plain_text(tmp_path):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"run_dir": "r", "model": "m", "[bold]x": 1}))
    out = subprocess.run([sys.executable, "-m", "verl_rise.cli", "run", str(tmp_path / "run.yaml")],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "[red]" not in out.stderr and "[/]" not in out.stderr
    assert "[bold]x" in out.stderr  # the user's own text, brackets and all


def test_a_stage_failure_with_markup_in_its_log_prints_plain_text(tmp_path, monkeypatch):
    """``verl-rise run``'s report of a failed step quotes the log's last lines: they are text, not markup."""
    from verl_rise.schedule import command
    from verl_rise.schedule.preflight import PreflightResult

    (tmp_path / "zero.txt").write_text("0")
    (tmp_path / "sleep.txt").write_text("not a number")  # the step prints its line, then fails
    stages = sleepy_plan(tmp_path, line="[/] [rank0]: boom [/usr/lib]")
    monkeypatch.setattr(command, "preflight_and_plan", lambda config, device_check: (PreflightResult(), stages))
    monkeypatch.setattr(command, "dump_config", lambda config: "")
    out = io.StringIO()
    config = type("Config", (), {"run_dir": tmp_path})()
    assert command.execute(config, console=Console(file=out, width=300)) == command.EXIT_FAILED
    text = out.getvalue()
    assert "stage sweep step sample failed (exit status 1)" in text
    assert "[/] [rank0]: boom [/usr/lib]" in text and "[red]" not in text
