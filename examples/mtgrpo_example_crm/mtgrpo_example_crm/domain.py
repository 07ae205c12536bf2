"""The support-desk domain (the :class:`openrlhf_mtgrpo.envs.base.Domain` interface) and its factory.

``make_domain(version=None, data_dir=None)`` is what the entry point ``openrlhf_mtgrpo.domains`` names
(registered as ``example_crm``).  Everything the agent and the customer see comes from the package's
pinned files (:mod:`.data`): this package is its own benchmark, so its prompts' source is ``benchmark``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import threading
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.envs.base import (BENCHMARK, ORCHESTRATOR_STEPS, AgentPrompt, CustomerPrompt, PromptInfo,
                                       RunRules)

from mtgrpo_example_crm import data as crm_data
from mtgrpo_example_crm import tools
from mtgrpo_example_crm.data import PACKAGE, PACKAGE_VERSION, CrmData, Task
from mtgrpo_example_crm.episode import CrmEpisode
from mtgrpo_example_crm.state import EpisodeState, freeze

NAME = "example_crm"
SCENARIO, POLICY = "{scenario}", "{policy}"
CALIBRATION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calibrations", "crm_dense.yaml")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class GoldError(ValueError):
    """A task whose gold actions do not run cleanly (a data error)."""


class CrmDomain:
    """Version ``v1`` of the support desk: tasks, tools, prompts, run rules and isolated episodes.

    Thread-safe: the database is frozen, the gold-hash cache locked."""

    name = NAME
    #: the calibration ``mtgrpo demo`` starts from (its component set: ``crm``)
    demo_calibration = CALIBRATION

    def __init__(self, data: Optional[CrmData] = None):
        self.data = data or crm_data.load()
        self.version = crm_data.VERSION
        self._db = freeze(self.data.db)
        files = self.data.sha256
        self.identity: Dict[str, str] = {"version": self.version, "package": f"{PACKAGE}=={PACKAGE_VERSION}", **files,
                                         "tasks_sha256": files["tasks.json"], "db_sha256": files["db.json"],
                                         "policy_sha256": files["policy.md"]}
        self.tool_kinds = tools.TOOL_KINDS
        where = f"{PACKAGE} {self.version}, the package's data/ (this package is the benchmark)"
        self.schema_source: Dict[str, Any] = {
            "source": BENCHMARK, "where": f"{PACKAGE}: mtgrpo_example_crm/tools.py (this package is the benchmark)",
            "sha256": _sha(json.dumps(tools.SCHEMAS, sort_keys=True)),
            "tools": [s["function"]["name"] for s in tools.SCHEMAS]}
        instructions = self.data.agent_instructions
        if instructions.count(POLICY) != 1:
            raise ValueError(f"agent_instructions.md must hold {POLICY} exactly once")
        text = instructions.replace(POLICY, self.data.policy).strip()
        self.agent_prompt = AgentPrompt(text, PromptInfo(
            BENCHMARK, _sha(text), where=where,
            files=(("agent_instructions.md", files["agent_instructions.md"]), ("policy.md", files["policy.md"]))))
        rules = self.data.rules
        customer = self.data.customer_prompt
        if customer.count(SCENARIO) != 1:
            raise ValueError(f"customer_prompt.md must hold {SCENARIO} exactly once")
        prefix, suffix = customer.split(SCENARIO)
        self.customer_prompt = CustomerPrompt(
            prefix, suffix, rules["greeting"],
            PromptInfo(BENCHMARK, _sha(customer), where=where,
                       files=(("customer_prompt.md", files["customer_prompt.md"]),)),
            temperature=rules["customer_temperature"])
        self.run_rules = RunRules(
            budget=int(rules["budget"]), unit=ORCHESTRATOR_STEPS, max_errors=rules["max_errors"],
            stop_signals=tuple(rules["stop_signals"]), opening_can_stop=True, agent_greeting=rules["greeting"],
            source=f"{PACKAGE} {self.version} data/benchmark.json: {rules['budget']} orchestrator steps (each agent "
                   f"message, customer message and tool response), {rules['max_errors']} failed tool calls")
        self._gold: Dict[str, str] = {}
        self._lock = threading.Lock()
        self._check_gold()

    # -- what the agent sees
    @property
    def policy(self) -> str:
        return self.data.policy

    def tool_schemas(self) -> List[Dict[str, Any]]:
        return copy.deepcopy(tools.SCHEMAS)

    def customer_tool_schemas(self) -> None:
        """The customer only talks."""
        return None

    # -- tasks
    @property
    def splits(self) -> Dict[str, List[str]]:
        return {k: list(v) for k, v in self.data.splits.items()}

    def task(self, task_id: Any) -> Task:
        if isinstance(task_id, Task):
            return task_id
        key = str(task_id)
        if key not in self.data.tasks:
            raise KeyError(f"unknown {NAME} task id {task_id!r} (ids: {', '.join(self.data.tasks)})")
        return self.data.tasks[key]

    def tasks(self, split: str = "base") -> List[Task]:
        if split not in self.data.splits:
            raise KeyError(f"unknown {NAME} split {split!r} (splits: {', '.join(self.data.splits)})")
        return [self.data.tasks[i] for i in self.data.splits[split]]

    # -- episodes
    def reset(self, task: Any) -> CrmEpisode:
        """A new episode of ``task`` (a task or its id) over a fresh copy-on-write view of the database."""
        task = self.task(task)
        return CrmEpisode(self, task, EpisodeState(self._db))

    def _replay(self, task: Task) -> CrmEpisode:
        ep = self.reset(task)
        for a in task.actions:
            ep.call_tool(a.name, copy.deepcopy(a.arguments))
        return ep

    def gold_hash(self, task: Task) -> str:
        """The state hash after the task's gold actions (computed once per task)."""
        with self._lock:
            if task.id in self._gold:
                return self._gold[task.id]
        h = self._replay(task).state.state_hash()
        with self._lock:
            return self._gold.setdefault(task.id, h)

    def _check_gold(self) -> None:
        for task in self.data.tasks.values():
            bad = [f"{r.name}: {r.content}" for r in self._replay(task).results if r.error]
            if bad:
                raise GoldError(f"task {task.id}: gold actions fail: {'; '.join(bad)}")

    # -- optional hooks of `mtgrpo demo` and the offline toy tokenizer
    def tokenizer_corpus(self) -> List[str]:
        """Database records, for the offline toy tokenizer's training texts."""
        return [json.dumps(r, sort_keys=True) for table in self.data.db.values() for r in table.values()]

    def scripted_mistake(self, kind: str, task: Task, done: int, last_call: Any, rng: random.Random) -> Optional[str]:
        """The scripted policy's support-desk mistakes (None: the package's generic one of that kind)."""
        from mtgrpo_example_crm.scripted import mistake

        return mistake(self, kind, task, done, rng)


def make_domain(version: Optional[str] = None, data_dir: Optional[str] = None) -> CrmDomain:
    """The support desk of ``version`` (only ``v1``).  ``data_dir`` (the tau-bench data folder other domains
    read) is not used: this benchmark's files ship in the package."""
    if version not in (None, crm_data.VERSION):
        raise ValueError(f"{NAME} has only version {crm_data.VERSION}, not {version!r}")
    return CrmDomain()


make_domain.versions = (crm_data.VERSION,)
make_domain.default_version = crm_data.VERSION
make_domain.preferred_versions = (crm_data.VERSION,)
