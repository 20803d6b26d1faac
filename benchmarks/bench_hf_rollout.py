"""Throughput of the hf rollout server: batched generation against one request at a time, in the same run.

A tiny Qwen2.5-VL built from the real Qwen2.5-VL processor files (152k vocabulary) serves ``--requests`` concurrent
requests, each with a real MATH-Vision image (at most 128 visual tokens, as in the cpu_tiny recipe) and
``--tokens`` new tokens at temperature 1. The same requests are served twice: with ``max_batch_size=1`` (the
baseline: one ``generate`` call per request) and with all requests in one batch. Prints ms per generated token
for both and the speed-up ratio.

Usage::

    python benchmarks/bench_hf_rollout.py [--requests 16] [--tokens 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from verl_rise.recipes import cpu_tiny_pixel_range

MM_KWARGS = cpu_tiny_pixel_range()


def _server(model_dir: Path, max_batch_size: int, tokens: int):
    from verl.workers.config import HFModelConfig, RolloutConfig

    from verl_rise.verl_ext.hf_rollout.server import HFRolloutServer

    rollout = RolloutConfig(name="hf", prompt_length=512, response_length=tokens, tensor_model_parallel_size=1,
                            engine_kwargs={"hf": {"max_batch_size": max_batch_size, "batch_wait_s": 0.05}})
    return HFRolloutServer(rollout, HFModelConfig(path=str(model_dir), override_config={"attn_implementation": "sdpa"}))


def _serve(server, prompt_ids, image, n: int) -> tuple[float, int, dict]:
    async def go():
        start = time.perf_counter()
        outs = await asyncio.gather(*[
            server.generate(prompt_ids, {"temperature": 1.0, "logprobs": True}, f"r{i}", image_data=[image],
                            mm_processor_kwargs=MM_KWARGS)
            for i in range(n)
        ])
        return time.perf_counter() - start, sum(len(o.token_ids) for o in outs), await server.stats()

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    from PIL import Image

    from shared_data import MATHVISION, QWEN_PROCESSOR, require
    from verl_rise.tiny_model import build_tiny_model

    require(MATHVISION)
    require(QWEN_PROCESSOR)

    torch.set_num_threads(args.threads)
    model_dir = build_tiny_model(Path(tempfile.mkdtemp(prefix="vr-bench-")) / "tiny", processor_dir=str(QWEN_PROCESSOR))
    image = Image.open(MATHVISION / "images" / "1.jpg").convert("RGB")
    results = {}
    for label, batch in (("one at a time", 1), (f"batched x{args.requests}", args.requests)):
        server = _server(model_dir, batch, args.tokens)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which number?"}]}]
        text = server.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt_ids = server.processor(text=[text], images=[image], return_tensors="pt", **MM_KWARGS)["input_ids"][0]
        _serve(server, prompt_ids.tolist(), image, 2)  # warm-up
        calls_before = server.generate_calls
        seconds, tokens, stats = _serve(server, prompt_ids.tolist(), image, args.requests)
        results[label] = seconds / tokens * 1000
        print(f"{label:>14}: {args.requests} requests, {tokens} tokens in {seconds:.2f} s = "
              f"{results[label]:.2f} ms/token ({stats['generate_calls'] - calls_before} generate calls; prompt "
              f"{len(prompt_ids)} tokens)")
    base, fast = results["one at a time"], results[f"batched x{args.requests}"]
    print(f"speed-up of batching: {base / fast:.1f}x ({base:.2f} -> {fast:.2f} ms/token, {args.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
