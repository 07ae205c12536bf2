"""Reward-component sets: the named per-turn features a calibration weights and IRC tests.

A *component set* is a plugin (``openrlhf_mtgrpo.registry.register_reward_components``, or the
entry-point group ``openrlhf_mtgrpo.reward_components``): its factory takes the domain's
:class:`~openrlhf_mtgrpo.envs.base.ToolKinds` and returns a :class:`ComponentSet`:

* ``name``: the registered name (calibration files and rollout logs record it);
* ``names``: the ordered component names, the axis of calibrations, IRC and EDG.  They must not depend
  on the tools: :func:`component_names` reads them from the set built for a domain without tools
  (``ToolKinds({})``), unless the factory itself carries a ``names`` tuple;
* ``new_episode(task) -> scorer``: one scorer per episode, whose ``features(turn: TurnInput)`` gives
  every name a value in [0, 1] (:func:`check_features` checks it);
* optionally ``pinned``: the components IRC and EDG keep fixed unless told otherwise.

The package's own sets are ``tau`` (:mod:`openrlhf_mtgrpo.rewards.tau`) and ``tau_dual``
(:mod:`openrlhf_mtgrpo.rewards.dual_control`), registered by entry point in setup.cfg.  Stdlib only at import time.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, Dict, Mapping, Protocol, Tuple, runtime_checkable

from openrlhf_mtgrpo.envs.base import ToolKinds
from openrlhf_mtgrpo.rewards.turns import TurnInput

#: the built-in set, and the one of calibration files and rollout logs written before sets had names
DEFAULT_SET = "tau"


class ComponentSetError(ValueError):
    """An unknown component set, one that cannot be built, or features that break its contract."""


@runtime_checkable
class ComponentScorer(Protocol):
    """Scores the turns of one episode, in order (it may keep state: duplicates, gold already matched)."""

    def features(self, turn: TurnInput) -> Dict[str, float]: ...


@runtime_checkable
class ComponentSet(Protocol):
    """A domain's component set (see the module docstring)."""

    name: str
    names: Tuple[str, ...]

    def new_episode(self, task: Any) -> ComponentScorer: ...


_lock = threading.Lock()
_names_cache: Dict[Tuple[str, int], Tuple[Any, Tuple[str, ...], Tuple[str, ...]]] = {}


def set_factory(name: str) -> Callable[[ToolKinds], ComponentSet]:
    """The factory registered as ``name`` (the package's own sets register by entry point, as plugins do)."""
    from openrlhf_mtgrpo import registry

    try:
        return registry.reward_components_factory(name)
    except registry.UnknownNameError as e:
        raise ComponentSetError(str(e)) from None
    except registry.PluginError as e:
        raise ComponentSetError(str(e)) from None


def check_set(obj: Any, name: str) -> Tuple[str, ...]:
    """The ordered names of ``obj``, a set built for ``name``; :class:`ComponentSetError` if it is not one."""
    names = getattr(obj, "names", None)
    if not isinstance(names, (tuple, list)) or not names:
        raise ComponentSetError(f"component set {name!r}: 'names' must be a non-empty tuple of component names, "
                                f"got {names!r}")
    bad = [n for n in names if not isinstance(n, str) or not n or any(ch.isspace() for ch in n)]
    if bad:
        raise ComponentSetError(f"component set {name!r}: names must be strings without spaces, got {bad!r}")
    if len(set(names)) != len(names):
        raise ComponentSetError(f"component set {name!r}: names repeat: {list(names)}")
    if getattr(obj, "name", None) != name:
        raise ComponentSetError(f"component set registered as {name!r} calls itself {getattr(obj, 'name', None)!r}: "
                                "its name must be the registered one (calibrations and logs record it)")
    if not callable(getattr(obj, "new_episode", None)):
        raise ComponentSetError(f"component set {name!r} has no new_episode(task)")
    pinned = getattr(obj, "pinned", ())
    if not isinstance(pinned, (tuple, list)) or set(pinned) - set(names):
        raise ComponentSetError(f"component set {name!r}: 'pinned' must name some of its components, got {pinned!r}")
    return tuple(names)


