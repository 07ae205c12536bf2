"""Start-up time of every ``mtgrpo`` command's ``--help`` (and ``--version``, ``doctor``) against ``python -c pass``.

Each command runs as a fresh interpreter (``python -m openrlhf_mtgrpo.cli ...`` with this checkout
first on PYTHONPATH), interleaved with the baseline in the same run, ``--runs`` times; the median
wall time, the ratio to the baseline and the time added by the command are printed.  Goal: every
command under 0.5 s.  The commands are ``mtgrpo --help``, ``mtgrpo --version``, ``mtgrpo doctor`` and
``mtgrpo COMMAND [SUBCOMMAND] --help`` for every sub-command (:func:`help_commands`).

    python bench/cli_start.py [--runs 15] [--only demo]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
GOAL_S = 0.5
BASELINE = "python -c pass"


def help_commands():
    """``[[COMMAND, ...], ...]``: every sub-command path of ``mtgrpo`` (nested ones too, e.g. ``data fetch``).

    Each path's parser is built with only its own module imported (as ``mtgrpo COMMAND --help`` does)."""
    from openrlhf_mtgrpo.cli import build_parser
    from openrlhf_mtgrpo.cli_extra import COMMANDS

    paths = []
    for name, _ in COMMANDS:
        paths.append([name])
        sub = _choices(build_parser([name])).get(name)
        if sub is not None:
            paths.extend([name, child] for child in sorted(_choices(sub)))
    return paths


def _choices(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands():
    out = {"mtgrpo --help": ["--help"], "mtgrpo --version": ["--version"], "mtgrpo doctor": ["doctor"]}
    for path in help_commands():
        out[f"mtgrpo {' '.join(path)} --help"] = path + ["--help"]
    return out


def environment():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p]))


def time_once(args, env=None) -> float:
    """Wall time of one ``python -m openrlhf_mtgrpo.cli ARGS`` (``args=None``: ``python -c pass``)."""
    argv = [sys.executable, "-c", "pass"] if args is None else [sys.executable, "-m", "openrlhf_mtgrpo.cli", *args]
    t0 = time.perf_counter()
    subprocess.run(argv, env=env or environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def measure(runs: int, only=None):
    env = environment()
    cmds = {k: v for k, v in commands().items() if not only or any(o in k for o in only)}
    times = {BASELINE: []}
    times.update({name: [] for name in cmds})
    for args in cmds.values():  # warm the file cache once
        time_once(args, env)
    for _ in range(runs):
        times[BASELINE].append(time_once(None, env))
        for name, args in cmds.items():
            times[name].append(time_once(args, env))
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15, help="runs per command (default: 15)")
    p.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="time only the commands whose name contains TEXT (repeatable; default: all)")
    ns = p.parse_args(argv)
    med = measure(ns.runs, ns.only)
    base = med[BASELINE]
    width = max(len(k) for k in med)
    print(f"median of {ns.runs} runs each, fresh interpreter per run ({sys.executable})")
    print(f"{'command':<{width}} {'median s':>9} {'vs python -c pass':>18} {'added s':>8}  goal < {GOAL_S} s")
    over = []
    for name, t in med.items():
        if t >= GOAL_S:
            over.append(name)
        print(f"{name:<{width}} {t:>9.3f} {t / base:>17.2f}x {t - base:>8.3f}  {'ok' if t < GOAL_S else 'OVER'}")
    if over:
        print(f"over {GOAL_S} s: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
