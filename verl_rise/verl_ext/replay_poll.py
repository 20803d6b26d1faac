"""How often verl's sync trainer looks for finished rollouts: ``VERL_RISE_REPLAY_POLL_S`` seconds instead of 2.

verl 0.9.1's v1 trainer waits for a batch of rollouts (training and validation) by polling its replay buffer and
sleeping ``poll_interval`` seconds between looks (``verl/trainer/ppo/v1/replay_buffer.py:144``, default 2.0, and
``:408`` ``_wait_for_next_poll``); ``trainer_base.py:155-184`` (``_build_replay_buffer``) never passes it and no config
key reaches it. On a GPU a rollout takes minutes and 2 s is noise; in the CPU demo verl's ``timing_s/gen`` read
2.02-2.03 s on every one of 29 steps (a whole poll period) and ``timing_s/testing`` 2.08 s. At 0.05 s: gen median
1.76 s (1.58-1.96), testing 1.41 s, step median 3.51 -> 3.33 s (one demo run each; the rest of gen is generation).

When ``VERL_RISE_REPLAY_POLL_S`` is set (the cpu_tiny recipes set it for every Ray process), the constructor of
``ReplayBuffer`` (and so of its async subclass) is wrapped to set ``poll_interval`` to that many seconds. The wrap is
applied when verl's module is imported (:func:`~verl_rise.verl_ext.import_hooks.patch_on_import`), so processes that never build a trainer do not pay for the
import (about 1 s). Unset, verl is left exactly as it is.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from verl_rise.verl_ext.import_hooks import patch_on_import
from verl_rise.verl_ext.registry import registration_step

ENV = "VERL_RISE_REPLAY_POLL_S"
MODULE = "verl.trainer.ppo.v1.replay_buffer"


def poll_interval_from_env() -> float | None:
    """The interval ``VERL_RISE_REPLAY_POLL_S`` asks for, in seconds; None when unset or empty.

    Raises:
        ValueError: not a number, or not > 0.
    """
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{ENV}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise ValueError(f"{ENV}={raw!r} must be > 0")
    return value


def patch_replay_buffer(module: Any, interval: float) -> None:
    """Wrap ``module.ReplayBuffer.__init__`` to set ``poll_interval = interval`` (idempotent).

    Raises:
        VerlCompatError: the module has no ``ReplayBuffer`` (verl moved it).
    """
    from verl_rise.verl_ext.compat import require_attr

    cls = require_attr(module, "ReplayBuffer", "verl/trainer/ppo/v1/replay_buffer.py:64", __name__)
    original = cls.__init__
    if getattr(original, "_verl_rise_poll", None) is not None:
        return

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.poll_interval = interval

    __init__._verl_rise_poll = interval
    cls.__init__ = __init__


@registration_step("replay_buffer_poll_interval")
def install() -> None:
    """Register the import hook (or patch at once when verl's module is already imported)."""
    interval = poll_interval_from_env()
    if interval is None:
        return
    patch_on_import(MODULE, functools.partial(patch_replay_buffer, interval=interval))
