"""verl_rise.verl_ext.hf_rollout.sampling: per-row logit processing, the exact sampler and the recording processor."""

import math

import pytest
import torch

from verl_rise.verl_ext.hf_rollout.sampling import (
    RowwiseSamplingProcessor,
    SamplingParams,
    apply_repetition_penalty,
    apply_top_k_top_p,
    draw,
    process_logits,
)


def test_from_request_maps_verl_sampling_dict():
    p = SamplingParams.from_request({"temperature": 0.7, "top_p": 0.9, "top_k": -1, "logprobs": True,
                                     "repetition_penalty": 1.0}, default_max_tokens=12)
    assert (p.temperature, p.top_p, p.top_k, p.max_tokens, p.logprobs, p.greedy) == (0.7, 0.9, -1, 12, True, False)
    assert SamplingParams.from_request({"temperature": 0, "max_tokens": 5}, default_max_tokens=12).max_tokens == 5
    assert SamplingParams.from_request({"temperature": 0}, default_max_tokens=12).greedy


@pytest.mark.parametrize("bad", [{"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"top_k": -2},
                                 {"repetition_penalty": 0}, {"max_tokens": 0}, {"ignore_eos": True}])
def test_from_request_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        SamplingParams.from_request(bad, default_max_tokens=8)


def test_top_k_and_top_p_masks():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(apply_top_k_top_p(logits, torch.tensor([2]), torch.tensor([1.0])))
    assert kept.tolist() == [[True, True, False, False]]
    # Nucleus 0.7: 0.5 alone is not enough, 0.5 + 0.3 reaches it, so two tokens survive.
    kept = torch.isfinite(apply_top_k_top_p(logits, torch.tensor([-1]), torch.tensor([0.7])))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(apply_top_k_top_p(logits, torch.tensor([-1]), torch.tensor([0.01])))
    assert kept.tolist() == [[True, False, False, False]]


def test_repetition_penalty_only_touches_seen_tokens():
    logits = torch.tensor([[2.0, -2.0, 2.0, -2.0]])
    seen = torch.tensor([[0, 1, 1]])
    out = apply_repetition_penalty(logits, seen, torch.tensor([2.0]))
    assert out.tolist() == [[1.0, -4.0, 2.0, -2.0]]
    mask = torch.tensor([[False, True, True]])  # position 0 is padding
    assert apply_repetition_penalty(logits, seen, torch.tensor([2.0]), mask).tolist() == [[2.0, -4.0, 2.0, -2.0]]


def test_process_logits_per_row_temperature_ban_and_greedy():
    logits = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    params = [SamplingParams(temperature=2.0), SamplingParams(temperature=0.0, top_k=1)]
    out = process_logits(logits, params, seen_ids=torch.zeros(2, 1, dtype=torch.long), banned_ids=[2])
    assert out[0, :2].tolist() == [0.5, 1.0] and out[0, 2] == float("-inf")
    # Greedy rows: temperature 1 and no truncation (top_k ignored), banned token still removed.
    assert out[1, :2].tolist() == [1.0, 2.0] and out[1, 2] == float("-inf")


def test_draw_is_an_exact_sample_and_greedy_takes_argmax():
    torch.manual_seed(0)
    probs = torch.tensor([0.6, 0.3, 0.1, 0.0])
    logits = torch.log(probs).expand(20000, 4).clone()
    tokens = draw(logits, torch.zeros(20000, dtype=torch.bool))
    freq = torch.bincount(tokens, minlength=4).float() / 20000
    assert torch.allclose(freq, probs, atol=0.015), freq
    assert freq[3] == 0  # probability-0 tokens are never drawn
    assert draw(logits[:3], torch.ones(3, dtype=torch.bool)).tolist() == [0, 0, 0]


def test_processor_returns_one_hot_of_the_drawn_token_and_records_its_logprob():
    torch.manual_seed(0)
    params = [SamplingParams(temperature=1.0), SamplingParams(temperature=0.5, top_k=2)]
    proc = RowwiseSamplingProcessor(params, attention_mask=torch.ones(2, 3), banned_ids=[4])
    scores = torch.randn(2, 6)
    out = proc(torch.zeros(2, 3, dtype=torch.long), scores)
    chosen = out.argmax(-1)
    assert torch.isfinite(out).sum(-1).tolist() == [1, 1]
    assert 4 not in chosen.tolist()
    expected = torch.log_softmax(process_logits(scores, params, torch.zeros(2, 3, dtype=torch.long), banned_ids=[4]), -1)
    assert torch.allclose(proc.stacked_logprobs()[:, 0], expected.gather(-1, chosen[:, None])[:, 0])
    assert math.isfinite(float(proc.stacked_logprobs().sum()))
