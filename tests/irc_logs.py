"""Synthetic rollout logs with known structure, in the shape the rollout writes them (group ids,
calibration, estimator settings, benchmark identity on every line)."""

import functools
import json

import numpy as np

from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rewards.sets import component_names

COMPONENTS = component_names("tau")  # the built-in set's axis

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


def _null_groups(n, seed, group_size, calibration, turns):
    """Groups of rollouts whose outcome is independent of their turns: the outcome rate varies by task
    (groups share it), as on a real benchmark; each rollout has 2 to 8 turns, ``turns(rng, k)`` fills them."""
    rng = np.random.default_rng(seed)
    out = []
    for g in range(n // group_size):
        p = rng.uniform(0.2, 0.8)
        for j in range(group_size):
            s = rng.random() < p
            k = int(rng.integers(2, 9))
            out.append(line(f"t{g % 30}", s, turns(rng, k), group=(f"g{g}", group_size, j), calibration=calibration))
    return out


def null_logs(n, seed, group_size=4, calibration="paper-irc"):
    """No component relates to success: each fires in a turn with its own rate, independent of the outcome."""
    rate = {c: r for c, r in zip(COMPONENTS, (0.45, 0.08, 0.3, 0.05, 0.35, 0.08, 0.06, 0.04, 0.03, 0.04))}

    def turns(rng, k):
        fired = [{c: 1.0 for c in COMPONENTS if rng.random() < rate[c] and c != "message"} for _ in range(k)]
        return [f or {"message": 1.0} for f in fired]

    return _null_groups(n, seed, group_size, calibration, turns)


def busy_null_logs(n, seed, group_size=4, calibration="paper-irc", rate=0.5):
    """A harder null: every component but message fires in a rollout with probability ``rate`` (in one of
    its turns), independent of the outcome, so at 128 rollouts about 9 components are tested at once."""

    def turns(rng, k):
        feats = [{"message": 1.0} for _ in range(k)]
        for c in COMPONENTS:
            if c != "message" and rng.random() < rate:
                t = int(rng.integers(0, k))
                feats[t] = {**{x: v for x, v in feats[t].items() if x != "message"}, c: 1.0}
        return feats

    return _null_groups(n, seed, group_size, calibration, turns)
