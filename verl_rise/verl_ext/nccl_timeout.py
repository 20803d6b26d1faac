"""``actor_rollout_ref.nccl_timeout`` reaches the RL workers' process group again.

verl's ``ppo_trainer.yaml`` declares ``actor_rollout_ref.nccl_timeout`` (default 600 s), and verl's legacy FSDP
workers passed it to ``init_process_group``. verl 0.9.1's engine workers do not: ``TrainingWorker.__init__`` calls
``initialize_global_process_group_ray(timeout_second=None)`` (``verl/workers/engine_workers.py:89``), so every
collective runs under torch's default timeout (10 minutes for NCCL) whatever the config says. On 72B, rank 0 builds
the whole model on the CPU (about 294 GB in fp32) while the other ranks wait in a collective; past 10 minutes NCCL's
watchdog kills the run before its first step (issue 13, row 7).

The patch: ``ActorRolloutRefWorker.init_model`` (``verl/workers/engine_workers.py:539``), which builds the actor and
reference ``TrainingWorker``\\ s and so starts the process group, first starts it itself with
``timeout_second=config.nccl_timeout``; verl's own call then finds the group started and does nothing
(``verl/utils/distributed.py:90``). It replaces the ``timeout_second=None`` of line 89 for the hybrid actor/rollout/ref
worker, the only worker the Metis-RISE RL stage builds (no critic, no reward model). It is applied when verl's module
is imported (:func:`~verl_rise.verl_ext.import_hooks.patch_on_import`); the start-up function is looked up when the
worker runs, so the CPU platform's gloo backend (:mod:`verl_rise.verl_ext.cpu_platform`) still applies.
"""

from __future__ import annotations

import functools
from typing import Any

from verl_rise.verl_ext.import_hooks import patch_on_import
from verl_rise.verl_ext.registry import registration_step

MODULE = "verl.workers.engine_workers"


def configured_timeout(worker_config: Any) -> int | None:
    """``nccl_timeout`` of an ``actor_rollout_ref`` config in seconds; None when absent or null.

    Raises:
        ValueError: not a positive whole number of seconds.
    """
    getter = getattr(worker_config, "get", None)
    value = getter("nccl_timeout", None) if getter is not None else getattr(worker_config, "nccl_timeout", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"actor_rollout_ref.nccl_timeout={value!r}: expected a positive number of seconds")
    return value


def start_process_group(worker_config: Any) -> None:
    """Start this worker's default process group with the configured timeout (no-op when already started)."""
    import verl.utils.distributed as dist_utils

    timeout = configured_timeout(worker_config)
    if timeout is not None:
        dist_utils.initialize_global_process_group_ray(timeout_second=timeout)


def patch_engine_workers(module: Any) -> None:
    """Wrap ``module.ActorRolloutRefWorker.init_model`` to start the process group first (idempotent).

    Raises:
        VerlCompatError: the module has no ``ActorRolloutRefWorker.init_model`` (verl moved it).
    """
    from verl_rise.verl_ext.compat import require_attr

    cls = require_attr(module, "ActorRolloutRefWorker", "verl/workers/engine_workers.py:452", __name__)
    original = require_attr(cls, "init_model", "verl/workers/engine_workers.py:539", __name__)
    if getattr(original, "_verl_rise_nccl_timeout", False):
        return

    @functools.wraps(original)  # keeps verl's @register dispatch attributes on the wrapper
    def init_model(self, *args, **kwargs):
        start_process_group(self.config)
        return original(self, *args, **kwargs)

    init_model._verl_rise_nccl_timeout = True
    cls.init_model = init_model


@registration_step("nccl_timeout")
def install() -> None:
    """Register the import hook (or patch at once when verl's module is already imported)."""
    patch_on_import(MODULE, patch_engine_workers)
