"""Empirical Discriminative Gating (EDG): IRC's rule, online, during training.

(Moved here from ``irc/edg.py``, which re-exports it: the rollout uses it, IRC does not.)

The paper names it as future work.  A single named Ray actor keeps a window of recent rollouts (which
components fired, and the outcome) shared by every rollout worker; a component whose weight is non-zero
is *gated out* -- its term dropped from the per-turn reward -- on evidence that it works against its
weight, or has no effect, and reopened only on evidence for its weight.  Our choices (docs/irc.md):

* one evidence rule for IRC and EDG (:mod:`openrlhf_mtgrpo.rewards.evidence`): Fisher's exact test of the
  window's 2x2 table (fired / not x success / failure) with Bonferroni over the gated components judged in
  the window, a bootstrap interval at the corrected level, IRC's equivalence margin delta and its
  minimum firing counts (a component that fired in, or was absent from, fewer than 10 episodes of the
  window is left as it is).  On every ``window``-th episode the last ``window`` episodes are judged, so a
  run's decisions see disjoint windows and, on a window, EDG closes exactly the gates of the components
  whose weight ``mtgrpo irc analyze`` (at the same confidence and family) would change;
* ``confidence`` (``--mtgrpo.edg_confidence``, 0.999) is family-wise per window: noise changes some gate in at
  most 1 - confidence of the windows, at most (1 - confidence) * N / window times in N episodes (0.2 per
  100,000 at the defaults).  IRC's 0.99 is for one analysis; EDG judges every window of a run.  The old
  correlation threshold and its hysteresis are gone: a gate between the two kinds of evidence stays as it
  is, which is the hysteresis;
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

Every gate change is kept as an event with its evidence (and appended to a JSONL file when a path is given).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from openrlhf_mtgrpo.rewards.evidence import (
    DEFAULT_BOOTSTRAP, DEFAULT_DELTA, DEFAULT_MIN_ROLLOUTS, bootstrap_draws, decide, fisher_p, gate_verdict,
    null_possible, phi, table_bootstrap_ci, testable,
)
from openrlhf_mtgrpo.rewards.sets import DEFAULT_SET, component_names, default_pins

ACTOR_NAME = "mtgrpo_edg"
NAMESPACE = "openrlhf_mtgrpo"
#: the episodes each decision judges (``--mtgrpo.edg_window``)
DEFAULT_WINDOW = 512
#: family-wise per window (``--mtgrpo.edg_confidence``): noise changes some gate in at most 0.1% of the windows
DEFAULT_CONFIDENCE = 0.999
logger = logging.getLogger(__name__)


def option_problems(window: Any = DEFAULT_WINDOW, confidence: Any = DEFAULT_CONFIDENCE,
                    hysteresis: Any = None, threshold: Any = None) -> List[str]:
    """What is wrong with EDG's options (``--mtgrpo.edg_window``, ``--mtgrpo.edg_confidence``, and the removed
    ``--mtgrpo.edg_threshold`` and ``--mtgrpo.edg_hysteresis``); [] when nothing is."""
    out = []
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2 * DEFAULT_MIN_ROLLOUTS:
        out.append(f"--mtgrpo.edg_window must be an integer >= {2 * DEFAULT_MIN_ROLLOUTS} (a component is judged "
                   f"only with {DEFAULT_MIN_ROLLOUTS} episodes with it and as many without), got {window!r}")
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        c = float("nan")
    if not 0.5 <= c < 1:
        out.append(f"--mtgrpo.edg_confidence is EDG's family-wise confidence per window, in [0.5, 1); "
                   f"got {confidence!r}")
    if threshold is not None:
        out.append("--mtgrpo.edg_threshold was removed (it was a correlation threshold, 0.05 by default): EDG now "
                   "changes a gate only on evidence at --mtgrpo.edg_confidence (0.999 by default); leave it unset")
    if hysteresis is not None:
        out.append("--mtgrpo.edg_hysteresis was removed: a gate closes on evidence against its weight (or of no "
                   "effect) and reopens only on evidence for it, and stays as it is in between; leave it unset")
    return out


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
    """The shared window and gates (runs inside the Ray actor; plain Python, testable alone).

    Episodes are recorded one by one; at every ``window``-th episode the gates are decided on the last
    ``window`` episodes (disjoint windows) by IRC's rule (:mod:`openrlhf_mtgrpo.rewards.evidence`): a gated
    component (non-zero weight, not pinned) that fired in at least ``min_rollouts`` of them and was absent
    from as many is judged, the m such components together at ``confidence`` (family-wise); an open gate
    closes on evidence against its weight or of no effect (|rho| within ``delta``), a closed one reopens
    only on evidence for it, anything else leaves a gate as it is.  A record costs a row copy; a decision
    a few table sums, Fisher's exact test only where a gate could change, resamples only where the p-value
    already passes (or evidence of no effect is possible)."""

    def __init__(self, weights: Dict[str, float], window: int = DEFAULT_WINDOW,
                 confidence: float = DEFAULT_CONFIDENCE, min_rollouts: int = DEFAULT_MIN_ROLLOUTS,
                 log_path: Optional[str] = None, pinned: Optional[Sequence[str]] = None,
                 calibration_sha256: Optional[str] = None, components: Optional[Sequence[str]] = None,
                 component_set: Optional[str] = None, delta: float = DEFAULT_DELTA, seed: int = 0):
        self.components, self.component_set = _axis(components=components, component_set=component_set)
        unknown = sorted(set(weights) - set(self.components))
        if unknown:
            raise ValueError(f"EDG weights name component(s) {unknown} outside its axis ({', '.join(self.components)})")
        problems = option_problems(window=window, confidence=confidence)
        if not (math.isfinite(delta) and 0 <= delta < 1):
            problems.append(f"EDG's delta must be in [0, 1), got {delta}")
        if int(min_rollouts) < 1:
            problems.append(f"EDG's min_rollouts must be >= 1, got {min_rollouts}")
        if problems:
            raise ValueError("; ".join(problems))
        self.weights = {c: float(weights.get(c, 0.0)) for c in self.components}
        self.window = int(window)
        self.confidence = float(confidence)
        self.min_rollouts = int(min_rollouts)
        self.delta = float(delta)
        self.pinned = _pinned(pinned, self.components, self.component_set)
        self.log_path = log_path
        self.calibration_sha256 = calibration_sha256
        self.open = {c: True for c in self.components}
        self.events: List[Dict] = []
        self.seen = 0
        self.decisions = 0
        #: the gated components: a term with weight 0 has nothing to drop; a pinned one is never dropped
        self.gated = tuple(c for c in self.components if self.weights[c] != 0 and c not in self.pinned)
        self._x = np.zeros((self.window, len(self.components)), dtype=bool)  # ring buffer: fired
        self._o = np.zeros(self.window, dtype=bool)  # ring buffer: success
        self._rng = np.random.default_rng(seed)
        from scipy import stats  # noqa: F401 - once, here in the actor, not at its first decision (about 1 s)

    def __len__(self) -> int:
        """Episodes in the window (up to ``window``)."""
        return min(self.seen, self.window)

    def record(self, fired, success: float) -> None:
        """One episode: ``fired`` is a vector over :attr:`components` or a mapping component -> fired
        (names outside the axis are refused), ``success`` its outcome.  Every ``window``-th episode
        decides the gates."""
        if isinstance(fired, dict):
            unknown = sorted(set(fired) - set(self.components))
            if unknown:
                raise ValueError(f"EDG got component(s) {unknown} outside its axis ({', '.join(self.components)})")
            row = [float(fired.get(c, 0.0)) > 0 for c in self.components]
        elif len(fired) != len(self.components):
            raise ValueError(f"EDG got {len(fired)} values for its {len(self.components)} components")
        else:
            row = [float(v) > 0 for v in fired]
        i = self.seen % self.window
        self._x[i] = row
        self._o[i] = float(success) > 0
        self.seen += 1
        if self.seen % self.window == 0:
            self._decide()

    def tables(self) -> np.ndarray:
        """(C, 4) the window's 2x2 table of each component: fired & success, fired & failure, absent &
        success, absent & failure."""
        n = len(self)
        x, o = self._x[:n], self._o[:n]
        a = (x & o[:, None]).sum(0)
        k = x.sum(0)
        ns = int(o.sum())
        return np.stack([a, k - a, ns - a, n - k - (ns - a)], 1)

    def correlations(self) -> Dict[str, Optional[float]]:
        """Each component's correlation with success over the episodes in the window (None where either
        is constant)."""
        return {c: phi(t) for c, t in zip(self.components, self.tables())}

    def _decide(self) -> None:
        n = len(self)
        tabs = self.tables()
        ns = int(tabs[0, 0] + tabs[0, 2])
        if ns in (0, n):
            return  # one outcome class: no correlation, no evidence
        idx = {c: i for i, c in enumerate(self.components)}
        tested = [c for c in self.gated if testable(int(tabs[idx[c], :2].sum()), n, self.min_rollouts)]
        if not tested:
            return
        self.decisions += 1
        m = len(tested)
        significance = 1 - self.confidence
        level = 1 - significance / m
        for c in tested:
            t, w, was_open = tabs[idx[c]], self.weights[c], self.open[c]
            rho = phi(t)
            aligned = rho * math.copysign(1, w)
            # only evidence that would change the gate is computed: against the weight (or of no effect)
            # for an open gate, for it for a closed one
            could_null = was_open and null_possible(rho, n, level, self.delta)
            if not (could_null or (aligned < -self.delta if was_open else aligned > self.delta)):
                continue
            p = fisher_p(t)
            p_adj = min(1.0, p * m)
            if p_adj >= significance and not could_null:
                continue
            ci = table_bootstrap_ci(t, bootstrap_draws(DEFAULT_BOOTSTRAP, level), level, self._rng)
            evidence = decide(rho, ci, p_adj, self.delta, significance) if ci else "inconclusive"
            verdict = gate_verdict(evidence, w)
            if verdict is None or verdict == was_open:
                continue
            self.open[c] = verdict
            fired = int(t[0] + t[1])
            ev = {"time": time.time(), "episodes_seen": self.seen, "window": n, "component": c, "open": verdict,
                  "evidence": evidence, "rho": rho, "p": p, "p_adjusted": p_adj, "ci": list(ci),
                  "ci_level": level, "tested": m, "fired": fired, "fired_in_success": int(t[0]),
                  "successes": ns, "weight": w, "confidence": self.confidence, "delta": self.delta,
                  "calibration_sha256": self.calibration_sha256}
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
    def connect(cls, weights: Dict[str, float], window: int = DEFAULT_WINDOW, threshold: Optional[float] = None,
                log_path: Optional[str] = None, refresh_every: int = 1, hysteresis: Optional[float] = None,
                pinned: Optional[Sequence[str]] = None, calibration_sha256: Optional[str] = None,
                timeout: float = 10.0, calibration=None, confidence: Optional[float] = None) -> "EDGClient":
        """The client of the shared actor (created by the first caller).  The gates are over the components
        of ``calibration``, the calibration that scores the run (the rollout passes it; without it, the
        ``tau`` set's).  Pinned: ``pinned`` and the components IRC pinned in ``calibration``.

        ``confidence`` (``--mtgrpo.edg_confidence``, default 0.999) is EDG's family-wise confidence per window.
        ``threshold`` and ``hysteresis``, the removed correlation rule's options, are refused unless None, as is
        a confidence outside [0.5, 1)."""
        conf = DEFAULT_CONFIDENCE if confidence is None else confidence
        problems = option_problems(window=window, confidence=conf, hysteresis=hysteresis, threshold=threshold)
        if problems:
            raise ValueError("; ".join(problems))
        axis, set_name = _axis(calibration)
        own = _pinned(pinned, axis, set_name)
        pins = effective_pins(pinned, calibration)
        if set(pins) != set(own):
            logger.info("EDG pins %s (edg_pin %s, and what IRC pinned in calibration %s)", pins, own,
                        getattr(calibration, "name", "?"))
        actor = edg_actor_class().options(name=ACTOR_NAME, namespace=NAMESPACE, get_if_exists=True).remote(
            weights, window, float(conf), DEFAULT_MIN_ROLLOUTS, log_path, pins, calibration_sha256, axis, set_name)
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
