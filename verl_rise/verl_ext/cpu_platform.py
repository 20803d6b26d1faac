"""A CPU device platform for verl 0.9.x, so that verl's trainers run (slowly) on a machine without an accelerator.

What it is for: CI and development on laptops / CPU runners. It is not meant to be fast.

Selection. verl resolves its platform once per process from the env var ``VERL_PLATFORM``
(verl/plugin/platform/platform_manager.py:86-113). This platform is registered under the name ``cpu`` and is
used only when ``VERL_PLATFORM=cpu``; auto-detection never picks it (:meth:`PlatformCPU.is_platform_available`
is always False), so a GPU user's processes keep verl's own nvidia/huawei/amd detection. The ``cpu_tiny`` recipe
sets ``VERL_PLATFORM=cpu`` for every Ray process through ``ray_kwargs.ray_init.runtime_env.env_vars``; the
driver process that only calls ``ray.init`` keeps verl's fallback platform, which is harmless there.

What else a CPU needs, beyond the platform class (each measured in ../shared/docs/verl-0.9.1-notes.md), is done
by :func:`activate` in processes where the CPU platform is selected, and only there:

1. verl builds the process-group backend as ``f"cpu:gloo,{device}:{backend}"``
   (verl/utils/distributed.py:89), which for device ``cpu`` is the invalid ``"cpu:gloo,cpu:gloo"``
   (torch raises "Duplicate device type cpu"). :func:`initialize_global_process_group_ray` (Ray workers of
   main_ppo) is wrapped so that its default backend becomes ``"gloo"``. The torchrun variant
   ``initialize_global_process_group`` (verl/utils/distributed.py:61, called by the SFT trainer's ``run_sft``)
   takes no backend argument, so while it runs, ``torch.distributed.init_process_group`` receives ``"gloo"``
   in place of exactly that invalid string; everything else the function does (timeout, init method, rank
   env vars) is verl's own.
2. The reference policy's forward-only FSDP2 engine hard-codes ``CPUOffloadPolicy(pin_memory=True)``
   (verl/workers/engine/fsdp/transformer_impl.py:462); pinning needs an accelerator ("Cannot access
   accelerator device when none is available"). The name ``CPUOffloadPolicy`` that transformer_impl imports
   from verl/utils/fsdp_utils.py:43 is replaced by a subclass that never pins.
3. verl's FSDP engines are registered for device ``cuda``/``npu`` only
   (verl/workers/engine/fsdp/transformer_impl.py:1143); they are device-agnostic torch code, so the env var
   verl reads to override the engine lookup device, ``VERL_ENGINE_DEVICE`` (verl/workers/engine/base.py:405),
   defaults to ``cuda`` here.

Every patch checks that verl is a 0.9.x release and that the patched name is where 0.9.1 has it; otherwise it
raises :class:`CPUPlatformPatchError`, and the platform refuses to start with that message (verl's plugin loader
would otherwise swallow the error).
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from types import ModuleType, SimpleNamespace
from typing import Any, Optional

from verl_rise.verl_ext.compat import VerlCompatError, require_attr, require_supported_verl

PLATFORM_NAME = "cpu"

# Set when activate() failed in a process that selected this platform; PlatformCPU() then raises it.
_ACTIVATION_ERROR: Optional[str] = None


class CPUPlatformPatchError(VerlCompatError):
    """A verl internal that the CPU platform has to adjust is not where verl 0.9.1 has it."""


def cpu_platform_selected() -> bool:
    """True when this process asked verl for the CPU platform (``VERL_PLATFORM=cpu``)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


def _check_verl_version() -> str:
    try:
        return require_supported_verl("CPU platform")
    except VerlCompatError as exc:
        raise CPUPlatformPatchError(str(exc)) from None


def _require_attr(module: ModuleType, name: str, where: str) -> Any:
    try:
        return require_attr(module, name, where, "verl_rise/verl_ext/cpu_platform.py")
    except VerlCompatError as exc:
        raise CPUPlatformPatchError(f"verl-rise CPU platform: {exc}") from None


def _patch_process_group_backend() -> None:
    """Make ``initialize_global_process_group_ray`` default to the plain ``gloo`` backend."""
    import verl.utils.distributed as dist_utils

    original = _require_attr(dist_utils, "initialize_global_process_group_ray", "verl/utils/distributed.py:83")
    if getattr(original, "_verl_rise_cpu", False):
        return

    @functools.wraps(original)
    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        # verl/utils/distributed.py:89 would build "cpu:gloo,cpu:gloo" for device cpu.
        return original(timeout_second=timeout_second, backend=backend or "gloo")

    initialize_global_process_group_ray._verl_rise_cpu = True
    dist_utils.initialize_global_process_group_ray = initialize_global_process_group_ray
    # Modules that imported the name before us keep the old binding: rebind it there too.
    import sys

    for mod_name in ("verl.workers.engine_workers", "verl.checkpoint_engine.base"):
        mod = sys.modules.get(mod_name)
        if mod is not None and getattr(mod, "initialize_global_process_group_ray", None) is original:
            mod.initialize_global_process_group_ray = initialize_global_process_group_ray


