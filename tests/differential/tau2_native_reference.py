"""tau2's own run as the reference for the tau2-native domains, and the comparison with ours.

The reference is tau2's whole run loop, unchanged: its ``Orchestrator`` with its ``LLMAgent`` (solo:
``LLMSoloAgent``) and ``UserSimulator`` (solo: ``DummyUser``), built as tau2's ``run_task`` builds them,
over an environment from tau2's ``get_environment``, then scored by ``evaluate_simulation``
(``EvaluationType.ALL``).  Only the LLM is replaced: ``generate`` in tau2's agent and user modules returns
the script's next message (:mod:`differential.tau2_native_scripts`), built as tau2's ``generate`` builds it
(a ``ToolCall`` per call, so arguments that are not an object fail there, as in a real run).  A run that
raises (an empty agent message, a malformed call, a solo agent's text) is scored as tau2 scores a failed
sample: ``evaluate_simulation`` with AGENT_ERROR.

Environments of the reference: telecom's are tau2's ``get_environment`` over deep copies of a pristine
database the reference loaded itself.  Retail's 2.8 MB database would cost a deep copy per environment,
so the reference's retail tables copy a record (with pydantic's own deep copy) on first lookup, a
mechanism of this file, not the package's; its toolkit's ``get_db_hash`` compares the records that
differ from the pristine ones, and on a sample of runs tau2's own ``get_db_hash`` is computed as well and
must give the same verdict (for the reference's environments and for ours).

Our side runs the same script through the package's episode, ending it by the domain's ``run_rules`` the
way tau2's orchestrator does (a step per agent message, customer message and batch of tool results; the
limits checked after every step not addressed to the environment).  After every call: the observation,
the error flag and the state (retail: every record that differs from the pristine one; telecom: both whole
databases); after every run: how it ended, the reward, its breakdown, the DB verdict, every env assertion,
action check and communicate check.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from differential.tau2_native_scripts import Event, Script

AGENT_LLM, USER_LLM = "script-agent", "script-user"
KINDS = ("calls", "content", "error", "state", "termination", "reward", "breakdown", "db_match",
         "env_assertions", "actions", "communicate", "true_hash")


class ScriptError(AssertionError):
    """The orchestrator asked for a message the script does not have (a bug of the script)."""


def available() -> Optional[str]:
    """None when tau2's run loop and evaluator import here (they need litellm), else why not."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import tau2.evaluator.evaluator  # noqa: F401
        import tau2.orchestrator.orchestrator  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"
    return None


