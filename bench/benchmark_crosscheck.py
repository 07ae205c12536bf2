"""Differential check of our airline tools against the benchmarks' own code.

Needs checkouts of the benchmarks (not part of this repository):
  --tau2-src  path to tau2-bench's ``src`` folder (imports ``tau2.domains.airline``;
              needs pydantic, loguru, toml, docstring-parser; ``--stub-missing``
              inserts empty modules for the LLM clients the tools never call)
  --tau1-src  path to a tau-bench checkout (its ``tau_bench/envs/airline/tools``)

For every task it replays the gold actions mixed with random mutations (missing
and extra arguments, numbers as strings, floats, wrong ids, wrong cabins, removed
passenger fields, repeated calls) and random read-only calls, on both
implementations, and compares each tool's output text and error flag and, at the
end, the whole database.  Prints the number of calls and mismatches.

    python bench/benchmark_crosscheck.py --tau2-src ~/tau2-bench/src --tau1-src ~/tau-bench --rounds 8
"""

from __future__ import annotations

import argparse
import copy
import glob
import importlib.util
import json
import os
import random
import sys
import types

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from openrlhf_mtgrpo.envs.airline import AirlineEnv  # noqa: E402
from openrlhf_mtgrpo.envs.airline.store import canonical  # noqa: E402


class _Empty(types.ModuleType):
    def __getattr__(self, name):
        return type(name, (), {})


def mutate(rng, args, db):
    a = copy.deepcopy(args)
    if not a:
        return a
    k = rng.choice(sorted(a))
    kind = rng.randrange(10)
    if kind == 0:
        a.pop(k)
    elif kind == 1:
        a["bogus"] = 1
    elif kind == 2 and isinstance(a[k], int):
        a[k] = str(a[k])
    elif kind == 3 and isinstance(a[k], int):
        a[k] = float(a[k]) + rng.choice([0, 0.5])
    elif kind == 4 and isinstance(a[k], str):
        a[k] += "X"
    elif kind == 5 and k == "payment_id":
        a[k] = rng.choice(list(db["users"][rng.choice(list(db["users"]))]["payment_methods"]))
    elif kind == 6 and isinstance(a[k], list) and a[k] and isinstance(a[k][0], dict):
        a[k][0].pop(rng.choice(sorted(a[k][0])))
    elif kind == 7 and k == "cabin":
        a[k] = rng.choice(["economy", "business", "basic_economy", "first"])
    elif kind == 8 and k == "reservation_id":
        a[k] = rng.choice(list(db["reservations"]))
    elif kind == 9 and k == "payment_methods":
        for p in a[k]:
            p["amount"] = float(p["amount"])
    return a


def random_read(rng, db, version):
    users, ress, fls = list(db["users"]), list(db["reservations"]), list(db["flights"])
    airports = sorted({f["origin"] for f in db["flights"].values()})
    n = rng.randrange(7)
    if n == 0:
        return "get_user_details", {"user_id": rng.choice(users + ["nobody_1"])}
    if n == 1:
        return "get_reservation_details", {"reservation_id": rng.choice(ress + ["ZZZZZZ"])}
    if n == 2:
        return "search_direct_flight", {"origin": rng.choice(airports), "destination": rng.choice(airports),
                                        "date": f"2024-05-{rng.randint(10, 30):02d}"}
    if n == 3:
        return "search_onestop_flight", {"origin": rng.choice(airports), "destination": rng.choice(airports),
                                         "date": f"2024-05-{rng.randint(10, 29):02d}"}
    if n == 4 and version == "tau2":
        return "get_flight_status", {"flight_number": rng.choice(fls), "date": f"2024-05-{rng.randint(1, 30):02d}"}
    if n == 5:
        return "calculate", {"expression": rng.choice(["2+2", "(100*3)/7", "1/0", "abc", "10-3.333"])}
    return "send_certificate", {"user_id": rng.choice(users), "amount": rng.choice([50, 100.0])}


