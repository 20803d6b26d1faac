"""Symbolic equivalence with a hard wall-clock limit that works from any thread and inside Ray actors.

math-verify is the core verifier, but its timeouts rely on ``signal.alarm``: they raise or are disabled
off the main thread, and verl runs reward functions in thread pools inside Ray actors, where users see
0-scores and stalled steps. Here math-verify runs in long-lived subprocesses
(:mod:`reward_fns._verify_worker`) fed over pipes; a comparison that outlives its limit gets its worker
killed (SIGKILL) and replaced, and the call returns "unknown" with reason ``timeout``.

Costs: one worker start imports sympy + math-verify (about 1-2 s, once per worker, not charged to a call's
limit but bounded by ``startup_timeout_s``), then about 0.1 ms of pipe overhead per request.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from reward_fns.limits import STARTUP_TIMEOUT_S, VERIFIER_MEMORY_LIMIT_MB

logger = logging.getLogger(__name__)

# The directory holding the reward_fns package, so that the worker imports this very copy even when the
# package was loaded by file path and is not installed.
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Verdict:
    """Result of one verification request.

    Attributes:
        value: the answer (``bool`` for ``equiv``, ``list[bool]`` for ``options``), or None when unknown.
        reason: "" when known, else ``timeout``, ``verifier_busy``, ``verifier_crashed``,
            ``verifier_unavailable`` or ``parse_error: ...``.
    """

    value: object
    reason: str = ""


class _Worker:
    """One verifier subprocess and its line-buffered stdout."""

    def __init__(self, memory_limit_mb: int):
        env = dict(os.environ)
        env["PYTHONPATH"] = _PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
        env["REWARD_FNS_VERIFIER_MEMORY_MB"] = str(memory_limit_mb)
        env.setdefault("PYTHONHASHSEED", "0")
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "reward_fns._verify_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
            # Own session: a Ctrl-C meant for the trainer must not kill workers mid-reply.
            start_new_session=True,
        )
        self._buf = b""
        self.ready = False

    def _read_line(self, deadline: float) -> bytes | None:
        """Next line from the worker, None at ``deadline``. Raises EOFError if the worker died."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("verifier worker exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def wait_ready(self, deadline: float) -> bool:
        if self.ready:
            return True
        line = self._read_line(deadline)
        self.ready = line is not None and json.loads(line).get("ready") is True
        return self.ready

    def request(self, message: dict, deadline: float) -> dict | None:
        """Send one request; the reply, or None when ``deadline`` passes first. Raises EOFError/OSError."""
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        line = self._read_line(deadline)
        return None if line is None else json.loads(line)

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - already gone
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except Exception:  # noqa: BLE001
                pass


class VerifierPool:
    """A bounded pool of verifier subprocesses, safe to share between threads.

    Args:
        max_workers: most subprocesses alive at once (each ~100 MB once sympy is loaded).
        startup_timeout_s: longest wait for a new worker to import math-verify.
        memory_limit_mb: address-space limit of each worker (0 = none).

    A request waits for a free worker for at most its own ``timeout_s`` (then ``verifier_busy``), and for the
    reply for at most ``timeout_s`` (then the worker is killed: ``timeout``). A worker that dies is replaced on
    the next request. Workers also die with this process (EOF on stdin, and PR_SET_PDEATHSIG on Linux).
    """

    def __init__(
        self,
        max_workers: int = 2,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        memory_limit_mb: int = VERIFIER_MEMORY_LIMIT_MB,
    ):
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self.startup_timeout_s = startup_timeout_s
        self.memory_limit_mb = memory_limit_mb
        self._idle: list[_Worker] = []
        self._alive = 0
        self._cond = threading.Condition()
        self._closed = False
        self._warned_unavailable = False

    def _acquire(self, deadline: float) -> _Worker | None:
        with self._cond:
            while True:
                if self._closed:
                    return None
                if self._idle:
                    return self._idle.pop()
                if self._alive < self.max_workers:
                    self._alive += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
        try:
            return _Worker(self.memory_limit_mb)
        except Exception:
            self._discard(None)
            raise

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if self._closed:
                worker.kill()
                self._alive -= 1
            else:
                self._idle.append(worker)
            self._cond.notify()

    def _discard(self, worker: _Worker | None) -> None:
        if worker is not None:
            worker.kill()
        with self._cond:
            self._alive -= 1
            self._cond.notify()

    def call(self, message: dict, timeout_s: float) -> Verdict:
        """Run one request with a hard limit of ``timeout_s`` seconds on waiting for a worker and on the reply.

        Returns:
            :class:`Verdict` with the reply's value, or ``value=None`` and the reason. Never raises.
        """
        deadline = time.monotonic() + timeout_s
        try:
            worker = self._acquire(deadline)
        except Exception as exc:  # noqa: BLE001 - e.g. fork failure under memory pressure
            return self._unavailable(f"cannot start verifier: {exc}")
        if worker is None:
            return Verdict(None, "verifier_busy")
        try:
            if not worker.ready and not worker.wait_ready(time.monotonic() + self.startup_timeout_s):
                self._discard(worker)
                return self._unavailable("verifier did not start in time")
            reply = worker.request(message, max(deadline, time.monotonic() + 1e-3))
        except (EOFError, OSError, ValueError) as exc:
            self._discard(worker)
            if not worker.ready:
                return self._unavailable(f"verifier failed to start: {exc}")
            return Verdict(None, "verifier_crashed")
        if reply is None:
            self._discard(worker)
            return Verdict(None, "timeout")
        self._release(worker)
        if "error" in reply:
            return Verdict(None, f"parse_error: {reply['error']}")
        if "equal" in reply:
            return Verdict(bool(reply["equal"]))
        if "matches" in reply:
            return Verdict([bool(x) for x in reply["matches"]])
        return Verdict(None, f"parse_error: unexpected reply {reply!r}")

    def _unavailable(self, detail: str) -> Verdict:
        if not self._warned_unavailable:
            self._warned_unavailable = True
            logger.warning("reward_fns: symbolic verifier unavailable (%s); such answers score 0", detail)
        return Verdict(None, "verifier_unavailable")

    def equivalent(self, gold: str, pred: str, timeout_s: float) -> Verdict:
        """Whether ``pred`` is mathematically equivalent to ``gold`` (math-verify's ``verify``)."""
        return self.call({"op": "equiv", "gold": gold, "pred": pred}, timeout_s)

    def match_options(self, pred: str, options: list[str], timeout_s: float) -> Verdict:
        """For each option text, whether ``pred`` is equivalent to it; one request for all options."""
        return self.call({"op": "options", "pred": pred, "options": list(options)}, timeout_s)

    def close(self) -> None:
        """Kill idle workers; busy ones are killed when released."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._alive -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.kill()


_pool: VerifierPool | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def default_pool() -> VerifierPool:
    """The process-wide pool (created on first use; re-created in a forked child).

    Size from ``REWARD_FNS_VERIFIER_WORKERS`` (default 2). verl starts ``reward.num_workers`` reward
    processes, each with its own pool, so the total is num_workers x this.
    """
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            size = int(os.environ.get("REWARD_FNS_VERIFIER_WORKERS", "2"))
            _pool = VerifierPool(max_workers=max(1, size))
            _pool_pid = os.getpid()
        return _pool


def _close_default_pool() -> None:
    if _pool is not None and _pool_pid == os.getpid():
        _pool.close()


atexit.register(_close_default_pool)
