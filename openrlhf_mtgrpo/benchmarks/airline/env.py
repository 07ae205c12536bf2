"""tau1's airline: episodes over a shared database, tau-bench's tools, and its outcome reward.

:class:`Tau1Airline` is the airline domain of tau-bench (tau1; the :class:`~openrlhf_mtgrpo.envs.base.Domain`
interface): its tasks, tools, prompts, run rules and episodes.  No registry package ships tau-bench's code, so
this one is ours, compared call by call with tau-bench's own modules (``bench/benchmark_crosscheck.py
--tau1-src``) and its run loop (``tests/test_run_rules_differential.py``).  tau2's versions run on tau2's own
classes (:mod:`.tau2`).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.benchmarks.airline.data import AirlineData, Task, load_airline
from openrlhf_mtgrpo.benchmarks.airline.evaluation import NLJudge, RewardResult, evaluate_episode
from openrlhf_mtgrpo.benchmarks.airline.tau1_schemas import resolve_schemas
from openrlhf_mtgrpo.benchmarks.airline.prompting import resolve_prompts
from openrlhf_mtgrpo.benchmarks.airline.store import EpisodeDB
from openrlhf_mtgrpo.benchmarks.airline.tools import TRANSFER_TOOL, ToolResult, table_for
from openrlhf_mtgrpo.benchmarks.airline.versions import get_version
from openrlhf_mtgrpo.envs.base import AssistantTurn, RunRules  # noqa: F401  (AssistantTurn: re-exported)

TAU1_TERMINATE_TOOLS = (TRANSFER_TOOL,)


class Tau1Airline:
    """tau1's data and tools; hands out isolated episodes.

    Thread-safe: the shared state (data, gold-hash cache) is read-only or locked."""

    name = "airline"
    family = "tau1"

    def __init__(self, version: str = "tau1", data_dir: Optional[str] = None, data: Optional[AirlineData] = None):
        if version != "tau1":
            raise ValueError(f"Tau1Airline runs tau1 only, not {version!r} (tau2's versions: airline.tau2)")
        self.data = data or load_airline(version, data_dir)
        self.version = self.data.version
        self.table = table_for(self.version)
        self.tool_kinds = self.table.tool_kinds()
        # The tool list the agent sees: the benchmark's own (read from its source), or our own
        # words flagged as not comparable.  ``schema_source`` says which; record it with every number.
        self._schemas, self.schema_source = resolve_schemas(self.version, self.table.names(), data_dir)
        # How the policy and the customer are prompted, and the greeting: the benchmark's own, read from its
        # source, or our own words flagged as not comparable (``agent_prompt.info``, ``customer_prompt.info``).
        self.agent_prompt, self.customer_prompt, greeting = resolve_prompts(self.version, self.data.policy, data_dir)
        self.run_rules: RunRules = replace(get_version(self.version).rules, agent_greeting=greeting)
        self._gold: Dict[str, str] = {}
        self._gold_errors: Dict[str, List[ToolResult]] = {}
        self._lock = threading.Lock()

    @property
    def identity(self) -> Dict[str, str]:
        """Version and the sha256 of its task file and database (recorded with every rollout and result)."""
        return self.data.identity

    @property
    def splits(self) -> Dict[str, List[str]]:
        return self.data.splits

    def customer_tool_schemas(self) -> None:
        """The airline customer only talks."""
        return None

    def tokenizer_corpus(self) -> List[str]:
        """Database records for the offline toy tokenizer's training texts."""
        import json

        return ([json.dumps(r) for r in list(self.data.db["reservations"].values())[:200]]
                + [json.dumps(u) for u in list(self.data.db["users"].values())[:100]])

    def scripted_mistake(self, kind, task, done, last_call, rng) -> str:
        """The offline scripted policy's airline mistakes (``mtgrpo demo``; see :mod:`.scripted`)."""
        from openrlhf_mtgrpo.benchmarks.airline.scripted import airline_mistake

        return airline_mistake(self.data.db, task.user_id, kind, task, done, last_call, rng)

    # -- what the agent sees
    def tool_schemas(self) -> List[Dict[str, Any]]:
        """OpenAI function schemas, in the benchmark's order (a fresh copy)."""
        return copy.deepcopy(self._schemas)

    @property
    def schemas_comparable(self) -> bool:
        """True when the agent sees the benchmark's own tool schemas (see ``schema_source``)."""
        return self.schema_source["source"] == "benchmark"

    @property
    def policy(self) -> str:
        return self.data.policy

    def task(self, task_id) -> Task:
        key = str(task_id)
        if key not in self.data.tasks:
            raise KeyError(f"unknown {self.version} task id {task_id!r} (ids: {', '.join(list(self.data.tasks)[:10])}, ...)")
        return self.data.tasks[key]

    def tasks(self, split: str = "base") -> List[Task]:
        return self.data.split(split)

    def tool_kind(self, name: str) -> Optional[str]:
        return self.table.kind(name)

    # -- episodes
    def reset(self, task) -> "Episode":
        task = task if isinstance(task, Task) else self.task(task)
        return Episode(self, task, EpisodeDB(self.data.db))

    def gold_hash(self, task: Task) -> str:
        with self._lock:
            if task.id in self._gold:
                return self._gold[task.id]
        ep = self.reset(task)
        errors = []
        for a in task.actions:
            if a.name == TRANSFER_TOOL:
                continue  # tau1 skips its terminating tool in the replay
            res = ep.call_tool(a.name, a.arguments)
            if res.error:
                errors.append(res)
        h = ep.state_hash()
        with self._lock:
            self._gold[task.id] = h
            self._gold_errors[task.id] = errors
        return h

    def gold_errors(self, task: Task) -> List[ToolResult]:
        self.gold_hash(task)
        return self._gold_errors[task.id]


