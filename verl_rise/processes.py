"""Process-tree clean-up for the verl commands verl-rise starts (main_ppo with its Ray daemons, torchrun ranks)."""

from __future__ import annotations

import subprocess


def kill_process_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` and every process it started, then reap ``proc``.

    Ray's GCS, raylet and workers are descendants of the driver, so killing only the driver would leave them
    running (and holding memory) after a timeout. Children are listed before the parent dies, because they are
    re-parented to init afterwards and no longer findable.

    Args:
        proc: a started process; it may already have exited.
    """
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    proc.kill()
    for child in family:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()
