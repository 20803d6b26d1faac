"""Sampling parameters, logit processing and sampling for the HF-transformers rollout, per request in a batch.

The rollout runs ``model.generate`` in greedy mode with :class:`RowwiseSamplingProcessor` as the last logits
processor. That processor does all the work: it bans the vision placeholder tokens, applies each row's
repetition penalty, temperature, top-k and top-p, samples each row's token itself and returns a one-hot score
row, so transformers' greedy step simply takes the token already drawn. It records the log-probability of every
drawn token under the distribution it was drawn from: vLLM's ``logprobs_mode=processed_logprobs`` (verl's default,
rollout.yaml), which the trainer compares with the actor's recomputed log-probs. Greedy rows (temperature 0,
verl's validation default) take the argmax and report log-probs under the penalised, unwarped distribution.

Order of operations follows vLLM's sampler: penalties, temperature, top-k, top-p; the draw is an exact
inverse-CDF sample (:func:`draw`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import torch

#: vLLM's "disabled" value for top_k (verl passes -1); 0 means the same in transformers.
TOP_K_DISABLED = (-1, 0)


@dataclass(frozen=True)
class SamplingParams:
    """One request's sampling parameters, as verl's agent loop sends them (vLLM names).

    Attributes:
        temperature: > 0 samples from softmax(logits / temperature); 0 is greedy.
        top_k: keep the k most likely tokens; -1 or 0 keeps all.
        top_p: nucleus mass in (0, 1]; 1 keeps all.
        repetition_penalty: > 0; 1 is off. Divides positive logits of already-seen tokens and multiplies
            negative ones (CTRL, Keskar et al. 2019, as in vLLM and transformers).
        max_tokens: most tokens to generate for this request (EOS included).
        logprobs: whether the caller wants per-token log-probs back.
    """

    temperature: float = 1.0
    top_k: int = -1
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    max_tokens: int = 16
    logprobs: bool = True

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    @classmethod
    def from_request(cls, sampling_params: dict[str, Any], default_max_tokens: int,
                     default_repetition_penalty: float = 1.0) -> "SamplingParams":
        """Build from verl's sampling-params dict (agent_loop: temperature, top_p, top_k, repetition_penalty,
        logprobs, optionally max_tokens / max_new_tokens).

        Raises:
            ValueError: for a negative temperature, top_p outside (0, 1], top_k < -1, repetition_penalty <= 0 or
                max_tokens < 1. Unknown keys are ignored (vLLM-only knobs such as ``ignore_eos`` are not supported
                and are rejected if set to a non-default value).
        """
        sp = dict(sampling_params)
        if sp.get("ignore_eos"):
            raise ValueError("the hf rollout does not support ignore_eos=True")
        max_tokens = sp.get("max_tokens", sp.get("max_new_tokens"))
        params = cls(
            temperature=float(sp.get("temperature", 1.0)),
            top_k=int(sp.get("top_k", -1) if sp.get("top_k") is not None else -1),
            top_p=float(sp.get("top_p", 1.0) if sp.get("top_p") is not None else 1.0),
            repetition_penalty=float(sp["repetition_penalty"] if sp.get("repetition_penalty") is not None
                                     else default_repetition_penalty),
            max_tokens=int(max_tokens if max_tokens is not None else default_max_tokens),
            logprobs=bool(sp.get("logprobs", True)),
        )
        params.validate()
        return params

    def validate(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < -1:
            raise ValueError(f"top_k must be -1 (off) or >= 0, got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")


def apply_repetition_penalty(logits: torch.Tensor, seen_ids: torch.Tensor, penalty: torch.Tensor,
                             seen_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Penalise tokens already present in each row's context.

    Args:
        logits: (B, V) float.
        seen_ids: (B, L) long, the tokens of each row's prompt and output so far.
        penalty: (B,) float, 1 = no penalty.
        seen_mask: (B, L) bool, False for padding positions of ``seen_ids`` (ignored); None = all valid.

    Returns:
        (B, V) new tensor.
    """
    out = logits.clone()
    rows = (penalty != 1.0).nonzero(as_tuple=True)[0]
    for r in rows.tolist():
        ids = seen_ids[r] if seen_mask is None else seen_ids[r][seen_mask[r]]
        ids = torch.unique(ids)
        vals = out[r, ids]
        p = penalty[r]
        out[r, ids] = torch.where(vals > 0, vals / p, vals * p)
    return out


