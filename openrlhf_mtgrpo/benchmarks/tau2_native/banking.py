"""tau2-bench's banking_knowledge on tau2-bench's own classes (the engine tau2-bench >= 1.0 only, see :mod:`.engine`).

What tau2-bench v1.0.1's harness does for this domain (``runner/build.py``: ``build_text_orchestrator``,
``_build_env_kwargs``; ``domains/banking_knowledge/environment.py``: ``get_environment``), and how this layer
does the same:

* **The retrieval configuration** (tau2's ``retrieval_config``, a ``RetrievalVariant`` of
  ``domains/banking_knowledge/retrieval.py``) decides the agent's retrieval tools and its policy text.  The
  version ``banking_knowledge`` runs ``bm25`` (offline: BM25 over the 698 documents, one ``KB_search`` tool, the
  policy ``prompts/classic_rag_bm25_no_grep.md``); ``banking_knowledge:<config>`` runs any other of tau2's
  configurations (:data:`RETRIEVAL_CONFIGS`; ``alltools``, tau2's own default, and the embedding ones need an
  embeddings API, ``terminal_use`` a shell sandbox).  The configuration is recorded in the identity
  (``retrieval_config``) and in the schema source.
* **The environment of a task**: tau2's ``build_tools(variant, db, kb, read_log_allowlist)`` toolkit (base banking
  tools + the variant's retrieval mix-ins), ``KnowledgeUserTools`` over the *same* database (agent and customer
  share one ``TransactionalDB``), tau2's ``build_policy``, ``Environment``; then the task's initial state
  (``set_state``).  The read-log allowlist is tau2's own ``_derive_read_log_allowlist(task)`` (the discoverable
  READ tools the task's gold calls: only their calls are logged into the database).  Here the retrieval index
  (BM25 over the documents) is built once per domain and shared by every episode's toolkit (read-only at query
  time); each episode's toolkit is a fresh copy of its other state (the discoverable-tool states, the
  allowlist) over a fresh copy of the database (a :class:`~.cow_db.CopyPlan` of the task's initial state).
* **The agent's tools** are tau2's ``get_tools()``: the non-discoverable tools (15 with ``bm25``).  The 44
  *discoverable* agent tools are in no schema: the agent finds them in the knowledge base, unlocks one with
  ``unlock_discoverable_agent_tool`` and runs it with ``call_discoverable_agent_tool(agent_tool_name,
  arguments)``; it hands one of the 4 discoverable customer tools over with ``give_discoverable_user_tool``,
  which the customer runs with ``call_discoverable_user_tool``.  So the tool lists never change during an
  episode.  Their kinds: tau2's ``ToolType`` of every tool, the discoverable ones included, through
  ``ToolKinds.dispatch`` (a ``call_discoverable_*`` call is what the tool it runs is).
* **The customer's tools** are per task: tau2's ``build_user`` gives the simulator
  ``environment.get_user_tools(include=task.user_tools) or None`` (16 tasks: none; the rest: 1 to 3 of
  ``apply_for_credit_card``, ``submit_referral``, ``call_discoverable_user_tool``, ...), and the customer's
  guidelines are the ones with tools only where it has some (:meth:`BankingDomain.customer_tool_schemas_for`,
  :meth:`BankingDomain.customer_prompt_for`).
* **The run**: tau2's half-duplex orchestrator, as for the other domains: greeting, 200 steps, 10 failed tool
  calls, the customer's stop signals (:meth:`.domain.Tau2NativeDomain._rules`, read from tau2-bench's code).
  Most of banking's tools answer a refusal as text (``"Error: ..."``) without raising: tau2 counts only calls
  that raise as failed, and so does the layer (the same ``get_response`` path).
* **The reward**: tau2's ``evaluate_simulation`` (``EvaluationType.ALL``): 87 tasks ``[DB]``, 9 ``[ACTION]``, 1
  ``[DB, NL_ASSERTION]``.  The predicted state is the live episode, the gold state the gold actions on a fresh
  environment of the task (with the same allowlist), as the other tau2 domains (:mod:`.evaluation`); the
  differential test checks this against tau2-bench's own orchestrator and evaluator, whose replay re-runs only
  the calls of tools that mutate state.

Data: :mod:`openrlhf_mtgrpo.benchmarks.data.banking` (pins; a data folder, the cache of ``mtgrpo data fetch
banking_knowledge``, or tau2-bench's own data folder).  tau2's code is given the files found there (the database,
the documents, the task files, the policy templates), never its own paths.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from openrlhf_mtgrpo.envs.base import AgentPrompt, CustomerPrompt, ToolKinds, ToolResult
from openrlhf_mtgrpo.benchmarks.tau2_native import prompting
from openrlhf_mtgrpo.benchmarks.tau2_native.cow_db import CopyPlan
from openrlhf_mtgrpo.benchmarks.tau2_native.domain import DataMismatch, Tau2NativeDomain, write_targets_of
from openrlhf_mtgrpo.benchmarks.tau2_native.tasks import Tau2Task, TaskSet
from openrlhf_mtgrpo.benchmarks.tau2_native.engine import EngineMismatch
from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import engine, modules
from openrlhf_mtgrpo.benchmarks.tau2_native.versions import (BANKING_DEFAULT, BANKING_RETRIEVAL_DEFAULT,
                                                             engine_problem, get_version)

DOMAIN = "banking_knowledge"
#: tau2-bench v1.0.1's retrieval configurations (``retrieval.RETRIEVAL_VARIANTS``; checked against the installed
#: code when the domain loads): ``banking_knowledge:<name>`` runs one, ``banking_knowledge`` runs ``bm25``
RETRIEVAL_CONFIGS: Tuple[str, ...] = (
    "no_knowledge", "full_kb", "golden_retrieval", "qwen_embeddings_grep", "openai_embeddings_grep",
    "qwen_embeddings_reranker_grep", "openai_embeddings_reranker_grep", "bm25_grep", "bm25_reranker_grep",
    "qwen_embeddings", "openai_embeddings", "qwen_embeddings_reranker", "openai_embeddings_reranker", "bm25",
    "bm25_reranker", "grep_only", "terminal_use", "terminal_use_write", "alltools", "alltools-qwen")
#: the configurations that run offline, without an embeddings or LLM API or a sandbox
OFFLINE_CONFIGS: Tuple[str, ...] = ("no_knowledge", "full_kb", "golden_retrieval", "bm25", "bm25_grep", "grep_only")
SEP = ":"
#: the tools that run a discoverable tool, and the argument that names it (tau2's KnowledgeTools /
#: KnowledgeUserTools; checked against the tools' signatures when the domain loads)
AGENT_DISPATCH = {"call_discoverable_agent_tool": "agent_tool_name"}
USER_DISPATCH = {"call_discoverable_user_tool": "discoverable_tool_name"}


def version_name(config: str) -> str:
    """The version that runs retrieval configuration ``config``."""
    return DOMAIN if config == BANKING_RETRIEVAL_DEFAULT else f"{DOMAIN}{SEP}{config}"


VERSIONS: Tuple[str, ...] = (DOMAIN,) + tuple(version_name(c) for c in RETRIEVAL_CONFIGS
                                              if c != BANKING_RETRIEVAL_DEFAULT)


def retrieval_of(version: Optional[str]) -> str:
    """The retrieval configuration of ``version`` (ValueError for a name that is not one of :data:`VERSIONS`)."""
    version = version or BANKING_DEFAULT
    if version not in VERSIONS:
        raise ValueError(f"unknown {DOMAIN} version {version!r}; choose {DOMAIN} (retrieval "
                         f"{BANKING_RETRIEVAL_DEFAULT}) or {DOMAIN}{SEP}<config> with a config of "
                         f"{', '.join(RETRIEVAL_CONFIGS)}")
    return version.partition(SEP)[2] or BANKING_RETRIEVAL_DEFAULT


_components_lock = threading.Lock()


class BankingDomain(Tau2NativeDomain):
    """tau2-bench's banking_knowledge with one retrieval configuration (see the module's notes)."""

    def __init__(self, version: Optional[str] = None, data_dir: Optional[str] = None, snapshot_cache: int = 256):
        from openrlhf_mtgrpo.benchmarks.data import banking as banking_data

        self.retrieval_config = retrieval_of(version)
        spec = get_version(DOMAIN)
        self.spec = spec
        self.name = spec.domain
        self.version = version or BANKING_DEFAULT
        self.solo = False
        self.engine = engine()
        problem = engine_problem(spec, self.engine)
        if problem:
            raise EngineMismatch(problem)
        self.data_dir = data_dir
        where = banking_data.locate(data_dir)
        self.folder = self.task_folder = where.folder
        self.data_source = where.source
        self.files_sha256 = dict(where.digests)
        self.t = t = modules(DOMAIN)
        r = t.retrieval
        missing = sorted(set(RETRIEVAL_CONFIGS) ^ set(r.get_all_variant_names()))
        if missing:
            raise DataMismatch(f"{self.engine.title}'s retrieval configurations differ from tau2-bench v1.0.1's "
                               f"(those this package offers): {', '.join(missing)}")
        self.variant = r.resolve_variant(self.retrieval_config)

        # the data tau2's code is given: the database, the knowledge base, the policy templates of the folder found
        self.kb = t.domain_data.KnowledgeBase.load(os.path.join(self.folder, "documents"))
        self.pristine = t.domain_data.TransactionalDB.load(os.path.join(self.folder, "db.json"))
        self.pristine_user = self.pristine  # get_environment: KnowledgeUserTools over the same database
        self._policy = self._build_policy(None)
        self._policies: Dict[str, str] = {}
        # the toolkit whose retrieval resources (the index) every episode shares: tau2's build_tools
        self._tools0 = r.build_tools(self.variant, t.domain_data.TransactionalDB.load(
            os.path.join(self.folder, "db.json")), self.kb)
        user0 = t.domain_tools.KnowledgeUserTools(self._tools0.db)
        env0 = t.environment.Environment(domain_name=DOMAIN, policy=self._policy, tools=self._tools0,
                                         user_tools=user0)
        self._env0 = env0
        self._env_class = type(env0)
        self._domain_name = env0.domain_name
        self._tools_class = type(self._tools0)
        self._user_tools_class = type(user0)
        self._copy_on_access, self._digest, self.cow_tables = False, None, ()
        self._db_plan = CopyPlan(self.pristine)
        self.solo_stop = None

        # what the agent and the customer can call: tau2's get_tools() (no discoverable tool), their ToolTypes,
        # the discoverable ones reached through the dispatching tools
        tools, user_tools = env0.get_tools(), env0.get_user_tools()
        self._schemas = [tl.openai_schema for tl in tools]
        self._customer_schemas = [tl.openai_schema for tl in user_tools]
        self._customer_by_name = {s["function"]["name"]: s for s in self._customer_schemas}
        tables = tuple(type(self.pristine).model_fields)
        self.customer_tool_kinds = self._kinds(user0, USER_DISPATCH, write_targets_of(user0, tables))
        transfer = "transfer_to_human_agents"
        kinds = self._kinds(self._tools0, AGENT_DISPATCH, write_targets_of(self._tools0, tables))
        self.tool_kinds = ToolKinds(kinds.kinds, kinds.write_targets,
                                    transfer if transfer in kinds.kinds else None,
                                    customer=self.customer_tool_kinds, dispatch=kinds.dispatch)
        self.identity = self._identity()
        self.schema_source = {
            "source": "benchmark",
            "where": f"{self.engine.package} {self.engine.version}: tau2.domains.{DOMAIN} toolkit of retrieval "
                     f"configuration {self.retrieval_config} (build_tools), tau2's Tool.openai_schema",
            "files": dict(self.files_sha256),
            "retrieval_config": self.retrieval_config,
            "tools": [s["function"]["name"] for s in self._schemas],
            "sha256": hashlib.sha256(json.dumps(self._schemas, sort_keys=True).encode()).hexdigest(),
        }
        self.error_prefix = self._error_prefix(env0)
        self.run_rules = self._rules()
        self.agent_prompt, self.customer_prompt = self._prompts()
        self._plain_customer = prompting.customer_prompt(False, self.greeting())

        self.task_set = TaskSet(self.version, os.path.join(self.folder, "tasks"), None, extra=self._task_fields)
        self._gold: Dict[str, Tuple[Optional[str], Optional[str]]] = {}
        self._gold_records: Dict[str, Any] = {}  # none: banking's database is not copy-on-access
        self._failing: Dict[str, frozenset] = {}
        self._snapshots: "OrderedDict[str, Any]" = OrderedDict()
        self._allowlists: Dict[str, frozenset] = {}
        self._user_tools_of: Dict[str, Optional[List[Dict[str, Any]]]] = {}
        self.snapshot_cache = snapshot_cache
        self._lock = threading.Lock()

    # -- what the domain is
    def _kinds(self, toolkit: Any, dispatch: Dict[str, str], targets: Dict[str, Tuple[str, ...]]) -> ToolKinds:
        kinds = {n: toolkit.tool_type(n).value for n in toolkit.get_tools()}
        found = {n: toolkit.tool_type(n).value for n in toolkit.get_discoverable_tools()}
        out = {}
        for wrapper, arg in dispatch.items():
            if wrapper not in kinds or arg not in inspect.signature(getattr(toolkit, wrapper)).parameters:
                raise DataMismatch(f"{self.engine.title}: {type(toolkit).__name__} has no tool {wrapper}({arg}=...), "
                                   f"which runs its discoverable tools")
            out[wrapper] = (arg, found)
        return ToolKinds(kinds, targets, dispatch=out)

    def _identity(self) -> Dict[str, str]:
        d = self.files_sha256
        return {"version": self.version, "package": self.engine.label, "retrieval_config": self.retrieval_config,
                "db_sha256": d["db.json"], "tasks_sha256": d["tasks/"], "documents_sha256": d["documents/"],
                "prompts_sha256": d["prompts/"],
                "policy_sha256": hashlib.sha256(self._policy.encode()).hexdigest(), **self.engine.identity()}

    def _build_policy(self, task_model: Any) -> str:
        """tau2's ``build_policy(variant, kb, task)`` over the templates of the folder found (its
        ``{{component:...}}`` parts read from that folder's ``prompts/components/``)."""
        r = self.t.retrieval
        variant = copy.deepcopy(self.variant)
        variant.prompt_template = Path(self.folder) / "prompts" / variant.prompt_template.name
        components = Path(self.folder) / "prompts" / "components"
        with _components_lock:
            saved = r.COMPONENTS_DIR
            r.COMPONENTS_DIR = components
            try:
                return r.build_policy(variant, self.kb, task_model)
            finally:
                r.COMPONENTS_DIR = saved

    def _task_policy(self, task: Tau2Task) -> str:
        """The policy of ``task``: the domain's, but for ``golden_retrieval``, whose policy holds the task's
        required documents (tau2's ``golden_prompt``)."""
        if self.variant.name != "golden_retrieval":
            return self._policy
        with self._lock:
            hit = self._policies.get(task.id)
        if hit is None:
            hit = self._build_policy(task.tau2)
            with self._lock:
                self._policies[task.id] = hit
        return hit

    def agent_prompt_for(self, task: Any) -> AgentPrompt:
        task = self.task(task)
        policy = self._task_policy(task)
        return self.agent_prompt if policy is self._policy else prompting.agent_prompt(policy)

    def customer_tool_schemas_for(self, task: Any) -> Optional[List[Dict[str, Any]]]:
        """The customer's tools in ``task``, as tau2's ``build_user`` gives them to the simulator:
        ``environment.get_user_tools(include=task.user_tools) or None`` (None where that raises)."""
        task = self.task(task)
        with self._lock:
            if task.id in self._user_tools_of:
                hit = self._user_tools_of[task.id]
                return copy.deepcopy(hit) if hit is not None else None
        try:
            tools = self._env0.get_user_tools(include=task.tau2.user_tools) or None
        except Exception:  # noqa: BLE001 -- tau2's build_user: no tools where the lookup fails
            tools = None
        schemas = [tl.openai_schema for tl in tools] if tools else None
        with self._lock:
            self._user_tools_of[task.id] = schemas
        return copy.deepcopy(schemas) if schemas is not None else None

    def customer_prompt_for(self, task: Any) -> CustomerPrompt:
        """tau2's customer prompt for ``task``: its guidelines with tools only where the task's customer has some."""
        return self.customer_prompt if self.customer_tool_schemas_for(task) is not None else self._plain_customer

    @property
    def demo_calibration(self) -> str:
        return "dual-control-dense"

    # -- environments
    def allowlist(self, task: Tau2Task) -> frozenset:
        """tau2's ``_derive_read_log_allowlist(task)`` (runner/build.py): the discoverable tools the task's gold
        calls through ``call_discoverable_agent_tool``; only those READ tools' calls are logged in the database."""
        with self._lock:
            hit = self._allowlists.get(task.id)
        if hit is None:
            hit = frozenset(_derive_allowlist()(task.tau2))
            with self._lock:
                self._allowlists[task.id] = hit
        return hit

    def _toolkit(self, db: Any, task: Tau2Task) -> Any:
        """A fresh agent toolkit over ``db``, as ``build_tools`` makes one: the shared one's state copied (its
        containers: the discoverable-tool states), its retrieval resources shared, tau2's
        ``set_read_log_allowlist`` with the task's allowlist."""
        tk = object.__new__(self._tools_class)
        for k, v in vars(self._tools0).items():
            tk.__dict__[k] = db if k == "db" else copy.deepcopy(v) if isinstance(v, (dict, list, set)) else v
        tk.set_read_log_allowlist(set(self.allowlist(task)))
        return tk

    def _fresh_env(self, task: Tau2Task, db: Any) -> Any:
        return self._env_class(domain_name=self._domain_name, policy=self._task_policy(task),
                               tools=self._toolkit(db, task), user_tools=self._user_tools_class(db))

    def _snapshot(self, task: Tau2Task) -> Optional[Any]:
        """A copier of the task's initial database (tau2's ``set_state`` with its initialization data), cached;
        None for a task without initial data (the pristine database's copier serves)."""
        s = task.tau2.initial_state
        if s is None or s.initialization_data is None:
            return None
        with self._lock:
            plan = self._snapshots.get(task.id)
            if plan is not None:
                self._snapshots.move_to_end(task.id)
                return plan
        env = self._fresh_env(task, self._db_plan())
        env.set_state(s.initialization_data, None, [])
        if env.user_tools.db is not env.tools.db:
            raise DataMismatch(f"{self.engine.title}: after set_state the agent's and the customer's databases "
                               f"are two objects (task {task.id})")
        plan = CopyPlan(env.tools.db)
        with self._lock:
            self._snapshots[task.id] = plan
            while len(self._snapshots) > self.snapshot_cache:
                self._snapshots.popitem(last=False)
        return plan

    def environment(self, task: Tau2Task, solo: Optional[bool] = None) -> Any:
        """A fresh tau2 environment in ``task``'s initial state (see the module's notes)."""
        s = task.tau2.initial_state
        if s is not None and s.message_history:
            raise NotImplementedError(f"task {task.id} starts from a message history; not supported here")
        if s is not None and s.initialization_actions:  # actions may change toolkit state: tau2's set_state, each time
            env = self._fresh_env(task, self._db_plan())
            env.set_state(s.initialization_data, s.initialization_actions, [])
            return env
        plan = self._snapshot(task) or self._db_plan
        return self._fresh_env(task, plan())

    def _gold_call_failed(self, result: ToolResult, by_customer: bool) -> bool:
        """Banking's tools answer most refusals as text (``"Error: ..."``, not a failed call), and some gold calls
        are refused so (a repeated request, a call missing an argument): those count as failed too, the
        customer's calls included (the offline scripted policy counts them as done)."""
        return result.error or str(result.content).startswith("Error")

    def state_hashes(self, env: Any, changed: Optional[Dict[str, set]] = None) -> Tuple[Optional[str], Optional[str]]:
        """(agent database, customer database) hashes, tau2's ``get_db_hash`` / ``get_user_db_hash``: the agent and
        the customer share one database here, so it is hashed once (a dump of 270 KB)."""
        agent = env.get_db_hash()
        return agent, agent if env.user_tools is not None and env.user_tools.db is env.tools.db \
            else env.get_user_db_hash()

    def pristine_intact(self) -> bool:
        """Whether the pristine database still equals db.json, by tau2's own hash."""
        fresh = self.t.domain_data.TransactionalDB.load(os.path.join(self.folder, "db.json"))
        return self._tools_class.get_db_hash(_Holder(self.pristine)) == self._tools_class.get_db_hash(_Holder(fresh))

    # -- tau2's own Results JSON: the run's env kwargs (retrieval configuration) go with it
    def tau2_env_kwargs(self, task: Any) -> Dict[str, Any]:
        """What tau2-bench's harness passes the environment constructor and the evaluator for ``task``
        (``_build_env_kwargs``): the retrieval configuration, the task, the read-log allowlist."""
        task = self.task(task)
        return {"retrieval_variant": self.retrieval_config, "task": task.tau2,
                "read_log_allowlist": set(self.allowlist(task))}


class _Holder:
    """A toolkit-shaped holder of a database, for tau2's ``ToolKitBase.get_db_hash``."""

    def __init__(self, db: Any):
        self.db = db


@functools.lru_cache(maxsize=None)
def _derive_allowlist():
    """tau2-bench's own ``_derive_read_log_allowlist`` (``tau2.runner.build``; importing it imports tau2's
    runner, litellm included: about 3 s, once)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from tau2.runner.build import _derive_read_log_allowlist

    return _derive_read_log_allowlist


def make_banking(version: Optional[str] = None, data_dir: Optional[str] = None) -> BankingDomain:
    """The banking_knowledge domain of ``version`` (``banking_knowledge``: retrieval ``bm25``;
    ``banking_knowledge:<config>``: another of tau2's retrieval configurations).  Needs tau2-bench >= 1.0."""
    return BankingDomain(version or BANKING_DEFAULT, data_dir)


make_banking.versions = VERSIONS
make_banking.default_version = BANKING_DEFAULT
make_banking.preferred_versions = (BANKING_DEFAULT,)
