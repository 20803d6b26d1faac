"""Value types of a composed verl config, checked against the dataclasses verl builds from it.

Hydra refuses an unknown key at compose time, but not a value of the wrong type: verl turns every section that
carries a ``_target_`` (actor, rollout, optimizer, engine, checkpoint, ...) into its dataclass with
``hydra.utils.instantiate``, which calls the constructor without checking annotations. ``optim.lr=abc`` therefore
composes, passes verl's own start-up checks, and fails in torch once the optimizer is built, after the GPUs were
allocated and the model loaded. This module reads the field annotations of those dataclasses
(``verl/workers/config/*.py``, ``verl/trainer/config/*.py``, ...) and checks each value against them, the way a
static type checker would: an ``int`` fits a ``float``, a YAML list fits a ``list`` or ``tuple``, a ``str`` fits
nowhere else. ``None`` fits every field: verl's own YAML uses ``null`` for "unset" in fields annotated ``int``,
``bool`` or ``str`` (``critic.forward_micro_batch_size``, ``profiler.tool_config.nsys.discrete``). Sections
without ``_target_`` (``data``, ``trainer``) are plain dicts in verl: no types are declared for them, so none are
checked.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import types
import typing
from typing import Any, Literal, Union

_MISSING = "???"
#: (key path, message, the key its value was copied from by interpolation or None) per bad value.
_Found = list[tuple[str, str, "str | None"]]
#: The key an interpolation copies: ``${a.b}`` or ``${oc.select:a.b,default}``.
_REFERENCE = re.compile(r"^\$\{(?:oc\.select:)?([\w.]+)[,}]")


def value_type_errors(cfg: Any) -> list[str]:
    """Every value of ``cfg`` whose type does not fit the annotation of the verl dataclass field it goes to.

    Args:
        cfg: a composed config (``DictConfig``) or a plain dict; interpolations are resolved first.

    Returns:
        one message per bad value, in config order: ``"<key path>=<value> is a <type>; verl's <Class>.<field> is
        a <expected type>"``, with `` (from <interpolation>)`` after the value when it came from one; a value
        copied by interpolation from a key already reported is not reported again. Empty when all fit, and when
        the config cannot be resolved (verl's own checks report that).
    """
    from omegaconf import DictConfig, OmegaConf

    raw = cfg
    if isinstance(cfg, DictConfig):
        try:
            raw = OmegaConf.to_container(cfg, resolve=False)
            cfg = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # an interpolation that does not resolve: verl's checks say which
            return []
    found: _Found = []
    _walk(cfg, raw, "", found)
    reported = {path for path, _, _ in found}
    return [message for _, message, ref in found if ref not in reported]


def _walk(node: Any, raw: Any, path: str, errors: _Found) -> None:
    if isinstance(node, dict):
        raw = raw if isinstance(raw, dict) else {}
        cls = _target_class(node)
        if cls is not None:
            _check_fields(node, raw, cls, path, errors)
        for key, value in node.items():
            _walk(value, raw.get(key), _join(path, key), errors)
    elif isinstance(node, list):
        raw = raw if isinstance(raw, list) and len(raw) == len(node) else [None] * len(node)
        for i, value in enumerate(node):
            _walk(value, raw[i], f"{path}[{i}]", errors)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _target_class(node: dict) -> type | None:
    target = node.get("_target_")
    if not isinstance(target, str) or "." not in target:
        return None
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):  # verl's instantiation reports a bad _target_
        return None
    return cls if isinstance(cls, type) and dataclasses.is_dataclass(cls) else None


def _field_types(cls: type) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not evaluate here: use the raw ones, skip strings below
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
    return {k: v for k, v in hints.items() if k in names and not isinstance(v, str)}


def _check_fields(node: dict, raw: dict, cls: type, path: str, errors: _Found) -> None:
    types_ = _field_types(cls)
    for key, value in node.items():
        if not isinstance(key, str) or key.startswith("_") or key not in types_:
            continue  # unknown keys: Hydra's struct mode and verl's constructor refuse those
        annotation = types_[key]
        if isinstance(value, dict):
            if "_target_" in value:
                continue  # its own class is checked where the walk reaches it
            nested = _dataclass_in(annotation)
            if nested is not None:
                raw_value = raw.get(key)
                _check_fields(value, raw_value if isinstance(raw_value, dict) else {}, nested, _join(path, key),
                              errors)
                continue
        if isinstance(value, str) and value == _MISSING:
            continue
        if not _fits(value, annotation):
            source = raw.get(key)
            interpolated = isinstance(source, str) and "${" in source
            ref = _REFERENCE.match(source) if interpolated else None
            errors.append((_join(path, key),
                           f"{_join(path, key)}={value!r}{f' (from {source})' if interpolated else ''} is "
                           f"{_a(type(value).__name__)}; verl's {cls.__name__}.{key} is {_describe(annotation)}",
                           ref.group(1) if ref else None))


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass an annotation names (directly or inside ``Optional``), else None."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return annotation
    if _is_union(annotation):
        found = [a for a in typing.get_args(annotation) if isinstance(a, type) and dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def _fits(value: Any, annotation: Any) -> bool:
    """Whether a YAML-level value (None, bool, int, float, str, list, dict) fits a type annotation."""
    if annotation is type(None):
        return value is None
    if value is None or annotation is Any or isinstance(annotation, typing.TypeVar):
        return True  # None: see the module docstring
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if _is_union(annotation):
        return any(_fits(value, a) for a in args)
    if origin is Literal:
        return value in args
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    container = origin or annotation
    if container in (list, tuple, set, frozenset) or container in (typing.Sequence, typing.Collection):
        if not isinstance(value, list):
            return False
        if container is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(_fits(v, a) for v, a in zip(value, args))
        return not args or all(_fits(v, args[0]) for v in value)
    if container in (dict, typing.Mapping) or (isinstance(container, type) and dataclasses.is_dataclass(container)):
        return isinstance(value, dict)
    import enum

    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return any(value == m.value or value == m.name for m in annotation)
    # Other classes (torch.dtype, callables, ...) are not spelled in YAML as such: leave them to verl.
    return True


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if _is_union(annotation):
        args = typing.get_args(annotation)
        named = [_name(a) for a in args if a is not type(None)]
        text = " or ".join(named) + (" or None" if type(None) in args else "")
        return _a(text)
    return _a(_name(annotation))


def _name(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _a(text: str) -> str:
    return f"{'an' if text[:1] in 'aeiouAEIOU' else 'a'} {text}"
