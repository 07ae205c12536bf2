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
out right at each size.  ``--edg-study``: how often EDG gates of noise components
change per 10,000 episodes, with and without hysteresis.

    python bench/irc_bench.py [--episodes 100000] [--turns 10] [--null-study] [--tier-study] [--edg-study]
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


def edg_study(episodes=10000, seeds=3):
    from openrlhf_mtgrpo.rewards.gating import EDGState

    weights = {"gold_exact": 1.0, "read_only": 0.3, "state_change": -0.1, "tool_error": -0.1, "duplicate": -0.2,
               "soft_match": 1.0}
    for h in (0.0, 0.05, 0.1):
        counts = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            st = EDGState(weights, window=512, threshold=0.05, hysteresis=h)
            for _ in range(episodes):
                st.record([float(rng.random() < 0.3) for _ in COMPONENTS], float(rng.random() < 0.5))
            counts.append(len(st.get_events()))
        print(f"EDG, 5 noise components with non-zero weight (gold_exact pinned), window 512, threshold 0.05, "
              f"hysteresis {h}: gate changes per {episodes} episodes {counts} (seeds 0..{seeds - 1})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=100_000)
    p.add_argument("--turns", type=int, default=10)
    p.add_argument("--null-study", action="store_true")
    p.add_argument("--tier-study", action="store_true")
    p.add_argument("--edg-study", action="store_true")
    args = p.parse_args()
    if args.null_study or args.edg_study or args.tier_study:
        if args.null_study:
            null_study()
        if args.tier_study:
            tier_study()
        if args.edg_study:
            edg_study()
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
