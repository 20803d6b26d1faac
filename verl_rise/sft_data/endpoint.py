"""Expert trajectories from any OpenAI-compatible chat endpoint (``POST {base_url}/chat/completions``).

Works with a vLLM or SGLang server of a stronger model (``--base-url http://host:8000/v1``) or a hosted API. Per
hard prompt, ``samples_per_prompt`` separate requests (sample index i = 0..k-1; ``seed + i`` is sent when a seed is
set) so every sample is cached and retried on its own and servers without ``n > 1`` work too.

* Images travel as base64 ``data:`` URLs in ``image_url`` content parts, in the order of the prompt's ``<image>``
  placeholders (the OpenAI vision message format, which vLLM and SGLang accept).
* Concurrency is bounded by an ``asyncio.Semaphore`` held only while a request is on the wire (not during
  back-off sleeps), and by httpx's connection limit.
* Each attempt has a hard deadline (``timeout_s``, also httpx's per-phase timeout). Timeouts, transport errors and
  HTTP 408/409/429/5xx are retried with exponential back-off and jitter (tenacity ``wait_exponential`` +
  ``wait_random``) up to ``max_attempts``; other 4xx fail at once.
* Responses are cached on disk (:mod:`verl_rise.sft_data.cache`) before anything else happens with them; an
  answer without text (``content`` null or blank) is retried like a 5xx and never cached (one cut at
  ``max_tokens`` is reported as truncated without a retry, and not cached either).
* The API key comes from the environment variable ``api_key_env`` (sent as ``Authorization: Bearer``; omitted
  when unset, as a local vLLM server needs none).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random
from tqdm import tqdm

from verl_rise.sft_data.cache import ResponseCache, cache_key, params_hash
from verl_rise.sft_data.inputs import PromptRow

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class EndpointConfig:
    """Where and how to ask.

    Attributes:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: the ``model`` field of each request.
        api_key_env: environment variable holding the API key.
        samples_per_prompt: k, requests per prompt.
        max_concurrency: most requests on the wire at once.
        timeout_s: deadline of one attempt (seconds).
        max_attempts: attempts per request (first try included).
        backoff_initial_s, backoff_max_s: exponential back-off start and cap (seconds; jitter added).
        temperature, top_p, max_tokens: sampling parameters.
        seed: when set, request i of a prompt sends ``seed + i``.
        system_prompt: None keeps the prompt's own system message (the Metis-RISE one); "" drops it; any other
            text replaces it.
        extra_body: more request fields (e.g. ``{"top_k": 20}`` for vLLM).
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    samples_per_prompt: int = 4
    max_concurrency: int = 8
    timeout_s: float = 300.0
    max_attempts: int = 6
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 4096
    seed: int | None = None
    system_prompt: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("samples_per_prompt", "max_concurrency", "max_attempts", "max_tokens"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"endpoint {name} must be >= 1, got {getattr(self, name)!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"endpoint timeout_s must be > 0, got {self.timeout_s!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint base_url must start with http:// or https://, got {self.base_url!r}")


@dataclass
class EndpointResult:
    """One request's outcome.

    Attributes:
        prompt_id, sample: which request.
        content: the assistant message text (None when the request failed).
        reasoning: ``reasoning_content`` (or ``reasoning``) of a reasoning model's message, if any.
        finish_reason: the choice's ``finish_reason`` (``"length"`` means cut at ``max_tokens``).
        error: why the request failed ("" on success).
        cached: True when the response came from the cache (no request sent).
        attempts: requests sent for it in this run (0 when cached).
    """

    prompt_id: str
    sample: int
    content: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    error: str = ""
    cached: bool = False
    attempts: int = 0


class RetryableStatus(Exception):
    """An HTTP status worth retrying (429, 5xx, ...)."""


class FatalStatus(Exception):
    """An HTTP status not worth retrying (400, 401, 404, ...) or a body that is not a chat completion."""


class EmptyContent(Exception):
    """A chat completion whose message has no text (``content`` null, blank or not text): retried, never cached.

    Servers answer 200 with ``content: null`` on transient trouble (an overloaded backend, a tool-call or filter
    path); caching it would make the prompt look answered-and-wrong for good.
    """


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, (RetryableStatus, EmptyContent, httpx.TransportError, TimeoutError))


def has_content(response: dict[str, Any]) -> bool:
    """True when a parsed completion (:func:`parse_completion`) carries response text worth keeping."""
    content = response.get("content")
    return isinstance(content, str) and bool(content.strip())


def image_data_url(image: dict[str, Any]) -> str:
    """A ``data:<mime>;base64,...`` URL of an image value ``{"bytes": ..., "path": ...}`` (MIME type from PIL).

    Raises:
        ValueError: no bytes, or bytes PIL cannot identify.
    """
    data = image.get("bytes")
    if not data:
        raise ValueError("image has no bytes")
    with Image.open(io.BytesIO(data)) as im:
        mime = Image.MIME.get(im.format or "", "image/png")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def chat_messages(row: PromptRow, system_prompt: str | None = None) -> list[dict[str, Any]]:
    """The OpenAI chat messages for a prompt: text parts and ``image_url`` parts in placeholder order.

    Args:
        row: the prompt.
        system_prompt: see :attr:`EndpointConfig.system_prompt`.
    """
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    images = iter(row.images)
    for m in row.messages:
        if m["role"] == "system":
            if system_prompt is None:
                messages.append({"role": "system", "content": m["content"]})
            continue
        parts: list[dict[str, Any]] = []
        for i, segment in enumerate(m["content"].split("<image>")):
            if i > 0:
                parts.append({"type": "image_url", "image_url": {"url": image_data_url(next(images))}})
            if segment.strip():
                parts.append({"type": "text", "text": segment})
        messages.append({"role": m["role"], "content": parts})
    return messages


def request_body(cfg: EndpointConfig, messages: list[dict[str, Any]], sample: int) -> dict[str, Any]:
    """The JSON body of request ``sample`` of a prompt."""
    body = {
        "model": cfg.model,
        "messages": messages,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_tokens": cfg.max_tokens,
        **cfg.extra_body,
    }
    if cfg.seed is not None:
        body["seed"] = cfg.seed + sample
    return body


def parse_completion(data: Any) -> dict[str, Any]:
    """``{"content", "reasoning", "finish_reason"}`` of the first choice of a chat-completion body.

    Raises:
        FatalStatus: the body is not a chat completion with a message.
    """
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise FatalStatus(f"not a chat completion: {str(data)[:200]}") from exc
    content = message.get("content")
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return {"content": content, "reasoning": reasoning, "finish_reason": choice.get("finish_reason")}


async def _one(
    client: httpx.AsyncClient,
    sem: asyncio.Semaphore,
    cfg: EndpointConfig,
    cache: ResponseCache,
    row: PromptRow,
    messages: list[dict[str, Any]],
    sample: int,
) -> EndpointResult:
    body = request_body(cfg, messages, sample)
    phash = params_hash(body)
    key = cache_key(cfg.model, row.prompt_id, sample, phash)
    hit = cache.get(key)
    if hit is not None and has_content(hit):  # caches written before empty answers were refused may hold some
        return EndpointResult(row.prompt_id, sample, hit["content"], hit["reasoning"], hit["finish_reason"],
                              cached=True)
    result = EndpointResult(row.prompt_id, sample)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(cfg.max_attempts),
        # initial * 2**(n-1) capped at backoff_max_s, plus up to backoff_initial_s of jitter.
        wait=wait_exponential(multiplier=cfg.backoff_initial_s, max=cfg.backoff_max_s)
        + wait_random(0, cfg.backoff_initial_s),
        retry=retry_if_exception(_retryable),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                result.attempts = attempt.retry_state.attempt_number
                async with sem:
                    async with asyncio.timeout(cfg.timeout_s):
                        resp = await client.post("/chat/completions", json=body)
                if resp.status_code in RETRY_STATUSES:
                    raise RetryableStatus(f"HTTP {resp.status_code}: {resp.text[:200]}")
                if resp.status_code >= 400:
                    raise FatalStatus(f"HTTP {resp.status_code}: {resp.text[:200]}")
                try:
                    parsed = parse_completion(resp.json())
                except ValueError as exc:
                    raise FatalStatus(f"body is not JSON: {exc}") from exc
                # Cut at max_tokens before any text (a reasoning model that spent them thinking): asking again
                # gives the same, so it is reported as truncated at once, below.
                if not has_content(parsed) and parsed["finish_reason"] != "length":
                    shown = json.dumps(parsed["content"])[:80]
                    raise EmptyContent(f"HTTP {resp.status_code} with message content {shown} "
                                       f"(finish_reason {parsed['finish_reason']!r})")
    except (RetryableStatus, FatalStatus, EmptyContent, httpx.HTTPError, TimeoutError) as exc:
        kind = "timeout" if isinstance(exc, (TimeoutError, httpx.TimeoutException)) else type(exc).__name__
        result.error = f"{kind} after {result.attempts} attempt(s): {exc}"
        return result
    if has_content(parsed):
        cache.put(key, model=cfg.model, prompt_id=row.prompt_id, sample=sample, phash=phash, response=parsed)
    result.content, result.reasoning = parsed["content"], parsed["reasoning"]
    result.finish_reason = parsed["finish_reason"]
    return result


async def query_endpoint_async(
    rows: list[PromptRow], cfg: EndpointConfig, cache: ResponseCache, *, progress: bool = True
) -> list[EndpointResult]:
    """Ask the endpoint ``cfg.samples_per_prompt`` times for each row (cached answers are not asked again).

    Returns:
        one :class:`EndpointResult` per (row, sample), in row order then sample order. Never raises for a failed
        request (its ``error`` says why); a row whose images cannot be encoded gets that error on all its samples.
    """
    headers = {"Content-Type": "application/json"}
    api_key = os.environ.get(cfg.api_key_env)
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    sem = asyncio.Semaphore(cfg.max_concurrency)
    limits = httpx.Limits(max_connections=cfg.max_concurrency, max_keepalive_connections=cfg.max_concurrency)
    results: list[EndpointResult] = []
    async with httpx.AsyncClient(base_url=cfg.base_url.rstrip("/"), headers=headers, limits=limits,
                                 timeout=httpx.Timeout(cfg.timeout_s)) as client:
        tasks = []
        for row in rows:
            try:
                messages = chat_messages(row, cfg.system_prompt)
            except ValueError as exc:
                results += [EndpointResult(row.prompt_id, s, error=f"bad image: {exc}")
                            for s in range(cfg.samples_per_prompt)]
                continue
            tasks += [asyncio.ensure_future(_one(client, sem, cfg, cache, row, messages, s))
                      for s in range(cfg.samples_per_prompt)]
        with tqdm(total=len(tasks), desc=f"endpoint {cfg.model}", unit="req", disable=not progress) as bar:
            for fut in asyncio.as_completed(tasks):
                results.append(await fut)
                bar.update(1)
    order = {row.prompt_id: i for i, row in enumerate(rows)}
    results.sort(key=lambda r: (order.get(r.prompt_id, len(order)), r.sample))
    return results


def query_endpoint(
    rows: list[PromptRow], cfg: EndpointConfig, cache_path: str | os.PathLike, *, progress: bool = True
) -> list[EndpointResult]:
    """Synchronous wrapper of :func:`query_endpoint_async` with the cache at ``cache_path``."""
    cache = ResponseCache(cache_path)
    try:
        return asyncio.run(query_endpoint_async(rows, cfg, cache, progress=progress))
    finally:
        cache.close()