class RefTable(dict):
    """The reference's retail table: a record is deep-copied (pydantic's ``model_copy``) on first lookup."""

    def __init__(self, pristine):
        super().__init__(pristine)
        self.pristine = pristine
        self.touched = set()

    def __getitem__(self, key):
        if key not in self.touched:
            dict.__setitem__(self, key, dict.__getitem__(self, key).model_copy(deep=True))
            self.touched.add(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __setitem__(self, key, value):
        self.touched.add(key)
        dict.__setitem__(self, key, value)


def changed_records(db, tables, pristine_dumps) -> Dict[str, Dict[str, Any]]:
    """Every record of a table-of-records database that differs from the pristine one (read without copying)."""
    out = {}
    for t in tables:
        table = getattr(db, t)
        keys = getattr(table, "touched", None)
        keys = set(table) if keys is None else keys
        diff = {}
        for k in keys:
            rec = dict.__getitem__(table, k).model_dump()
            if pristine_dumps[t].get(k) != rec:
                diff[k] = rec
        out[t] = diff
    return out


class Reference:
    """tau2's run loop and evaluator for one domain (registered once per process in tau2's registry)."""

    def __init__(self, domain: str, solo: bool, true_hash_every: int = 0):
        from loguru import logger

        logger.disable("tau2")
        from tau2.registry import registry

        self.domain = domain
        self.solo = solo
        self.name = f"{domain}_native_differential"
        self.true_hash_every = true_hash_every
        self.runs = 0
        self.true_hash_checks = 0
        self._created: List[Any] = []
        self._tools = None
        env_mod = __import__(f"tau2.domains.{domain}.environment", fromlist=["get_environment"])
        self.get_environment = env_mod.get_environment
        base = self.get_environment()  # tau2 loads its own databases: the reference's pristine copies
        self.pristine = base.tools.db
        self.pristine_user = base.user_tools.db if base.user_tools is not None else None
        self.tables = tuple(f for f in type(self.pristine).model_fields if isinstance(getattr(self.pristine, f), dict))
        self.table_db = len(self.tables) == len(type(self.pristine).model_fields)
        if self.table_db:
            self.pristine_dumps = {t: {k: v.model_dump() for k, v in getattr(self.pristine, t).items()}
                                   for t in self.tables}
        _validate_solo_once()
        if self.name not in registry.get_domains():
            registry.register_domain(self.environment, self.name)
        else:
            registry._domains[self.name] = self.environment  # a second Reference in this process

    # -- environments
    def environment(self, solo_mode: bool = False):
        if self.table_db:
            db = type(self.pristine).model_construct(**{t: RefTable(getattr(self.pristine, t)) for t in self.tables})
            env = self.get_environment(db=db, solo_mode=solo_mode)
            ref = self

            def db_hash(tools=env.tools):
                if getattr(ref, "_true_hash", False):
                    from tau2.utils.utils import get_dict_hash

                    return get_dict_hash(tools.db.model_dump())
                import json

                return json.dumps(changed_records(tools.db, ref.tables, ref.pristine_dumps), sort_keys=True,
                                  default=str)

            env.tools.get_db_hash = db_hash
        else:
            env = self.get_environment(db=copy.deepcopy(self.pristine), user_db=copy.deepcopy(self.pristine_user),
                                       solo_mode=solo_mode)
        self._created.append(env)
        return env

    def state(self, env) -> Any:
        if self.table_db:
            return changed_records(env.tools.db, self.tables, self.pristine_dumps)
        return (env.tools.db.model_dump(), env.user_tools.db.model_dump() if env.user_tools is not None else None)

    # -- one run
    def run(self, task_model, script: Script, max_steps: int, max_errors: int) -> Dict[str, Any]:
        import tau2.agent.llm_agent as agent_mod
        import tau2.user.user_simulator as user_mod
        from tau2.agent.llm_agent import LLMAgent, LLMSoloAgent
        from tau2.data_model.message import AssistantMessage, ToolCall
        from tau2.data_model.simulation import SimulationRun, TerminationReason
        from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation
        from tau2.orchestrator.orchestrator import Orchestrator
        from tau2.user.user_simulator import DummyUser, UserSimulator

        events = list(script.events)
        n = [0]

        def generate(model, messages, tools=None, tool_choice=None, **kwargs):
            if not events:
                raise ScriptError(f"{script.task_id} {script.kind}: {model} asked for a message after the script")
            ev: Event = events.pop(0)
            want = "agent" if model == AGENT_LLM else "user"
            if ev.role != want:
                raise ScriptError(f"{script.task_id} {script.kind}: {model} asked, the script has a {ev.role} message")
            calls = []
            for name, args in list(ev.calls) + list(ev.malformed):
                n[0] += 1
                calls.append(ToolCall(id=f"tc{n[0]}", name=name, arguments=copy.deepcopy(args)))
            return AssistantMessage(role="assistant", content=ev.text, tool_calls=calls or None, cost=0.0)

        self._created.clear()
        env = self.environment(solo_mode=self.solo)
        calls: List[Dict[str, Any]] = []
        original = env.get_response

        def recording(tc):
            msg = original(tc)
            calls.append({"name": tc.name, "requestor": tc.requestor, "content": msg.content, "error": msg.error,
                          "state": self.state(env)})
            return msg

        env.get_response = recording
        # tau2's run_task gives the agent env.get_tools() (and the customer env.get_user_tools()); building
        # those Tool objects costs 0.1 s, and the scripted LLM only passes them on: built once per reference
        if self._tools is None:
            user_tools = env.get_user_tools() if env.user_tools is not None else None
            self._tools = (env.get_tools(), user_tools)
        tools, user_tools = self._tools
        if self.solo:
            agent = LLMSoloAgent(tools=tools + (user_tools or []), domain_policy=env.get_policy(), task=task_model,
                                 llm=AGENT_LLM)
            user = DummyUser(tools=user_tools, instructions=str(task_model.user_scenario), llm=USER_LLM)
        else:
            agent = LLMAgent(tools=list(tools), domain_policy=env.get_policy(), llm=AGENT_LLM)
            user = UserSimulator(tools=user_tools, instructions=str(task_model.user_scenario), llm=USER_LLM)
        orch = Orchestrator(domain=self.name, agent=agent, user=user, environment=env, task=task_model,
                            max_steps=max_steps, max_errors=max_errors, solo_mode=self.solo)
        saved = agent_mod.generate, user_mod.generate
        agent_mod.generate = user_mod.generate = generate
        failed = None
        try:
            sim = orch.run()
        except ScriptError:
            raise
        except Exception as e:  # noqa: BLE001 -- tau2's run fails: a failed sample, reward 0
            failed = f"{type(e).__name__}: {e}"
            sim = SimulationRun(id="x", task_id=task_model.id, start_time="", end_time="", duration=0.0,
                                termination_reason=TerminationReason.AGENT_ERROR, messages=orch.get_trajectory())
        finally:
            agent_mod.generate, user_mod.generate = saved
        self.runs += 1
        true_check = bool(self.table_db and self.true_hash_every and self.runs % self.true_hash_every == 0)
        self._true_hash = true_check
        self._created.clear()
        try:
            info = evaluate_simulation(sim, task_model, EvaluationType.ALL, solo_mode=self.solo, domain=self.name)
        except Exception as e:  # noqa: BLE001 -- the evaluator fails the sample (e.g. a solo agent's first
            # message with the stop token and tool calls: tau2's orchestrator stops with the calls unanswered,
            # and its replay refuses the trajectory): a failed sample, reward 0
            failed = f"evaluate_simulation: {type(e).__name__}: {e}"
            sim.termination_reason = TerminationReason.AGENT_ERROR
            info = evaluate_simulation(sim, task_model, EvaluationType.ALL, solo_mode=self.solo, domain=self.name)
        finally:
            self._true_hash = False
        predicted_gold = list(self._created)
        if true_check:
            self.true_hash_checks += 1
        return {
            "calls": calls, "termination": str(getattr(sim.termination_reason, "value", sim.termination_reason)),
            "failed": failed, "reward": info.reward,
            "breakdown": {str(getattr(k, "value", k)): v for k, v in (info.reward_breakdown or {}).items()},
            "db_match": info.db_check.db_match if info.db_check is not None else None,
            "env_assertions": [c.met for c in info.env_assertions] if info.env_assertions is not None else None,
            "actions": [c.action_match for c in info.action_checks] if info.action_checks is not None else None,
            "communicate": ({c.info: c.met for c in info.communicate_checks}
                            if info.communicate_checks is not None else None),
            "true_hash": true_check, "envs": predicted_gold, "steps": orch.step_count, "errors": orch.num_errors}


def _validate_solo_once() -> None:
    """tau2's ``Environment.validate_solo_mode`` checks that the agent's and the customer's tool names do not
    overlap by building every ``Tool`` of both toolkits (0.1 s per solo environment); the names depend only on
    the toolkit classes, so the reference checks each pair of classes once (tau2's check, unchanged)."""
    from tau2.environment.environment import Environment

    if getattr(Environment.validate_solo_mode, "_once", False):
        return
    original = Environment.validate_solo_mode
    done = set()

    def validate_solo_mode(self):
        key = (type(self.tools), type(self.user_tools))
        if key not in done:
            original(self)
            done.add(key)

    validate_solo_mode._once = True
    Environment.validate_solo_mode = validate_solo_mode


# -- our side -------------------------------------------------------------------------------------------------

def our_state(ep, ref: Reference) -> Any:
    if ref.table_db:
        return changed_records(ep.env.tools.db, ref.tables, ref.pristine_dumps)
    return (ep.env.tools.db.model_dump(), ep.env.user_tools.db.model_dump() if ep.env.user_tools is not None else None)


def play_script(domain, task, script: Script, rules, calibration: str, state_of) -> Tuple[Any, Any, List[Any], Any]:
    """The script through the package's one episode loop (``rollout.loop.run_conversation``: the loop training
    and eval run), over a fresh episode of ``task``, ended by ``rules``: the scripted policy and customer replace
    only the models; every step, error count, ending and the customer's tool calls are the loop's.  Returns
    (episode, the loop's conversation, ``state_of(episode)`` right after each tool call, the episode's reward
    result with the database checked, or None where the loop did not evaluate)."""
    import asyncio

    from openrlhf_mtgrpo.rewards.calibration import load_calibration
    from openrlhf_mtgrpo.rewards.sets import build_component_set
    from openrlhf_mtgrpo.rollout.loop import CustomerMessage, NoTurn, PolicyCall, PolicyTurn, run_conversation

    ep = domain.reset(task)
    states: List[Any] = []  # the state right after each call (our episode's get_response on its environment)
    original = ep._respond

    def recording(tc):
        out = original(tc)
        states.append(state_of(ep))
        return out

    ep._respond = recording
    agent = [e for e in script.events if e.role == "agent"]
    user = [e for e in script.events if e.role != "agent"]

    class Policy:
        read = 0

        def start(self, messages):
            pass

        async def next(self):
            if self.read >= len(agent):
                raise NoTurn("script_exhausted")
            ev = agent[self.read]
            self.read += 1
            return PolicyTurn(text=ev.text or "", calls=[PolicyCall(f"a{self.read}_{i}", n, a)
                                                         for i, (n, a) in enumerate(ev.calls)],
                              malformed=len(ev.malformed), first_call_malformed=bool(ev.malformed) and not ev.calls)

        def shown(self, turn, ran):
            return {"role": "assistant", "content": turn.text}

        def observe(self, messages, new, record):
            return ""

        def finish(self, messages):
            pass

    class Customer:
        read = 0

        def _next(self):
            if self.read >= len(user):
                raise ScriptError("the loop asked the customer for more messages than the script has")
            ev = user[self.read]
            self.read += 1
            return CustomerMessage(text=ev.text or "", calls=[PolicyCall(f"u{self.read}_{i}", n, a)
                                                              for i, (n, a) in enumerate(ev.calls)])

        async def start(self):
            return self._next()

        async def reply(self, text):
            return self._next()

        async def tool_results(self, results):
            return self._next()

    outcome = {}

    def evaluate(termination, messages):
        outcome["result"] = ep.evaluate(termination, check_db=True)
        return outcome["result"]

    cal = load_calibration(calibration)
    conv = asyncio.run(run_conversation(
        ep, Policy(), None if domain.solo else Customer(), rules, domain.agent_prompt_for(task).text,
        schemas={s["function"]["name"]: s for s in domain.tool_schemas()},
        scorer=build_component_set(cal.component_set, domain.tool_kinds).new_episode(task),
        turn_reward=cal.turn_reward, evaluate=evaluate))
    return ep, conv, states, outcome.get("result")


def run_ours(domain, task, script: Script, rules, ref: Reference) -> Dict[str, Any]:
    """:func:`play_script` with the state :func:`our_state` compares after each call, and the calls listed."""
    cal = "dual-control-dense" if domain.tool_kinds.customer is not None else "paper-dense"
    ep, conv, states, result = play_script(domain, task, script, rules, cal, lambda e: our_state(e, ref))
    # every call's result, the agent's and the customer's, in order
    calls = [{"name": r.name, "requestor": r.requestor, "content": r.content, "error": r.error, "state": states[i]}
             for i, r in enumerate(ep.tool_results)]
    return {"calls": calls, "termination": conv.termination, "result": result, "episode": ep,
            "steps": conv.steps, "errors": conv.errors}


def _apply_agent(ep, ev: Event, record):
    turn = ep.assistant_message(ev.text, ev.calls, malformed=len(ev.malformed),
                                first_call_malformed=bool(ev.malformed) and not ev.calls)
    record(turn.results)
    return turn


# -- the comparison -------------------------------------------------------------------------------------------

_TERMINATIONS = {"user_stop": "user_stop", "agent_stop": "agent_stop", "max_steps": "max_steps",
                 "too_many_errors": "too_many_errors", "agent_error": "agent_error"}


@dataclass
class Report:
    name: str
    runs: int = 0
    calls: int = 0
    errors: int = 0
    by_kind: Dict[str, int] = field(default_factory=dict)
    ones_by_kind: Dict[str, int] = field(default_factory=dict)
    terminations: Dict[str, int] = field(default_factory=dict)
    mismatches: Dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    examples: List[str] = field(default_factory=list)
    true_hash_checks: int = 0
    true_hash_verdicts: Dict[bool, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_mismatches(self) -> int:
        return sum(self.mismatches.values())

    def note(self, kind: str, text: str) -> None:
        self.mismatches[kind] += 1
        if len(self.examples) < 12:
            self.examples.append(f"[{kind}] {text}")

    def line(self) -> str:
        kinds = ", ".join(f"{k} {v} ({self.ones_by_kind.get(k, 0)} reward 1)" for k, v in sorted(self.by_kind.items()))
        ends = ", ".join(f"{k} {v}" for k, v in sorted(self.terminations.items()))
        miss = ", ".join(f"{k} {v}" for k, v in self.mismatches.items())
        return (f"{self.name}: {self.runs} runs ({kinds}); {self.calls} tool calls ({self.errors} errors); endings: "
                f"{ends}; tau2 get_db_hash checks {self.true_hash_checks} (verdicts {self.true_hash_verdicts}); "
                f"mismatches: {miss} [{self.seconds:.1f}s]")


def compare(domain, ref: Reference, scripts: List[Tuple[Any, Script]], report: Report) -> Report:
    t0 = time.perf_counter()
    for task, script in scripts:
        rules = domain.run_rules if script.budget is None else domain.run_rules.override(budget=script.budget)
        theirs = ref.run(task.tau2, script, rules.budget, rules.max_errors)
        ours = run_ours(domain, task, script, rules, ref)
        res = ours["result"]
        tag = f"{task.id} {script.kind}"
        report.runs += 1
        report.by_kind[script.kind] = report.by_kind.get(script.kind, 0) + 1
        if theirs["reward"] == 1.0:
            report.ones_by_kind[script.kind] = report.ones_by_kind.get(script.kind, 0) + 1
        report.terminations[theirs["termination"]] = report.terminations.get(theirs["termination"], 0) + 1
        tc, oc = theirs["calls"], ours["calls"]
        report.calls += len(tc)
        report.errors += sum(c["error"] for c in tc)
        if [(c["name"], c["requestor"]) for c in tc] != [(c["name"], c["requestor"]) for c in oc]:
            report.note("calls", f"{tag}: tau2 ran {[(c['name'], c['requestor']) for c in tc]}, "
                                 f"ours {[(c['name'], c['requestor']) for c in oc]}")
        for i, (a, b) in enumerate(zip(tc, oc)):
            if a["content"] != b["content"]:
                report.note("content", f"{tag} call {i} {a['name']}: {a['content'][:200]!r} vs {b['content'][:200]!r}")
            if a["error"] != b["error"]:
                report.note("error", f"{tag} call {i} {a['name']}: {a['error']} vs {b['error']}")
            if a["state"] != b["state"]:
                report.note("state", f"{tag} call {i} {a['name']}: the states differ")
        if _TERMINATIONS.get(ours["termination"] or "max_steps") != theirs["termination"]:
            report.note("termination", f"{tag}: tau2 {theirs['termination']} ({theirs['failed']}), "
                                       f"ours {ours['termination']}")
        if theirs["failed"] is None and (theirs["steps"], theirs["errors"]) != (ours["steps"], ours["errors"]):
            report.note("termination", f"{tag}: tau2 ended at step {theirs['steps']} with {theirs['errors']} "
                                       f"failed calls, ours at {ours['steps']} with {ours['errors']}")
        if not _same_reward(theirs["reward"], res.reward):
            report.note("reward", f"{tag}: tau2 {theirs['reward']}, ours {res.reward} ({res.note})")
        if theirs["breakdown"] != res.breakdown:
            report.note("breakdown", f"{tag}: tau2 {theirs['breakdown']}, ours {res.breakdown}")
        if theirs["db_match"] is not None and theirs["db_match"] != res.db_match:
            report.note("db_match", f"{tag}: tau2 {theirs['db_match']}, ours {res.db_match}")
        if theirs["env_assertions"] is not None and theirs["env_assertions"] != [c["met"] for c in res.env_assertions]:
            report.note("env_assertions", f"{tag}: tau2 {theirs['env_assertions']}, ours {res.env_assertions}")
        if theirs["actions"] is not None and theirs["actions"] != [a["matched"] for a in res.actions]:
            report.note("actions", f"{tag}: tau2 {theirs['actions']}, ours {res.actions}")
        if theirs["communicate"] is not None and theirs["communicate"] != res.communicate:
            report.note("communicate", f"{tag}: tau2 {theirs['communicate']}, ours {res.communicate}")
        if theirs["true_hash"] and theirs["termination"] in ("user_stop", "agent_stop"):
            _true_hash_check(theirs, ours, report, tag)
    report.true_hash_checks = ref.true_hash_checks
    report.seconds += time.perf_counter() - t0
    return report


def _true_hash_check(theirs, ours, report: Report, tag: str) -> None:
    """tau2's own get_db_hash on the reference's gold environment and on our live episode: its verdict must be
    the reference's DB verdict (computed with the same full hashes) and ours (computed by our digest)."""
    from tau2.utils.utils import get_dict_hash

    envs = theirs["envs"]
    if len(envs) != 2:
        return
    _, gold = envs
    gold_hash = get_dict_hash(gold.tools.db.model_dump())
    ours_hash = ours["episode"].env.get_db_hash()  # tau2's toolkit hash over our copy-on-access database
    verdict = gold_hash == ours_hash
    report.true_hash_verdicts[verdict] = report.true_hash_verdicts.get(verdict, 0) + 1
    if verdict != theirs["db_match"] or verdict != ours["result"].db_match:
        report.note("true_hash", f"{tag}: tau2's full hash says {verdict}, the reference {theirs['db_match']}, "
                                 f"our digest {ours['result'].db_match}")


def _same_reward(a, b) -> bool:
    return a == b or (a != a and b != b)
