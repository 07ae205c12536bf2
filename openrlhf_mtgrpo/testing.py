"""Check a domain against what the episode loop, the rewards and training rely on (docs/domains.md).

For authors of a domain: ``check_domain(domain)`` returns the problems found (empty: none), and
``assert_domain(domain)`` raises ``AssertionError`` listing them, for a test::

    from openrlhf_mtgrpo.testing import assert_domain

    def test_my_domain_keeps_the_rules():
        assert_domain(make_my_domain())

The checklist (:func:`run_checks`; each item adds its problems, and says in ``checked`` what it covered):

* **interface**: :func:`openrlhf_mtgrpo.envs.domain_problems` (attributes, types, schemas, tasks);
* **schemas**: each tool's ``parameters`` is a JSON-schema object (``type: object``, ``properties`` of
  typed properties, ``required`` naming only properties; checked by ``jsonschema`` too where it is
  installed), function names as OpenAI allows them;
* **tool kinds**: every agent tool has a kind, write targets are arguments of their tools;
* **tasks**: ids unique, ``task(id)`` finds each task of every split, gold actions name tools the domain
  has;
* **gold replays**: each task's gold actions, one call per message, then a message with the task's
  ``communicate_info``, score 1.0 at a proper ending (``user_stop``, or ``agent_stop`` where a gold call
  ended the episode); a reward that is NaN (a judge would be needed) is counted, not a problem;
* **premature endings**: the same replayed episode scores 0 when it ends by ``max_steps`` (every task),
  ``too_many_errors`` and ``agent_error`` (the first task);
* **determinism**: a second replay gives the same observations and reward;
* **isolation**: for tasks with writes, an episode that writes the task's records with other values than
  the gold's leaves the gold replays of episodes made before and after it unchanged, and two episodes
  replayed call by call in turn each see exactly the observations of a replay alone;
* **shared state**: the domain's public data (its attributes not starting with ``_``, walked recursively)
  is unchanged by all of the above;
* **message rules**: a malformed call ends the episode as ``agent_error`` with no call run; so does an empty
  message (``empty_message_is_error``: tau-bench, tau1, sends an empty reply to the customer instead: pass
  False); a text-only message goes to the customer; an unknown tool and a call missing a required argument
  come back as errors; every result is JSON-serialisable, one per call that ran;
* **outcomes**: ``evaluate(...).to_dict()`` is JSON-serialisable with ``reward`` and ``success``, and
  ``success`` agrees with the reward.

``warnings`` name what optional commands need and the domain lacks (``mtgrpo demo`` reads ``splits`` and
the tasks' ``communicate_info``).  Stdlib only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.envs import base

#: JSON-schema types a property may have
JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
#: what OpenAI's API accepts as a function name
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: tasks with writes the isolation check replays (the first ones of the split)
ISOLATION_TASKS = 3


@dataclass
class DomainCheck:
    """What :func:`run_checks` found: ``problems`` (empty: the domain passed), ``checked`` (how many of each
    thing were checked) and ``warnings`` (what optional commands would miss)."""

    problems: List[str] = field(default_factory=list)
    checked: Dict[str, int] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, what: str, n: int = 1) -> None:
        self.checked[what] = self.checked.get(what, 0) + n

    def describe(self) -> str:
        """Several lines for people: the problems, then what was checked, then the warnings."""
        lines = [f"problem: {p}" for p in self.problems] or ["no problems"]
        lines.append("checked: " + ", ".join(f"{k} {v}" for k, v in self.checked.items()))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------------------------------


def _json_problem(value: Any) -> Optional[str]:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def _fingerprint(obj: Any, depth: int = 0, seen: Optional[set] = None) -> Any:
    """A hashable summary of ``obj``'s data: containers and public attributes, recursively."""
    seen = set() if seen is None else seen
    if obj is None or isinstance(obj, (str, int, float, bool, bytes)):
        return obj
    if depth > 12 or id(obj) in seen or isinstance(obj, (type, types.ModuleType)) or callable(obj):
        return type(obj).__name__  # code, classes and modules are not data
    seen.add(id(obj))
    try:
        if isinstance(obj, Mapping):
            return ("map", tuple((repr(k), _fingerprint(v, depth + 1, seen)) for k, v in obj.items()))
        if isinstance(obj, (list, tuple)):
            return ("seq", tuple(_fingerprint(v, depth + 1, seen) for v in obj))
        if isinstance(obj, (set, frozenset)):
            return ("set", tuple(sorted(repr(_fingerprint(v, depth + 1, seen)) for v in obj)))
        attrs = getattr(obj, "__dict__", None)
        if isinstance(attrs, dict):
            return (type(obj).__name__, tuple((k, _fingerprint(v, depth + 1, seen)) for k, v in sorted(attrs.items())
                                              if not k.startswith("_") and not callable(v)))
        return type(obj).__name__
    finally:
        seen.discard(id(obj))


