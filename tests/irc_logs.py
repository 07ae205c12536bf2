"""Synthetic rollout logs with known structure, in the shape the rollout writes them (group ids,
calibration, estimator settings, benchmark identity on every line)."""

import functools
import json

import numpy as np

from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rewards.components import COMPONENTS

BENCH = {"version": "tau2", "tasks_sha256": "t" * 64, "db_sha256": "d" * 64}
OPTIONS = {"gamma": 0.9, "lam": 0.3, "eps": 1e-6, "no_std_norm": False, "std_ddof": 1, "pool": "group",
           "turn_indexing": "zero"}


@functools.lru_cache(maxsize=None)
def _calibration(ref):
    return load_calibration(ref)


def line(task_id, success, turns, group=None, calibration="paper-dense", estimator="gtpo_hybrid", options=None,
         benchmark=None, infra=False, edg=None):
    cal = _calibration(calibration) if calibration else None
    rec = {"task_id": str(task_id), "success": bool(success) and not infra, "infra_failed": bool(infra),
           "turns": [{"features": f} for f in turns], "estimator": estimator,
           "estimator_options": dict(OPTIONS if options is None else options), "benchmark": benchmark or BENCH}
    if cal is not None:
        rec.update(calibration=cal.name, calibration_sha256=cal.sha256, calibration_path=calibration)
    if group is not None:
        rec["group"] = {"id": group[0], "size": group[1], "index": group[2]}
    if edg is not None:
        rec["edg"] = edg
    return rec


def write(path, records, mode="w"):
    with open(path, mode) as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return str(path)


def structured(n, seed=0, probs=None, group_size=4, turns=3, calibration="paper-dense", p_success=0.5, **kw):
    """n rollouts in groups; component c fires in a rollout with probability probs[c] = (p | success,
    p | failure), in one of its turns; every other turn is a message."""
    probs = probs if probs is not None else {}
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        s = rng.random() < p_success
        feats = [{"message": 1.0} for _ in range(turns)]
        for c, (ps, pf) in probs.items():
            if rng.random() < (ps if s else pf):
                k = int(rng.integers(0, turns))
                feats[k] = {**{x: v for x, v in feats[k].items() if x != "message"}, c: 1.0}
        g = i // group_size
        out.append(line(f"t{g % 50}", s, feats, group=(f"g{g}", group_size, i % group_size),
                        calibration=calibration, **kw))
    return out


def null_logs(n, seed, group_size=4, calibration="paper-irc"):
    """No component relates to success: each fires in a turn with its own rate, independent of the outcome;
    2 to 8 turns; outcome rate varies by task (groups share it), as on a real benchmark."""
    rng = np.random.default_rng(seed)
    rate = {c: r for c, r in zip(COMPONENTS, (0.45, 0.08, 0.3, 0.05, 0.35, 0.08, 0.06, 0.04, 0.03, 0.04))}
    out = []
    for g in range(n // group_size):
        p = rng.uniform(0.2, 0.8)
        for j in range(group_size):
            s = rng.random() < p
            k = int(rng.integers(2, 9))
            feats = []
            for _ in range(k):
                fired = {c: 1.0 for c in COMPONENTS if rng.random() < rate[c] and c != "message"}
                feats.append(fired or {"message": 1.0})
            out.append(line(f"t{g % 30}", s, feats, group=(f"g{g}", group_size, j), calibration=calibration))
    return out


def busy_null_logs(n, seed, group_size=4, calibration="paper-irc", rate=0.5):
    """A harder null: every component but message fires in a rollout with probability ``rate`` (in one of
    its 2 to 8 turns), independent of the outcome, so at 128 rollouts about 9 components are tested at once;
    the outcome rate varies by task (groups share it)."""
    rng = np.random.default_rng(seed)
    out = []
    for g in range(n // group_size):
        p = rng.uniform(0.2, 0.8)
        for j in range(group_size):
            s = rng.random() < p
            k = int(rng.integers(2, 9))
            feats = [{"message": 1.0} for _ in range(k)]
            for c in COMPONENTS:
                if c != "message" and rng.random() < rate:
                    t = int(rng.integers(0, k))
                    feats[t] = {**{x: v for x, v in feats[t].items() if x != "message"}, c: 1.0}
            out.append(line(f"t{g % 30}", s, feats, group=(f"g{g}", group_size, j), calibration=calibration))
    return out
