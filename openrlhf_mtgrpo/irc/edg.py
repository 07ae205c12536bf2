"""Empirical Discriminative Gating (EDG): IRC's check, online, during training.

The paper names it as future work.  A single named Ray actor keeps a sliding
window of recent rollouts (which components fired, and the outcome) shared by
every rollout worker; a component whose weight is non-zero is *gated out* -- its
term dropped from the per-turn reward -- while its correlation with success, in
the direction of its weight, is below the threshold.  Every gate change is kept
as an event (and appended to a JSONL file when a path is given).
"""

from __future__ import annotations

import collections
import math
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from openrlhf_mtgrpo.rewards.components import COMPONENTS

ACTOR_NAME = "mtgrpo_edg"
NAMESPACE = "openrlhf_mtgrpo"


class EDGState:
    def __init__(self, weights: Dict[str, float], window: int = 512, threshold: float = 0.05, min_samples: int = 32,
                 log_path: Optional[str] = None):
        self.weights = {c: float(weights.get(c, 0.0)) for c in COMPONENTS}
        self.window = collections.deque(maxlen=window)
        self.threshold = threshold
        self.min_samples = min_samples
        self.log_path = log_path
        self.open = {c: True for c in COMPONENTS}
        self.events: List[Dict] = []
        self.seen = 0

    def record(self, fired: Sequence[float], success: float) -> None:
        self.window.append((list(fired), float(success)))
        self.seen += 1
        self._update()

    def correlations(self) -> Dict[str, Optional[float]]:
        if len(self.window) < 2:
            return {c: None for c in COMPONENTS}
        x = np.array([f for f, _ in self.window], dtype=float)
        o = np.array([s for _, s in self.window], dtype=float)
        out = {}
        for i, c in enumerate(COMPONENTS):
            xi = x[:, i]
            if xi.std() == 0 or o.std() == 0:
                out[c] = None
            else:
                out[c] = float(np.corrcoef(xi, o)[0, 1])  # equals scipy's point-biserial r
        return out

    def _update(self) -> None:
        if len(self.window) < self.min_samples:
            return
        rho = self.correlations()
        for c, w in self.weights.items():
            if w == 0 or rho[c] is None:
                continue
            should_open = rho[c] * math.copysign(1, w) >= self.threshold
            if should_open != self.open[c]:
                self.open[c] = should_open
                ev = {"time": time.time(), "episodes_seen": self.seen, "window": len(self.window), "component": c,
                      "open": should_open, "rho": rho[c], "weight": w, "threshold": self.threshold}
                self.events.append(ev)
                if self.log_path:
                    from openrlhf_mtgrpo.rollout.jsonl import append_jsonl

                    append_jsonl(self.log_path, ev)

    def gates(self) -> Dict[str, bool]:
        return dict(self.open)

    def get_events(self) -> List[Dict]:
        return list(self.events)


def fired_vector(turns) -> List[float]:
    """Which components fired in any turn of an episode (turn records or dicts with 'features')."""
    out = [0.0] * len(COMPONENTS)
    for t in turns:
        f = t.features if hasattr(t, "features") else t.get("features", {})
        for i, c in enumerate(COMPONENTS):
            if f.get(c, 0) > 0:
                out[i] = 1.0
    return out


def edg_actor_class():
    import ray

    return ray.remote(num_cpus=0)(EDGState)


class EDGClient:
    """Used by the rollout workers: one shared actor, gates refreshed every ``refresh_every`` episodes."""

    def __init__(self, actor, refresh_every: int = 8):
        self.actor = actor
        self.refresh_every = refresh_every
        self._gates: Optional[Dict[str, bool]] = None
        self._count = 0

    @classmethod
    def connect(cls, weights: Dict[str, float], window: int = 512, threshold: float = 0.05,
                log_path: Optional[str] = None, refresh_every: int = 8) -> "EDGClient":
        actor = edg_actor_class().options(name=ACTOR_NAME, namespace=NAMESPACE, get_if_exists=True).remote(
            weights, window, threshold, 32, log_path)
        return cls(actor, refresh_every)

    def record(self, turns, success: bool) -> None:
        self.actor.record.remote(fired_vector(turns), float(success))
        self._count += 1

    async def gates(self) -> Dict[str, bool]:
        if self._gates is None or self._count % self.refresh_every == 0:
            self._gates = await self.actor.gates.remote()
        return self._gates
