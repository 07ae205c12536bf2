"""The airline environment: episodes over a shared database, tools, and the outcome reward."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.envs.airline.data import AirlineData, Task, load_airline
from openrlhf_mtgrpo.envs.airline.evaluation import NLJudge, RewardResult, evaluate_episode
from openrlhf_mtgrpo.envs.airline.schemas import tool_schemas
from openrlhf_mtgrpo.envs.airline.store import EpisodeDB
from openrlhf_mtgrpo.envs.airline.tools import ToolResult, table_for

STOP_SIGNALS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")


class AirlineEnv:
    """One benchmark version's data and tools; hands out isolated episodes.

    Thread-safe: the shared state (data, gold-hash cache) is read-only or locked."""

    def __init__(self, version: str = "tau2", data_dir: Optional[str] = None, data: Optional[AirlineData] = None):
        self.data = data or load_airline(version, data_dir)
        self.version = self.data.version
        self.table = table_for(self.version)
        self._gold: Dict[str, str] = {}
        self._gold_errors: Dict[str, List[ToolResult]] = {}
        self._lock = threading.Lock()

    # -- what the agent sees
    def tool_schemas(self) -> List[Dict[str, Any]]:
        return tool_schemas(self.version)

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
            if self.version == "tau1" and a.name == "transfer_to_human_agents":
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
    env: AirlineEnv
    task: Task
    db: EpisodeDB
    tool_results: List[ToolResult] = field(default_factory=list)
    assistant_texts: List[str] = field(default_factory=list)
    transferred: bool = False

    def call_tool(self, name: str, arguments: Any) -> ToolResult:
        res = self.env.table.call(self.db, name, arguments)
        self.tool_results.append(res)
        if name == "transfer_to_human_agents" and not res.error:
            self.transferred = True
        return res

    def say(self, text: str) -> None:
        """Record an assistant message to the user (for the COMMUNICATE / outputs check)."""
        self.assistant_texts.append(text or "")

    def state_hash(self) -> str:
        return self.db.state_hash()

    def evaluate(self, termination: str = "user_stop", judge: Optional[NLJudge] = None,
                 messages: Optional[List[Dict]] = None) -> RewardResult:
        return evaluate_episode(self, termination, judge, messages)
