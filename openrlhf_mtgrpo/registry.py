"""Name -> function registries for the pieces users can swap.

Four registries live here: advantage estimators (looked up by OpenRLHF's experience
maker through our hook, by the name given to ``--algo.advantage.estimator``), tool-call
parsers (looked up by the rollout), domains (tool environments with tasks: ``--mtgrpo.domain``,
``--domain``) and reward-component sets (what a turn's events are worth, as features IRC
calibrates).  Third-party packages can add entries without importing us first through the
entry-point groups ``openrlhf_mtgrpo.advantage_estimators``, ``openrlhf_mtgrpo.tool_call_parsers``,
``openrlhf_mtgrpo.domains`` and ``openrlhf_mtgrpo.reward_components``; entry points are read
on first lookup, in whichever process does the lookup, so Ray workers see them too.

Registering the same object again is harmless, and so is a re-import (a Ray worker importing the
registering module anew makes a new function object with the same module and qualified name); a
different object under a taken name is refused unless ``override=True``.  Where a flag or recipe
names a domain, ``"package.module:attr"`` also works: the attribute is imported and used as the
domain's factory without registering anything.
"""

from __future__ import annotations

import importlib
import threading
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

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
DOMAIN_ENTRY_POINTS = "openrlhf_mtgrpo.domains"
COMPONENT_ENTRY_POINTS = "openrlhf_mtgrpo.reward_components"

#: The domain a command, flag or label that names none means (today's datasets and recipes predate domains).
#: Only a name: the domain itself registers through the entry points like any other (none is built in).
DEFAULT_DOMAIN = "airline"

_lock = threading.RLock()
_estimators: Dict[str, Callable] = {}
_estimator_options: Dict[str, type] = {}  # name -> the options dataclass it declared (register_advantage_estimator)
_parsers: Dict[str, Callable] = {}
_domains: Dict[str, Any] = {}  # name -> factory, or a "module:attr" string not imported yet
_component_sets: Dict[str, Any] = {}
#: where each domain / component set came from, for ``mtgrpo doctor``
_origins: Dict[tuple, str] = {}
_loaded: Dict[str, bool] = {}


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _qualname(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _same(old: Any, new: Any) -> bool:
    """The same entry: the same object, or the same module and qualified name (a re-import of a module-level
    object; lambdas and local functions share qualified names, so for them only the object itself counts)."""
    if old is new:
        return True
    q = _qualname(old)
    return "<" not in q and q == _qualname(new)


def _register(table: Dict[str, Any], kind: str, name: str, fn: Any, override: bool, lazy: bool = False) -> None:
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"{kind} name must be a non-empty string without spaces, got {name!r}")
    if not (callable(fn) or (lazy and isinstance(fn, str) and ":" in fn)):
        raise TypeError(f"{kind} {name!r} must be callable, got {type(fn).__name__}")
    with _lock:
        old = table.get(name)
        if old is not None and not _same(old, fn) and not override:
            raise ValueError(
                f"{kind} {name!r} is already registered to {_qualname(old).replace(':', '.')}; "
                f"pass override=True to replace it (registered {kind}s: {', '.join(sorted(table))})"
            )
        table[name] = fn


