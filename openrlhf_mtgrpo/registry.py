"""Name -> function registries for the pieces users can swap.

Two registries live here: advantage estimators (looked up by OpenRLHF's experience
maker through our hook, by the name given to ``--algo.advantage.estimator``) and
tool-call parsers (looked up by the rollout).  Third-party packages can add
entries without importing us first through the ``openrlhf_mtgrpo.advantage_estimators``
and ``openrlhf_mtgrpo.tool_call_parsers`` entry-point groups; entry points are read
on first lookup, in whichever process does the lookup, so Ray workers see them too.
"""

from __future__ import annotations

import threading
from importlib import metadata
from typing import TYPE_CHECKING, Callable, Dict, List

if TYPE_CHECKING:  # pragma: no cover
    from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOutput
    from openrlhf_mtgrpo.rollout.tool_parsers import ToolCallParser

    EstimatorFn = Callable[[EstimatorInput], EstimatorOutput]
else:
    EstimatorFn = Callable

#: Names OpenRLHF 0.11 implements itself; we never shadow them.
UPSTREAM_ESTIMATORS = ("gae", "reinforce", "rloo", "reinforce_baseline", "group_norm", "dr_grpo", "flash_reinforce")

ESTIMATOR_ENTRY_POINTS = "openrlhf_mtgrpo.advantage_estimators"
PARSER_ENTRY_POINTS = "openrlhf_mtgrpo.tool_call_parsers"

_lock = threading.RLock()
_estimators: Dict[str, Callable] = {}
_parsers: Dict[str, Callable] = {}
_loaded = {"builtins": False, "entry_points": False}


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _register(table: Dict[str, Callable], kind: str, name: str, fn: Callable, override: bool) -> None:
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"{kind} name must be a non-empty string without spaces, got {name!r}")
    if not callable(fn):
        raise TypeError(f"{kind} {name!r} must be callable, got {type(fn).__name__}")
    with _lock:
        old = table.get(name)
        if old is not None and old is not fn and not override:
            raise ValueError(
                f"{kind} {name!r} is already registered to {getattr(old, '__module__', '?')}."
                f"{getattr(old, '__qualname__', old)}; pass override=True to replace it"
            )
        table[name] = fn


def _ensure_loaded() -> None:
    with _lock:
        if not _loaded["builtins"]:
            _loaded["builtins"] = True
            import openrlhf_mtgrpo.advantages.estimators  # noqa: F401  (registers the built-ins)
            import openrlhf_mtgrpo.rollout.tool_parsers  # noqa: F401
        if not _loaded["entry_points"]:
            _loaded["entry_points"] = True
            for group, table, kind in (
                (ESTIMATOR_ENTRY_POINTS, _estimators, "advantage estimator"),
                (PARSER_ENTRY_POINTS, _parsers, "tool-call parser"),
            ):
                for ep in metadata.entry_points(group=group):
                    if ep.name not in table:
                        _register(table, kind, ep.name, ep.load(), override=False)


def register_advantage_estimator(name: str, fn: EstimatorFn | None = None, *, override: bool = False):
    """Register ``fn(EstimatorInput) -> EstimatorOutput`` under ``name``.

    Usable directly (``register_advantage_estimator("x", fn)``) or as a decorator
    (``@register_advantage_estimator("x")``).  The name becomes a valid choice of
    ``--algo.advantage.estimator`` / ``--advantage_estimator``.  OpenRLHF's own
    estimator names cannot be taken.
    """
    if name in UPSTREAM_ESTIMATORS:
        raise ValueError(f"{name!r} is one of OpenRLHF's own estimators and cannot be re-registered")

    def deco(f: EstimatorFn) -> EstimatorFn:
        _register(_estimators, "advantage estimator", name, f, override)
        return f

    return deco(fn) if fn is not None else deco


def get_advantage_estimator(name: str) -> EstimatorFn:
    """The estimator registered as ``name``; :class:`UnknownNameError` lists the valid names."""
    _ensure_loaded()
    with _lock:
        if name not in _estimators:
            raise UnknownNameError(
                f"unknown advantage estimator {name!r}; registered: {', '.join(sorted(_estimators))}; "
                f"OpenRLHF built-ins: {', '.join(UPSTREAM_ESTIMATORS)}"
            )
        return _estimators[name]


def list_advantage_estimators() -> List[str]:
    """Names of the registered (plugin) estimators, sorted."""
    _ensure_loaded()
    with _lock:
        return sorted(_estimators)


def is_plugin_estimator(name: str) -> bool:
    _ensure_loaded()
    return name in _estimators


def register_tool_call_parser(name: str, parser: "Callable[[], ToolCallParser] | None" = None, *, override=False):
    """Register a tool-call parser factory (a class or a no-argument callable)."""

    def deco(p):
        _register(_parsers, "tool-call parser", name, p, override)
        return p

    return deco(parser) if parser is not None else deco


def get_tool_call_parser(name: str) -> "ToolCallParser":
    """A new instance of the parser registered as ``name``."""
    _ensure_loaded()
    with _lock:
        if name not in _parsers:
            raise UnknownNameError(f"unknown tool-call parser {name!r}; registered: {', '.join(sorted(_parsers))}")
        return _parsers[name]()


def list_tool_call_parsers() -> List[str]:
    _ensure_loaded()
    with _lock:
        return sorted(_parsers)
