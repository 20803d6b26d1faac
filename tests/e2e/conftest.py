"""The one CPU end-to-end run (tests/e2e/schedule_run.py), shared by every test in tests/e2e/."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.paths import MATHVISION, QWEN_PROCESSOR, require


@pytest.fixture(scope="session")
def rise_schedule():
    """The whole Metis-RISE schedule (``verl-rise run``) on real MATH-Vision input, on the CPU."""
    from tests.e2e.schedule_run import RiseSchedule, build_rise_schedule

    require(QWEN_PROCESSOR)
    require(MATHVISION)
    reuse = os.environ.get("VERL_RISE_E2E_REUSE")
    if reuse:
        yield RiseSchedule.load(Path(reuse))
        return
    workdir = Path(tempfile.mkdtemp(prefix="vr-sched-"))  # short path: Ray's unix sockets live below it
    try:
        yield build_rise_schedule(workdir)
    finally:
        if os.environ.get("VERL_RISE_E2E_KEEP") == "1":
            print(f"schedule work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
