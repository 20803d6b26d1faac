"""The hf rollout server in-process (no Ray): batching, images, log-probs against teacher forcing, greedy decoding,
banned vision placeholders, weight loading, request validation, abort/resume.

Uses a tiny no-files Qwen2.5-VL (verl_rise.tiny_model, BPE vocabulary of 512) so each test takes a second or two.
"""

from __future__ import annotations

import asyncio

import pytest
import torch
from PIL import Image

from verl_rise.recipes import cpu_tiny_pixel_range

MM_KWARGS = cpu_tiny_pixel_range()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from verl_rise.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", processor_dir=None, seed=0)


@pytest.fixture()
def server(tiny_dir):
    from verl.workers.config import HFModelConfig, RolloutConfig

    from verl_rise.verl_ext.hf_rollout.server import HFRolloutServer

    rollout = RolloutConfig(name="hf", prompt_length=256, response_length=12, tensor_model_parallel_size=1,
                            engine_kwargs={"hf": {"max_batch_size": 16, "batch_wait_s": 0.05}})
    model = HFModelConfig(path=str(tiny_dir), override_config={"attn_implementation": "sdpa"})
    torch.manual_seed(0)
    return HFRolloutServer(rollout, model)


def _image(seed: int, size=(84, 56)) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(size[1], size[0], 3, generator=g) * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


def _prompt(server, text: str, image: Image.Image | None) -> list[int]:
    content = ([{"type": "image"}] if image is not None else []) + [{"type": "text", "text": text}]
    chat = server.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                                tokenize=False)
    images = [image] if image is not None else None
    return server.processor(text=[chat], images=images, return_tensors="pt", **MM_KWARGS)["input_ids"][0].tolist()


def _teacher_forced_logits(server, prompt_ids, response_ids, image):
    """Logits of every response position from one unpadded forward pass of the whole sequence."""
    ids = torch.tensor([prompt_ids + response_ids])
    kwargs = {}
    if image is not None:
        mm = server._multimodal_inputs(prompt_ids, [image], MM_KWARGS, "check")
        kwargs = dict(pixel_values=mm["pixel_values"], image_grid_thw=mm["image_grid_thw"],
                      mm_token_type_ids=(ids == server.image_token_id).long())
    with torch.no_grad():
        logits = server.model(input_ids=ids, **kwargs).logits[0].float()
    return logits[len(prompt_ids) - 1 : len(prompt_ids) - 1 + len(response_ids)]


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_batched_and_logprobs_match_teacher_forcing(server):
    requests = [("Which bike is most expensive?", _image(1)), ("What is 2 + 3?", None),
                ("Count the squares.", _image(2, size=(140, 70))), ("Pick A or B.", _image(3))]
    prompts = [(_prompt(server, text, img), img) for text, img in requests]
    temperature = 0.8

    async def go():
        return await asyncio.gather(*[
            server.generate(ids, {"temperature": temperature, "top_p": 1.0, "top_k": -1, "logprobs": True}, f"r{i}",
                            image_data=[img] if img is not None else None,
                            mm_processor_kwargs=MM_KWARGS if img is not None else None)
            for i, (ids, img) in enumerate(prompts)
        ])

    outputs = _run(go())
    stats = _run(server.stats())
    assert stats["generate_calls"] == 1 and stats["batched_requests"] == len(prompts)
    for (ids, img), out in zip(prompts, outputs):
        assert 1 <= len(out.token_ids) <= 12 and len(out.log_probs) == len(out.token_ids)
        assert out.stop_reason == "completed" and "global_steps" in out.extra_fields
        eos = [i for i, t in enumerate(out.token_ids) if t in server.eos_ids]
        assert eos in ([], [len(out.token_ids) - 1])
        # Left-padded batched decoding with a KV cache gives the log-probs of one unpadded forward pass.
        logits = _teacher_forced_logits(server, ids, out.token_ids, img)
        logits[:, server.banned_ids] = float("-inf")
        expected = torch.log_softmax(logits / temperature, -1).gather(-1, torch.tensor(out.token_ids)[:, None])[:, 0]
        assert torch.allclose(torch.tensor(out.log_probs), expected, atol=2e-4), (out.log_probs, expected.tolist())


def test_greedy_follows_the_argmax_and_is_deterministic(server):
    img = _image(5)
    ids = _prompt(server, "Which kite has the longest string?", img)

    async def go():
        return await asyncio.gather(*[
            server.generate(ids, {"temperature": 0, "logprobs": True}, f"g{i}", image_data=[img],
                            mm_processor_kwargs=MM_KWARGS) for i in range(3)
        ])

    outs = _run(go())
    assert outs[0].token_ids == outs[1].token_ids == outs[2].token_ids
    logits = _teacher_forced_logits(server, ids, outs[0].token_ids, img)
    logits[:, server.banned_ids] = float("-inf")
    assert logits.argmax(-1).tolist() == outs[0].token_ids


def test_max_tokens_is_honoured(server):
    ids = _prompt(server, "Say something long.", None)
    out = _run(server.generate(ids, {"temperature": 1.0, "max_tokens": 3}, "m"))
    assert 1 <= len(out.token_ids) <= 3


def test_vision_placeholders_are_never_sampled_and_weights_load_in_place(server):
    # Make <|image_pad|> overwhelmingly likely, through the same path the actor's weights take.
    weight = server.model.lm_head.weight.detach().clone()
    weight[server.image_token_id] = server.model.model.language_model.norm.weight.detach() * 50
    n = _run(server.load_weights([("lm_head.weight", weight)]))
    _run(server.finish_weight_update(global_steps=7))
    assert n == 1 and torch.equal(server.model.lm_head.weight, weight)
    ids = _prompt(server, "Anything.", None)
    out = _run(server.generate(ids, {"temperature": 1.0, "logprobs": True}, "b"))
    assert server.image_token_id not in out.token_ids and server.video_token_id not in out.token_ids
    assert out.extra_fields["global_steps"] == 7 and _run(server.stats())["weight_updates"] == 1


def test_bad_weights_are_rejected(server):
    with pytest.raises(KeyError, match="does not have"):
        _run(server.load_weights([("model.no_such.weight", torch.zeros(1))]))
    with pytest.raises(ValueError, match="shape"):
        _run(server.load_weights([("lm_head.weight", torch.zeros(3, 3))]))


def test_images_must_match_the_placeholders(server):
    ids = _prompt(server, "Look.", _image(1))
    with pytest.raises(ValueError, match="no image_data"):
        _run(server.generate(ids, {"temperature": 1.0}, "x"))
    with pytest.raises(ValueError, match="image tokens"):
        _run(server.generate(ids, {"temperature": 1.0}, "y", image_data=[_image(1), _image(2)],
                             mm_processor_kwargs=MM_KWARGS))
    with pytest.raises(NotImplementedError):
        _run(server.generate(ids, {"temperature": 1.0}, "z", video_data=[object()]))


def test_abort_rejects_while_paused_and_resume_reopens(server):
    ids = _prompt(server, "Hello.", None)

    async def go():
        result = await server.abort_all_requests(reject_request=True)
        rejected = await server.generate(ids, {"temperature": 1.0}, "late")
        await server.resume_generation()
        served = await server.generate(ids, {"temperature": 1.0}, "after")
        return result, rejected, served

    result, rejected, served = _run(go())
    assert result == {"aborted_count": 0, "request_ids": []}
    assert rejected.stop_reason == "aborted" and rejected.token_ids == []
    assert served.stop_reason == "completed" and served.token_ids
