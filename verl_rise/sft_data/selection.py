"""Choose among verified responses of one prompt: deterministic order, no (near-)duplicates, at most m.

Rule (the same for every source):

1. **Order**: by SHA-256 of ``(seed, prompt_id, text)``, i.e. a seeded random permutation that does not depend on
   the order the responses arrived in (export rows, shard order, endpoint completion order). Random rather than
   shortest-first because self-distillation should reproduce the RL policy's own distribution of correct
   reasoning: shortest-first would bias the SFT set towards terse responses (and longest-first towards rambling
   ones), shifting the response-length distribution that RL settled on.
2. **Distinct**: a response whose whitespace-normalised text equals a kept one is a ``duplicate``; one whose word
   3-gram Jaccard similarity with a kept one is at least ``near_dup_threshold`` is a ``near_duplicate`` (sampled
   responses of one prompt often differ only in a few words; near-copies add weight, not information). Word
   shingles with Jaccard similarity are the usual near-duplicate measure of text dedup (Broder 1997, used by
   MinHash dedup pipelines); with a handful of responses per prompt the exact pairwise value is cheap.
3. **Cap**: the first ``max_per_prompt`` survivors are kept (0: no cap); later ones are ``over_cap``.
"""

from __future__ import annotations

import hashlib
import re

from verl_rise.sft_data.records import DUPLICATE, NEAR_DUPLICATE, OVER_CAP, Candidate, Reject

#: Default word 3-gram Jaccard similarity from which two responses of one prompt count as near-duplicates.
NEAR_DUP_THRESHOLD = 0.9


def order_key(seed: int, prompt_id: str, text: str) -> str:
    """Sort key of a response: hex SHA-256 of the seed, the prompt id and the text."""
    return hashlib.sha256(f"{seed}\0{prompt_id}\0{text}".encode("utf-8")).hexdigest()


def normalized(text: str) -> str:
    """Whitespace-collapsed, stripped text: the key of exact duplicates."""
    return " ".join(text.split())


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    """Set of lower-cased word n-grams (the whole text as one shingle when it has fewer than n words)."""
    words = re.findall(r"\S+", text.lower())
    if len(words) < n:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    """|a & b| / |a | b| (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def select(
    candidates: list[Candidate],
    *,
    max_per_prompt: int,
    seed: int,
    near_dup_threshold: float = NEAR_DUP_THRESHOLD,
) -> tuple[list[Candidate], list[Reject]]:
    """Apply the module's rule to the verified candidates of ONE prompt (each has ``text`` set).

    Args:
        candidates: verified candidates of one prompt and one source.
        max_per_prompt: most kept (0: all distinct ones).
        seed: seed of the order.
        near_dup_threshold: Jaccard similarity in (0, 1] from which a response is a near-duplicate; above 1
            disables the near-duplicate check.

    Returns:
        ``(kept in selection order, rejects)``; ``len(kept) + len(rejects) == len(candidates)``.

    Raises:
        ValueError: ``max_per_prompt < 0``, a candidate without ``text``, or candidates of several prompts.
    """
    if max_per_prompt < 0:
        raise ValueError(f"max_per_prompt must be >= 0, got {max_per_prompt}")
    if len({c.prompt_id for c in candidates}) > 1:
        raise ValueError("select() works on the candidates of one prompt at a time")
    if any(c.text is None for c in candidates):
        raise ValueError("select() needs verified candidates (text set)")
    ordered = sorted(candidates, key=lambda c: order_key(seed, c.prompt_id, c.text))
    kept: list[Candidate] = []
    kept_keys: set[str] = set()
    kept_shingles: list[frozenset] = []
    rejects: list[Reject] = []
    for cand in ordered:
        key = normalized(cand.text)
        if key in kept_keys:
            rejects.append(Reject(cand, DUPLICATE, "same text as a kept response"))
            continue
        sh = shingles(cand.text)
        best = max((jaccard(sh, other) for other in kept_shingles), default=0.0)
        if best >= near_dup_threshold:
            rejects.append(Reject(cand, NEAR_DUPLICATE, f"word 3-gram Jaccard {best:.3f} with a kept response"))
            continue
        if max_per_prompt and len(kept) >= max_per_prompt:
            rejects.append(Reject(cand, OVER_CAP, f"prompt already has {max_per_prompt}"))
            continue
        kept.append(cand)
        kept_keys.add(key)
        kept_shingles.append(sh)
    return kept, rejects
