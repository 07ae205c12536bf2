"""Empirical Discriminative Gating (EDG): IRC's check, online, during training.

(Moved here from ``irc/edg.py``, which re-exports it: the rollout uses it, IRC does not.)

The paper names it as future work.  A single named Ray actor keeps a sliding
window of recent rollouts (which components fired, and the outcome) shared by
every rollout worker; a component whose weight is non-zero is *gated out* -- its
term dropped from the per-turn reward -- while its correlation with success, in
the direction of its weight, is too low.  Our choices (docs/irc.md):

* hysteresis: an open gate closes when the correlation falls below ``threshold``;
  a closed gate reopens only at ``threshold + hysteresis``, so noise near the
  threshold does not flip it back and forth;
* the gates are over the components of the calibration that scores the run (its component set's
  axis, ``Calibration.components``); episodes are recorded by the names of the components that fired;
* pinned components are never gated: ``edg_pin`` (``--mtgrpo.edg_pin``, default ``gold_exact``,
  the pin of both built-in sets) and whatever
  IRC pinned when it wrote the calibration that scores the run (its provenance records
  ``options.pin``), so a weight IRC keeps fixed is never switched off online;
* every rollout of a group gets the same gates (fetched once per group);
* a lost actor never breaks the rollout: the client keeps the last gates, warns
  once, counts the failures and marks the episodes ``stale`` in the rollout log,
  which records the gates of every episode.  Staleness belongs to the gates: it is
  fixed when they are fetched (an episode whose group got fresh gates is not stale
  because the actor died while it ran, and one that got stale gates stays stale).

Every gate change is kept as an event (and appended to a JSONL file when a path is given).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from openrlhf_mtgrpo.rewards.sets import DEFAULT_SET, component_names, default_pins

ACTOR_NAME = "mtgrpo_edg"
NAMESPACE = "openrlhf_mtgrpo"
DEFAULT_HYSTERESIS = 0.05
logger = logging.getLogger(__name__)


def _axis(calibration=None, components: Optional[Sequence[str]] = None,
          component_set: Optional[str] = None) -> Tuple[Tuple[str, ...], str]:
    """(the ordered components EDG gates, their set's name): given, else the calibration's, else the
    ``tau`` set's (callers that pass neither)."""
    name = component_set or getattr(calibration, "component_set", None) or DEFAULT_SET
    axis = components or getattr(calibration, "components", None) or component_names(name)
    return tuple(axis), name


def _pinned(pinned, components: Optional[Sequence[str]] = None, component_set: Optional[str] = None) -> tuple:
    """``pinned`` (a list or a comma-separated string) checked against the axis; None: the set's own pins."""
    axis, name = _axis(components=components, component_set=component_set)
    if pinned is None:
        return tuple(c for c in default_pins(name) if c in axis)
    if isinstance(pinned, str):
        pinned = [p.strip() for p in pinned.split(",") if p.strip()]
    bad = set(pinned) - set(axis)
    if bad:
        raise ValueError(f"unknown component(s) to pin {sorted(bad)}; known: {', '.join(axis)}")
    return tuple(pinned)


def irc_pins(calibration) -> Tuple[str, ...]:
    """The components IRC pinned when it wrote ``calibration`` (``provenance.options.pin``); () for a
    calibration IRC did not write (the built-ins)."""
    prov = getattr(calibration, "provenance", None) or {}
    opts = prov.get("options") if isinstance(prov, dict) else None
    pins = opts.get("pin") if isinstance(opts, dict) else None
    if pins is None:
        return ()
    if isinstance(pins, str):
        pins = [pins]
    return _pinned(list(pins), *_axis(calibration))


def effective_pins(pinned, calibration=None) -> Tuple[str, ...]:
    """EDG's pins: ``pinned`` (``--mtgrpo.edg_pin``; None = the component set's own pins, ``gold_exact`` for
    ``tau``) and the calibration's IRC pins."""
    own = _pinned(pinned, *_axis(calibration))
    return own + tuple(c for c in irc_pins(calibration) if c not in own)


class GateSet(dict):
    """One episode's gates (component -> open) with ``stale``: whether they are the last known gates kept
    because the actor could not be reached when they were fetched."""

    def __init__(self, gates: Dict[str, bool], stale: bool = False):
        super().__init__(gates)
        self.stale = bool(stale)


class EDGState:
    """The shared window and gates (runs inside the Ray actor; plain Python, testable alone)."""

    def __init__(self, weights: Dict[str, float], window: int = 512, threshold: float = 0.05, min_samples: int = 32,
                 log_path: Optional[str] = None, hysteresis: Optional[float] = None,
                 pinned: Optional[Sequence[str]] = None, calibration_sha256: Optional[str] = None,
                 components: Optional[Sequence[str]] = None, component_set: Optional[str] = None):
        self.components, self.component_set = _axis(components=components, component_set=component_set)
        unknown = sorted(set(weights) - set(self.components))
        if unknown:
            raise ValueError(f"EDG weights name component(s) {unknown} outside its axis ({', '.join(self.components)})")
        self.weights = {c: float(weights.get(c, 0.0)) for c in self.components}
        self.window = collections.deque(maxlen=window)
        self.threshold = float(threshold)
        self.hysteresis = DEFAULT_HYSTERESIS if hysteresis is None else float(hysteresis)
        if self.hysteresis < 0:
            raise ValueError(f"hysteresis must be >= 0, got {self.hysteresis}")
        self.min_samples = min_samples
        self.pinned = _pinned(pinned, self.components, self.component_set)
        self.log_path = log_path
        self.calibration_sha256 = calibration_sha256
        self.open = {c: True for c in self.components}
        self.events: List[Dict] = []
        self.seen = 0

    def record(self, fired, success: float) -> None:
        """One episode: ``fired`` is a vector over :attr:`components` or a mapping component -> fired
        (names outside the axis are refused), ``success`` its outcome."""
        if isinstance(fired, dict):
            unknown = sorted(set(fired) - set(self.components))
            if unknown:
                raise ValueError(f"EDG got component(s) {unknown} outside its axis ({', '.join(self.components)})")
            fired = [float(fired.get(c, 0.0)) for c in self.components]
        elif len(fired) != len(self.components):
            raise ValueError(f"EDG got {len(fired)} values for its {len(self.components)} components")
        self.window.append((list(fired), float(success)))
        self.seen += 1
        self._update()

    def correlations(self) -> Dict[str, Optional[float]]:
        if len(self.window) < 2:
            return {c: None for c in self.components}
        x = np.array([f for f, _ in self.window], dtype=float)
        o = np.array([s for _, s in self.window], dtype=float)
        xc, oc = x - x.mean(0), o - o.mean()
        sx, so = np.sqrt((xc ** 2).sum(0)), np.sqrt((oc ** 2).sum())
        r = (xc * oc[:, None]).sum(0) / np.where(sx * so > 0, sx * so, 1.0)  # Pearson = scipy's point-biserial r
        return {c: (float(r[i]) if sx[i] > 1e-12 and so > 1e-12 else None) for i, c in enumerate(self.components)}

    def _update(self) -> None:
        if len(self.window) < self.min_samples:
            return
        rho = self.correlations()
        for c, w in self.weights.items():
            if w == 0 or rho[c] is None or c in self.pinned:
                continue
            aligned = rho[c] * math.copysign(1, w)
            if self.open[c]:
                should_open = aligned >= self.threshold
            else:
                should_open = aligned >= self.threshold + self.hysteresis
            if should_open != self.open[c]:
                self.open[c] = should_open
                ev = {"time": time.time(), "episodes_seen": self.seen, "window": len(self.window), "component": c,
                      "open": should_open, "rho": rho[c], "weight": w, "threshold": self.threshold,
                      "hysteresis": self.hysteresis, "calibration_sha256": self.calibration_sha256}
                self.events.append(ev)
                if self.log_path:
                    from openrlhf_mtgrpo.jsonl import append_jsonl

                    append_jsonl(self.log_path, ev)

    def gates(self) -> Dict[str, bool]:
        return dict(self.open)

    def get_events(self) -> List[Dict]:
        return list(self.events)


def fired_names(turns) -> Dict[str, float]:
    """{component: 1.0} for each component that fired in some turn of an episode (turn records or dicts
    with 'features')."""
    out: Dict[str, float] = {}
    for t in turns:
        f = t.features if hasattr(t, "features") else t.get("features", {})
        out.update({c: 1.0 for c, v in f.items() if v > 0})
    return out


def fired_vector(turns, components: Optional[Sequence[str]] = None) -> List[float]:
    """:func:`fired_names` as a vector over ``components`` (default: the ``tau`` set's)."""
    fired = fired_names(turns)
    return [fired.get(c, 0.0) for c in _axis(components=components)[0]]


def edg_actor_class():
    import ray

    return ray.remote(num_cpus=0)(EDGState)


class EDGClient:
    """Used by the rollout workers: one shared actor; gates fetched once per group.

    Never raises out of the rollout: when the actor cannot be reached the last gates are
    kept (all open if none were ever fetched), a warning is logged once, and the failure
    is counted and shown in :meth:`episode_record`."""

    def __init__(self, actor, refresh_every: int = 1, timeout: float = 10.0, log_path: Optional[str] = None,
                 keep_groups: int = 4096, components: Optional[Sequence[str]] = None):
        self.actor = actor
        self.components = _axis(components=components)[0]
        self.refresh_every = max(1, int(refresh_every))
        self.timeout = timeout
        self.log_path = log_path
        self._gates: Optional[Dict[str, bool]] = None
        self._groups: "collections.OrderedDict[Any, asyncio.Future]" = collections.OrderedDict()
        self._keep = keep_groups
        self._fetches = 0
        self.stale = False
        self.failures = {"gates": 0, "record": 0}
        self._warned = False

    @classmethod
    def connect(cls, weights: Dict[str, float], window: int = 512, threshold: float = 0.05,
                log_path: Optional[str] = None, refresh_every: int = 1, hysteresis: Optional[float] = None,
                pinned: Optional[Sequence[str]] = None, calibration_sha256: Optional[str] = None,
                timeout: float = 10.0, calibration=None) -> "EDGClient":
        """The client of the shared actor (created by the first caller).  The gates are over the components
        of ``calibration``, the calibration that scores the run (the rollout passes it; without it, the
        ``tau`` set's).  Pinned: ``pinned`` and the components IRC pinned in ``calibration``."""
        axis, set_name = _axis(calibration)
        own = _pinned(pinned, axis, set_name)
        pins = effective_pins(pinned, calibration)
        if set(pins) != set(own):
            logger.info("EDG pins %s (edg_pin %s, and what IRC pinned in calibration %s)", pins, own,
                        getattr(calibration, "name", "?"))
        actor = edg_actor_class().options(name=ACTOR_NAME, namespace=NAMESPACE, get_if_exists=True).remote(
            weights, window, threshold, 32, log_path, hysteresis, pins, calibration_sha256, axis, set_name)
        return cls(actor, refresh_every, timeout=timeout, log_path=log_path, components=axis)

    # -- failures
    def _failed(self, what: str, error: BaseException) -> None:
        self.failures[what] += 1
        first = not self.stale
        self.stale = True
        if not self._warned:
            self._warned = True
            logger.warning("EDG actor unreachable (%s: %s): keeping the last gates %s; later failures are counted, "
                           "not logged", what, error, self._closed(self._gates))
        if first and self.log_path:
            try:
                from openrlhf_mtgrpo.jsonl import append_jsonl

                append_jsonl(self.log_path, {"time": time.time(), "event": "actor_unreachable", "during": what,
                                             "error": repr(error)[:300], "kept_closed": self._closed(self._gates)})
            except OSError:
                pass

    @staticmethod
    def _closed(gates) -> List[str]:
        return sorted(c for c, g in (gates or {}).items() if not g)

    # -- rollout side
    def record(self, turns, success: bool) -> None:
        try:
            ref = self.actor.record.remote(fired_names(turns), float(success))
        except Exception as e:  # noqa: BLE001 - the rollout must go on
            self._failed("record", e)
            return
        try:
            ref.future().add_done_callback(self._record_done)
        except Exception:  # noqa: BLE001 - no future support: failures show up in gates()
            pass

    def _record_done(self, fut) -> None:
        try:
            err = fut.exception()
        except Exception as e:  # noqa: BLE001 - cancelled
            err = e
        if err is not None:
            self._failed("record", err)

    async def _fetch(self) -> GateSet:
        try:
            gates = await asyncio.wait_for(self._remote_gates(), self.timeout)
        except Exception as e:  # noqa: BLE001 - actor died, timed out, network: keep the last gates
            self._failed("gates", e)
            kept = dict(self._gates) if self._gates is not None else {c: True for c in self.components}
            return GateSet(kept, stale=True)
        self._gates, self.stale = dict(gates), False
        return GateSet(gates, stale=False)

    async def _remote_gates(self):
        return await self.actor.gates.remote()

    async def gates(self, group_id: Any = None) -> GateSet:
        """The gates for one episode (a :class:`GateSet`: their staleness is fixed here, at fetch time);
        every episode of ``group_id`` gets the same ones."""
        if group_id is not None and group_id in self._groups:
            got = await asyncio.shield(self._groups[group_id])
            return GateSet(got, got.stale)
        if self._gates is not None and self._fetches % self.refresh_every != 0:
            self._fetches += 1
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(GateSet(self._gates, stale=self.stale))  # the last fetched gates, as stale as they were
        else:
            self._fetches += 1
            fut = asyncio.ensure_future(self._fetch())
        if group_id is not None:
            self._groups[group_id] = fut
            while len(self._groups) > self._keep:
                self._groups.popitem(last=False)
        got = await asyncio.shield(fut)
        return GateSet(got, got.stale)

    def episode_record(self, gates: Optional[Dict[str, bool]]) -> Dict[str, Any]:
        """What the rollout log keeps about EDG for one episode: the closed gates, whether they were stale
        when fetched (a :class:`GateSet` knows; a plain dict falls back to the client's state now), and the
        client's failure counts so far."""
        stale = gates.stale if isinstance(gates, GateSet) else self.stale
        return {"closed": self._closed(gates), "stale": stale, "failures": dict(self.failures)}
