"""Start-up time of ``mtgrpo --help``, ``mtgrpo --version`` and ``mtgrpo doctor`` against ``python -c pass``.

Each command runs as a fresh interpreter (``python -m openrlhf_mtgrpo.cli ...`` with this checkout
first on PYTHONPATH), interleaved with the baseline in the same run, ``--runs`` times; the median
wall time, the ratio to the baseline and the time added by the command are printed.  Goal: every
command under 0.5 s.

    python bench/cli_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL_S = 0.5
COMMANDS = {"mtgrpo --help": ["--help"], "mtgrpo --version": ["--version"], "mtgrpo doctor": ["doctor"]}


def _time(argv, env) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def measure(runs: int):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p]))
    base_argv = [sys.executable, "-c", "pass"]
    times = {"python -c pass": []}
    times.update({name: [] for name in COMMANDS})
    for name, args in COMMANDS.items():  # warm the file cache once
        _time([sys.executable, "-m", "openrlhf_mtgrpo.cli", *args], env)
    for _ in range(runs):
        times["python -c pass"].append(_time(base_argv, env))
        for name, args in COMMANDS.items():
            times[name].append(_time([sys.executable, "-m", "openrlhf_mtgrpo.cli", *args], env))
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15, help="runs per command (default: 15)")
    ns = p.parse_args(argv)
    med = measure(ns.runs)
    base = med["python -c pass"]
    print(f"median of {ns.runs} runs each, fresh interpreter per run ({sys.executable})")
    print(f"{'command':<18} {'median s':>9} {'vs python -c pass':>18} {'added s':>8}  goal < {GOAL_S} s")
    worst = 0.0
    for name, t in med.items():
        worst = max(worst, t)
        print(f"{name:<18} {t:>9.3f} {t / base:>17.2f}x {t - base:>8.3f}  {'ok' if t < GOAL_S else 'OVER'}")
    return 0 if worst < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
