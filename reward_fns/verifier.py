"""Symbolic equivalence with a hard wall-clock limit that works from any thread and inside Ray actors.

math-verify is the core verifier, but its timeouts rely on ``signal.alarm``: they raise or are disabled
off the main thread, and verl runs reward functions in thread pools inside Ray actors, where users see
0-scores and stalled steps. Here math-verify runs in long-lived subprocesses
(:mod:`reward_fns._verify_worker`) fed over pipes; a comparison that outlives its limit gets its worker
killed (SIGKILL) and replaced, and the call returns "unknown" with reason ``timeout``. Only final verdicts
may be cached by callers; ``timeout`` and the ``verifier_*`` reasons describe the machine, not the answer.

Costs: one worker start imports sympy + math-verify (about 1-2 s, once per worker, not charged to a call's
limit but bounded by ``startup_timeout_s``), then about 0.1 ms of pipe overhead per request.
"""

from __future__ import annotations

import atexit
import collections
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

from reward_fns.limits import (
    DEFAULT_VERIFIER_WORKERS,
    MAX_VERIFIER_WORKERS,
    QUEUE_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    VERIFIER_MEMORY_LIMIT_MB,
)

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


class _Spawner:
    """One long-lived thread that starts every worker of a pool.

    Workers ask the kernel for PR_SET_PDEATHSIG, and Linux sends that signal when the *thread* that forked
    them exits, not the process. A reward called from short-lived thread pools (per-batch executors) would
    otherwise lose its workers, and the answers in flight, whenever such a thread ended. Forking only from
    this thread, which lives as long as the process, keeps the signal's meaning: "the trainer is gone".
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: list[tuple[dict, threading.Event, list]] = []
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._jobs:
                    self._wake.wait()
                popen_kwargs, done, out = self._jobs.pop(0)
            try:
                out.append(subprocess.Popen(**popen_kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who reports it
                out.append(exc)
            done.set()

    def popen(self, **popen_kwargs) -> subprocess.Popen:
        """``subprocess.Popen(**popen_kwargs)`` run on the spawner thread; raises what Popen raised."""
        done, out = threading.Event(), []
        with self._wake:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="reward_fns-verifier-spawner", daemon=True)
                self._thread.start()
            self._jobs.append((popen_kwargs, done, out))
            self._wake.notify()
        done.wait()
        if isinstance(out[0], BaseException):
            raise out[0]
        return out[0]


_SPAWNER = _Spawner()


class _Worker:
    """One verifier subprocess and its line-buffered stdout."""

    def __init__(self, memory_limit_mb: int):
        env = dict(os.environ)
        env["PYTHONPATH"] = _PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
        env["REWARD_FNS_VERIFIER_MEMORY_MB"] = str(memory_limit_mb)
        env["REWARD_FNS_VERIFIER_PARENT_PID"] = str(os.getpid())
        env.setdefault("PYTHONHASHSEED", "0")
        self.proc = _SPAWNER.popen(
            args=[sys.executable, "-u", "-m", "reward_fns._verify_worker"],
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
        """Next line from the worker, None at ``deadline``. Raises EOFError if the worker died.

        A reply already in the pipe at the deadline is still read: under GIL contention the caller may only
        get to look after the deadline, and an answer given in time must not count as a timeout.
        """
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = max(0.0, deadline - time.monotonic())
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


class _Ticket:
    """A caller queued for a worker: it is handed an idle worker, or the right to start a new one."""

    __slots__ = ("worker", "may_start")

    def __init__(self):
        self.worker: _Worker | None = None
        self.may_start = False


class VerifierPool:
    """A bounded pool of verifier subprocesses, safe to share between threads.

    Args:
        max_workers: most subprocesses alive at once (each ~100 MB once sympy is loaded).
        startup_timeout_s: longest wait for a new worker to import math-verify.
        memory_limit_mb: address-space limit of each worker (0 = none).
        queue_timeout_s: longest wait for a free worker (then ``verifier_busy``).

    A request's ``timeout_s`` bounds only the comparison itself: the time from sending it to a ready worker to
    the reply (past it the worker is killed and the reason is ``timeout``). Waiting for a free worker
    (first come, first served) and for a worker's start-up are bounded separately, by ``queue_timeout_s`` and
    ``startup_timeout_s``, so a loaded machine or a slow start-up delays a right answer but does not score it 0.
    A worker that dies is replaced on the next request. Workers die with this process (EOF on stdin, and
    PR_SET_PDEATHSIG on Linux, set up from one long-lived thread so it does not fire when a caller's thread
    ends).
    """

    def __init__(
        self,
        max_workers: int = DEFAULT_VERIFIER_WORKERS,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        memory_limit_mb: int = VERIFIER_MEMORY_LIMIT_MB,
        queue_timeout_s: float = QUEUE_TIMEOUT_S,
    ):
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self.startup_timeout_s = startup_timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.queue_timeout_s = queue_timeout_s
        self._idle: list[_Worker] = []
        self._alive = 0
        self._waiting: collections.deque[_Ticket] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._warned_unavailable = False

    def _acquire(self, give_up_at: float) -> _Worker | None:
        with self._cond:
            if self._closed:
                return None
            if self._idle and not self._waiting:
                return self._idle.pop()
            if self._alive < self.max_workers and not self._waiting:
                self._alive += 1
            else:
                ticket = _Ticket()
                self._waiting.append(ticket)
                while ticket.worker is None and not ticket.may_start:
                    remaining = give_up_at - time.monotonic()
                    if remaining <= 0 or self._closed:
                        self._waiting.remove(ticket)
                        return None
                    self._cond.wait(remaining)
                if ticket.worker is not None:
                    return ticket.worker
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
            elif self._waiting:
                self._waiting.popleft().worker = worker
            else:
                self._idle.append(worker)
            self._cond.notify_all()

    def _discard(self, worker: _Worker | None) -> None:
        if worker is not None:
            worker.kill()
        with self._cond:
            if self._waiting and not self._closed:
                self._waiting.popleft().may_start = True  # the freed slot goes to the first in line
            else:
                self._alive -= 1
            self._cond.notify_all()

    def call(self, message: dict, timeout_s: float) -> Verdict:
        """Run one request; ``timeout_s`` seconds is the hard limit on the comparison itself.

        Returns:
            :class:`Verdict` with the reply's value, or ``value=None`` and the reason. Never raises.
        """
        try:
            worker = self._acquire(time.monotonic() + self.queue_timeout_s)
        except Exception as exc:  # noqa: BLE001 - e.g. fork failure under memory pressure
            return self._unavailable(f"cannot start verifier: {exc}")
        if worker is None:
            return Verdict(None, "verifier_busy")
        try:
            if not worker.ready and not worker.wait_ready(time.monotonic() + self.startup_timeout_s):
                self._discard(worker)
                return self._unavailable("verifier did not start in time")
            reply = worker.request(message, time.monotonic() + max(timeout_s, 0.0))
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
        """Kill idle workers; busy ones are killed when released. Queued callers get ``verifier_busy``."""
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


def _worker_count() -> int:
    """``REWARD_FNS_VERIFIER_WORKERS`` as a pool size; an invalid value falls back with a warning (a reward
    function must not raise in every call of a run because of a typo in an environment variable)."""
    raw = os.environ.get("REWARD_FNS_VERIFIER_WORKERS")
    if raw is None:
        return DEFAULT_VERIFIER_WORKERS
    try:
        size = int(raw.strip())
    except ValueError:
        size = 0
    if 1 <= size <= MAX_VERIFIER_WORKERS:
        return size
    logger.warning(
        "reward_fns: REWARD_FNS_VERIFIER_WORKERS=%r is not an integer in [1, %d]; using %d",
        raw, MAX_VERIFIER_WORKERS, DEFAULT_VERIFIER_WORKERS,
    )
    return DEFAULT_VERIFIER_WORKERS


def default_pool() -> VerifierPool:
    """The process-wide pool (created on first use; re-created in a forked child).

    Size from ``REWARD_FNS_VERIFIER_WORKERS`` (default 2; an invalid value logs a warning and uses the
    default). verl starts ``reward.num_workers`` reward processes, each with its own pool, so the total is
    num_workers x this.
    """
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = VerifierPool(max_workers=_worker_count())
            _pool_pid = os.getpid()
        return _pool


def _close_default_pool() -> None:
    if _pool is not None and _pool_pid == os.getpid():
        _pool.close()


atexit.register(_close_default_pool)
