"""``HFServerAdapter``: the ``BaseRollout`` that lives in each trainer rank and feeds the HF server new weights.

verl builds it in every actor/rollout worker as ``cls(config=, model_config=, device_mesh=)``
(verl/workers/engine_workers.py:667-670). For the colocated sync trainer the v1 trainer forces the "naive"
checkpoint-engine backend (verl/trainer/ppo/v1/trainer_base.py:382), so each step
``engine_workers.update_weights`` (engine_workers.py:728-830) calls, in every rank:
``resume(["weights"])``, ``update_weights(weights, peft_config=, base_sync_done=, global_steps=)``,
``resume(["kv_cache"])``; and ``release()`` when the trainer puts replicas to sleep.

``weights`` yields ``(hf_name, full_tensor)``; producing each full tensor is an FSDP2 all-gather, so every rank
drains the generator. Only the replica's rank 0 holds a server handle: it ships the tensors to the server over
Ray in buckets of ``checkpoint_engine.update_weights_bucket_megabytes``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Generator, Optional

import ray
import torch

from verl.workers.rollout.base import BaseRollout

from verl_rise.verl_ext.hf_rollout.replica import server_name

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))


class HFServerAdapter(BaseRollout):
    """Client of one :class:`~verl_rise.verl_ext.hf_rollout.server.HFRolloutServer` inside a trainer rank."""

    def __init__(self, config, model_config, device_mesh=None, replica_rank: int = -1, **kwargs: Any):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", 0))
        rollout_world_size = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // rollout_world_size if replica_rank == -1 else replica_rank
        self.rollout_rank = rank % rollout_world_size
        self.is_leader_rank = self.rollout_rank == 0
        self.bucket_bytes = max(1, int(self.config.checkpoint_engine.update_weights_bucket_megabytes)) << 20
        self._server = None

    def _server_handle(self):
        if not self.is_leader_rank:
            return None
        if self._server is None:
            # The replica starts its server after the trainer ranks are built, so look it up lazily.
            self._server = ray.get_actor(server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]):
        """Nothing is released on a CPU; forwarded for symmetry with the GPU engines."""
        server = self._server_handle()
        if server is not None:
            await server.wake_up.remote(tags=tags)

    async def release(self):
        server = self._server_handle()
        if server is not None:
            await server.sleep.remote()

    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None],
        wire_format: str = "named_tensors",
        peft_config: Optional[Any] = None,
        base_sync_done: bool = True,
        global_steps: Optional[int] = None,
        **kwargs: Any,
    ):
        """Send the actor's full weights to the server (leader rank) or just drain them (other ranks).

        Raises:
            NotImplementedError: for ``wire_format="delta_flush"`` or an unmerged LoRA adapter (``peft_config``).
        """
        if wire_format != "named_tensors":
            raise NotImplementedError(f"the hf rollout takes wire_format='named_tensors' only, got {wire_format!r}")
        if peft_config is not None:
            raise NotImplementedError("the hf rollout needs merged weights: set actor_rollout_ref.model.lora.merge=True")
        start = time.perf_counter()
        server = self._server_handle()
        bucket: list[tuple[str, torch.Tensor]] = []
        size = sent = 0
        for name, tensor in weights:
            if server is None:
                continue  # the all-gather inside the generator is what the other ranks contribute
            t = tensor.detach().to("cpu", copy=True).contiguous()
            bucket.append((name, t))
            size += t.numel() * t.element_size()
            if size >= self.bucket_bytes:
                sent += await server.load_weights.remote(bucket)
                bucket, size = [], 0
        if server is not None:
            if bucket:
                sent += await server.load_weights.remote(bucket)
            await server.finish_weight_update.remote(global_steps)
            logger.info("hf rollout: synced %d tensors in %.2fs (step %s)", sent, time.perf_counter() - start,
                        global_steps)