def import_attr(spec: str, what: str = "object") -> Any:
    """The attribute named by ``"package.module:attr"`` (``attr`` may be dotted)."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{what} {spec!r} is not of the form 'package.module:attr'")
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{what} {spec!r}: cannot import {module}: {e}") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ImportError(f"{what} {spec!r}: {module} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


#: table -> (entry-point group, kind, loaded lazily as "module:attr", the module registering the built-ins)
def _tables():
    return {
        "estimators": (ESTIMATOR_ENTRY_POINTS, _estimators, "advantage estimator", False,
                       "openrlhf_mtgrpo.advantages.estimators"),
        "parsers": (PARSER_ENTRY_POINTS, _parsers, "tool-call parser", False, "openrlhf_mtgrpo.rollout.tool_parsers"),
        "domains": (DOMAIN_ENTRY_POINTS, _domains, "domain", True, None),
        "components": (COMPONENT_ENTRY_POINTS, _component_sets, "reward components", True, None),
    }


def _ensure_loaded(which: Optional[str] = None) -> None:
    """Load the built-ins and entry points of one table (``which``: estimators, parsers, domains, components;
    None: all), once per process.  Looking up a domain does not import the estimators (torch) and vice versa."""
    for key, (group, table, kind, lazy, module) in _tables().items():
        if which is not None and key != which:
            continue
        with _lock:
            if _loaded.get(key):
                continue
            _loaded[key] = True
            if module is not None:
                importlib.import_module(module)  # registers the built-ins
            for ep in metadata.entry_points(group=group):
                if ep.name in table:
                    continue
                # domains and component sets load on first use: a broken plugin must not stop the others
                _register(table, kind, ep.name, ep.value if lazy else ep.load(), override=False, lazy=lazy)
                dist = getattr(ep, "dist", None)
                _origins[(kind, ep.name)] = (f"entry point {group} of {dist.name} {dist.version}" if dist
                                             else f"entry point {group}") + f" ({ep.value})"


def register_advantage_estimator(name: str, fn: EstimatorFn | None = None, *, options: type | None = None,
                                 override: bool = False):
    """Register ``fn(EstimatorInput) -> EstimatorOutput`` under ``name``.

    Usable directly (``register_advantage_estimator("x", fn)``) or as a decorator
    (``@register_advantage_estimator("x")``).  The name becomes a valid choice of
    ``--algo.advantage.estimator`` / ``--advantage_estimator``.  OpenRLHF's own
    estimator names cannot be taken.  ``options``: a dataclass subclassing
    :class:`~openrlhf_mtgrpo.advantages.options.EstimatorOptions` whose added fields are the
    estimator's own options (flags ``--<name>.<field>``); ``fn`` then receives an instance of it
    as ``inp.options`` (docs/plugin.md).
    """
    if name in UPSTREAM_ESTIMATORS:
        raise ValueError(f"{name!r} is one of OpenRLHF's own estimators and cannot be re-registered")
    if options is not None:
        from openrlhf_mtgrpo.advantages.options import check_options_class

        check_options_class(name, options)

    def deco(f: EstimatorFn) -> EstimatorFn:
        with _lock:
            old = _estimator_options.get(name)
            if options is not None and old is not None and not override and not _same(old, options):
                raise ValueError(f"advantage estimator {name!r} already declared the options {_qualname(old)}; "
                                 "pass override=True to replace them")
            _register(_estimators, "advantage estimator", name, f, override)
            if options is not None:
                _estimator_options[name] = options
            elif override:
                _estimator_options.pop(name, None)
        return f

    return deco(fn) if fn is not None else deco


def advantage_estimator_options(name: str) -> type:
    """The options dataclass of estimator ``name``: the one it registered with ``options=``, else
    :class:`~openrlhf_mtgrpo.advantages.options.EstimatorOptions` (the shared ``--gtpo.*`` options)."""
    get_advantage_estimator(name)
    from openrlhf_mtgrpo.advantages.options import EstimatorOptions

    with _lock:
        return _estimator_options.get(name, EstimatorOptions)


def get_advantage_estimator(name: str) -> EstimatorFn:
    """The estimator registered as ``name``; :class:`UnknownNameError` lists the valid names."""
    _ensure_loaded("estimators")
    with _lock:
        if name not in _estimators:
            raise UnknownNameError(
                f"unknown advantage estimator {name!r}; registered: {', '.join(sorted(_estimators))}; "
                f"OpenRLHF built-ins: {', '.join(UPSTREAM_ESTIMATORS)}"
            )
        return _estimators[name]


def list_advantage_estimators() -> List[str]:
    """Names of the registered (plugin) estimators, sorted."""
    _ensure_loaded("estimators")
    with _lock:
        return sorted(_estimators)


def is_plugin_estimator(name: str) -> bool:
    _ensure_loaded("estimators")
    return name in _estimators


def register_tool_call_parser(name: str, parser: "Callable[[], ToolCallParser] | None" = None, *, override=False):
    """Register a tool-call parser factory (a class or a no-argument callable)."""

    def deco(p):
        _register(_parsers, "tool-call parser", name, p, override)
        return p

    return deco(parser) if parser is not None else deco


def get_tool_call_parser(name: str) -> "ToolCallParser":
    """A new instance of the parser registered as ``name``."""
    _ensure_loaded("parsers")
    with _lock:
        if name not in _parsers:
            raise UnknownNameError(f"unknown tool-call parser {name!r}; registered: {', '.join(sorted(_parsers))}")
        return _parsers[name]()


def list_tool_call_parsers() -> List[str]:
    _ensure_loaded("parsers")
    with _lock:
        return sorted(_parsers)


# -- domains and reward-component sets ------------------------------------------------------------------------


def _resolve(table: Dict[str, Any], kind: str, name: str) -> Any:
    """The registered object (imported now if it was registered as a string)."""
    with _lock:
        entry = table[name]
    if isinstance(entry, str):
        try:
            obj = import_attr(entry, f"{kind} {name!r}")
        except Exception as e:
            raise PluginError(f"{kind} {name!r} ({_origins.get((kind, name), entry)}) could not be loaded: "
                              f"{type(e).__name__}: {e}") from e
        if not callable(obj):
            raise PluginError(f"{kind} {name!r} ({entry}) is not callable: {type(obj).__name__}")
        with _lock:
            if table.get(name) == entry:
                table[name] = obj
        return obj
    return entry


class PluginError(RuntimeError):
    """A registered domain or component set that cannot be loaded or built (the message names the plugin)."""


def _register_plugin(table: Dict[str, Any], kind: str, name: str, factory: Any, override: bool):
    """Register a domain or component-set factory (lazily: a string is imported on first use) and where it
    came from; directly, or as a decorator when ``factory`` is None."""

    def deco(f):
        _register(table, kind, name, f, override, lazy=True)
        with _lock:
            _origins[(kind, name)] = f"registered by {_qualname(f).split(':')[0]}"
        return f

    return deco(factory) if factory is not None else deco


def register_domain(name: str, factory: Any = None, *, override: bool = False):
    """Register a domain under ``name``.

    ``factory(version=None, data_dir=None)`` returns the loaded :class:`~openrlhf_mtgrpo.envs.base.Domain`
    of one version (``None``: the domain's default version); it may carry ``versions`` (the names it
    accepts) and ``default_version``.  Usable directly, as a decorator, or with a ``"module:attr"`` string
    (imported on first use).  The name becomes a valid ``--mtgrpo.domain`` / ``--domain``."""
    return _register_plugin(_domains, "domain", name, factory, override)


def domain_factory(name: str) -> Any:
    """The factory of domain ``name``: a registered name, or a ``"package.module:attr"`` string."""
    _ensure_loaded("domains")
    if ":" in name:
        try:
            return import_attr(name, "domain")
        except Exception as e:
            raise PluginError(f"domain {name!r} could not be loaded: {type(e).__name__}: {e}") from e
    with _lock:
        if name not in _domains:
            raise UnknownNameError(f"unknown domain {name!r}; registered: {', '.join(sorted(_domains))} "
                                   "(or give 'package.module:factory')")
    return _resolve(_domains, "domain", name)


def list_domains() -> List[str]:
    _ensure_loaded("domains")
    with _lock:
        return sorted(_domains)


def register_reward_components(name: str, factory: Any = None, *, override: bool = False):
    """Register a reward-component set under ``name``: ``factory(tool_kinds)`` returns the set for a
    domain's tools (its ordered ``names`` and ``new_episode(task)``; see :mod:`openrlhf_mtgrpo.rewards.sets`).
    Usable directly, as a decorator, or with a ``"module:attr"`` string."""
    return _register_plugin(_component_sets, "reward components", name, factory, override)


def reward_components_factory(name: str) -> Any:
    _ensure_loaded("components")
    with _lock:
        if name not in _component_sets:
            raise UnknownNameError(f"unknown reward-component set {name!r}; registered: "
                                   f"{', '.join(sorted(_component_sets))}")
    return _resolve(_component_sets, "reward components", name)


def list_reward_components() -> List[str]:
    _ensure_loaded("components")
    with _lock:
        return sorted(_component_sets)


def origin(kind: str, name: str) -> str:
    """Where a domain (``kind="domain"``) or component set (``"reward components"``) came from."""
    _ensure_loaded("domains")
    _ensure_loaded("components")
    with _lock:
        return _origins.get((kind, name), "registered at run time")
