"""verl_rise.verl_ext.cpu_platform: selected only by VERL_PLATFORM=cpu, patches only then, and fails loudly.

Platform selection happens once per process at ``import verl``, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import REPO_ROOT

PROBE = r"""
import json, os
import verl
import verl.utils.distributed as d
import verl.utils.fsdp_utils as f
from verl.plugin.platform import get_platform
from verl_rise.verl_ext.registry import STATE
p = get_platform()
out = {
    "device": p.device_name, "backend": p.communication_backend_name(), "platform": type(p).__name__,
    "patched_pg": getattr(d.initialize_global_process_group_ray, "_verl_rise_cpu", False),
    "patched_torchrun_pg": getattr(d.initialize_global_process_group, "_verl_rise_cpu", False),
    "pin_memory": f.CPUOffloadPolicy().pin_memory,
    "engine_device": os.environ.get("VERL_ENGINE_DEVICE"),
    "errors": STATE.errors,
}
if os.environ.get("PROBE_DIST"):
    import torch, torch.distributed as dist
    from verl.utils.distributed import initialize_global_process_group_ray
    from verl.workers.engine import EngineRegistry
    initialize_global_process_group_ray()
    t = torch.ones(3)
    dist.all_reduce(t)
    out.update(dist_backend=dist.get_backend(), reduced=t.tolist(),
               engine=EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__,
               current_device=str(p.current_device()), mem=p.device_module.mem_get_info()[1] > 0)
    dist.destroy_process_group()
if os.environ.get("PROBE_TORCHRUN"):
    # What verl's SFT trainer runs under torchrun (sft_trainer.py run_sft).
    import torch, torch.distributed as dist
    from verl.utils.distributed import initialize_global_process_group
    init_before = dist.init_process_group
    ranks = initialize_global_process_group(timeout_second=60)
    t = torch.arange(3.0)
    dist.all_reduce(t)
    out.update(torchrun_ranks=list(ranks), torchrun_backend=dist.get_backend(), torchrun_reduced=t.tolist(),
               init_restored=dist.init_process_group is init_before)
    dist.destroy_process_group()
print("PROBE" + json.dumps(out))
"""


def _probe(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=240)
    line = [x for x in proc.stdout.splitlines() if x.startswith("PROBE")]
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    return json.loads(line[-1][len("PROBE"):])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cpu_platform_when_selected_runs_gloo_collectives():
    out = _probe({"VERL_PLATFORM": "cpu", "PROBE_DIST": "1", "RANK": "0", "WORLD_SIZE": "1",
                  "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())})
    assert out["errors"] == {}
    assert (out["platform"], out["device"], out["backend"]) == ("PlatformCPU", "cpu", "gloo")
    # verl's own initialize_global_process_group_ray would ask torch for "cpu:gloo,cpu:gloo" and fail.
    assert out["patched_pg"] and out["dist_backend"] == "gloo" and out["reduced"] == [1.0, 1.0, 1.0]
    assert out["pin_memory"] is False
    assert out["engine_device"] == "cuda" and out["engine"] == "FSDPEngineWithLMHead"
    assert out["current_device"] == "cpu" and out["mem"]


def test_cpu_platform_makes_the_torchrun_process_group_gloo():
    """The SFT trainer's torchrun path: verl would ask torch for "cpu:gloo,cpu:gloo" ("Duplicate device type cpu")."""
    out = _probe({"VERL_PLATFORM": "cpu", "PROBE_TORCHRUN": "1", "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                  "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())})
    assert out["errors"] == {} and out["patched_torchrun_pg"] is True
    assert out["torchrun_ranks"] == [0, 0, 1]
    assert out["torchrun_backend"] == "gloo" and out["torchrun_reduced"] == [0.0, 1.0, 2.0]
    # The backend rewrite is scoped to verl's call: torch's own function is back in place afterwards.
    assert out["init_restored"] is True


def test_not_selected_leaves_verl_untouched():
    out = _probe({})
    assert out["errors"] == {}
    assert out["platform"] != "PlatformCPU" and out["device"] != "cpu"
    assert out["patched_pg"] is False and out["pin_memory"] is True and out["engine_device"] is None
    assert out["patched_torchrun_pg"] is False


def test_torchrun_patch_refuses_a_changed_verl_function(monkeypatch):
    """If verl stops building its backend string the 0.9.1 way, the patch says so instead of wrapping blindly."""
    import verl.utils.distributed as dist_utils

    from verl_rise.verl_ext import cpu_platform

    def initialize_global_process_group(timeout_second=36000):  # a stand-in for a rewritten verl function
        return 0, 0, 1

    monkeypatch.setattr(dist_utils, "initialize_global_process_group", initialize_global_process_group)
    with pytest.raises(cpu_platform.CPUPlatformPatchError, match="no longer builds its backend"):
        cpu_platform._patch_torchrun_process_group_backend()
    monkeypatch.delattr(dist_utils, "initialize_global_process_group")
    with pytest.raises(cpu_platform.CPUPlatformPatchError, match="verl moved it"):
        cpu_platform._patch_torchrun_process_group_backend()


def test_newer_verl_is_refused_with_a_clear_message(monkeypatch):
    import verl

    from verl_rise.verl_ext import cpu_platform

    monkeypatch.setattr(verl, "__version__", "0.10.0")
    with pytest.raises(cpu_platform.CPUPlatformPatchError, match="verl 0.10.0 is installed"):
        cpu_platform._check_verl_version()


def test_moved_internal_is_reported_and_the_platform_refuses_to_start(monkeypatch):
    import types

    from verl_rise.verl_ext import cpu_platform

    with pytest.raises(cpu_platform.CPUPlatformPatchError, match="verl moved it"):
        cpu_platform._require_attr(types.ModuleType("verl.utils.distributed"), "initialize_global_process_group_ray",
                                   "verl/utils/distributed.py:83")
    monkeypatch.setattr(cpu_platform, "_ACTIVATION_ERROR", "CPUPlatformPatchError: something moved")
    with pytest.raises(RuntimeError, match="cannot start: CPUPlatformPatchError: something moved"):
        cpu_platform._platform_class()()


def test_never_auto_detected():
    from verl_rise.verl_ext import cpu_platform

    assert cpu_platform._platform_class()().is_platform_available(use_smi_check=True) is False
