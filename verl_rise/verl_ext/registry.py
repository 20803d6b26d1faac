"""Registration steps of the verl-rise plugin and what happened when they ran in this process.

Kept apart from :mod:`verl_rise.verl_ext.plugin` (the entry point) so that the modules defining steps import this
module, not the entry point: the entry point imports them, and they must not import it back.

verl 0.9.1 loads entry points inside a ``try``/``except`` that logs failures at DEBUG level only
(verl/__init__.py), so a broken plugin would otherwise fail silently. Every registration step catches its own
error, logs it at WARNING level naming the step, and records it in :data:`STATE`, which
``python -m verl_rise.doctor`` reports.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable

logger = logging.getLogger("verl_rise")


@dataclass
class PluginState:
    """What happened when the plugin loaded in this process.

    Attributes:
        loaded: True once :func:`load` has run (whatever the outcome of each step).
        registered: names of the steps that succeeded.
        errors: ``{step name: "ExceptionType: message"}`` for the steps that failed.
    """

    loaded: bool = False
    registered: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


STATE = PluginState()

_STEPS: list[tuple[str, Callable[[], None]]] = []


def registration_step(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Decorator: run ``fn`` when the plugin loads; a failure is logged and recorded, never raised."""

    def deco(fn: Callable[[], None]) -> Callable[[], None]:
        _STEPS.append((name, fn))
        return fn

    return deco


def load() -> PluginState:
    """Run every registration step once. Returns :data:`STATE`.

    Set ``VERL_RISE_DISABLE=1`` to load nothing (the entry point still imports this module).
    """
    if STATE.loaded:
        return STATE
    STATE.loaded = True
    if os.environ.get("VERL_RISE_DISABLE", "0") == "1":
        logger.info("verl-rise: disabled by VERL_RISE_DISABLE=1")
        return STATE
    for name, fn in _STEPS:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - verl would swallow it; we must surface it instead
            STATE.errors[name] = f"{type(exc).__name__}: {exc}"
            logger.warning("verl-rise plugin: step %r failed to load: %s: %s", name, type(exc).__name__, exc)
        else:
            STATE.registered.append(name)
    return STATE