def shared_state_digest(domain: Any) -> str:
    """sha256 of the domain's public data (attributes not starting with ``_``, walked recursively)."""
    return hashlib.sha256(repr(_fingerprint(domain)).encode()).hexdigest()


def _is_user_action(action: Any) -> bool:
    return getattr(action, "requestor", "assistant") == "user"


def _outcome_dict(outcome: Any, what: str, report: DomainCheck) -> Optional[Dict[str, Any]]:
    try:
        d = outcome.to_dict()
    except Exception as e:  # noqa: BLE001 - a domain's error, reported
        report.problems.append(f"{what}: the outcome's to_dict() raised {type(e).__name__}: {e}")
        return None
    if not isinstance(d, dict) or "reward" not in d or "success" not in d:
        report.problems.append(f"{what}: the outcome's to_dict() must be a dict with 'reward' and 'success' "
                               "(the episode loop and the logs read them)")
        return None
    problem = _json_problem(d)
    if problem:
        report.problems.append(f"{what}: the outcome's to_dict() is not JSON-serialisable ({problem})")
    reward = getattr(outcome, "reward", None)
    if isinstance(reward, (int, float)) and not math.isnan(reward) and bool(d["success"]) != (reward >= 1.0 - 1e-6):
        report.problems.append(f"{what}: success is {d['success']} with reward {reward}")
    return d


@dataclass
class _Replay:
    observations: List[Tuple[str, bool]]
    stopped: bool
    episode: Any
    problems: List[str]


def _replay(domain: Any, task: Any, episode: Any = None) -> _Replay:
    """The task's gold actions, one call per message (the customer's through ``user_tool_calls``), then a
    message with its ``communicate_info``."""
    ep = domain.reset(task) if episode is None else episode
    obs: List[Tuple[str, bool]] = []
    problems: List[str] = []
    actions = list(getattr(task, "actions", []))
    stopped = False
    for i, a in enumerate(actions):
        args = copy.deepcopy(a.arguments)
        if _is_user_action(a):
            user_calls = getattr(ep, "user_tool_calls", None)
            if user_calls is None:
                problems.append(f"task {task.id}: gold action {i} ({a.name}) is the customer's, but the episode has "
                                "no user_tool_calls")
                break
            results = list(user_calls([(a.name, args)]))
        else:
            turn = ep.assistant_message("", [(a.name, args)])
            if turn.agent_error:
                problems.append(f"task {task.id}: gold action {i} ({a.name}) ended the episode as agent_error")
                break
            results = list(turn.results)
            if turn.agent_stop:
                stopped = True
        obs += [(r.content, bool(r.error)) for r in results]
        if stopped:
            if i < len(actions) - 1:
                problems.append(f"task {task.id}: gold action {i} ({a.name}) ended the episode with "
                                f"{len(actions) - 1 - i} gold action(s) left")
            break
    if not stopped and not problems:
        info = [str(x) for x in getattr(task, "communicate_info", None) or []]
        turn = ep.assistant_message(" ".join(info) or "Your request is done.", [])
        if turn.agent_error or not turn.to_user:
            problems.append(f"task {task.id}: the closing text message did not go to the customer")
    return _Replay(obs, stopped, ep, problems)


