"""`mtgrpo irc analyze` throughput on a large synthetic rollout log (target: 100k episodes < 60 s).

Lines have the shape of real rollout-log lines (messages, tool calls, per-turn
records with all components), ~3 KB each.  Prints episodes per second of reading,
of the analysis, and end to end (with report and chart).

    python bench/irc_bench.py [--episodes 100000] [--turns 10]
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

from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze  # noqa: E402
from openrlhf_mtgrpo.irc.logs import read_logs  # noqa: E402
from openrlhf_mtgrpo.irc.report import write_outputs  # noqa: E402
from openrlhf_mtgrpo.rewards.calibration import load_calibration  # noqa: E402
from openrlhf_mtgrpo.rewards.components import COMPONENTS  # noqa: E402


def write_log(path, n, turns, seed=0):
    rng = np.random.default_rng(seed)
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
            f.write(json.dumps({"task_id": str(i % 30), "success": s, "turns": tr, "messages": msgs,
                                "termination": "user_stop", "outcome": {"reward": float(s)}}) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=100_000)
    p.add_argument("--turns", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rollouts-bench.jsonl")
        write_log(path, args.episodes, args.turns)
        size = os.path.getsize(path) / 2 ** 20
        t0 = time.perf_counter()
        batch = read_logs([path])
        t1 = time.perf_counter()
        res = analyze(batch, load_calibration("paper-dense"), IRCOptions(bootstrap=500))
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