@dataclass
class Episode:
    env: Tau1Airline
    task: Task
    db: EpisodeDB
    tool_results: List[ToolResult] = field(default_factory=list)
    assistant_texts: List[str] = field(default_factory=list)
    transferred: bool = False

    def call_tool(self, name: str, arguments: Any) -> ToolResult:
        res = self.env.table.call(self.db, name, arguments)
        self.tool_results.append(res)
        if name == TRANSFER_TOOL and not res.error:
            self.transferred = True
        return res

    def say(self, text: str) -> None:
        """Record assistant text the reward's COMMUNICATE / outputs check reads."""
        self.assistant_texts.append(text or "")

    def assistant_message(self, text: str, calls: Sequence[Tuple[str, Any]], malformed: int = 0,
                          first_call_malformed: bool = False) -> AssistantTurn:
        """Apply one assistant message the way tau-bench does.

        text: the message's text without tool-call markup; calls: (name, arguments) of its tool calls.
        tau-bench turns a message into one action: the first tool call if there is any (the others are
        dropped), else a reply to the user -- only replies count for its ``outputs`` check; its terminating
        tool (``transfer_to_human_agents``) ends the episode.

        malformed: tool calls of the message whose arguments are not a JSON object; first_call_malformed:
        the first call of the message is one of them.  tau-bench builds its ``Action`` from ``tool_calls[0]``
        alone (``tool_calling_agent.py`` ``message_to_action``; ``run.py`` records reward 0 when that
        fails), so a malformed first call ends the episode as ``agent_error`` (reward 0) and a malformed
        call after a valid first one is never read.  So does a tool whose result breaks tau-bench's
        ``Env.step`` (:attr:`ToolResult.run_failure`).
        """
        calls = list(calls)
        if first_call_malformed or (malformed and not calls):
            return AssistantTurn([], [], False, False, agent_error=True)
        if not calls:
            self.say(text)
            return AssistantTurn([], [], True, False)
        name, args = calls[0]
        res = self.call_tool(name, args)
        if res.run_failure is not None:
            return AssistantTurn([res], [0], False, False, agent_error=True)
        # tau-bench's Env.step: a terminating tool ends the episode even when the call failed
        return AssistantTurn([res], [0], False, name in TAU1_TERMINATE_TOOLS)

    def state_hash(self) -> str:
        return self.db.state_hash()

    def evaluate(self, termination: str = "user_stop", judge: Optional[NLJudge] = None,
                 messages: Optional[List[Dict]] = None) -> RewardResult:
        return evaluate_episode(self, termination, judge, messages)
