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


# ------------------------------------------------------------------ is the imported package this checkout's?

#: setup.py copies these from openrlhf_mtgrpo/_hook/ to the top of site-packages
HOOK_FILES = ("openrlhf_mtgrpo.pth", "openrlhf_mtgrpo.start")


def _package_data_globs(setup_cfg):
    """``[options.package_data]`` of setup.cfg: (package path relative to the package root, glob) pairs."""
    import configparser

    cp = configparser.ConfigParser()
    cp.read(setup_cfg)
    out = []
    if cp.has_section("options.package_data"):
        for package, value in cp.items("options.package_data"):
            # openrlhf_mtgrpo.calibrations -> calibrations; "" or "*": every package (None)
            parts = package.split(".")
            rel = None if package in ("", "*") else os.path.join(*parts[1:]) if len(parts) > 1 else ""
            for pattern in value.replace(",", "\n").split():
                out.append((rel, pattern))
    return out


def shipped_files(package_dir, setup_cfg):
    """Paths (relative to ``package_dir``) of what a wheel of the package ships from it: every ``.py``
    file and every file matched by setup.cfg's ``package_data``."""
    import glob

    out = set()
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out.update(os.path.relpath(os.path.join(root, f), package_dir) for f in files if f.endswith(".py"))
    packages = sorted({os.path.dirname(rel) for rel in out})  # folders with code
    for rel, pattern in _package_data_globs(setup_cfg):
        for folder in (packages if rel is None else [rel]):
            for p in glob.glob(os.path.join(package_dir, folder, pattern)):
                if os.path.isfile(p):
                    out.add(os.path.relpath(p, package_dir))
    return out


def stale_install(checkout_pkg, installed_pkg, setup_cfg):
    """What differs between the package in the checkout and the imported copy: files shipped by one
    and missing from the other or with other bytes (code, package data, and the start-up hook files
    where the imported copy sits in a site-packages folder that has them).  Empty when they are the same."""
    import filecmp

    mine, theirs = shipped_files(checkout_pkg, setup_cfg), shipped_files(installed_pkg, setup_cfg)
    stale = sorted(rel for rel in mine if rel not in theirs or not filecmp.cmp(
        os.path.join(checkout_pkg, rel), os.path.join(installed_pkg, rel), shallow=False))
    stale += sorted(f"{rel} (only in the installed copy)" for rel in theirs - mine)
    site = os.path.dirname(installed_pkg)
    for name in HOOK_FILES:
        installed_hook, own = os.path.join(site, name), os.path.join(checkout_pkg, "_hook", name)
        if os.path.exists(installed_hook) and os.path.exists(own) and not filecmp.cmp(own, installed_hook, shallow=False):
            stale.append(f"{name} (start-up hook in {site})")
    return stale