#: What verl 0.9.1 builds as the process-group backend for device ``cpu`` (verl/utils/distributed.py:62 and :89).
INVALID_CPU_BACKEND = "cpu:gloo,cpu:gloo"


@contextmanager
def _gloo_for_invalid_cpu_backend():
    """While active, ``torch.distributed.init_process_group(backend="cpu:gloo,cpu:gloo")`` runs with ``"gloo"``."""
    import torch.distributed

    original = torch.distributed.init_process_group

    @functools.wraps(original)
    def init_process_group(*args, **kwargs):
        if kwargs.get("backend") == INVALID_CPU_BACKEND:
            kwargs["backend"] = "gloo"
        elif args and args[0] == INVALID_CPU_BACKEND:
            args = ("gloo", *args[1:])
        return original(*args, **kwargs)

    torch.distributed.init_process_group = init_process_group
    try:
        yield
    finally:
        torch.distributed.init_process_group = original


def _patch_torchrun_process_group_backend() -> None:
    """Make the torchrun ``initialize_global_process_group`` (SFT trainer) start a plain ``gloo`` group."""
    import inspect

    import verl.utils.distributed as dist_utils

    original = _require_attr(dist_utils, "initialize_global_process_group", "verl/utils/distributed.py:61")
    if getattr(original, "_verl_rise_cpu", False):
        return
    # The rewrite relies on verl calling torch.distributed.init_process_group itself with the backend string
    # built from the device name; check that the 0.9.1 body is still what is wrapped.
    try:
        source = inspect.getsource(original)
    except (OSError, TypeError) as exc:
        raise CPUPlatformPatchError(f"cannot read verl.utils.distributed.initialize_global_process_group: {exc}")
    if "torch.distributed.init_process_group(" not in source or 'f"cpu:gloo,{get_device_name()}' not in source:
        raise CPUPlatformPatchError(
            "verl.utils.distributed.initialize_global_process_group no longer builds its backend as in verl 0.9.1 "
            '(f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}" passed to torch.distributed.init_process_group); '
            "update verl_rise/verl_ext/cpu_platform.py"
        )

    @functools.wraps(original)
    def initialize_global_process_group(*args, **kwargs):
        with _gloo_for_invalid_cpu_backend():
            return original(*args, **kwargs)

    initialize_global_process_group._verl_rise_cpu = True
    dist_utils.initialize_global_process_group = initialize_global_process_group


def _patch_cpu_offload_policy() -> None:
    """Replace the ``CPUOffloadPolicy`` name verl's FSDP engine uses with a subclass that never pins memory."""
    import sys
    from dataclasses import dataclass

    import verl.utils.fsdp_utils as fsdp_utils

    original = _require_attr(fsdp_utils, "CPUOffloadPolicy", "verl/utils/fsdp_utils.py:43")
    if original is None:
        raise CPUPlatformPatchError("verl.utils.fsdp_utils.CPUOffloadPolicy is None: torch lacks FSDP2")
    if getattr(original, "_verl_rise_cpu", False):
        return

    @dataclass
    class UnpinnedCPUOffloadPolicy(original):
        """``CPUOffloadPolicy`` with ``pin_memory`` forced to False (pinning needs an accelerator)."""

        _verl_rise_cpu = True

        def __post_init__(self):
            self.pin_memory = False

    fsdp_utils.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy
    impl = sys.modules.get("verl.workers.engine.fsdp.transformer_impl")
    if impl is not None:
        _require_attr(impl, "CPUOffloadPolicy", "verl/workers/engine/fsdp/transformer_impl.py:43")
        impl.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy


def activate() -> None:
    """Install what a CPU run needs in this process (see the module docstring). Idempotent.

    Call only where ``VERL_PLATFORM=cpu``. Raises :class:`CPUPlatformPatchError` when verl is not 0.9.x or a
    patched name moved; the message is also stored so that constructing :class:`PlatformCPU` re-raises it.
    """
    global _ACTIVATION_ERROR
    try:
        _check_verl_version()
        _patch_process_group_backend()
        _patch_torchrun_process_group_backend()
        _patch_cpu_offload_policy()
        os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
    except Exception as exc:
        _ACTIVATION_ERROR = f"{type(exc).__name__}: {exc}"
        raise


def _mem_get_info() -> tuple[int, int]:
    import psutil

    vm = psutil.virtual_memory()
    return int(vm.available), int(vm.total)


