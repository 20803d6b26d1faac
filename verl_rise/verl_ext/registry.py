"""Registration steps of the verl-rise plugin and what happened when they ran in this process.

Kept apart from :mod:`verl_rise.verl_ext.plugin` (the entry point) so that the modules defining steps import this
module, not the entry point: the entry point imports them, and they must not import it back.

verl 0.9.1 loads entry points inside a ``try``/``except`` that logs failures at DEBUG level only
(verl/__init__.py), so a broken plugin would otherwise fail silently. Every registration step catches its own
error, logs it at WARNING level naming the step, and records it in :data:`STATE`, which
``python -m verl_rise.doctor`` reports.

Registration steps are added with :func:`registration_step`; each runs exactly once per process.

A step may say which run configurations depend on it (``requested_by``). A run that asks for a feature whose step
failed must not start and silently run without it (verl would simply ignore e.g. ``freeze_vision_tower=true``):
:func:`check_requested` raises for such a configuration. It runs in ``main_ppo``'s driver (the ``require_features``
step of :mod:`verl_rise.verl_ext.plugin` wraps ``verl.utils.config.validate_config``, which ``main_ppo`` calls before building any worker) and in
``verl-rise run``'s pre-flight.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

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
#: step name -> (what the configuration asks for, predicate on a composed verl config).
_REQUESTS: dict[str, tuple[str, Callable[[Any], bool]]] = {}


def registration_step(name: str, requested_by: Optional[Callable[[Any], bool]] = None,
                      feature: str = "") -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Decorator: run ``fn`` when the plugin loads; a failure is logged and recorded, never raised.

    Args:
        name: the step's name (in :data:`STATE` and ``python -m verl_rise.doctor``).
        requested_by: ``predicate(cfg) -> bool``: whether a composed verl config (DictConfig) needs this step.
        feature: how that request reads in an error message, e.g. ``actor_rollout_ref.actor.freeze_vision_tower=true``.
    """

    def deco(fn: Callable[[], None]) -> Callable[[], None]:
        _STEPS.append((name, fn))
        if requested_by is not None:
            _REQUESTS[name] = (feature or name, requested_by)
        return fn

    return deco


def failed_requests(cfg: Any) -> list[str]:
    """One message per feature ``cfg`` asks for whose registration step failed in this process (empty: none)."""
    out = []
    for name, (feature, predicate) in _REQUESTS.items():
        if name not in STATE.errors:
            continue
        try:
            asked = bool(predicate(cfg))
        except Exception:  # noqa: BLE001 - a config without the key does not ask for the feature
            asked = False
        if asked:
            out.append(f"the configuration asks for {feature} but verl-rise's {name!r} registration step failed in "
                       f"this process ({STATE.errors[name]}); see python -m verl_rise.doctor")
    return out


def check_requested(cfg: Any) -> None:
    """Raise when ``cfg`` asks for a feature whose registration step failed (see the module docstring).

    Raises:
        RuntimeError: names each such feature, its step and the step's error.
    """
    problems = failed_requests(cfg)
    if problems:
        raise RuntimeError("verl-rise: " + "; ".join(problems))


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
