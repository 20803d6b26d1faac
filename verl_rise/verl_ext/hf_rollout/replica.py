"""``HFReplica``: the ``RolloutReplica`` that launches one :class:`~verl_rise.verl_ext.hf_rollout.server.HFRolloutServer`.

verl's ``LLMServerManager`` builds one replica per ``tp * dp * pp`` trainer ranks
(verl/workers/rollout/llm_server.py:392-460) and, for the colocated ("hybrid") sync trainer, calls
``init_hybrid(worker_group)`` -> :meth:`HFReplica.launch_servers`. The HF server is one process whatever the
parallel sizes say, placed on the node of the replica's first trainer rank.
"""

from __future__ import annotations

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from verl.workers.rollout.replica import RolloutReplica

from verl_rise.verl_ext.hf_rollout.server import HFRolloutServer

#: Ray actor name of a replica's server; the adapter in the trainer ranks finds it by this name.
SERVER_NAME = "hf_server_{replica_rank}{name_suffix}"


def server_name(replica_rank: int, name_suffix: str = "") -> str:
    """Name of the Ray actor serving replica ``replica_rank`` (``name_suffix`` as RolloutReplica formats it)."""
    return SERVER_NAME.format(replica_rank=replica_rank, name_suffix=name_suffix)


class HFReplica(RolloutReplica):
    """Rollout replica backed by HF transformers ``generate`` (see :mod:`verl_rise.verl_ext.hf_rollout`)."""

    async def launch_servers(self):
        """Start the server actor, wait until its model is loaded, and publish its handle.

        Sets ``servers``, ``_server_handle`` and ``_server_address`` as verl's LLMServerManager expects
        (replica.py:127-129). The address is only a load-balancer key here: there is no HTTP endpoint.
        """
        if self.is_reward_model or self.is_teacher_model:
            raise NotImplementedError("the hf rollout serves the policy only (no reward/teacher model replicas)")
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
            strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
        else:
            strategy = None
        name = server_name(self.replica_rank, self.name_suffix)
        server_cls = ray.remote(HFRolloutServer)
        options = dict(name=name, max_concurrency=self.max_concurrency, num_cpus=0)
        if strategy is not None:
            options["scheduling_strategy"] = strategy
        server = server_cls.options(**options).remote(
            config=self.config,
            model_config=self.model_config,
            replica_rank=self.replica_rank,
            rollout_mode=self.rollout_mode,
        )
        await server.ready.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = name