def apply_top_k_top_p(logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Mask (to -inf) the tokens outside each row's top-k and outside its top-p nucleus.

    Args:
        logits: (B, V) float, already divided by the temperature.
        top_k: (B,) long; values <= 0 or >= V disable top-k for the row.
        top_p: (B,) float in (0, 1]; 1 disables top-p for the row.

    Returns:
        (B, V) new tensor. The most likely token always survives.
    """
    vocab = logits.shape[-1]
    sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=True)
    ranks = torch.arange(vocab, device=logits.device).expand_as(sorted_logits)
    k = torch.where((top_k <= 0) | (top_k >= vocab), torch.full_like(top_k, vocab), top_k)
    remove_sorted = ranks >= k.unsqueeze(-1)
    probs = torch.softmax(sorted_logits.masked_fill(remove_sorted, float("-inf")), dim=-1)
    # A token is dropped when the mass of strictly more likely tokens already reaches top_p (vLLM/HF nucleus).
    mass_before = torch.cumsum(probs, dim=-1) - probs
    remove_sorted |= mass_before >= top_p.unsqueeze(-1)
    remove_sorted[..., 0] = False
    remove = torch.zeros_like(remove_sorted).scatter(-1, sorted_idx, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def process_logits(logits: torch.Tensor, params: Sequence[SamplingParams], seen_ids: torch.Tensor,
                   seen_mask: Optional[torch.Tensor] = None, banned_ids: Sequence[int] = ()) -> torch.Tensor:
    """Turn raw next-token logits into the logits each row samples from.

    Args:
        logits: (B, V) raw logits of the last position.
        params: B sampling parameters, one per row.
        seen_ids, seen_mask: each row's context, for the repetition penalty (see :func:`apply_repetition_penalty`).
        banned_ids: token ids that may never be drawn (vision placeholders).

    Returns:
        (B, V) float32 logits: banned tokens at -inf, penalised, divided by the temperature (greedy rows: by 1),
        tokens outside top-k / top-p at -inf (greedy rows: no truncation, as in vLLM).

    Raises:
        ValueError: when ``params`` and ``logits`` disagree on the batch size.
    """
    if len(params) != logits.shape[0]:
        raise ValueError(f"{len(params)} sampling params for a batch of {logits.shape[0]} rows")
    x = logits.float().clone()
    if banned_ids:
        x[:, list(banned_ids)] = float("-inf")
    penalty = torch.tensor([p.repetition_penalty for p in params], dtype=x.dtype, device=x.device)
    if bool((penalty != 1.0).any()):
        x = apply_repetition_penalty(x, seen_ids, penalty, seen_mask)
    temperature = torch.tensor([1.0 if p.greedy else p.temperature for p in params], dtype=x.dtype, device=x.device)
    x = x / temperature.unsqueeze(-1)
    # Sorting 152k logits per row per step dominates a CPU decode step: only rows that truncate pay for it.
    rows = [i for i, p in enumerate(params)
            if not p.greedy and (p.top_k not in TOP_K_DISABLED or p.top_p < 1.0)]
    if rows:
        idx = torch.tensor(rows, device=x.device)
        x[idx] = apply_top_k_top_p(
            x[idx],
            torch.tensor([params[i].top_k for i in rows], device=x.device),
            torch.tensor([params[i].top_p for i in rows], dtype=x.dtype, device=x.device),
        )
    return x


Generators = Union[torch.Generator, Sequence[torch.Generator], None]


def uniforms(n: int, generator: Generators, device: Any = None) -> torch.Tensor:
    """(n, 1) uniform draws in [0, 1): from one generator, or one draw from each of ``n`` per-row generators.

    Per-row generators make a row's draws independent of which other requests share its batch (the server batches
    whatever arrives together), so a seeded request samples the same tokens however it was batched.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(n, 1, generator=generator, device=device)
    if len(generator) != n:
        raise ValueError(f"{len(generator)} generators for {n} rows")
    return torch.cat([torch.rand(1, generator=g) for g in generator]).to(device).unsqueeze(-1)


