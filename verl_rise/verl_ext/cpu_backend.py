"""Registration steps of the CPU execution backend (run by :mod:`verl_rise.verl_ext.plugin` on ``import verl``).

* ``cpu_platform``: the ``cpu`` device platform (:mod:`verl_rise.verl_ext.cpu_platform`); it only acts in processes
  where ``VERL_PLATFORM=cpu``.
* ``hf_rollout``: the ``hf`` rollout engine (:mod:`verl_rise.verl_ext.hf_rollout`); used only when a config says
  ``actor_rollout_ref.rollout.name=hf``.

Neither changes anything for a run that selects neither (a GPU user's vLLM path is untouched).
"""

from __future__ import annotations

from verl_rise.verl_ext.registry import registration_step


@registration_step("cpu_platform")
def _register_cpu_platform() -> None:
    from verl_rise.verl_ext import cpu_platform

    cpu_platform.register()


@registration_step("hf_rollout")
def _register_hf_rollout() -> None:
    from verl_rise.verl_ext import hf_rollout

    hf_rollout.register()