# -- the checks ----------------------------------------------------------------------------------------------


def _check_schemas(domain: Any, report: DomainCheck) -> List[str]:
    try:
        import jsonschema
    except ImportError:  # the package does not depend on it
        jsonschema = None
    names = []
    for s in domain.tool_schemas():
        fn = s["function"]
        name = fn["name"]
        names.append(name)
        report.count("tool schemas")
        if not FUNCTION_NAME.match(name):
            report.problems.append(f"tool {name!r}: a function name must match {FUNCTION_NAME.pattern}")
        if not isinstance(fn.get("description"), str) or not fn["description"].strip():
            report.problems.append(f"tool {name!r} has no description (the model only learns what a tool does "
                                   "from it)")
        p = fn["parameters"]
        if p.get("type") != "object":
            report.problems.append(f"tool {name!r}: parameters must be a JSON schema of type 'object'")
        props = p.get("properties", {})
        if not isinstance(props, dict):
            report.problems.append(f"tool {name!r}: parameters.properties must be an object")
            props = {}
        for key, prop in props.items():
            t = prop.get("type") if isinstance(prop, dict) else None
            listed = t if isinstance(t, list) else [t]
            if not isinstance(prop, dict) or (t is not None and not all(x in JSON_TYPES for x in listed)) or (
                    t is None and not {"enum", "anyOf", "oneOf", "allOf", "$ref", "const"} & set(prop)):
                report.problems.append(f"tool {name!r}: property {key!r} has no valid JSON-schema type "
                                       f"(one of {', '.join(JSON_TYPES)})")
        required = p.get("required", [])
        if not isinstance(required, list) or set(required) - set(props):
            report.problems.append(f"tool {name!r}: required must list properties of the tool, got {required!r}")
        if jsonschema is not None:
            try:
                jsonschema.validators.validator_for(p).check_schema(p)
            except jsonschema.exceptions.SchemaError as e:
                report.problems.append(f"tool {name!r}: parameters are not a valid JSON schema: {e.message}")
    return names


def _check_kinds(domain: Any, names: Sequence[str], report: DomainCheck) -> None:
    kinds = domain.tool_kinds
    missing = [n for n in names if kinds.kind(n) is None]
    if missing:
        report.problems.append(f"tool_kinds gives no kind for the tools {missing} (the reward components must "
                               "know what each tool does)")
    props = {s["function"]["name"]: set(s["function"]["parameters"].get("properties", {}))
             for s in domain.tool_schemas()}
    for tool, targets in kinds.write_targets.items():
        if kinds.kind(tool) != base.WRITE:
            report.problems.append(f"write_targets names {tool!r}, which is not a write tool")
        bad = [t for t in targets if tool in props and t not in props[tool]]
        if bad:
            report.problems.append(f"write_targets of {tool!r} name arguments it does not have: {bad}")
    report.count("tool kinds", len(names))


