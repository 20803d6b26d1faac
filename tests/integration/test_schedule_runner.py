"""Runner mechanics on a toy plan of real processes (tests/support/schedule_toy.py): manifests, skip, rerun of what changed
and everything downstream, resume after a kill, --from / --until, failures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from tests.support.paths import REPO_ROOT
from tests.support.schedule_toy import toy_plan, write_inputs
from verl_rise.schedule.manifest import COMPLETED, FAILED, INTERRUPTED, KILLED, read_manifest
from verl_rise.schedule.plan import PlanError
from verl_rise.schedule.runner import RunOptions, StageFailed, format_dry_run, run_plan, stage_window


def _run(root: Path, **kw):
    return run_plan(root, toy_plan(root), RunOptions(poll_s=0.05, **kw), Console(file=open(os.devnull, "w")))


def _actions(runner) -> dict[str, str]:
    return {f"{stage}/{step}": action for stage, step, action in runner.actions}


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    return env


def test_first_run_writes_complete_manifests(tmp_path):
    write_inputs(tmp_path, "hello", steps=3)
    runner = _run(tmp_path)
    assert _actions(runner) == {"prep/copy": "ran", "train/count": "ran", "final/summarize": "ran",
                                "final/seal": "ran"}
    assert (tmp_path / "final" / "sealed.txt").read_text() == "hello x 3"
    m = read_manifest(tmp_path / "train")
    assert m.status == COMPLETED and len(m.fingerprint) == 64
    rec = m.steps["count"]
    assert rec.status == COMPLETED and rec.attempts[-1].exit_status == 0 and rec.attempts[-1].wall_s > 0
    # inputs with content hashes, outputs, the command as a shell line, upstream fingerprints
    [(path, info)] = rec.inputs.items()
    assert path == str(tmp_path / "steps.txt") and info["bytes"] == 1 and len(info["sha256"]) == 64
    assert rec.outputs == [str(tmp_path / "train" / "ckpt")]
    assert "schedule_toy.py count" in rec.command and "TOY_ATTEMPT=1" in rec.command
    assert rec.upstream == {"prep": read_manifest(tmp_path / "prep").fingerprint}
    log = Path(rec.attempts[-1].log)
    assert log.is_file() and "step 3/3" in log.read_text()
    # the raw file is JSON with the stage wall time
    raw = json.loads((tmp_path / "train" / "manifest.json").read_text())
    assert raw["wall_s"] == pytest.approx(rec.attempts[-1].wall_s)


def test_rerun_skips_everything_and_touches_nothing(tmp_path):
    write_inputs(tmp_path)
    _run(tmp_path)
    sealed = tmp_path / "final" / "sealed.txt"
    before = (sealed.stat().st_mtime_ns, (tmp_path / "train" / "manifest.json").read_text())
    runner = _run(tmp_path)
    assert set(_actions(runner).values()) == {"skipped"}
    assert (sealed.stat().st_mtime_ns, (tmp_path / "train" / "manifest.json").read_text()) == before


def test_same_content_rewritten_is_not_a_change(tmp_path):
    write_inputs(tmp_path, "hello")
    _run(tmp_path)
    time.sleep(0.01)
    (tmp_path / "input.txt").write_text("hello")  # new mtime and inode data, same bytes
    assert set(_actions(_run(tmp_path)).values()) == {"skipped"}


def test_changed_input_reruns_its_stage_and_everything_downstream(tmp_path):
    write_inputs(tmp_path, "hello", steps=2)
    _run(tmp_path)
    (tmp_path / "steps.txt").write_text("4")  # input of the middle stage only
    runner = _run(tmp_path)
    assert _actions(runner) == {"prep/copy": "skipped", "train/count": "ran", "final/summarize": "ran",
                                "final/seal": "ran"}
    assert (tmp_path / "final" / "sealed.txt").read_text() == "hello x 4"
    # a changed fingerprint starts over: the old checkpoints were removed, the counter started at 0
    assert (tmp_path / "train" / "ckpt" / "starts.log").read_text().count("start=0") == 1
    # the first run's log is kept beside the new one
    assert sorted(p.name for p in (tmp_path / "train" / "logs").iterdir()) == ["count.attempt-1.log",
                                                                              "count.attempt-2.log"]

    (tmp_path / "input.txt").write_text("bye")  # input of the first stage: everything reruns
    assert set(_actions(_run(tmp_path)).values()) == {"ran"}
    assert (tmp_path / "final" / "sealed.txt").read_text() == "bye x 4"


def test_deleted_output_reruns_that_step_and_its_dependents(tmp_path):
    write_inputs(tmp_path)
    _run(tmp_path)
    (tmp_path / "final" / "summary.txt").unlink()
    actions = _actions(_run(tmp_path))
    assert actions["final/summarize"] == "ran" and actions["prep/copy"] == "skipped"
    # seal's fingerprint follows summarize's, which is unchanged: seal stays skipped
    assert actions["final/seal"] == "skipped"


def test_from_forces_rerun_and_until_stops(tmp_path):
    write_inputs(tmp_path)
    runner = _run(tmp_path, until_stage="train")
    assert list(_actions(runner)) == ["prep/copy", "train/count"]
    assert read_manifest(tmp_path / "final") is None
    runner = _run(tmp_path, from_stage="train", until_stage="train")
    assert _actions(runner) == {"train/count": "ran"}  # completed, but forced; prep not even looked at
    runner = _run(tmp_path)
    assert _actions(runner)["train/count"] == "skipped" and _actions(runner)["final/seal"] == "ran"
    with pytest.raises(ValueError, match="comes after"):
        stage_window(["prep", "train", "final"], "final", "prep")
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        stage_window(["prep", "train", "final"], "nope", None)


def test_failure_is_recorded_stops_the_schedule_and_a_fix_reruns(tmp_path):
    write_inputs(tmp_path, "FAIL please")
    with pytest.raises(StageFailed, match=r"stage prep step copy failed \(exit status 3\)") as info:
        _run(tmp_path)
    assert "refusing input" in str(info.value)  # the log tail is in the message
    m = read_manifest(tmp_path / "prep")
    assert m.steps["copy"].status == FAILED and m.steps["copy"].attempts[-1].exit_status == 3
    assert read_manifest(tmp_path / "train") is None
    (tmp_path / "input.txt").write_text("fixed")
    assert set(_actions(_run(tmp_path)).values()) == {"ran"}


def test_precheck_stops_before_the_command(tmp_path):
    write_inputs(tmp_path)
    plan = toy_plan(tmp_path)

    def refuse():
        raise PlanError("no expert source")

    plan[1].steps[0].precheck = refuse
    with pytest.raises(PlanError, match="no expert source"):
        run_plan(tmp_path, plan, RunOptions(poll_s=0.05), Console(file=open(os.devnull, "w")))
    assert not (tmp_path / "train" / "ckpt").exists()


def _start_runner(root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.support.schedule_toy", "run", str(root)], cwd=REPO_ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.05)


def test_sigterm_stops_the_step_and_a_rerun_resumes_from_its_checkpoint(tmp_path):
    write_inputs(tmp_path, steps=6, sleep=0.4)
    proc = _start_runner(tmp_path)
    _wait_for(tmp_path / "train" / "ckpt" / "step_2.txt")
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 1 and "interrupted during train/count" in out
    rec = read_manifest(tmp_path / "train").steps["count"]
    assert rec.status == INTERRUPTED and rec.attempts[-1].status == INTERRUPTED
    # the counter process itself is gone (its tree was stopped)
    pid = rec.attempts[-1].pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    done_before = len(list((tmp_path / "train" / "ckpt").glob("step_*.txt")))
    assert 2 <= done_before < 6

    runner = _run(tmp_path)
    assert _actions(runner)["train/count"] == "resumed"
    starts = (tmp_path / "train" / "ckpt" / "starts.log").read_text().splitlines()
    assert starts[0].startswith("attempt=1 start=0")
    assert starts[1].startswith(f"attempt=2 start={done_before}")  # continued, not restarted
    rec = read_manifest(tmp_path / "train").steps["count"]
    assert [a.status for a in rec.attempts] == [INTERRUPTED, COMPLETED]
    assert (tmp_path / "final" / "sealed.txt").read_text() == "hello x 6"


def test_killed_runner_leaves_a_running_step_that_is_refused_then_resumed(tmp_path):
    write_inputs(tmp_path, steps=8, sleep=0.3)
    proc = _start_runner(tmp_path)
    _wait_for(tmp_path / "train" / "ckpt" / "step_1.txt")
    proc.kill()  # SIGKILL: no cleanup, the step's own session keeps running
    proc.wait()
    rec = read_manifest(tmp_path / "train").steps["count"]
    child = rec.attempts[-1].pid
    try:
        with pytest.raises(PlanError, match=f"still running \\(pid {child}\\)"):
            _run(tmp_path)
    finally:
        os.killpg(child, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
            time.sleep(0.05)
        except ProcessLookupError:
            break
    runner = _run(tmp_path)
    assert _actions(runner)["train/count"] == "resumed"
    assert (tmp_path / "final" / "sealed.txt").read_text() == "hello x 8"
    # Both attempts are in the history, the killed one marked so, each numbered as its log.
    rec = read_manifest(tmp_path / "train").steps["count"]
    assert [(a.number, a.status, a.resumed) for a in rec.attempts] == [(1, KILLED, False), (2, COMPLETED, True)]
    assert [Path(a.log).name for a in rec.attempts] == ["count.attempt-1.log", "count.attempt-2.log"]


def test_one_runner_per_run_directory(tmp_path):
    write_inputs(tmp_path, steps=4, sleep=0.5)
    proc = _start_runner(tmp_path)
    try:
        _wait_for(tmp_path / "train" / "ckpt" / "step_1.txt")
        with pytest.raises(PlanError, match="another verl-rise run is using"):
            _run(tmp_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_dry_run_prints_each_step_in_order_without_running(tmp_path):
    write_inputs(tmp_path)
    text = format_dry_run(toy_plan(tmp_path))
    assert text.index("# === stage prep") < text.index("# === stage train") < text.index("# === stage final")
    assert "TOY_ATTEMPT=1" in text and text.count("schedule_toy.py") == 4
    assert not (tmp_path / "prep").exists()
    assert "stage prep" not in format_dry_run(toy_plan(tmp_path), 1, 1)
