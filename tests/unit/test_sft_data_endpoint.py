"""The OpenAI-compatible endpoint path against a REAL HTTP server started on 127.0.0.1.

The server speaks the chat-completions wire format and answers with canned REAL expert traces (../shared
expert_traces.jsonl) for the problem it recognises in the request; per problem it can fail with 500/429/400, sleep
past the client's timeout, answer with ``reasoning_content`` or stop at ``length``. It records every request
(headers, decoded images) and the most requests it had in flight at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler

import pyarrow.parquet as pq
import pytest

from tests.support.chat_server import LocalChatServer, read_json, send_json
from tests.support.paths import MATHVISION, require
from tests.support.sft_export_fixture import convert_train, mathvision_prompt_ids, train_rows, write_export
from verl_rise.sft_data import records as R
from verl_rise.sft_data.build import BuildConfig, build
from verl_rise.sft_data.cache import ResponseCache
from verl_rise.sft_data.endpoint import EndpointConfig, query_endpoint, query_endpoint_async
from verl_rise.sft_data.inputs import row_from_dict

PROBLEMS = ("19", "87", "98", "326", "365", "1048", "22", "15")


class StubServer(LocalChatServer):
    """A threaded HTTP server on 127.0.0.1 serving ``POST /v1/chat/completions``.

    Args:
        traces: MATH-V id -> list of real expert traces.
        plan: MATH-V id -> behaviour: ``"ok"``, ``"500-once"``, ``"429-twice"``, ``"slow-once"``,
            ``"slow-always"``, ``"400"``, ``"reasoning"``, ``"length"``.
        delay_s: extra latency of every answer; slow_s: latency of a "slow" answer.
    """

    def __init__(self, traces, plan, *, delay_s=0.0, slow_s=1.0):
        self.traces, self.plan, self.delay_s, self.slow_s = traces, plan, delay_s, slow_s
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.attempts: Counter = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        super().__init__()

    def _problem(self, messages) -> str:
        text = " ".join(p["text"] for m in messages if m["role"] == "user" for p in m["content"] if p["type"] == "text")
        for mv_id, traces in self.traces.items():
            if traces[0]["question"].split("<image")[0].strip()[:60] in text:
                return mv_id
        raise KeyError(f"no canned trace for {text[:80]!r}")

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._answer(h)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        body = read_json(h)
        assert h.path == "/v1/chat/completions"
        mv_id = self._problem(body["messages"])
        sample = body.get("seed", 0)
        images = [hashlib.sha256(base64.b64decode(p["image_url"]["url"].split("base64,", 1)[1])).hexdigest()
                  for m in body["messages"] if m["role"] == "user" for p in m["content"] if p["type"] == "image_url"]
        mimes = [p["image_url"]["url"].split(";", 1)[0] for m in body["messages"] if m["role"] == "user"
                 for p in m["content"] if p["type"] == "image_url"]
        with self.lock:
            self.attempts[(mv_id, sample)] += 1
            attempt = self.attempts[(mv_id, sample)]
            self.requests.append({"id": mv_id, "sample": sample, "attempt": attempt, "images": images,
                                  "mimes": mimes, "auth": h.headers.get("Authorization"), "body": body})
        plan = self.plan.get(mv_id, "ok")
        time.sleep(self.delay_s)
        if plan == "500-once" and attempt == 1:
            return send_json(h, 500, {"error": {"message": "internal error"}})
        if plan == "429-twice" and attempt <= 2:
            return send_json(h, 429, {"error": {"message": "rate limited"}})
        if plan == "400":
            return send_json(h, 400, {"error": {"message": "bad request"}})
        if plan == "slow-always" or (plan == "slow-once" and attempt == 1):
            time.sleep(self.slow_s)
        traces = self.traces[mv_id]
        content = traces[sample % len(traces)]["response"]
        message = {"role": "assistant", "content": content}
        finish = "stop"
        if plan == "reasoning":
            message = {"role": "assistant", "reasoning_content": content,
                       "content": f"\\boxed{{{traces[0]['answer']}}}"}
        if plan == "length":
            finish = "length"
        send_json(h, 200, {"id": f"cmpl-{mv_id}-{sample}", "object": "chat.completion", "model": body["model"],
                            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("endpoint")
    rl = convert_train(tmp)
    rows = train_rows(rl)
    traces = defaultdict(list)
    for line in require(MATHVISION / "expert_traces.jsonl").read_text().splitlines():
        t = json.loads(line)
        if t["id"] in PROBLEMS:
            traces[t["id"]].append(t)
    prompt_rows = {i: row_from_dict(dict(rows[i], passrate=0.0), "hard", rl, 0) for i in PROBLEMS}
    return tmp, rl, dict(traces), prompt_rows


def _cfg(url, **kw):
    base = dict(base_url=url, model="expert-vl", samples_per_prompt=2, max_concurrency=2, timeout_s=0.5,
                max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05, seed=0, api_key_env="SFT_TEST_API_KEY")
    return EndpointConfig(**(base | kw))


def test_retries_timeouts_and_cache(data, tmp_path, monkeypatch):
    _, _, traces, rows = data
    monkeypatch.setenv("SFT_TEST_API_KEY", "test-key")
    plan = {"19": "500-once", "87": "429-twice", "98": "slow-once", "326": "slow-always", "365": "400"}
    asked = [rows[i] for i in ("19", "87", "98", "326", "365", "22")]
    cache = tmp_path / "cache.sqlite"
    with StubServer(traces, plan) as server:
        results = query_endpoint(asked, _cfg(server.base_url), cache, progress=False)
        sent_first = len(server.requests)
    by = {(r.prompt_id, r.sample): r for r in results}
    pid = {i: rows[i].prompt_id for i in PROBLEMS}
    assert len(results) == 2 * len(asked)
    for s in (0, 1):
        assert by[(pid["19"], s)].attempts == 2 and not by[(pid["19"], s)].error  # 500, then OK
        assert by[(pid["87"], s)].attempts == 3 and not by[(pid["87"], s)].error  # 429, 429, then OK
        assert by[(pid["98"], s)].attempts == 2 and not by[(pid["98"], s)].error  # timed out once
        slow = by[(pid["326"], s)]
        assert slow.content is None and slow.attempts == 3 and slow.error.startswith("timeout after 3")
        bad = by[(pid["365"], s)]
        assert bad.attempts == 1 and "HTTP 400" in bad.error  # not retried
        assert by[(pid["22"], s)].attempts == 1
    assert server.attempts[("19", 0)] == 2 and server.attempts[("87", 1)] == 3 and server.attempts[("326", 0)] == 3
    # The canned answers are the real traces, sample i -> trace i (mod the number of traces).
    assert by[(pid["19"], 1)].content == traces["19"][1]["response"]
    # Images travel as data URLs of the row's exact bytes; the key comes from the env var.
    for req in server.requests:
        row = rows[req["id"]]
        assert req["images"] == [hashlib.sha256(im["bytes"]).hexdigest() for im in row.images]
        assert req["mimes"] == ["data:image/jpeg"] or req["mimes"] == ["data:image/png"]
        assert req["auth"] == "Bearer test-key"
        assert req["body"]["messages"][0]["role"] == "system" and req["body"]["temperature"] == 0.7

    # Rerun: everything that succeeded comes from the cache; only the failed requests are asked again.
    ok = sum(not r.error for r in results)
    assert len(ResponseCache(cache)) == ok
    with StubServer(traces, {}) as server2:  # a healthy server now
        again = query_endpoint(asked, _cfg(server2.base_url), cache, progress=False)
    assert sorted((r["id"], r["sample"]) for r in server2.requests) == [("326", 0), ("326", 1), ("365", 0),
                                                                         ("365", 1)]
    assert sum(r.cached for r in again) == ok and all(not r.error for r in again)
    with StubServer(traces, {}) as server3:
        third = query_endpoint(asked, _cfg(server3.base_url), cache, progress=False)
    assert server3.requests == [] and all(r.cached for r in third), "a complete cache must send zero requests"
    assert [r.content for r in third] == [r.content for r in again]
    assert sent_first == sum(r.attempts for r in results)


def test_cache_key_covers_the_request_parameters(data, tmp_path):
    _, _, traces, rows = data
    cache = tmp_path / "cache.sqlite"
    with StubServer(traces, {}) as server:
        query_endpoint([rows["22"]], _cfg(server.base_url), cache, progress=False)
        query_endpoint([rows["22"]], _cfg(server.base_url, temperature=1.0), cache, progress=False)
        query_endpoint([rows["22"]], _cfg(server.base_url, samples_per_prompt=3), cache, progress=False)
    # 2 samples, 2 more at another temperature, then only sample 2 is new.
    assert len(server.requests) == 5


def test_concurrency_stays_within_the_bound(data, tmp_path):
    _, _, traces, rows = data
    asked = [rows[i] for i in ("19", "87", "98", "22", "15")]
    with StubServer(traces, {}, delay_s=0.15) as server:
        results = query_endpoint(asked, _cfg(server.base_url, samples_per_prompt=3, max_concurrency=3, timeout_s=5),
                                 tmp_path / "c.sqlite", progress=False)
    assert len(server.requests) == 15 and all(not r.error for r in results)
    assert server.max_in_flight == 3, f"bound 3, saw {server.max_in_flight} requests in flight"


def test_build_with_endpoint_covers_the_uncovered_hard_prompts(data, tmp_path):
    tmp, rl, traces, rows = data
    pid = mathvision_prompt_ids(rl)
    hard = ("19", "87", "98", "326", "1048", "22", "15")
    write_export(rl, tmp_path / "export", {pid[i]: "hard" for i in hard})
    # The expert file covers 19 and 87 only.
    expert = tmp_path / "expert.jsonl"
    expert.write_text("".join(json.dumps(t) + "\n" for i in ("19", "87") for t in traces[i]))
    plan = {"326": "slow-always", "22": "reasoning", "15": "length"}
    with StubServer(traces, plan) as server:
        cfg = BuildConfig(export_dir=tmp_path / "export", out_dir=tmp_path / "out", expert_files=[expert],
                          expert_key="mathvision", expert_image_root=MATHVISION,
                          endpoint=_cfg(server.base_url, max_attempts=2), progress=False)
        stats = build(cfg)
    asked = {r["id"] for r in server.requests}
    assert asked == {"98", "326", "1048", "22", "15"}, "only hard prompts without an expert-file trajectory"
    ep = stats["candidates"][R.EXPERT_ENDPOINT]
    assert ep["in"] == 10 and ep["in"] == ep["kept"] + ep["rejected"]
    reasons = ep["reject_reasons"]
    assert reasons[R.REQUEST_FAILED] == 2 and reasons[R.TRUNCATED] == 2
    assert reasons[R.WRONG_ANSWER] == 1  # the real qwen-vl-max trace of 1048 boxes option B; the answer is D
    coverage = {json.loads(line)["prompt_id"]: json.loads(line)
                for line in (tmp_path / "out" / "coverage.jsonl").read_text().splitlines()}
    assert coverage[pid["326"]]["reason"] == R.REQUEST_FAILED
    assert coverage[pid["15"]]["reason"] == R.TRUNCATED
    assert coverage[pid["22"]]["by_source"] == {R.EXPERT_ENDPOINT: 1}  # the two samples are one canned trace
    assert coverage[pid["1048"]]["by_source"] == {R.EXPERT_ENDPOINT: 1}
    assert stats["coverage"]["hard"]["covered_by"] == {R.EXPERT_FILE: 2, R.EXPERT_ENDPOINT: 3}
    sft = pq.read_table(tmp_path / "out" / "sft.parquet").to_pylist()
    for row in sft:
        if row["extra_info"]["sft_source"] == R.EXPERT_ENDPOINT:
            assert json.loads(row["extra_info"]["origin"])["model"] == "expert-vl"
    reasoning_row = next(r for r in sft if r["extra_info"]["prompt_id"] == pid["22"])
    assert reasoning_row["messages"][-1]["content"].startswith("<think> " + traces["22"][0]["response"][:30])
    assert stats["endpoint"]["failed"] == 2 and stats["endpoint"]["prompts_asked"] == 5


def test_unreachable_endpoint_fails_cleanly(data, tmp_path):
    import asyncio
    import socket

    _, _, _, rows = data
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = ResponseCache(tmp_path / "c.sqlite")
    results = asyncio.run(query_endpoint_async([rows["22"]], _cfg(f"http://127.0.0.1:{port}/v1", max_attempts=2),
                                               cache, progress=False))
    assert all(r.error and r.attempts == 2 for r in results)