def _check_tasks(domain: Any, split: str, names: Sequence[str], report: DomainCheck) -> List[Any]:
    tasks = domain.tasks(split)
    ids = [str(t.id) for t in tasks]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        report.problems.append(f"tasks({split!r}) repeat the ids {dup}")
    customer_tools = {s["function"]["name"] for s in (domain.customer_tool_schemas() or [])}
    no_info = []
    for t in tasks:
        report.count("tasks")
        try:
            found = domain.task(t.id)
        except Exception as e:  # noqa: BLE001
            report.problems.append(f"task({t.id!r}) raised {type(e).__name__}: {e}")
            continue
        if str(found.id) != str(t.id):
            report.problems.append(f"task({t.id!r}) returned task {found.id!r}")
        for a in t.actions:
            tools = customer_tools if _is_user_action(a) else set(names)
            if a.name not in tools:
                report.problems.append(f"task {t.id}: gold action {a.name!r} is not a tool of the "
                                       f"{'customer' if _is_user_action(a) else 'agent'}")
        if getattr(t, "communicate_info", None) is None:
            no_info.append(str(t.id))
    if no_info:
        report.warnings.append(f"{len(no_info)} task(s) have no communicate_info (e.g. {no_info[0]}): `mtgrpo demo`'s "
                               "scripted policy reads it")
    splits = getattr(domain, "splits", None)
    if splits is None:
        report.warnings.append("the domain has no 'splits' (split name -> its tasks): `mtgrpo demo` reads it to "
                               "pick the train split")
    else:
        for name in splits:
            try:
                lost = [str(t.id) for t in domain.tasks(name) if str(domain.task(t.id).id) != str(t.id)]
            except Exception as e:  # noqa: BLE001
                report.problems.append(f"split {name!r}: tasks({name!r}) or task(id) raised {type(e).__name__}: {e}")
                continue
            if lost:
                report.problems.append(f"split {name!r}: task(id) does not find its tasks {lost[:5]}")
            report.count("splits")
    return tasks


def _check_gold(domain: Any, tasks: Sequence[Any], report: DomainCheck) -> Dict[str, _Replay]:
    replays: Dict[str, _Replay] = {}
    for t in tasks:
        r = _replay(domain, t)
        report.problems += r.problems
        if r.problems:
            continue
        replays[str(t.id)] = r
        ep = r.episode
        early = ep.evaluate(base.MAX_STEPS)
        d = _outcome_dict(early, f"task {t.id} ended by max_steps", report)
        if d is not None and (early.reward != 0 or d["success"]):
            report.problems.append(f"task {t.id}: the gold replay ended by max_steps scores {early.reward}, not 0 "
                                   "(an episode cut by the run's rules is scored 0)")
        report.count("premature endings")
        ending = base.AGENT_STOP if r.stopped else base.USER_STOP
        out = ep.evaluate(ending)
        _outcome_dict(out, f"task {t.id}", report)
        report.count("gold replays")
        if isinstance(out.reward, float) and math.isnan(out.reward):
            report.count("gold replays unscored (NaN: a judge is needed)")
            continue
        if out.reward != 1.0:
            report.problems.append(f"task {t.id}: the gold replay ended by {ending} scores {out.reward}, not 1.0 "
                                   f"({getattr(out, 'note', '') or out.to_dict()})")
        again = _replay(domain, t)
        report.count("determinism replays")
        if again.observations != r.observations:
            pairs = zip(again.observations, r.observations)
            i = next((i for i, (x, y) in enumerate(pairs) if x != y), min(len(again.observations), len(r.observations)))
            report.problems.append(f"task {t.id}: a second gold replay sees other observations (first difference at "
                                   f"observation {i}): tool outputs must be deterministic and episodes isolated")
        elif again.episode.evaluate(ending).reward != out.reward:
            report.problems.append(f"task {t.id}: a second gold replay scores differently")
    if tasks:
        ep = domain.reset(tasks[0])
        for ending in (base.TOO_MANY_ERRORS, base.AGENT_ERROR):
            out = ep.evaluate(ending)
            if out.reward != 0:
                report.problems.append(f"task {tasks[0].id}: an episode ended by {ending} scores {out.reward}, not 0")
            report.count("premature endings")
    return replays


def _variant(action: Any, calls: Dict[str, List[Dict[str, Any]]], targets: Tuple[str, ...]) -> Dict[str, Any]:
    """``action``'s arguments with other values: its record (the target arguments) kept, the rest taken from
    another gold call of the same tool that differs there (else the gold arguments themselves)."""
    own = copy.deepcopy(action.arguments)
    for other in calls.get(action.name, []):
        rest = {k: v for k, v in other.items() if k not in targets}
        if rest and any(own.get(k) != v for k, v in rest.items()):
            return {**own, **copy.deepcopy(rest)}
    return own