def draw(logits: torch.Tensor, greedy: torch.Tensor, generator: Generators = None) -> torch.Tensor:
    """Draw one token per row: argmax for greedy rows, an exact sample of softmax(logits) for the others.

    Args:
        logits: (B, V) processed logits (:func:`process_logits`).
        greedy: (B,) bool.
        generator: optional torch generator for the uniform draws, or one generator per row (:func:`uniforms`).

    Returns:
        (B,) long token ids.

    Method: inverse-CDF sampling: the first token whose cumulative probability exceeds u ~ U[0, 1). Exact, and on a
    CPU much cheaper than ``torch.multinomial`` or drawing one noise value per vocabulary entry (vLLM's
    exponential race) over a 152k vocabulary. Tokens of probability 0 are never drawn (``right``-side search).
    """
    probs = torch.softmax(logits, dim=-1)
    cdf = torch.cumsum(probs, dim=-1)
    u = uniforms(probs.shape[0], generator, probs.device) * cdf[:, -1:]
    sampled = torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=probs.shape[-1] - 1)
    return torch.where(greedy, logits.argmax(dim=-1), sampled)


class RowwiseSamplingProcessor:
    """A transformers ``LogitsProcessor`` that processes, draws and records each row's next token.

    Use with greedy ``generate`` (:func:`neutral_generation_kwargs`): the returned scores are 0 at the drawn
    token and -inf elsewhere, so transformers keeps exactly that token.

    Args:
        params: one :class:`SamplingParams` per batch row.
        attention_mask: (B, L) prompt attention mask (left padding), so padding never counts as "seen".
        banned_ids: tokens that may never be drawn.
        generator: optional torch generator, or one per row (seeded sampling, :func:`uniforms`).

    Attributes:
        logprobs: one (B,) tensor per generated position: log-prob of the drawn token under the processed logits.
    """

    def __init__(self, params: Sequence[SamplingParams], attention_mask: torch.Tensor, banned_ids: Sequence[int],
                 generator: Generators = None):
        self.params = list(params)
        self.prompt_mask = attention_mask.bool()
        self.banned_ids = list(banned_ids)
        self.generator = generator
        self.greedy = torch.tensor([p.greedy for p in self.params])
        self.logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        gen_len = input_ids.shape[1] - self.prompt_mask.shape[1]
        seen_mask = torch.cat(
            [self.prompt_mask, torch.ones(input_ids.shape[0], gen_len, dtype=torch.bool, device=input_ids.device)],
            dim=1,
        )
        logits = process_logits(scores, self.params, input_ids, seen_mask, self.banned_ids)
        tokens = draw(logits, self.greedy.to(logits.device), self.generator)
        self.logprobs.append(torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1))
        return torch.full_like(logits, float("-inf")).scatter_(-1, tokens.unsqueeze(-1), 0.0)

    def stacked_logprobs(self) -> torch.Tensor:
        """(B, T) log-probs of the T generated positions (rows past their EOS hold values for padding)."""
        if not self.logprobs:
            return torch.zeros(self.prompt_mask.shape[0], 0)
        return torch.stack(self.logprobs, dim=1)


def neutral_generation_kwargs() -> dict[str, Any]:
    """transformers ``generate`` settings that leave all processing and drawing to the processor."""
    # Greedy decoding adds no warpers; repetition_penalty must still be pinned (it is applied in greedy mode too).
    return dict(do_sample=False, num_beams=1, repetition_penalty=1.0)
