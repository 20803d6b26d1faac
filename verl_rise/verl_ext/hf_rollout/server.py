"""The HF-transformers rollout server: a Ray actor that generates with ``model.generate`` on the CPU.

It speaks the token-in-token-out protocol verl's ``LLMServerClient`` uses for vLLM/SGLang servers
(verl/workers/rollout/llm_server.py:124-146 -> ``server.generate.remote(...)``; result type ``TokenOutput``,
verl/workers/rollout/replica.py:39), plus the control calls a ``RolloutReplica`` and the checkpoint manager make
(wake_up, sleep, clear/release/resume_kv_cache, abort_all_requests, resume_generation, start/stop_profile).

Concurrent ``generate`` calls (verl's agent-loop workers send one request per rollout, concurrently) are queued
and run together: requests that arrive within ``batch_wait_s`` of each other, up to ``max_batch_size``, go into
one left-padded ``model.generate`` call. Each row keeps its own sampling parameters, token budget and log-probs
(:mod:`verl_rise.verl_ext.hf_rollout.sampling`).

Images: ``prompt_ids`` arrive with the ``<|image_pad|>`` runs already expanded and ``image_data`` as PIL images
(verl/experimental/agent_loop/single_turn_agent_loop.py). Pixel values and ``image_grid_thw`` are built exactly
as the training side builds them (verl/experimental/agent_loop/agent_loop.py:868-918: collapse the placeholder
runs, decode, run the processor, drop its text outputs); ``mm_token_type_ids`` are rebuilt from ``prompt_ids``
(agent_loop.py:936-945) because the processor's own come from the decoded text and do not line up.

Seeding: every request samples from its own torch generator, seeded from the rollout seed (``rollout.seed``, the
key vLLM uses; a request's own ``seed`` in its sampling params wins), the weight version (``global_steps``), the
prompt's token ids and how many identical prompts came before it at that version (GRPO sends a prompt n times).
A request's tokens therefore depend neither on arrival order nor on which requests share its batch: a rerun with
the same seed, data and weights samples the same responses (up to float rounding differences between batch shapes).

Weights: the actor's full tensors arrive through :meth:`HFRolloutServer.load_weights` in buckets and are copied
into the model in place (``state_dict(keep_vars=True)`` also covers tied parameters).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from verl_rise.verl_ext.hf_rollout.sampling import RowwiseSamplingProcessor, SamplingParams, neutral_generation_kwargs

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))


@dataclass
class _Request:
    prompt_ids: list[int]
    params: SamplingParams
    mm_inputs: Optional[dict[str, torch.Tensor]]  # pixel_values / image_grid_thw, None for text-only prompts
    request_id: str
    future: asyncio.Future = field(repr=False)
    generator: Optional[torch.Generator] = field(default=None, repr=False)


class HFRolloutServer:
    """Generate with a Hugging Face model for one rollout replica.

    Args:
        config: verl ``RolloutConfig`` (dataclass or DictConfig). Reads prompt_length, response_length,
            max_model_len, repetition_penalty, max_num_seqs and ``engine_kwargs.hf``: ``num_threads`` (torch
            threads), ``max_batch_size`` (requests per generate call), ``batch_wait_s`` (how long the first
            request of a batch waits for company), ``trace_path`` (a JSONL file that gets one line per generate
            batch and per weight sync; for tests and benchmarks; its directory is created) and ``seed`` (the rollout
            seed, default ``rollout.seed``; see the module docstring).
        model_config: verl ``HFModelConfig`` (dataclass or DictConfig): model path, tokenizer, processor, hf_config
            (its ``override_config.attn_implementation`` picks the attention kernel, e.g. ``sdpa`` on a CPU).
        replica_rank: index of the replica (logging only).
    """

    def __init__(self, config, model_config, replica_rank: int = 0, rollout_mode: Any = None):
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig

        self.config = omega_conf_to_dataclass(config)
        self.model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.replica_rank = replica_rank
        self.rollout_mode = rollout_mode
        hf_kwargs = dict((self.config.engine_kwargs or {}).get("hf", None) or {})
        num_threads = hf_kwargs.get("num_threads")
        if num_threads:
            # Ray pins OMP_NUM_THREADS to the actor's CPU request (1 by default); generation runs while the
            # trainer waits, so give it the threads the recipe asks for.
            torch.set_num_threads(int(num_threads))
        self.max_batch_size = int(hf_kwargs.get("max_batch_size", min(self.config.max_num_seqs, 64)))
        self.batch_wait_s = float(hf_kwargs.get("batch_wait_s", 0.05))
        self.max_model_len = self.config.max_model_len or (self.config.prompt_length + self.config.response_length)
        self.trace_path = hf_kwargs.get("trace_path")
        # vLLM's server seeds with rollout.seed + replica rank (vllm_async_server.py:152, 343).
        seed = hf_kwargs.get("seed", getattr(self.config, "seed", 0))
        self.seed = int(seed or 0) + int(replica_rank)
        self._seen_prompts: dict[tuple, int] = {}

        self.tokenizer = self.model_config.tokenizer
        self.processor = self.model_config.processor
        self.model = self._load_model()
        self._params = dict(self.model.state_dict(keep_vars=True))

        from verl.utils.tokenizer import get_processor_token_id
        from verl.workers.rollout.utils import get_vision_placeholder_token_ids

        self.image_token_id = get_processor_token_id(self.processor, "image")
        self.video_token_id = get_processor_token_id(self.processor, "video")
        # Same ban list as vLLM's server (verl/workers/rollout/vllm_rollout/vllm_async_server.py:498-505).
        self.banned_ids = get_vision_placeholder_token_ids(self.processor) if self.processor is not None else []
        self.eos_ids = self._eos_ids()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]

        self.global_steps: Optional[int] = None
        self.weight_updates = 0
        self._tensors_this_sync = 0
        self.generate_calls = 0
        self.batched_requests = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._queue: Optional[asyncio.Queue] = None
        self._worker: Optional[asyncio.Task] = None
        self._model_lock: Optional[asyncio.Lock] = None
        self._aborting = False
        self._paused = False
        self._rejecting = False
        self._resume_event: Optional[asyncio.Event] = None

    # ------------------------------------------------------------------ setup

    def _load_model(self):
        from transformers import GenerationConfig

        from verl.utils.model import get_hf_auto_model_class

        hf_config = self.model_config.hf_config
        # The FSDP engine loads with the same auto class (verl/workers/engine/fsdp/transformer_impl.py:274), so
        # parameter names match what the actor sends in update_weights.
        auto_class = get_hf_auto_model_class(hf_config=hf_config)
        model = auto_class.from_pretrained(
            self.model_config.local_path,
            config=hf_config,
            torch_dtype=torch.float32,
            trust_remote_code=self.model_config.trust_remote_code,
        )
        model.eval()
        # Sampling defaults of a checkpoint's generation_config.json must not leak into rollouts.
        model.generation_config = GenerationConfig()
        return model

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen = self.model_config.generation_config
        gen_eos = getattr(gen, "eos_token_id", None) if gen is not None else None
        for value in (gen_eos, self.tokenizer.eos_token_id):
            if value is None:
                continue
            for i in value if isinstance(value, (list, tuple)) else [value]:
                if int(i) not in ids:
                    ids.append(int(i))
        if not ids:
            raise ValueError(f"model {self.model_config.path} has no EOS token id (tokenizer or generation_config)")
        return ids

    def _trace(self, **event: Any) -> None:
        if not self.trace_path:
            return
        import json

        event = {"time": time.time(), "replica_rank": self.replica_rank, **event}
        os.makedirs(os.path.dirname(os.path.abspath(self.trace_path)), exist_ok=True)
        with open(self.trace_path, "a") as f:  # one short line per event; appends from one process
            f.write(json.dumps(event) + "\n")

    async def ready(self) -> dict[str, Any]:
        """Return what was loaded (used by the replica to wait for the actor)."""
        return {
            "model": type(self.model).__name__,
            "num_params": sum(p.numel() for p in self.model.parameters()),
            "threads": torch.get_num_threads(),
            "eos_ids": self.eos_ids,
            "banned_ids": list(self.banned_ids),
        }

    def _ensure_loop_state(self) -> None:
        # Queue, lock and batch worker belong to the event loop that runs the actor's async methods (Ray keeps one
        # for the actor's life). Rebuilt if the loop changes, e.g. when the class is driven by asyncio.run in tests.
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._model_lock = asyncio.Lock()
            self._resume_event = asyncio.Event()
            if not self._paused:
                self._resume_event.set()
            self._worker = None
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._batch_worker())

    # ------------------------------------------------------------------ generation

    def default_max_tokens(self, prompt_len: int) -> int:
        """vLLM server's default budget (verl/workers/rollout/vllm_rollout/vllm_async_server.py:596-618)."""
        return min(self.config.response_length, self.config.prompt_length + self.config.response_length - prompt_len)

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        priority: int = 0,
        **kwargs: Any,
    ):
        """Generate one response, token in, token out.

        Args:
            prompt_ids: prompt token ids, vision placeholder runs already expanded.
            sampling_params: verl/vLLM sampling dict (temperature, top_p, top_k, repetition_penalty, logprobs,
                optional max_tokens).
            request_id: caller's id (logging only).
            image_data: PIL images, one per ``<|image_pad|>`` run, in order.
            video_data, audio_data: not supported (NotImplementedError when given).
            mm_processor_kwargs: extra processor kwargs (e.g. max_pixels), as the training side uses them.
            priority: ignored (FIFO).

        Returns:
            ``TokenOutput``: generated ``token_ids`` (EOS included when produced), ``log_probs`` (one per token,
            or None when not requested), ``stop_reason`` "completed" or "aborted", ``extra_fields["global_steps"]``.

        Raises:
            ValueError: bad sampling parameters, a prompt that leaves no room to generate, or images that do not
                match the prompt's placeholder count.
        """
        from verl.workers.rollout.replica import TokenOutput

        if video_data is not None or audio_data is not None:
            raise NotImplementedError("the hf rollout handles images only (video_data/audio_data given)")
        self._ensure_loop_state()
        while self._paused:
            if self._rejecting:
                return TokenOutput(token_ids=[], log_probs=None, stop_reason="aborted",
                                   extra_fields={"global_steps": self.global_steps})
            await self._resume_event.wait()
        prompt_ids = [int(t) for t in prompt_ids]
        room = self.max_model_len - len(prompt_ids)
        if room < 1:
            raise ValueError(
                f"prompt of {len(prompt_ids)} tokens leaves no room within max_model_len {self.max_model_len}"
            )
        params = SamplingParams.from_request(
            sampling_params,
            default_max_tokens=self.default_max_tokens(len(prompt_ids)),
            default_repetition_penalty=self.config.repetition_penalty,
        )
        params = SamplingParams(**{**params.__dict__, "max_tokens": max(1, min(params.max_tokens, room))})
        mm_inputs = self._multimodal_inputs(prompt_ids, image_data, mm_processor_kwargs, request_id)
        generator = self.request_generator(prompt_ids, sampling_params.get("seed"))
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(prompt_ids, params, mm_inputs, request_id, future, generator))
        token_ids, log_probs, stop_reason = await future
        return TokenOutput(
            token_ids=token_ids,
            log_probs=log_probs if params.logprobs else None,
            stop_reason=stop_reason,
            num_preempted=0,
            extra_fields={"global_steps": self.global_steps},
        )

    def request_generator(self, prompt_ids: list[int], seed: Optional[int] = None) -> torch.Generator:
        """The torch generator a request samples from (module docstring: Seeding).

        Args:
            prompt_ids: the request's prompt token ids.
            seed: the request's own seed (vLLM's per-request ``seed``); None uses the server's.

        Returns:
            A CPU generator seeded from (seed, weight version, prompt ids, occurrence of this prompt at this version).
        """
        import hashlib

        digest = hashlib.sha256(torch.tensor(prompt_ids, dtype=torch.int64).numpy().tobytes()).hexdigest()
        key = (self.seed if seed is None else int(seed), self.global_steps, digest)
        occurrence = self._seen_prompts.get(key, 0)
        self._seen_prompts[key] = occurrence + 1
        material = f"{key[0]}:{key[1]}:{digest}:{occurrence}".encode()
        return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(material).digest()[:8], "little"))

    async def _batch_worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.batch_wait_s
            while len(batch) < self.max_batch_size:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            try:
                async with self._model_lock:
                    results = await asyncio.to_thread(self._generate_batch, batch)
            except Exception as exc:  # noqa: BLE001 - hand the error to every waiting caller
                logger.exception("hf rollout: batch of %d requests failed", len(batch))
                for req in batch:
                    if not req.future.done():
                        req.future.set_exception(exc)
                continue
            for req, result in zip(batch, results, strict=True):
                if not req.future.done():
                    req.future.set_result(result)

    def _multimodal_inputs(self, prompt_ids: list[int], image_data: Optional[list[Any]],
                           mm_processor_kwargs: Optional[dict[str, Any]], request_id: str):
        """pixel_values / image_grid_thw for one request, built as agent_loop.py:868-918 builds them.

        Returns None for a text-only request. Raises ValueError when the images do not match the prompt's
        ``<|image_pad|>`` count (including placeholders without images).
        """
        from verl.utils.tokenizer import build_multimodal_processor_inputs

        found = sum(1 for t in prompt_ids if t == self.image_token_id) if self.image_token_id is not None else 0
        if not image_data:
            if found:
                raise ValueError(f"request {request_id}: the prompt has {found} image tokens but no image_data")
            return None
        if self.processor is None:
            raise ValueError(f"request {request_id}: image_data given, but {self.model_config.path} has no processor")
        collapse = {t for t in (self.image_token_id, self.video_token_id) if t is not None}
        collapsed, prev = [], None
        for t in prompt_ids:
            if t in collapse and t == prev:
                continue
            collapsed.append(t)
            prev = t
        text = self.tokenizer.decode(collapsed, skip_special_tokens=True)
        inputs = build_multimodal_processor_inputs(
            self.processor, text=[text], images=list(image_data), mm_processor_kwargs=mm_processor_kwargs
        )
        for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
            inputs.pop(key, None)
        inputs = dict(inputs.convert_to_tensors("pt"))
        grid = inputs.get("image_grid_thw")
        merge = getattr(self.processor.image_processor, "merge_size", 2)
        expected = int((grid.prod(-1) // (merge * merge)).sum()) if grid is not None else 0
        if expected != found:
            raise ValueError(
                f"request {request_id}: {len(image_data)} image(s) need {expected} image tokens, the prompt has {found}"
            )
        return {k: inputs[k] for k in ("pixel_values", "image_grid_thw") if k in inputs}

    def _batch_inputs(self, batch: list[_Request]) -> dict[str, torch.Tensor]:
        """Left-pad the prompts and stack the image inputs of a batch."""
        width = max(len(r.prompt_ids) for r in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):
            input_ids[i, width - len(r.prompt_ids):] = torch.tensor(r.prompt_ids, dtype=torch.long)
            attention_mask[i, width - len(r.prompt_ids):] = 1
        inputs: dict[str, torch.Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask}
        mm = [r.mm_inputs for r in batch if r.mm_inputs is not None]
        if mm:
            inputs["pixel_values"] = torch.cat([m["pixel_values"] for m in mm], dim=0).to(self.model.dtype)
            inputs["image_grid_thw"] = torch.cat([m["image_grid_thw"] for m in mm], dim=0)
            # Rebuilt from the token ids (agent_loop.py:936-945): 1 = image, 2 = video, padding counts as text.
            mm_types = torch.zeros_like(input_ids)
            mm_types[(input_ids == self.image_token_id) & attention_mask.bool()] = 1
            if self.video_token_id is not None:
                mm_types[(input_ids == self.video_token_id) & attention_mask.bool()] = 2
            inputs["mm_token_type_ids"] = mm_types
        return inputs

    def _generate_batch(self, batch: list[_Request]) -> list[tuple[list[int], list[float], str]]:
        """Run one ``model.generate`` for a batch. Returns (token_ids, log_probs, stop_reason) per request."""
        from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

        t0 = time.perf_counter()
        inputs = self._batch_inputs(batch)
        prompt_width = inputs["input_ids"].shape[1]
        budgets = torch.tensor([r.params.max_tokens for r in batch])
        server = self

        class _Budget(StoppingCriteria):
            # Per-row token budget; everything stops at once on abort_all_requests.
            def __call__(self, input_ids, scores, **kwargs):
                done = (input_ids.shape[1] - prompt_width) >= budgets
                if server._aborting:
                    done = torch.ones_like(done)
                return done.to(input_ids.device)

        processor = RowwiseSamplingProcessor([r.params for r in batch], inputs["attention_mask"], self.banned_ids,
                                             generator=[r.generator or torch.Generator().manual_seed(self.seed)
                                                        for r in batch])
        gen_config = GenerationConfig(
            max_new_tokens=int(budgets.max()),
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            return_dict_in_generate=True,
            use_cache=True,
            **neutral_generation_kwargs(),
        )
        with torch.no_grad():
            out = self.model.generate(
                **inputs,
                generation_config=gen_config,
                logits_processor=[processor],
                stopping_criteria=StoppingCriteriaList([_Budget()]),
            )
        sequences = out.sequences
        logprobs = processor.stacked_logprobs()
        generated = sequences[:, prompt_width:]
        aborted = self._aborting
        results = []
        eos = set(self.eos_ids)
        for i, r in enumerate(batch):
            ids = generated[i].tolist()[: r.params.max_tokens]
            stop = next((j for j, t in enumerate(ids) if t in eos), None)
            finished = stop is not None or len(ids) >= r.params.max_tokens
            if stop is not None:
                ids = ids[: stop + 1]
            results.append((ids, logprobs[i, : len(ids)].tolist(), "completed" if finished or not aborted else "aborted"))
        self.generate_calls += 1
        self.batched_requests += len(batch)
        seconds = time.perf_counter() - t0
        logger.info("hf rollout: %d requests, %d new tokens max, %.2fs", len(batch), generated.shape[1], seconds)
        self._trace(
            event="generate",
            requests=len(batch),
            with_images=sum(1 for r in batch if r.mm_inputs is not None),
            image_tokens=int((inputs["input_ids"] == self.image_token_id).sum()) if self.image_token_id is not None else 0,
            pixel_rows=int(inputs["pixel_values"].shape[0]) if "pixel_values" in inputs else 0,
            new_tokens=sum(len(r[0]) for r in results),
            greedy=sum(1 for r in batch if r.params.greedy),
            global_steps=self.global_steps,
            seconds=round(seconds, 4),
        )
        return results

    # ------------------------------------------------------------------ weights

    async def load_weights(self, named_tensors: list[tuple[str, torch.Tensor]]) -> int:
        """Copy a bucket of the actor's full tensors into the model, in place.

        Args:
            named_tensors: (HF parameter name, full tensor) pairs, names as the FSDP engine exports them.

        Returns:
            The number of tensors copied.

        Raises:
            KeyError: a name the model does not have (shapes or naming differ between actor and rollout).
            ValueError: a shape mismatch.
        """
        self._ensure_loop_state()
        async with self._model_lock:
            with torch.no_grad():
                for name, tensor in named_tensors:
                    param = self._params.get(name)
                    if param is None:
                        raise KeyError(
                            f"hf rollout: actor sent weight {name!r}, which the rollout model "
                            f"{type(self.model).__name__} does not have (e.g. {next(iter(self._params))!r})"
                        )
                    if tuple(param.shape) != tuple(tensor.shape):
                        raise ValueError(f"hf rollout: weight {name!r} has shape {tuple(tensor.shape)}, "
                                         f"the rollout model expects {tuple(param.shape)}")
                    param.data.copy_(tensor.to(dtype=param.dtype))
        self._tensors_this_sync += len(named_tensors)
        return len(named_tensors)

    async def finish_weight_update(self, global_steps: Optional[int]) -> dict[str, Any]:
        """Mark the end of one weight sync: bump the version and tag later outputs with ``global_steps``."""
        self.weight_updates += 1
        if global_steps is not None:
            self.global_steps = global_steps
        self._seen_prompts.clear()  # occurrences count per weight version (they are part of each request's seed)
        if self.trace_path:
            self._trace(event="weights", global_steps=self.global_steps, tensors=self._tensors_this_sync,
                        checksum=self.weights_checksum())
        self._tensors_this_sync = 0
        return {"weight_updates": self.weight_updates, "global_steps": self.global_steps}

    def weights_checksum(self) -> float:
        """Sum of all parameters in float64 (tied parameters counted once): a cheap fingerprint of the weights."""
        seen, total = set(), 0.0
        for p in self._params.values():
            if id(p) not in seen:
                seen.add(id(p))
                total += float(p.detach().double().sum())
        return total

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    async def stats(self) -> dict[str, Any]:
        """Counters for tests and benchmarks: generate calls, requests served, weight updates."""
        return {
            "generate_calls": self.generate_calls,
            "batched_requests": self.batched_requests,
            "weight_updates": self.weight_updates,
            "global_steps": self.global_steps,
        }

    # ------------------------------------------------------------------ control calls (replica / checkpoint manager)

    async def wake_up(self, tags: Optional[list[str]] = None) -> None:
        # Weights and the (per-call) KV cache stay in host memory; nothing to restore.
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        # model.generate builds a fresh cache per call; there is no prefix cache to invalidate.
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def wait_for_requests_to_drain(self) -> None:
        self._ensure_loop_state()
        while not self._queue.empty() or self._model_lock.locked():
            await asyncio.sleep(0.01)

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict[str, Any]:
        """Stop the running batch early, fail the queued requests as "aborted" and hold new ones until
        :meth:`resume_generation` (or, with ``reject_request``, answer them "aborted" at once)."""
        self._ensure_loop_state()
        self._paused = True
        self._rejecting = reject_request
        self._resume_event.clear()
        request_ids = []
        while not self._queue.empty():
            req = self._queue.get_nowait()
            request_ids.append(req.request_id)
            if not req.future.done():
                req.future.set_result(([], [], "aborted"))
        self._aborting = True
        async with self._model_lock:  # wait for the running batch to stop
            self._aborting = False
        return {"aborted_count": len(request_ids), "request_ids": request_ids}

    async def resume_generation(self) -> None:
        self._ensure_loop_state()
        self._paused = False
        self._rejecting = False
        self._resume_event.set()

    async def abort_request(self, request_id: str, reset_prefix_cache: bool = True) -> dict[str, Any]:
        return {"aborted": False, "request_id": request_id, "error": "the hf rollout aborts whole batches only"}

    async def start_profile(self, **kwargs) -> None:
        return None

    async def stop_profile(self) -> None:
        return None
