"""The verl commands verl-rise starts as child processes (main_ppo with its Ray daemons, torchrun ranks, the model
merger): stopping a whole process tree, reading the end of a log, and printing a duration.

One home for these, used by the schedule's runner (:mod:`verl_rise.schedule.runner`), the validation-only runs of the
sweep (:mod:`verl_rise.validation_run`) and the tests' command runners.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def kill_process_tree(proc: subprocess.Popen, grace_s: float = 0.0) -> None:
    """Stop ``proc`` and every process it started, then reap ``proc``.

    With ``grace_s > 0`` the tree first gets SIGTERM (so verl can flush a checkpoint or a log line) and SIGKILL only
    after ``grace_s`` seconds; with 0 it is SIGKILLed at once. Ray's GCS, raylet and workers are descendants of the
    driver, so killing only the driver would leave them running (and holding memory). Children are listed before
    the parent dies, because they are re-parented to init afterwards and no longer findable. When ``proc`` leads its
    own process group (``start_new_session=True``), the group is signalled too, which catches processes started
    after the listing.

    Args:
        proc: a started process; it may already have exited.
        grace_s: seconds between SIGTERM and SIGKILL.
    """
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []

    def signal_all(sig: int) -> None:
        for p in family:
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except OSError:
            pass

    if grace_s > 0:
        signal_all(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    signal_all(signal.SIGKILL)
    proc.wait()


def log_tail(path: Path, n: int = 30) -> str:
    """The last ``n`` lines of a log file ('' when it cannot be read)."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def last_log_line(path: Path, limit: int = 100) -> str:
    """What a terminal would show as the log's current last line, at most ``limit`` characters ('' if unreadable).

    Reads only the file's last 4 KiB; tqdm's ``\\r``-separated updates count as lines.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    pieces = [p.strip() for p in tail.replace("\r", "\n").split("\n") if p.strip()]
    line = pieces[-1] if pieces else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_seconds(seconds: float) -> str:
    """A wall time for people: ``42s``, ``3m07s``, ``2h05m``.

    Example:
        >>> format_seconds(187.4), format_seconds(42), format_seconds(7500)
        ('3m07s', '42s', '2h05m')
    """
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
