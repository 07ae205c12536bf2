"""Name -> function registries for the pieces users can swap.

Four registries live here: advantage estimators (looked up by OpenRLHF's experience
maker through our hook, by the name given to ``--algo.advantage.estimator``), tool-call
parsers (looked up by the rollout), domains (tool environments with tasks: ``--mtgrpo.domain``,
``--domain``) and reward-component sets (what a turn's events are worth, as features IRC
calibrates).  Packages add entries without importing us first through the entry-point groups
``openrlhf_mtgrpo.advantage_estimators``, ``openrlhf_mtgrpo.tool_call_parsers``,
``openrlhf_mtgrpo.domains`` and ``openrlhf_mtgrpo.reward_components``; this package's own
estimators, parsers, domains and component sets register there too (setup.cfg): the registry
names none of them.  Entry points are read on first lookup, in whichever process does the lookup,
so Ray workers see them too; each one is imported only when its own name is first looked up, so a
broken plugin fails only its own lookup (a :class:`PluginError` naming it, its error and where that
was raised), and a later lookup tries the import again.  Nothing is imported while the registry's
lock is held.

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

_lock = threading.RLock()
_estimators: Dict[str, Callable] = {}
_estimator_options: Dict[str, type] = {}  # name -> the options dataclass it declared (register_advantage_estimator)
_parsers: Dict[str, Callable] = {}
_domains: Dict[str, Any] = {}  # name -> factory, or a "module:attr" string not imported yet
_component_sets: Dict[str, Any] = {}
#: where each entry came from, by (kind, name), for ``mtgrpo doctor`` and error messages
_origins: Dict[tuple, str] = {}
#: the tables whose entry points have been read (set only once they have been, never before)
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


def _declared_by_same_package(kind: str, name: str, old: Any, new: Any) -> bool:
    """``old`` is the not yet imported ``"module:attr"`` of an entry point, and ``new`` comes from the package that
    declares it (its module registering the name itself as it is imported, perhaps from a submodule)."""
    if not (isinstance(old, str) and callable(new) and _origins.get((kind, name), "").startswith("entry point ")):
        return False
    return old.split(".")[0].split(":")[0] == _qualname(new).split(".")[0].split(":")[0]


def _register(table: Dict[str, Any], kind: str, name: str, fn: Any, override: bool, lazy: bool = False) -> None:
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"{kind} name must be a non-empty string without spaces, got {name!r}")
    if not (callable(fn) or (lazy and isinstance(fn, str) and ":" in fn)):
        raise TypeError(f"{kind} {name!r} must be callable, got {type(fn).__name__}")
    with _lock:
        old = table.get(name)
        if old is not None and not _same(old, fn) and not override \
                and not _declared_by_same_package(kind, name, old, fn):
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


#: table key -> (its entry-point group, the table, the kind of entry it holds)
def _tables():
    return {
        "estimators": (ESTIMATOR_ENTRY_POINTS, _estimators, "advantage estimator"),
        "parsers": (PARSER_ENTRY_POINTS, _parsers, "tool-call parser"),
        "domains": (DOMAIN_ENTRY_POINTS, _domains, "domain"),
        "components": (COMPONENT_ENTRY_POINTS, _component_sets, "reward components"),
    }


_KIND_TABLE = {"advantage estimator": "estimators", "tool-call parser": "parsers", "domain": "domains",
               "reward components": "components"}


def _ensure_loaded(which: Optional[str] = None) -> None:
    """Read the entry points of one table (``which``: estimators, parsers, domains, components; None: all), once
    per process.  Each is recorded as its ``"module:attr"`` string and imported on its first lookup
    (:func:`_resolve`), so nothing is imported here: a broken plugin fails only its own lookup, and looking up a
    domain does not import the estimators (torch) or vice versa.  A table counts as loaded only once this
    has finished."""
    for key, (group, table, kind) in _tables().items():
        if which is not None and key != which or _loaded.get(key):
            continue
        found = list(metadata.entry_points(group=group))  # reads metadata only; outside the lock all the same
        with _lock:
            if _loaded.get(key):
                continue
            for ep in found:
                dist = getattr(ep, "dist", None)
                where = (f"entry point {group} of {dist.name} {dist.version}" if dist
                         else f"entry point {group}") + f" ({ep.value})"
                if ep.name not in table:
                    table[ep.name] = ep.value  # checked when resolved: a bad value fails only this name
                elif not _same(table[ep.name], ep.value):
                    continue  # registered in code under the name first (the first entry point of a name wins)
                _origins.setdefault((kind, ep.name), where)
            _loaded[key] = True


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
    """The estimator registered as ``name``; :class:`UnknownNameError` lists the valid names,
    :class:`PluginError` names a plugin that cannot be imported."""
    _ensure_loaded("estimators")
    with _lock:
        if name not in _estimators:
            raise UnknownNameError(
                f"unknown advantage estimator {name!r}; registered: {', '.join(sorted(_estimators))}; "
                f"OpenRLHF built-ins: {', '.join(UPSTREAM_ESTIMATORS)}"
            )
    return _resolve(_estimators, "advantage estimator", name)


def list_advantage_estimators() -> List[str]:
    """Names of the registered (plugin) estimators, sorted."""
    _ensure_loaded("estimators")
    with _lock:
        return sorted(_estimators)


def is_plugin_estimator(name: str) -> bool:
    """Whether ``name`` is registered here (without importing it)."""
    _ensure_loaded("estimators")
    with _lock:
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
    return _resolve(_parsers, "tool-call parser", name)()


def list_tool_call_parsers() -> List[str]:
    _ensure_loaded("parsers")
    with _lock:
        return sorted(_parsers)


# -- resolving entries, domains and reward-component sets ----------------------------------------------------


def raised_at(exc: BaseException) -> Optional[str]:
    """``file:line`` where ``exc`` (or the exception it was raised from) was raised: the innermost frame of its
    traceback outside the import machinery, or a SyntaxError's own location.  None when there is no traceback."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{exc.filename}:{exc.lineno}"
    where, tb = None, exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<frozen"):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def describe_error(exc: BaseException) -> str:
    """``Type: message (raised at file:line)``: an exception for a message that outlives its traceback (the CLI
    prints only the message)."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    where = raised_at(exc)
    text = f"{type(exc).__name__}: {exc}"
    if root is not exc and str(root) not in text:
        text += f" ({type(root).__name__}: {root})"
    return text + (f" (raised at {where})" if where else "")


def _resolve(table: Dict[str, Any], kind: str, name: str) -> Any:
    """The registered object, imported now if it was registered as a ``"module:attr"`` string (an entry point).
    The import runs without the registry's lock; one that fails raises :class:`PluginError` naming the plugin,
    and leaves the string in place, so the next lookup tries again (after a fix, it works)."""
    with _lock:
        entry = table[name]
    if not isinstance(entry, str):
        return entry
    where = _origins.get((kind, name), entry)
    try:
        obj = import_attr(entry, f"{kind} {name!r}")
    except Exception as e:
        cause = e.__cause__ if isinstance(e, ImportError) and e.__cause__ is not None else e  # import_attr's wrap
        what = f"cannot import {entry.partition(':')[0]}: " if cause is not e else ""
        raise PluginError(f"{kind} {name!r} ({where}) could not be loaded: {what}{describe_error(cause)}") from e
    if not callable(obj):
        raise PluginError(f"{kind} {name!r} ({where}) is not callable: {type(obj).__name__}")
    with _lock:
        current = table.get(name)
        if current == entry:
            table[name] = current = obj
    # the module may have registered the name itself while it was imported (a decorator): that object is the same
    return current if current is not None and not isinstance(current, str) else obj


class PluginError(RuntimeError):
    """A registered plugin (estimator, parser, domain or component set) that cannot be loaded or built (the
    message names the plugin and its error)."""


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
            raise PluginError(f"domain {name!r} could not be loaded: {describe_error(e)}") from e
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
    """Where an entry came from: ``kind`` is ``"advantage estimator"``, ``"tool-call parser"``, ``"domain"`` or
    ``"reward components"``."""
    _ensure_loaded(_KIND_TABLE[kind])
    with _lock:
        return _origins.get((kind, name), "registered at run time")
