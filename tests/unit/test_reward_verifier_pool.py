"""The verifier pool under threads, slow start-ups and bad settings: a right answer must not score 0 because of them."""

import logging
import os
import stat
import sys
import threading
import time

import pytest

from reward_fns import score_accuracy
from reward_fns.accuracy import clear_cache, judge
from reward_fns.verifier import VerifierPool, default_pool

WRAP = "<think>work</think><answer>\\boxed{{{}}}</answer>"


@pytest.fixture
def slow_start(tmp_path, monkeypatch):
    """Make every verifier worker started in this test take ``2 s`` longer to start (a loaded machine)."""
    script = tmp_path / "slow-python"
    script.write_text(f'#!/bin/sh\nsleep 2\nexec "{sys.executable}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sys, "executable", str(script))
    return 2.0


def test_a_timeout_is_not_cached_as_a_verdict():
    clear_cache()
    default_pool().equivalent("1", "1", 60)  # a started worker, so the next call's time is the comparison's
    first = judge("3\\sqrt{3}", "\\sqrt{27}", timeout_s=0.001)
    assert (first.acc, first.reason) == (0.0, "timeout")
    second = judge("3\\sqrt{3}", "\\sqrt{27}", timeout_s=30)
    assert (second.acc, second.reason) == (1.0, "correct")
    # The final verdict is cached: a later call with a tiny limit gets it without the verifier.
    assert judge("3\\sqrt{3}", "\\sqrt{27}", timeout_s=0.001).acc == 1.0


def test_worker_start_up_is_not_charged_to_the_call_deadline(slow_start):
    pool = VerifierPool(max_workers=1)
    try:
        verdict = pool.equivalent("3\\sqrt{3}", "\\sqrt{27}", 1.0)
        assert (verdict.value, verdict.reason) == (True, "")
    finally:
        pool.close()


def test_callers_waiting_for_a_starting_worker_are_not_turned_away(slow_start):
    pool = VerifierPool(max_workers=1)
    verdicts = [None] * 4

    def call(i):
        verdicts[i] = pool.equivalent("2\\sqrt{2}", "\\sqrt{8}", 1.0)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert [(v.value, v.reason) for v in verdicts] == [(True, "")] * 4
    finally:
        pool.close()


def test_workers_outlive_the_thread_that_started_them():
    pool = VerifierPool(max_workers=1)
    try:
        first = []
        t = threading.Thread(target=lambda: first.append(pool.equivalent("2", "\\sqrt{4}", 60)))
        t.start()
        t.join()
        assert first[0].value is True
        (worker,) = pool._idle
        time.sleep(0.5)  # a parent-death signal, if any, is delivered when the thread exits
        assert worker.proc.poll() is None, "the worker died with the thread that started it"
        again = pool.equivalent("3", "\\sqrt{9}", 60)
        assert (again.value, again.reason) == (True, "")
        assert pool._idle == [worker]
    finally:
        pool.close()


def test_a_reward_called_from_short_lived_threads_keeps_its_answers(monkeypatch):
    import reward_fns.verifier as verifier

    monkeypatch.setattr(verifier, "_pool", None)  # a fresh process-wide pool for this test
    clear_cache()
    results = []
    for i in range(3):
        t = threading.Thread(target=lambda i=i: results.append(score_accuracy(WRAP.format(f"\\sqrt{{{(i + 2) ** 2}}}"), str(i + 2))))
        t.start()
        t.join()
    assert [(r.acc, r.reason) for r in results] == [(1.0, "correct")] * 3
    verifier._close_default_pool()


@pytest.mark.parametrize("value", ["two", "", "0", "-3", "2.5"])
def test_a_bad_worker_count_falls_back_with_a_warning(monkeypatch, caplog, value):
    import reward_fns.verifier as verifier

    monkeypatch.setattr(verifier, "_pool", None)
    monkeypatch.setenv("REWARD_FNS_VERIFIER_WORKERS", value)
    with caplog.at_level(logging.WARNING, logger="reward_fns.verifier"):
        pool = default_pool()
    assert pool.max_workers == verifier.DEFAULT_VERIFIER_WORKERS
    assert "REWARD_FNS_VERIFIER_WORKERS" in caplog.text
    monkeypatch.setattr(verifier, "_pool", None)


def test_a_good_worker_count_is_used(monkeypatch):
    import reward_fns.verifier as verifier

    monkeypatch.setattr(verifier, "_pool", None)
    monkeypatch.setenv("REWARD_FNS_VERIFIER_WORKERS", "3")
    assert default_pool().max_workers == 3
    monkeypatch.setattr(verifier, "_pool", None)


def test_compute_score_does_not_raise_on_a_bad_worker_count(monkeypatch):
    import reward_fns.verifier as verifier
    from reward_fns import compute_score

    monkeypatch.setattr(verifier, "_pool", None)
    monkeypatch.setenv("REWARD_FNS_VERIFIER_WORKERS", "two")
    clear_cache()
    r = compute_score("x", WRAP.format("\\sqrt{50}"), "5\\sqrt{2}")
    assert (r["acc"], r["reason"]) == (1.0, "correct")
    verifier._close_default_pool()
    monkeypatch.setattr(verifier, "_pool", None)


def test_workers_are_gone_after_close():
    pool = VerifierPool(max_workers=1)
    assert pool.equivalent("1", "1", 60).value is True
    (worker,) = pool._idle
    pool.close()
    worker.proc.wait(timeout=10)
    assert not os.path.exists(f"/proc/{worker.proc.pid}") or worker.proc.returncode is not None
