"""Shared test helpers: subprocess runs of the real OpenRLHF CLI parser."""

import os
import subprocess
import sys

PARSE_ONLY = r"""
import sys, json
sys.path.insert(0, {tests!r})
import stubs; stubs.install_into()
import openrlhf.utils.config as c
_orig = c.hierarchize
def _stop(a):
    raw = {{k: v for k, v in vars(a).items() if isinstance(v, (str, int, float, bool, type(None)))}}
    a = _orig(a)
    print("PARSED " + json.dumps({{"raw": raw, "estimator": a.algo.advantage.estimator, "gtpo": vars(getattr(a, "gtpo", object())) if hasattr(a, "gtpo") else None,
        "agent": a.train.agent_func_path, "n": a.rollout.n_samples_per_prompt, "pretrain": a.actor.model_name_or_path,
        "mtgrpo": vars(a.mtgrpo) if hasattr(a, "mtgrpo") else None}}))
    raise SystemExit(0)
c.hierarchize = _stop
import runpy
sys.argv = ["train_ppo_ray"] + {argv!r}
runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__")
"""


def pythonpath(*first):
    """PYTHONPATH for a child process: ``first``, then this process's own PYTHONPATH (so a checkout
    put on the path to test it stays there in subprocesses and Ray workers)."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(list(first) + rest)


def run_upstream_parser(argv, env=None, timeout=120):
    """Run the unmodified ``openrlhf.cli.train_ppo_ray`` parser in a fresh interpreter."""
    tests = os.path.dirname(os.path.abspath(__file__))
    code = PARSE_ONLY.format(tests=tests, argv=list(argv))
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=timeout)


def parsed(proc):
    import json

    for line in proc.stdout.splitlines():
        if line.startswith("PARSED "):
            return json.loads(line[len("PARSED "):])
    return None


def kill_actor_and_wait(ray, name, namespace, timeout=30.0):
    """Kill a named Ray actor (if there is one) and return once its name no longer resolves: ``ray.kill`` is
    asynchronous, and a call made before the kill takes effect may still reach the actor."""
    import time

    try:
        ray.kill(ray.get_actor(name, namespace=namespace))
    except ValueError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            ray.get_actor(name, namespace=namespace)
        except ValueError:
            return
        time.sleep(0.05)
    raise AssertionError(f"the actor {name!r} did not die within {timeout:.0f} s of ray.kill")
