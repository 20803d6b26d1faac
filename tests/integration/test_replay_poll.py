"""VERL_RISE_REPLAY_POLL_S: verl's replay buffer polls at the interval asked for, in the process that builds it,
and verl is untouched without it."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from tests.support.paths import REPO_ROOT
from verl_rise.verl_ext import replay_poll

CHECK = """
import sys
import verl
from verl_rise.verl_ext.registry import STATE
assert "replay_buffer_poll_interval" in STATE.registered, STATE.errors
assert "verl.trainer.ppo.v1.replay_buffer" not in sys.modules  # not imported by the plugin itself
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
ReplayBuffer.__init__.__wrapped__  # the wrap keeps verl's constructor
print(getattr(ReplayBuffer.__init__, "_verl_rise_poll", None))
"""


@pytest.mark.parametrize("value, expected", [("0.05", "0.05"), ("", "None")])
def test_the_interval_reaches_verls_replay_buffer_only_when_asked(value, expected):
    env = {**os.environ, replay_poll.ENV: value}
    proc = subprocess.run([sys.executable, "-c", CHECK], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    if expected == "None":  # unset: no wrap, so ``__wrapped__`` does not exist
        assert proc.returncode != 0 and "__wrapped__" in proc.stderr, proc.stderr[-2000:]
    else:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip().splitlines()[-1] == expected


def test_patch_sets_the_interval_after_verls_constructor_and_is_idempotent():
    class ReplayBuffer:
        def __init__(self, poll_interval: float = 2.0):
            self.poll_interval = poll_interval

    module = types.SimpleNamespace(ReplayBuffer=ReplayBuffer)
    replay_poll.patch_replay_buffer(module, 0.1)
    first = ReplayBuffer.__init__
    replay_poll.patch_replay_buffer(module, 0.5)
    assert ReplayBuffer.__init__ is first and ReplayBuffer().poll_interval == 0.1


@pytest.mark.parametrize("raw, error", [("fast", "not a number"), ("0", "must be > 0"), ("-1", "must be > 0")])
def test_a_bad_value_is_named(monkeypatch, raw, error):
    monkeypatch.setenv(replay_poll.ENV, raw)
    with pytest.raises(ValueError, match=error):
        replay_poll.poll_interval_from_env()