def _run_calls(ep: Any, actions: Sequence[Any], args: Optional[Sequence[Dict[str, Any]]] = None):
    out = []
    for i, action in enumerate(actions):
        a = copy.deepcopy(action.arguments) if args is None else args[i]
        if _is_user_action(action):
            results = list(ep.user_tool_calls([(action.name, a)]))
        else:
            results = list(ep.assistant_message("", [(action.name, a)]).results)
        out += [(r.content, bool(r.error)) for r in results]
    return out


def _check_isolation(domain: Any, tasks: Sequence[Any], replays: Dict[str, _Replay], report: DomainCheck,
                     digest: str) -> None:
    """Episode A writes the task's records with other values than the gold's (:func:`_variant`); episodes
    made before and after A's writes must then replay the gold with exactly the observations of a replay
    alone, and two episodes replayed call by call in turn must too.  The shared data must be as it was
    (``digest``) right after A's writes, before any later replay could write the gold's values back."""
    kinds = domain.tool_kinds
    writes = kinds.writes
    chosen = [t for t in tasks if str(t.id) in replays and any(a.name in writes for a in t.actions)]
    if not chosen:
        report.warnings.append("no task with a gold write: the isolation of episodes was not checked")
        return
    calls: Dict[str, List[Dict[str, Any]]] = {}
    for t in tasks:
        for a in t.actions:
            if a.name in writes:
                calls.setdefault(a.name, []).append(a.arguments)
    for t in chosen[:ISOLATION_TASKS]:
        solo = replays[str(t.id)].observations
        before = domain.reset(t)
        a_writes = [a for a in t.actions if a.name in writes]
        other = domain.reset(t)
        _run_calls(other, a_writes, [_variant(a, calls, tuple(kinds.write_targets.get(a.name, ()))) for a in a_writes])
        if shared_state_digest(domain) != digest:
            report.problems.append(f"task {t.id}: the domain's shared data changed when an episode wrote: an episode "
                                   "wrote into shared state (write to an episode's own copy)")
        after = domain.reset(t)
        for when, ep in (("before", before), ("after", after)):
            if _run_calls(ep, t.actions)[:len(solo)] != solo:
                report.problems.append(f"task {t.id}: an episode made {when} another episode's writes sees other "
                                       "observations than a replay alone: one episode's writes reach another")
        x, y = domain.reset(t), domain.reset(t)
        seen: Dict[int, List[Tuple[str, bool]]] = {0: [], 1: []}
        for action in t.actions:
            for key, ep in ((0, x), (1, y)):
                seen[key] += _run_calls(ep, [action])
        if any(seen[key][:len(solo)] != solo for key in (0, 1)):
            report.problems.append(f"task {t.id}: two episodes replayed call by call in turn see other observations "
                                   "than one alone: one episode's writes reach the other")
        report.count("isolation checks")