def build_component_set(name: str, tool_kinds: ToolKinds) -> ComponentSet:
    """The set ``name`` for a domain with these tools, checked (:func:`check_set`)."""
    factory = set_factory(name)
    try:
        obj = factory(tool_kinds)
    except ComponentSetError:
        raise
    except Exception as e:  # noqa: BLE001 - a plugin's error, named
        raise ComponentSetError(f"component set {name!r} could not be built: {type(e).__name__}: {e}") from e
    check_set(obj, name)
    return obj


def _describe(name: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    factory = set_factory(name)
    key = (name, id(factory))
    with _lock:
        hit = _names_cache.get(key)
    if hit is not None and hit[0] is factory:
        return hit[1], hit[2]
    own = getattr(factory, "names", None)
    if isinstance(own, (tuple, list)) and not callable(own):
        names, pinned = tuple(own), getattr(factory, "pinned", None)
        if pinned is None:  # the factory names its components but not its pins: the set itself says them
            try:
                pinned = getattr(build_component_set(name, ToolKinds({})), "pinned", ())
            except ComponentSetError:
                pinned = ()  # a set that cannot be built without tools: no pins known here
        pinned = tuple(pinned)
    else:
        obj = build_component_set(name, ToolKinds({}))
        names, pinned = tuple(obj.names), tuple(getattr(obj, "pinned", ()))
    with _lock:
        _names_cache[key] = (factory, names, pinned)
    return names, pinned


def component_names(name: str) -> Tuple[str, ...]:
    """The ordered component names of set ``name`` (:class:`ComponentSetError` for an unknown set)."""
    return _describe(name)[0]


def default_pins(name: str) -> Tuple[str, ...]:
    """The components of set ``name`` that IRC and EDG keep fixed by default (its ``pinned``; () if none)."""
    return _describe(name)[1]


def check_features(features: Mapping[str, float], names: Tuple[str, ...], set_name: str = "") -> Dict[str, float]:
    """``features`` in the axis order, as floats; :class:`ComponentSetError` unless every name of ``names``
    is there, no other, each a finite number in [0, 1]."""
    missing = [n for n in names if n not in features]
    extra = sorted(set(features) - set(names))
    if missing or extra:
        raise ComponentSetError(f"component set {set_name!r}: a turn's features must name exactly its components "
                                f"({', '.join(names)}); missing {missing}, unknown {extra}")
    out = {}
    for n in names:
        v = features[n]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.0 <= v <= 1.0:
            raise ComponentSetError(f"component set {set_name!r}: feature {n!r} must be a number in [0, 1], "
                                    f"got {v!r}")
        out[n] = float(v)
    return out


class CheckedScorer:
    """A set's per-episode scorer whose every turn's features are checked (:func:`check_features`): a plugin
    whose scorer misnames a component fails at the episode's first turn, naming the set, the name and the known
    names, instead of training with that component silently at weight 0."""

    def __init__(self, scorer: ComponentScorer, names: Tuple[str, ...], set_name: str):
        self.scorer, self.names, self.set_name = scorer, tuple(names), set_name

    def features(self, turn: TurnInput) -> Dict[str, float]:
        return check_features(self.scorer.features(turn), self.names, self.set_name)


def new_scorer(name: str, tool_kinds: ToolKinds, task: Any, component_set: Any = None) -> CheckedScorer:
    """The scorer of one episode of ``task`` by set ``name`` for a domain with ``tool_kinds`` (or by the set
    already built, ``component_set``), its features checked every turn."""
    cs = component_set if component_set is not None else build_component_set(name, tool_kinds)
    return CheckedScorer(cs.new_episode(task), tuple(cs.names), name)
