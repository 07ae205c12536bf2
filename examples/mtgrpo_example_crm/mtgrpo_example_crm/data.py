"""The benchmark's files: read at run time from ``data/``, each checked against its pinned sha256.

This package *is* the benchmark (a small support desk): its policy, agent instructions, customer prompt,
run rules, database and tasks are the files in ``data/``.  They are parsed (JSON, text), never executed,
and a file that is not the pinned one is refused (:class:`DataMismatch`): two runs that report the same
identity ran on the same benchmark.  After editing a file, update :data:`PINNED` (the package's tests
recompute the hashes and fail until you do).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from openrlhf_mtgrpo.envs.base import GoldAction

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
PACKAGE = "mtgrpo-example-crm"
PACKAGE_VERSION = "0.1.0"  # the distribution's version (pyproject.toml)
VERSION = "v1"

#: file -> sha256 of the version's files
PINNED = {
    "agent_instructions.md": "3be673f3199543139c1f2c10edfa79df1b83cd83090875ca0efe00ca0cfc0024",
    "benchmark.json": "12f9dfdc72776c211b2a02a44e7bc6b3728052560c9fe9e80b0e0c7d96cea5db",
    "customer_prompt.md": "20ad10a7a66c6f8f7db50c67adb554c891d413add6937d808d04c407af3c1557",
    "db.json": "3d39a8edc3e666c87afc69f2060c3206b8752e3c50d88bacbc7137503bb29b56",
    "policy.md": "26f776f0417b217d50043a8f49f2136e4835e676290edf421748feae3c552152",
    "tasks.json": "2f13c1e6fac6e233ced1369037fa2e306f1057564102e72063276367dee3def2",
}


class DataMismatch(RuntimeError):
    """A data file is not the pinned one."""


@dataclass(frozen=True)
class Task:
    """One task: the customer's scenario, the gold actions and what the agent must tell the customer.

    ``customer_id`` is the account the task is about (for the scripted policy's mistakes; the agent never
    sees it)."""

    id: str
    user_instructions: str
    actions: Tuple[GoldAction, ...]
    communicate_info: Tuple[str, ...] = ()
    customer_id: str = ""


@dataclass
class CrmData:
    """The loaded files: ``db`` (tables customers, tickets, plans), tasks by id, splits, texts, rules."""

    db: Dict[str, Dict[str, Any]]
    tasks: Dict[str, Task]
    splits: Dict[str, List[str]]
    policy: str
    agent_instructions: str
    customer_prompt: str
    rules: Dict[str, Any]
    sha256: Dict[str, str] = field(default_factory=dict)


def file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _read(folder: str, name: str, hashes: Dict[str, str]) -> str:
    path = os.path.join(folder, name)
    got = file_sha256(path)
    if got != PINNED[name]:
        raise DataMismatch(f"{path}: sha256 {got}, pinned {PINNED[name]} ({PACKAGE} {VERSION}); a changed file "
                           "is another benchmark: update data.PINNED if the change is meant")
    hashes[name] = got
    with open(path, encoding="utf-8") as f:
        return f.read()


def _task(raw: Dict[str, Any]) -> Task:
    actions = tuple(GoldAction(a["name"], dict(a.get("arguments") or {})) for a in raw["actions"])
    return Task(id=str(raw["id"]), user_instructions=raw["user_instructions"], actions=actions,
                communicate_info=tuple(raw.get("communicate_info") or ()), customer_id=raw.get("customer_id", ""))


def load(folder: Optional[str] = None) -> CrmData:
    """The benchmark's files from ``folder`` (default: the package's ``data/``), each checked."""
    folder = folder or HERE
    hashes: Dict[str, str] = {}
    texts = {name: _read(folder, name, hashes) for name in sorted(PINNED)}
    raw_tasks = json.loads(texts["tasks.json"])
    tasks = {t.id: t for t in map(_task, raw_tasks["tasks"])}
    splits = {k: [str(i) for i in v] for k, v in raw_tasks["splits"].items()}
    splits["base"] = list(tasks)
    unknown = sorted({i for ids in splits.values() for i in ids} - set(tasks))
    if unknown:
        raise ValueError(f"tasks.json: the splits name tasks it lacks: {unknown}")
    return CrmData(db=json.loads(texts["db.json"]), tasks=tasks, splits=splits, policy=texts["policy.md"].strip(),
                   agent_instructions=texts["agent_instructions.md"], customer_prompt=texts["customer_prompt.md"],
                   rules=json.loads(texts["benchmark.json"]), sha256=hashes)
