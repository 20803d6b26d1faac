"""actor_rollout_ref.nccl_timeout reaches the process group of verl's RL worker (issue 13, row 7): verl 0.9.1's
engine workers start it with timeout_second=None, i.e. torch's 10-minute default, whatever the config says."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import types

import pytest

from tests.support.paths import REPO_ROOT
from verl_rise.verl_ext import nccl_timeout

# In a fresh process: the plugin's import hook patches verl's worker module when it is imported; the worker's
# init_model then starts the process group with the configured timeout before verl's own code runs (which fails
# here at once on the minimal config, after the group is started).
CHECK = """
import sys
from datetime import timedelta

import torch.distributed as dist
from omegaconf import OmegaConf

import verl
from verl_rise.verl_ext.registry import STATE
assert "nccl_timeout" in STATE.registered, STATE.errors
assert "verl.workers.engine_workers" not in sys.modules  # the plugin does not import it itself

seen = []
real = dist.init_process_group
def spy(*args, **kwargs):
    seen.append(kwargs.get("timeout"))
    return real(*args, **{**kwargs, "backend": "gloo"})
dist.init_process_group = spy

from verl.workers.engine_workers import ActorRolloutRefWorker
worker = object.__new__(ActorRolloutRefWorker)  # no Ray actor: only init_model's first lines run
worker.config = OmegaConf.create({"nccl_timeout": int(sys.argv[1])})
try:
    ActorRolloutRefWorker.init_model(worker)
except Exception as exc:  # verl's model build needs a full config
    print("verl raised", type(exc).__name__)
print("timeout", seen[0] if seen else None)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_configured_timeout_starts_the_rl_workers_process_group():
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    proc = subprocess.run([sys.executable, "-c", CHECK, "3600"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "timeout 1:00:00", proc.stdout


def test_the_wrap_keeps_verls_dispatch_attributes_and_is_idempotent():
    from verl.single_controller.base.decorator import MAGIC_ATTR

    def init_model(self):
        return "built"

    setattr(init_model, MAGIC_ATTR, {"dispatch_mode": "one_to_all"})
    cls = type("ActorRolloutRefWorker", (), {"init_model": init_model})
    module = types.SimpleNamespace(ActorRolloutRefWorker=cls)
    nccl_timeout.patch_engine_workers(module)
    first = cls.init_model
    nccl_timeout.patch_engine_workers(module)
    assert cls.init_model is first and getattr(first, MAGIC_ATTR) == {"dispatch_mode": "one_to_all"}
    worker = cls()
    worker.config = {"nccl_timeout": None}  # null: verl's own start-up, unchanged
    assert worker.init_model() == "built"


@pytest.mark.parametrize("value", [0, -5, 1.5, "600", True])
def test_a_bad_timeout_is_named(value):
    with pytest.raises(ValueError, match="actor_rollout_ref.nccl_timeout"):
        nccl_timeout.configured_timeout({"nccl_timeout": value})