def _make_device_module() -> SimpleNamespace:
    """A stand-in for ``torch.cuda`` with the calls verl makes on ``get_torch_device()``.

    Stream/Event/synchronize come from ``torch.cpu``; the caching-allocator calls (empty_cache, memory stats,
    ipc_collect) have nothing to act on for host memory and do nothing; RNG state is the global CPU generator.
    """
    import torch

    def _zero(*args, **kwargs) -> int:
        return 0

    def _noop(*args, **kwargs) -> None:
        return None

    return SimpleNamespace(
        __name__="verl_rise.verl_ext.cpu_platform.device_module",
        is_available=lambda: True,
        device_count=lambda: 1,
        current_device=lambda: torch.device("cpu"),
        set_device=_noop,
        synchronize=_noop,
        get_device_name=lambda *a, **k: "cpu",
        Stream=torch.cpu.Stream,
        Event=torch.cpu.Event,
        current_stream=torch.cpu.current_stream,
        stream=torch.cpu.stream,
        manual_seed=torch.manual_seed,
        manual_seed_all=torch.manual_seed,
        get_rng_state=lambda *a, **k: torch.get_rng_state(),
        set_rng_state=lambda state, *a, **k: torch.set_rng_state(state),
        empty_cache=_noop,
        ipc_collect=_noop,
        set_per_process_memory_fraction=_noop,
        reset_peak_memory_stats=_noop,
        mem_get_info=lambda *a, **k: _mem_get_info(),
        memory_allocated=_zero,
        max_memory_allocated=_zero,
        memory_reserved=_zero,
        max_memory_reserved=_zero,
    )


def _platform_class():
    """Build and return the ``PlatformBase`` subclass (verl imported lazily: the plugin loads inside ``import verl``)."""
    import torch
    from verl.plugin.platform.platform_base import PlatformBase

    class PlatformCPU(PlatformBase):
        """verl platform for host CPUs: device ``cpu``, gloo collectives, one logical Ray ``GPU`` per worker.

        Ray resource: verl's resource pools ask Ray for accelerators by name; a CPU run declares logical GPUs
        (``ray_init.num_gpus``) so that each training worker gets one slot. Nothing CUDA is ever touched.

        Raises:
            RuntimeError: on construction, if :func:`activate` failed in this process.
        """

        _device_module = None

        def __init__(self):
            if _ACTIVATION_ERROR is not None:
                raise RuntimeError(f"verl-rise CPU platform (VERL_PLATFORM=cpu) cannot start: {_ACTIVATION_ERROR}")
            super().__init__()

        @property
        def device_name(self) -> str:
            return "cpu"

        @property
        def vendor_name(self) -> str:
            return "cpu"

        @property
        def device_module(self):
            if PlatformCPU._device_module is None:
                PlatformCPU._device_module = _make_device_module()
            return PlatformCPU._device_module

        def is_available(self) -> bool:
            return True

        def is_platform_available(self, use_smi_check=False) -> bool:
            # Never auto-detected: a CPU-only Ray actor on a GPU cluster must keep verl's own detection.
            return False

        def current_device(self):
            # verl passes this to .to()/torch.device(); an int would mean cuda:N.
            return torch.device("cpu")

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index: int) -> None:
            return None

        def synchronize(self, device_index: Optional[int] = None) -> None:
            return None

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            return None

        def empty_cache(self) -> None:
            return None

        def get_device_capability(self, device_index: int = 0):
            return None, None

        def communication_backend_name(self) -> str:
            return "gloo"

        def visible_devices_envvar(self) -> str:
            # Ray sets it for the logical GPUs; nothing reads it on a CPU.
            return "CUDA_VISIBLE_DEVICES"

        @contextmanager
        def nvtx_range(self, msg: str):
            yield

        def profiler_start(self) -> None:
            return None

        def profiler_stop(self) -> None:
            return None

        def ray_resource_name(self) -> str:
            return "GPU"

        def ray_noset_envvars(self) -> list[str]:
            return []

        def is_ipc_supported(self) -> bool:
            return False

        def cudart(self) -> Any:
            return None

    return PlatformCPU


def register() -> None:
    """Register :class:`PlatformCPU` as ``cpu`` in verl's PlatformRegistry; activate it if it is selected.

    Registration alone changes nothing for other platforms (the CPU platform is never auto-detected).

    Raises:
        CPUPlatformPatchError: only when ``VERL_PLATFORM=cpu`` and a required patch cannot be applied.
    """
    from verl.plugin.platform.platform_manager import PlatformRegistry

    PlatformRegistry.register(platform=PLATFORM_NAME)(_platform_class())
    if cpu_platform_selected():
        activate()
