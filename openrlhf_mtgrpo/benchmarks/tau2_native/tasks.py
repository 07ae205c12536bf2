"""A version's tasks: tau2's own ``Task`` models, with the fields the rest of the package reads.

The task file is read as tau2 reads it (``json.load``; a folder of ``task_*.json`` files in name order, as
banking_knowledge's ``get_tasks`` reads them) and each task is validated by tau2's ``Task`` model
on first use (telecom's file holds 2285 tasks; a split needs only its own).  Splits are the benchmark's
``split_tasks.json``, each in task-file order, as tau2's ``get_tasks(split)`` returns them (``split_order``: in
the split file's order, as the airline has always listed them).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from openrlhf_mtgrpo.envs.base import GoldAction


@dataclass(frozen=True, eq=False)
class Tau2Task:
    """One task.  ``tau2`` is tau2's own ``Task`` model (what its evaluator reads); the other fields are
    read from it: ``reward_basis`` with tau2's default ([DB, COMMUNICATE]) where the task gives none,
    ``user_instructions`` is what tau2's run gives the customer simulator (``str(task.user_scenario)``),
    ``ticket`` what its solo agent is given."""

    id: str
    version: str
    actions: List[GoldAction]
    communicate_info: List[str]
    nl_assertions: List[str]
    reward_basis: List[str]
    user_instructions: str
    raw: Dict[str, Any] = field(repr=False)
    tau2: Any = field(repr=False)
    ticket: Optional[str] = None
    env_assertions: List[Dict[str, Any]] = field(default_factory=list, repr=False)
    has_write_action: bool = False  # a gold action calls a WRITE tool (of its requestor)
    user_id: Optional[str] = None  # the airline: the user the scenario's known information names (else None)

    @property
    def user_actions(self) -> List[GoldAction]:
        """The gold actions the customer takes (telecom)."""
        return [a for a in self.actions if a.requestor == "user"]


def make_task(model: Any, version: str, raw: Dict[str, Any], **extra: Any) -> Tau2Task:
    """Our view of tau2's ``Task`` ``model`` (``extra``: fields a domain adds, e.g. the airline's ``user_id``)."""
    crit = model.evaluation_criteria
    actions = [GoldAction(a.name, a.arguments, a.requestor, tuple(a.compare_args) if a.compare_args is not None
                          else None) for a in ((crit.actions if crit else None) or [])]
    return Tau2Task(
        id=model.id, version=version, actions=actions,
        communicate_info=list((crit.communicate_info if crit else None) or []),
        nl_assertions=list((crit.nl_assertions if crit else None) or []),
        reward_basis=[getattr(r, "value", r) for r in (crit.reward_basis if crit else [])],
        user_instructions=str(model.user_scenario), raw=raw, tau2=model, ticket=model.ticket,
        env_assertions=[a.model_dump() for a in ((crit.env_assertions if crit else None) or [])], **extra)


class TaskSet:
    """The tasks and splits of one version (thread-safe; tasks validated on first use)."""

    def __init__(self, version: str, task_path: str, split_path: Optional[str], split_order: bool = False,
                 extra: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None):
        from tau2.data_model.tasks import Task as Tau2TaskModel

        self._model = Tau2TaskModel
        self.version = version
        if os.path.isdir(task_path):  # one file per task (banking_knowledge: its get_tasks reads task_*.json, sorted)
            raw = []
            for name in sorted(n for n in os.listdir(task_path) if n.startswith("task_") and n.endswith(".json")):
                with open(os.path.join(task_path, name)) as f:
                    raw.append(json.load(f))
        else:
            with open(task_path) as f:
                raw = json.load(f)
        if isinstance(raw, dict) and "tasks" in raw:  # tau2's load_tasks accepts this form too
            raw = raw["tasks"]
        self._raw: Dict[str, Dict[str, Any]] = {}
        for t in raw:
            self._raw[str(t["id"])] = t
        self.ids: Tuple[str, ...] = tuple(self._raw)
        self.splits: Dict[str, Tuple[str, ...]] = {}
        if split_path is None:  # no split file (banking_knowledge): its one task set, as tau2's "base"
            self.splits["base"] = self.ids
        else:
            with open(split_path) as f:
                splits = json.load(f)
            for name, members in splits.items():
                wanted = {str(m) for m in members}
                self.splits[name] = (tuple(str(m) for m in members if str(m) in self._raw) if split_order
                                     else tuple(i for i in self.ids if i in wanted))
        self._tasks: Dict[str, Tau2Task] = {}
        self._extra = extra or (lambda raw: {})
        self._lock = threading.Lock()

    def task(self, task_id: Any) -> Tau2Task:
        key = str(task_id)
        t = self._tasks.get(key)
        if t is not None:
            return t
        if key not in self._raw:
            raise KeyError(f"unknown {self.version} task id {task_id!r} (ids: {', '.join(self.ids[:5])}, ...)")
        t = make_task(self._model.model_validate(self._raw[key]), self.version, self._raw[key],
                      **self._extra(self._raw[key]))
        with self._lock:
            return self._tasks.setdefault(key, t)

    def split(self, name: Optional[str] = "base") -> List[Tau2Task]:
        """The tasks of split ``name`` in task-file order (None: every task of the file)."""
        if name is None:
            return [self.task(i) for i in self.ids]
        if name not in self.splits:
            raise ValueError(f"unknown {self.version} split {name!r}; the benchmark's splits: "
                             f"{', '.join(self.splits)}")
        return [self.task(i) for i in self.splits[name]]

    def split_sizes(self) -> Dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self):
        return iter(self.split(None))