def _check_messages(domain: Any, task: Any, names: Sequence[str], report: DomainCheck,
                    empty_message_is_error: bool) -> None:
    def fresh():
        return domain.reset(task)

    turn = fresh().assistant_message("I will look into it.", [], malformed=1, first_call_malformed=True)
    if not turn.agent_error or turn.results:
        report.problems.append("a message with a malformed tool call must end the episode as agent_error with no call "
                               "run (the benchmarks' runs fail there)")
    if empty_message_is_error:
        turn = fresh().assistant_message("", [])
        if not turn.agent_error:
            report.problems.append("an empty message (no text, no tool call) must end the episode as agent_error "
                                   "(tau2 refuses such a message); pass empty_message_is_error=False for a benchmark "
                                   "that sends it to the customer")
    turn = fresh().assistant_message("How can I help?", [])
    if turn.agent_error or not turn.to_user or turn.results or turn.ran:
        report.problems.append("a text message without tool calls must go to the customer (to_user, no results)")
    unknown = "no_such_tool_" + hashlib.sha256("".join(names).encode()).hexdigest()[:6]
    probes = [(unknown, {})]
    required = {s["function"]["name"]: s["function"]["parameters"].get("required") or []
                for s in domain.tool_schemas()}
    probes += [(n, {}) for n in names if required.get(n)][:1]
    for name, args in probes:
        turn = fresh().assistant_message("", [(name, args)])
        report.count("message rules")
        if turn.agent_error:
            report.problems.append(f"a call of {name} with arguments {args} ended the episode; a bad call must come "
                                   "back as an error observation the model can read")
            continue
        if len(turn.results) != len(turn.ran) or turn.ran != sorted(turn.ran) or not turn.results:
            report.problems.append(f"assistant_message must give one result per call that ran (call {name})")
            continue
        res = turn.results[0]
        if not res.error or not isinstance(res.content, str) or not res.content.strip():
            what = "an unknown tool" if name == unknown else f"{name} without its required arguments"
            report.problems.append(f"a call of {what} must come back as an error with a message (got error={res.error}, "
                                   f"content {res.content!r})")
        problem = _json_problem(res.to_dict())
        if problem:
            report.problems.append(f"ToolResult.to_dict() of {name} is not JSON-serialisable ({problem})")
    report.count("message rules", 3)


def run_checks(domain: Any, *, gold_tasks: Optional[Iterable[Any]] = None, split: str = "base",
               empty_message_is_error: bool = True) -> DomainCheck:
    """Run the checklist (the module docstring) on a loaded domain.

    gold_tasks: the tasks (or their ids) whose gold is replayed (default: every task of ``split``)."""
    from openrlhf_mtgrpo.envs import domain_problems

    report = DomainCheck()
    report.problems += domain_problems(domain, split)
    report.count("interface")
    if report.problems:
        return report  # the rest would only fail on what is missing
    before = shared_state_digest(domain)
    names = _check_schemas(domain, report)
    _check_kinds(domain, names, report)
    tasks = _check_tasks(domain, split, names, report)
    if gold_tasks is not None:
        tasks = [domain.task(t if not hasattr(t, "actions") else t.id) for t in gold_tasks]
    replays = _check_gold(domain, tasks, report)
    _check_isolation(domain, tasks, replays, report, before)
    if tasks:
        _check_messages(domain, tasks[0], names, report, empty_message_is_error)
    rules, customer = domain.run_rules, domain.customer_prompt
    if customer is not None and rules.agent_greeting is not None and customer.opening != rules.agent_greeting:
        report.warnings.append("the customer's opening message is not the agent's greeting: the customer is answering "
                               "a message the policy never saw")
    if shared_state_digest(domain) != before:
        report.problems.append("the domain's shared data changed while episodes ran: an episode wrote into shared "
                               "state (write to an episode's own copy)")
    report.count("shared-state digests", 2)
    return report


def check_domain(domain: Any, *, gold_tasks: Optional[Iterable[Any]] = None, split: str = "base",
                 empty_message_is_error: bool = True) -> List[str]:
    """The problems :func:`run_checks` finds (empty: none)."""
    return run_checks(domain, gold_tasks=gold_tasks, split=split,
                      empty_message_is_error=empty_message_is_error).problems


def assert_domain(domain: Any, **kwargs: Any) -> DomainCheck:
    """:func:`run_checks`, raising ``AssertionError`` with every problem found; the report otherwise."""
    report = run_checks(domain, **kwargs)
    if report.problems:
        raise AssertionError(f"domain {getattr(domain, 'name', '?')} {getattr(domain, 'version', '')}: "
                             f"{len(report.problems)} problem(s):\n" + report.describe())
    return report
