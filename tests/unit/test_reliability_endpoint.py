"""A 200 answer whose message has ``content: null`` (or blank) is not a response (issue 14, item 13): it is retried,
never cached, and counted as a failed request with its reason when every attempt comes back empty.

The endpoint is a real HTTP server on 127.0.0.1 answering from a script (:class:`ScriptedServer`, also used by
tests/test_reliability_expert_coverage.py).
"""

from __future__ import annotations

import threading
from tests.support.chat_server import LocalChatServer, read_json, send_json

from verl_rise.sft_data.cache import ResponseCache, cache_key, params_hash
from verl_rise.sft_data.endpoint import EndpointConfig, chat_messages, query_endpoint, request_body
from verl_rise.sft_data.inputs import PromptRow


def _completion(content, finish_reason="stop"):
    return {"choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}]}


class ScriptedServer(LocalChatServer):
    """``POST /v1/chat/completions`` answering the n-th request (1-based) with ``script(n) -> (status, body)``."""

    def __init__(self, script):
        super().__init__()
        self.script, self.calls, self.lock = script, 0, threading.Lock()

    def handle(self, request):
        read_json(request)
        with self.lock:
            self.calls += 1
            status, body = self.script(self.calls)
        send_json(request, status, body)


ROW = PromptRow(prompt_id="p1", bucket="hard", file="hard.parquet", row=0, data_source="test",
                messages=[{"role": "user", "content": "What is 2 + 3?"}], images=[], ground_truth="5", options=[],
                passrate=0.0, responses=[])


def endpoint_config(url, **kw):
    kw = {"samples_per_prompt": 1, "max_attempts": 3, "backoff_initial_s": 0.01, "backoff_max_s": 0.02,
          "timeout_s": 10.0} | kw
    return EndpointConfig(base_url=url, model="expert", **kw)


def test_null_content_is_retried_and_never_cached(tmp_path):
    cache_path = tmp_path / "c.sqlite"
    # Null content twice, then a real answer: the real answer is kept, and only it is cached.
    with ScriptedServer(lambda n: (200, _completion(None if n <= 2 else "2 + 3 = 5"))) as server:
        [res] = query_endpoint([ROW], endpoint_config(server.base_url), cache_path, progress=False)
    assert (res.content, res.error, res.attempts, server.calls) == ("2 + 3 = 5", "", 3, 3)
    # Null content on every attempt: a failed request with its reason, and nothing cached, so a rerun asks again.
    with ScriptedServer(lambda n: (200, _completion(None))) as server:
        [res] = query_endpoint([ROW], endpoint_config(server.base_url, seed=7), cache_path, progress=False)
        assert res.content is None and res.attempts == 3 and "content" in res.error and "null" in res.error
        [again] = query_endpoint([ROW], endpoint_config(server.base_url, seed=7), cache_path, progress=False)
    assert not again.cached and server.calls == 6
    cache = ResponseCache(cache_path)
    assert len(cache) == 1  # only the real answer of the first server
    cache.close()


def test_a_null_answer_already_in_the_cache_is_asked_again(tmp_path):
    # A cache written before the fix may hold null answers: they must not count as answers.
    cfg = endpoint_config("http://127.0.0.1:1/v1")
    body = request_body(cfg, chat_messages(ROW), 0)
    phash = params_hash(body)
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put(cache_key(cfg.model, ROW.prompt_id, 0, phash), model=cfg.model, prompt_id=ROW.prompt_id, sample=0,
              phash=phash, response={"content": None, "reasoning": None, "finish_reason": "stop"})
    cache.close()
    with ScriptedServer(lambda n: (200, _completion("2 + 3 = 5"))) as server:
        [res] = query_endpoint([ROW], endpoint_config(server.base_url), tmp_path / "c.sqlite", progress=False)
    assert (res.cached, res.content, server.calls) == (False, "2 + 3 = 5", 1)


def test_null_content_cut_at_max_tokens_is_a_truncation_not_retried(tmp_path):
    # A reasoning model that spent max_tokens thinking: asking again gives the same, so say "truncated" at once.
    with ScriptedServer(lambda n: (200, _completion(None, "length"))) as server:
        [res] = query_endpoint([ROW], endpoint_config(server.base_url), tmp_path / "c.sqlite", progress=False)
    assert (res.content, res.finish_reason, res.error, server.calls) == (None, "length", "", 1)
    cache = ResponseCache(tmp_path / "c.sqlite")
    assert len(cache) == 0
    cache.close()


