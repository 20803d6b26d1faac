"""An HF-transformers rollout engine for verl 0.9.x, selected with ``actor_rollout_ref.rollout.name=hf``.

verl 0.9.1 wires only vLLM, SGLang and TensorRT-LLM rollouts (verl/workers/rollout/base.py:89), none of which
runs on a CPU. This engine generates with ``transformers``' ``model.generate`` (images included, Qwen2.5-VL
processor inputs), so verl's trainers can run end to end on a CPU for CI and development. It is on-policy: the
actor's updated weights are copied into it at every step through verl's naive checkpoint-engine path.

Pieces (each registered with verl by :func:`register`, which the ``verl.plugins`` entry point runs):

* :class:`~verl_rise.verl_ext.hf_rollout.adapter.HFServerAdapter` (``BaseRollout``, in each trainer rank):
  ``_ROLLOUT_REGISTRY[("hf", "async")]`` (verl/workers/rollout/base.py:88; read by ``get_rollout_class``,
  verl/workers/engine_workers.py:667 and verl/checkpoint_engine/base.py:343).
* :class:`~verl_rise.verl_ext.hf_rollout.replica.HFReplica` (``RolloutReplica``): ``RolloutReplicaRegistry.register("hf")``
  (verl/workers/rollout/replica.py:299; read by ``LLMServerManager``, verl/workers/rollout/llm_server.py:392).
* :class:`~verl_rise.verl_ext.hf_rollout.server.HFRolloutServer` (Ray actor): batched ``generate`` -> ``TokenOutput``.
* :mod:`~verl_rise.verl_ext.hf_rollout.sampling`: per-row temperature / top-k / top-p / repetition penalty, banned vision
  placeholder tokens, processed log-probs.
"""

from __future__ import annotations

ROLLOUT_NAME = "hf"
ADAPTER_FQN = "verl_rise.verl_ext.hf_rollout.adapter.HFServerAdapter"


def _load_replica():
    from verl_rise.verl_ext.hf_rollout.replica import HFReplica

    return HFReplica


def register() -> None:
    """Add the ``hf`` rollout to verl's two rollout registries.

    ``_ROLLOUT_REGISTRY`` is module-private in verl; it is checked to be the dict of verl 0.9.1 first.

    Raises:
        RuntimeError: if verl's registries are not where verl 0.9.1 has them.
    """
    import verl.workers.rollout.base as rollout_base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    registry = getattr(rollout_base, "_ROLLOUT_REGISTRY", None)
    if not isinstance(registry, dict) or ("vllm", "async") not in registry:
        raise RuntimeError(
            "verl.workers.rollout.base._ROLLOUT_REGISTRY is missing or changed (verl 0.9.1 has a dict keyed by "
            "(name, mode)); update verl_rise/verl_ext/hf_rollout/__init__.py for this verl version"
        )
    if not callable(getattr(RolloutReplicaRegistry, "register", None)):
        raise RuntimeError("verl's RolloutReplicaRegistry.register is missing (verl 0.9.1 replica.py:299)")
    registry[(ROLLOUT_NAME, "async")] = ADAPTER_FQN
    RolloutReplicaRegistry.register(ROLLOUT_NAME, _load_replica)


def is_registered() -> bool:
    """True when both verl registries resolve ``hf`` (what ``python -m verl_rise.doctor`` may report)."""
    import verl.workers.rollout.base as rollout_base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    return (ROLLOUT_NAME, "async") in rollout_base._ROLLOUT_REGISTRY and ROLLOUT_NAME in RolloutReplicaRegistry._registry
