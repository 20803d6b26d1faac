"""Seeded sampling of the hf rollout server (issue 14 item 16: CPU runs must be repeatable).

Each request samples from its own generator seeded from the rollout seed, the weight version, the prompt and the
prompt's occurrence (verl_rise/verl_ext/hf_rollout/server.py, "Seeding"). In-process server on a tiny no-files
Qwen2.5-VL, as tests/test_hf_rollout_server.py builds it; a few seconds.
"""

from __future__ import annotations

import asyncio

import pytest
import torch

SAMPLE = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from verl_rise.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", processor_dir=None, seed=0)


def _server(tiny_dir, seed: int, global_rng: int):
    from verl.workers.config import HFModelConfig, RolloutConfig

    from verl_rise.verl_ext.hf_rollout.server import HFRolloutServer

    rollout = RolloutConfig(name="hf", prompt_length=64, response_length=12, tensor_model_parallel_size=1,
                            seed=seed, engine_kwargs={"hf": {"max_batch_size": 16, "batch_wait_s": 0.05}})
    model = HFModelConfig(path=str(tiny_dir), override_config={"attn_implementation": "sdpa"})
    server = HFRolloutServer(rollout, model)
    torch.manual_seed(global_rng)  # the process-wide RNG must not matter
    return server


def _prompts(server) -> list[list[int]]:
    out = []
    for text in ("What is 2 + 3?", "Name a prime number."):
        chat = server.processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": text}]}],
                                                    add_generation_prompt=True, tokenize=False)
        out.append(server.processor(text=[chat], return_tensors="pt")["input_ids"][0].tolist())
    return out


def _generate(server, prompts: list[list[int]], n: int, batched: bool) -> list[list[int]]:
    """n rollouts of each prompt (GRPO style), all sent concurrently (one batch) or one request at a time."""
    requests = [p for p in prompts for _ in range(n)]

    async def go():
        if batched:
            outs = await asyncio.gather(*[server.generate(p, dict(SAMPLE), f"r{i}") for i, p in enumerate(requests)])
        else:
            outs = [await server.generate(p, dict(SAMPLE), f"r{i}") for i, p in enumerate(requests)]
        return [o.token_ids for o in outs]

    return asyncio.run(go())


def test_same_seed_same_tokens_whatever_the_batching_and_other_seeds_differ(tiny_dir):
    a = _server(tiny_dir, seed=7, global_rng=1)
    prompts = _prompts(a)
    batched = _generate(a, prompts, n=4, batched=True)
    assert a.generate_calls < len(batched)  # the concurrent requests really were batched
    # A fresh server (another process-wide RNG state) with the same seed, one request per generate call.
    b = _server(tiny_dir, seed=7, global_rng=2)
    assert _generate(b, prompts, n=4, batched=False) == batched
    assert b.generate_calls == len(batched)
    # The n rollouts of one prompt are not copies of each other, and another seed samples other responses.
    assert len({tuple(t) for t in batched[:4]}) > 1
    c = _server(tiny_dir, seed=8, global_rng=1)
    assert _generate(c, prompts, n=4, batched=True) != batched


def test_a_new_weight_version_draws_new_samples_and_a_request_seed_wins(tiny_dir):
    server = _server(tiny_dir, seed=7, global_rng=0)
    [prompt, _] = _prompts(server)
    first = _generate(server, [prompt], n=2, batched=True)
    asyncio.run(server.finish_weight_update(global_steps=1))  # same weights, next version: fresh streams
    assert _generate(server, [prompt], n=2, batched=True) != first

    async def seeded(s):
        return (await s.generate(prompt, {**SAMPLE, "seed": 123}, "x")).token_ids

    other = _server(tiny_dir, seed=99, global_rng=0)
    assert asyncio.run(seeded(other)) == asyncio.run(seeded(_server(tiny_dir, seed=7, global_rng=5)))