def tau2_impl(src, stub):
    sys.path.insert(0, src)
    if stub:
        for name in ("litellm", "litellm.caching", "litellm.caching.caching", "litellm.main", "litellm.types",
                     "litellm.types.utils", "litellm.exceptions"):
            sys.modules.setdefault(name, _Empty(name))
    from tau2.domains.airline.data_model import FlightDB
    from tau2.domains.airline.tools import AirlineTools
    from tau2.environment.environment import Environment

    def new(raw):
        tools = AirlineTools(FlightDB.model_validate(copy.deepcopy(raw)))

        def call(name, args):
            try:
                return Environment.to_json_str(tools.use_tool(name, **args)), False
            except Exception as e:
                return f"Error: {e}", True

        return call, lambda: tools.db.model_dump()

    return new


def tau1_impl(src):
    for name in ("tau_bench", "tau_bench.envs"):
        m = types.ModuleType(name)
        m.__path__ = []
        sys.modules[name] = m
    base = types.ModuleType("tau_bench.envs.tool")
    base.Tool = type("Tool", (), {})
    sys.modules["tau_bench.envs.tool"] = base
    tools = {}
    for f in glob.glob(os.path.join(src, "tau_bench", "envs", "airline", "tools", "*.py")):
        if f.endswith("__init__.py"):
            continue
        spec = importlib.util.spec_from_file_location("tau1_" + os.path.basename(f)[:-3], f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for v in vars(mod).values():
            if isinstance(v, type) and hasattr(v, "invoke") and v is not base.Tool:
                tools[v.get_info()["function"]["name"]] = v

    def new(raw):
        data = copy.deepcopy(raw)

        def call(name, args):
            if name not in tools:
                return f"Unknown action {name}", True
            try:
                out = str(tools[name].invoke(data=data, **args))
            except Exception as e:
                return f"Error: {e}", True
            return out, out.startswith("Error: ")  # tau1 returns its refusals as text

        return call, lambda: data

    return new


def compare(version, new_impl, raw, data_dir, rounds, seed):
    env = AirlineEnv(version, data_dir)
    rng = random.Random(seed)
    calls = mismatches = errors = 0
    for _ in range(rounds):
        for task in env.tasks("base"):
            theirs, dump = new_impl(raw)
            ep = env.reset(task)
            seq = []
            for a in task.actions:
                if rng.random() < 0.3:
                    seq.append(random_read(rng, raw, version))
                seq.append((a.name, mutate(rng, a.arguments, raw) if rng.random() < 0.5 else copy.deepcopy(a.arguments)))
                if rng.random() < 0.3:
                    seq.append((a.name, copy.deepcopy(a.arguments)))
            for name, args in seq:
                t_out, t_err = theirs(name, copy.deepcopy(args))
                o = ep.call_tool(name, copy.deepcopy(args))
                calls += 1
                errors += o.error
                # Python's own argument errors name the callable differently; pydantic adds a docs URL
                same_text = t_out == o.content or (t_err and ("validation error" in t_out or
                                                              "positional argument" in t_out or
                                                              "keyword argument" in t_out))
                if t_err != o.error or not same_text:
                    mismatches += 1
                    print(f"MISMATCH {version} task {task.id} {name} {json.dumps(args)[:160]}\n  theirs: "
                          f"{t_out[:200]}\n  ours:   {o.content[:200]}")
            if canonical(dump()) != canonical(ep.db.materialise()):
                mismatches += 1
                print(f"DB MISMATCH {version} task {task.id}")
    print(f"{version}: {calls} calls ({errors} refused), {mismatches} mismatches")
    return mismatches


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tau2-src")
    p.add_argument("--tau1-src")
    p.add_argument("--data-dir", default=os.environ.get("MTGRPO_DATA_DIR", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tau-airline")))
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stub-missing", action="store_true")
    a = p.parse_args()
    bad = 0
    if a.tau2_src:
        with open(os.path.join(a.data_dir, "tau2", "db.json")) as f:
            raw = json.load(f)
        bad += compare("tau2", tau2_impl(a.tau2_src, a.stub_missing), raw, a.data_dir, a.rounds, a.seed)
    if a.tau1_src:
        raw = {n: json.load(open(os.path.join(a.data_dir, "tau1", f"{n}.json")))
               for n in ("flights", "users", "reservations")}
        bad += compare("tau1", tau1_impl(a.tau1_src), raw, a.data_dir, a.rounds, a.seed + 1)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
