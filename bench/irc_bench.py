"""`mtgrpo irc analyze` throughput on a large synthetic rollout log (target: 100k episodes < 60 s),
and two studies of what IRC and EDG decide on noise.

Lines have the shape of real rollout-log lines (messages, tool calls, per-turn
records with all components, group ids, calibration, estimator settings), ~3 KB
each.  Prints episodes per second of reading, of the analysis, and end to end
(with report and chart).

``--null-study``: IRC on logs where no component relates to success (100 seeded
runs at 128 rollouts, starting from paper-irc and paper-dense; the test's null logs
and a busier null where every component fires in half the rollouts, so about 9 are
tested at once): how many runs change a weight, at the default family-wise
confidence and at 0.95.  ``--tier-study``: on logs with known structure (gold phi
+0.6, read-only noise, tool error phi -0.5), in how many of 20 seeds each tier comes
out right at each size.  ``--edg-study``: EDG at its defaults, 3 seeds: gate changes of 5 noise
components in 100,000 episodes, how many episodes until a component with a real effect against its
weight (phi -0.3, firing in 20% of episodes; from the start and from episode 10,000) is gated out while
one with an effect for its weight (phi +0.3) stays open, weaker effects, and the cost per episode.

    python bench/irc_bench.py [--episodes 100000] [--turns 10] [--null-study] [--tier-study] [--edg-study]
                              [--edg-seeds 3] [--edg-confidence 0.999]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze  # noqa: E402
from openrlhf_mtgrpo.irc.logs import read_logs  # noqa: E402
from openrlhf_mtgrpo.irc.report import write_outputs  # noqa: E402
from openrlhf_mtgrpo.rewards.calibration import load_calibration  # noqa: E402
from openrlhf_mtgrpo.rewards.sets import component_names  # noqa: E402
COMPONENTS = component_names("tau")


def write_log(path, n, turns, seed=0):
    rng = np.random.default_rng(seed)
    cal = load_calibration("paper-dense")
    with open(path, "w") as f:
        for i in range(n):
            s = bool(rng.random() < 0.5)
            tr = []
            for k in range(turns):
                feats = {c: 0.0 for c in COMPONENTS}
                c = COMPONENTS[rng.integers(0, 7)]
                feats[c] = 1.0
                tr.append({"index": k, "span": [100 * k, 100 * k + 40], "text": "<tool_call>...</tool_call>",
                           "tool_calls": [{"name": "get_user_details", "arguments": {"user_id": "x_1"},
                                           "content": "{\"user_id\": \"x_1\", \"name\": \"...\"}", "error": False}],
                           "tool_errors": 0, "parse_errors": [], "features": feats, "reward": 0.3,
                           "finish_reason": "stop", "template_drift": False})
            msgs = [{"role": "user", "content": "I want to change my flight please."}] * (turns // 2)
            f.write(json.dumps({"task_id": str(i // 4 % 30), "success": s, "turns": tr, "messages": msgs,
                                "termination": "user_stop", "outcome": {"reward": float(s)},
                                "group": {"id": f"g{i // 4}", "size": 4, "index": i % 4},
                                "calibration": cal.name, "calibration_sha256": cal.sha256,
                                "calibration_path": "paper-dense", "estimator": "gtpo_hybrid",
                                "estimator_options": {"pool": "turn", "gamma": 0.9, "lam": 0.3},
                                "benchmark": {"version": "tau2", "tasks_sha256": "t" * 64,
                                              "db_sha256": "d" * 64}}) + "\n")


def null_study(runs=100, n=128, confidences=(IRCOptions().confidence, 0.95)):
    from irc_logs import busy_null_logs, null_logs, write

    with tempfile.TemporaryDirectory() as d:
        for conf in confidences:
            for gen in (null_logs, busy_null_logs):
                for name in ("paper-irc", "paper-dense"):
                    cal = load_calibration(name)
                    changed, flips, tested = 0, 0, 0
                    for seed in range(runs):
                        p = write(os.path.join(d, f"r{seed}.jsonl"), gen(n, seed, calibration=name))
                        res = analyze(read_logs([p]), cal, IRCOptions(seed=seed, confidence=conf))
                        changed += bool(res.changes)
                        tested += res.tested
                        flips += sum(c.weight_before * c.weight_after < 0 for c in res.components.values())
                    print(f"{gen.__name__}, {runs} runs x {n} rollouts from {name}, confidence {conf}: "
                          f"{runs - changed}/{runs} runs ({(runs - changed) / runs:.0%}) changed no weight, "
                          f"{changed} changed one or more, {flips} sign flip(s); {tested / runs:.1f} components "
                          f"tested per run on average", flush=True)


def tier_study(sizes=(40, 60, 100, 6000, 10000, 14000, 18000), seeds=20):
    from irc_logs import structured, write

    probs = {"gold_exact": (0.8, 0.2), "read_only": (0.5, 0.5), "tool_error": (0.2, 0.7)}
    want = {"gold_exact": "positive", "read_only": "null", "tool_error": "anti"}
    cal = load_calibration("paper-dense")
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            ok = {c: 0 for c in want}
            for seed in range(seeds):
                p = write(os.path.join(d, "known.jsonl"), structured(n, seed=seed, probs=probs))
                res = analyze(read_logs([p]), cal, IRCOptions(seed=seed))
                for c, e in want.items():
                    ok[c] += res.components[c].evidence == e
            print(f"{n} rollouts, {seeds} seeds, default options: " + ", ".join(
                f"{c} {want[c]} in {k}/{seeds}" for c, k in ok.items()), flush=True)


def _edg_run(weights, fired, success, window, confidence):
    """Feed EDG episode by episode; (state, seconds per episode)."""
    from openrlhf_mtgrpo.rewards.gating import EDGState

    st = EDGState(weights, window=window, confidence=confidence)
    t0 = time.perf_counter()
    for f, s in zip(fired.tolist(), success.tolist()):
        st.record(f, s)
    return st, (time.perf_counter() - t0) / len(success)


def _effect(rng, success, phi, rate, p_success=0.5):
    """0/1 firing at ``rate`` with correlation ``phi`` to the 0/1 outcome."""
    joint = rate * p_success + phi * np.sqrt(rate * (1 - rate) * p_success * (1 - p_success))  # P(fired, success)
    p_s, p_f = joint / p_success, (rate - joint) / (1 - p_success)
    return rng.random(len(success)) < np.where(success, p_s, p_f)


def edg_study(episodes=100_000, seeds=3, window=512, confidence=None):
    """EDG at its defaults (window 512, confidence 0.999): gate changes on noise, and how soon a real effect
    against a component's weight is gated out while one for it stays open."""
    from openrlhf_mtgrpo.rewards.gating import DEFAULT_CONFIDENCE

    confidence = DEFAULT_CONFIDENCE if confidence is None else confidence

    weights = {"gold_exact": 1.0, "read_only": 0.3, "state_change": -0.1, "tool_error": -0.1, "duplicate": -0.2,
               "soft_match": 1.0}
    noise = [c for c in weights if c != "gold_exact"]
    idx = {c: COMPONENTS.index(c) for c in weights}
    bound = (1 - confidence) * 100_000 / window
    print(f"EDG: window {window}, confidence {confidence} family-wise per window "
          f"(bound: at most {bound:.2f} noise gate changes per 100,000 episodes), gold_exact pinned", flush=True)
    per_ep = []
    for seed in range(seeds):  # 1. five noise components with non-zero weights, firing in 30% of episodes
        rng = np.random.default_rng(seed)
        fired = rng.random((episodes, len(COMPONENTS))) < 0.3
        success = rng.random(episodes) < 0.5
        st, sec = _edg_run(weights, fired, success, window, confidence)
        per_ep.append(sec)
        n = len(st.get_events())
        print(f"  noise, seed {seed}: {n} gate changes in {episodes:,} episodes across {len(noise)} noise components "
              f"({n * 100_000 / episodes:.2f} per 100,000; {st.decisions} decisions)", flush=True)
    against, helps = "read_only", "soft_match"  # weights +0.3 and +1.0
    for onset in (0, 10_000):  # 2. a real effect against the weight (phi -0.3) and one for it (phi +0.3)
        for seed in range(seeds):
            rng = np.random.default_rng(1000 + seed)
            fired = rng.random((episodes, len(COMPONENTS))) < 0.3
            success = rng.random(episodes) < 0.5
            for c, phi in ((against, -0.3), (helps, +0.3)):
                fired[:, idx[c]] = _effect(rng, success, phi, 0.2)
                if onset:  # noise (20% firing) until the onset
                    fired[:onset, idx[c]] = rng.random(onset) < 0.2
            st, _ = _edg_run(weights, fired, success, window, confidence)
            ev = st.get_events()
            out = [e["episodes_seen"] for e in ev if e["component"] == against and not e["open"]]
            first = f"{out[0] - onset} episodes" + (f" after the onset at {onset:,}" if onset else "") \
                if out else "never"
            print(f"  effects from episode {onset:,}, seed {seed}: {against} (weight +0.3, phi -0.3, fires in 20%) "
                  f"gated out after {first}, reopened {sum(e['open'] for e in ev if e['component'] == against)} "
                  f"time(s); {helps} (weight +1.0, phi +0.3, fires in 20%) gated out "
                  f"{sum(1 for e in ev if e['component'] == helps and not e['open'])} time(s) in {episodes:,} "
                  f"episodes; noise components: {sum(e['component'] not in (against, helps) for e in ev)} "
                  f"gate changes", flush=True)
    horizon = 20_000  # 3. weaker effects against the weight
    for phi in (-0.2, -0.15, -0.1):
        took = []
        for seed in range(seeds):
            rng = np.random.default_rng(2000 + seed)
            fired = rng.random((horizon, len(COMPONENTS))) < 0.3
            success = rng.random(horizon) < 0.5
            fired[:, idx[against]] = _effect(rng, success, phi, 0.2)
            st, _ = _edg_run(weights, fired, success, window, confidence)
            out = [e["episodes_seen"] for e in st.get_events() if e["component"] == against and not e["open"]]
            took.append(out[0] if out else None)
        print(f"  {against} at phi {phi} (fires in 20%): gated out after {took} episodes "
              f"(None: not within {horizon:,}; seeds 0..{seeds - 1})", flush=True)
    print(f"  cost: {np.mean(per_ep) * 1e6:.1f} us per recorded episode on average, decisions included", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=100_000)
    p.add_argument("--turns", type=int, default=10)
    p.add_argument("--null-study", action="store_true")
    p.add_argument("--tier-study", action="store_true")
    p.add_argument("--edg-study", action="store_true")
    p.add_argument("--edg-seeds", type=int, default=3, help="seeds of --edg-study (0..N-1)")
    p.add_argument("--edg-confidence", type=float, default=None, help="EDG's confidence in --edg-study "
                   "(default: EDG's, 0.999)")
    args = p.parse_args()
    if args.null_study or args.edg_study or args.tier_study:
        if args.null_study:
            null_study()
        if args.tier_study:
            tier_study()
        if args.edg_study:
            edg_study(seeds=args.edg_seeds, confidence=args.edg_confidence)
        return
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rollouts-bench.jsonl")
        write_log(path, args.episodes, args.turns)
        size = os.path.getsize(path) / 2 ** 20
        t0 = time.perf_counter()
        batch = read_logs([path])
        t1 = time.perf_counter()
        res = analyze(batch, load_calibration("paper-dense"), IRCOptions())
        t2 = time.perf_counter()
        write_outputs(res, os.path.join(d, "out"))
        t3 = time.perf_counter()
    print(f"log: {args.episodes} episodes x {args.turns} turns, {size:.0f} MiB")
    print(f"read:     {t1 - t0:6.1f} s  ({args.episodes / (t1 - t0):,.0f} episodes/s)")
    print(f"analyse:  {t2 - t1:6.1f} s  ({args.episodes / (t2 - t1):,.0f} episodes/s)")
    print(f"outputs:  {t3 - t2:6.1f} s")
    print(f"total:    {t3 - t0:6.1f} s  ({args.episodes / (t3 - t0):,.0f} episodes/s; target < 60 s for 100k)")


if __name__ == "__main__":
    main()
