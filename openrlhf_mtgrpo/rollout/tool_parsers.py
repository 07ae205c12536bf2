"""Tool-call parsers: assistant text -> (content, tool calls, parse errors), and the reasoning split.

**Reference: vLLM 0.29.0** (the version OpenRLHF 0.11.2 pins for its ``[vllm]`` extra; wheel
``vllm-0.29.0``, ``__commit_id__ = g98dff2a81``).  At eval the policy is served by vLLM with
``--tool-call-parser hermes|qwen3_coder --reasoning-parser qwen3``, and what that server returns as
tool calls, content and reasoning is what the benchmark acts on.  Training reads the model's output
by the same rules, so the policy is trained under the parser that judges it.  The rules below are
vLLM 0.29.0's non-streaming chat path (``DelegatingParser.parse``: the reasoning parser first, then
the tool parser on what is left), written here independently; ``tests/test_parser_vllm029.py`` holds
the outputs vLLM 0.29.0 itself gave for each rule.

Reasoning (:func:`split_reasoning`, vLLM's ``qwen3`` reasoning parser, an engine-based parser in 0.29):

* thinking off: nothing is split off; the whole generated text goes to the tool parser;
* thinking on: the reasoning runs to the first ``</think>`` or the first ``<tool_call>``, whichever
  comes first (text before a ``<think>`` is reasoning too; every ``<think>`` in it is dropped).
  After ``</think>`` the rest is content; a ``<tool_call>`` starts the content itself.  Every later
  ``</think>`` is dropped from the content.  With neither, the whole turn is reasoning.  So a call the
  model writes inside its think block (before ``</think>``) *is* a call.

``hermes`` (Qwen2.5, Qwen3, Qwen3-2507; vLLM ``Hermes2ProToolParser``):

* no ``<tool_call>`` in the text: no call, the text is content;
* each ``<tool_call>`` block runs to the next ``</tool_call>``, an unclosed last one to the end;
  every block must be a JSON object with a string ``"name"`` and an ``"arguments"`` key.  If any
  block is not (invalid JSON, no ``"arguments"`` -- ``"parameters"`` is not read --, no name, a name
  that is not a string, an array, an empty block), vLLM returns **no call at all and the whole text
  as content**: here too, the turn is a message to the customer with the markup in it
  (:attr:`ParsedMessage.rejected` says why);
* otherwise every block is a call (unknown tool names too: the tool then answers with an error).
  ``"arguments"`` may be any JSON value: vLLM passes it on serialised, and one that is not a JSON
  object (a string holding JSON, ``null``, a list, a number) fails the benchmarks' runs, so such a
  call is a malformed call here (``errors``); the rollout ends the episode there as ``agent_error``;
* the content is the text before the first ``<tool_call>``; text between and after calls is dropped.

``qwen3_coder`` (Qwen3-Coder, Qwen3.5; vLLM 0.29's ``qwen3_coder`` parser engine).  The text is read
as vLLM's state machine reads it:

* ``<tool_call>`` or a bare ``<function=`` opens a call; in a ``<tool_call>`` block only
  ``<function=`` matters (other text there is dropped) and ``</tool_call>`` closes it;
* the function name runs from ``<function=`` to the next ``>`` (or to ``</function>``, or the end),
  and is stripped; an empty name is no call (it is dropped silently);
* the arguments run from there to the first ``</function>`` -- a ``</function>`` inside a value
  ends the call --, or to the end: without ``</function>``, ``</tool_call>`` and any later call are
  read as part of this call's arguments; after ``</function>`` a new ``<tool_call>`` or
  ``<function=`` opens the next call;
* a parameter is ``<parameter=NAME>VALUE`` up to ``</parameter>`` or the next ``<parameter=`` (tags
  may hold whitespace, e.g. ``< / parameter >``); one still open where the arguments end is
  dropped; NAME keeps trailing whitespace (only leading whitespace is skipped), so ``<parameter=x >``
  is ``"x "``, a parameter the schema does not list; one leading and one trailing newline of VALUE
  are removed; a repeated name keeps its last value;
* values are converted by the schema of the called tool (:func:`convert_xml_value`); a tool with no
  schema, or a parameter its schema does not list, keeps text;
* no call at all: the whole text is content (``</think>`` included); with calls the content is the
  text before the first call, stripped, with ``</think>`` dropped;
* never a malformed call: whatever vLLM makes of the text is run (an odd name gets the tool's
  "not found" error), or the text is content.

Not emulated: vLLM also drops the tokenizer's other special tokens (``<|im_start|>`` ...) written in
the middle of a turn; the turn's closing ``<|im_end|>`` is never part of the text parsed here.

Every parser returns a :class:`ParsedMessage`; :attr:`ParsedMessage.ordered_calls` gives the calls in
the order the message wrote them, malformed ones included (tau1 runs only the first call).
``auto`` resolves from the chat template (:func:`parser_for`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.registry import register_tool_call_parser

THINK_START, THINK_END = "<think>", "</think>"
TOOL_CALL_START, TOOL_CALL_END = "<tool_call>", "</tool_call>"
FUNCTION_START, FUNCTION_END = "<function=", "</function>"
PARAMETER_START, PARAMETER_END = "<parameter=", "</parameter>"

#: the error observation for a call whose arguments are not a JSON object (eval's client uses the same words)
ARGUMENTS_NOT_AN_OBJECT = "Error: tool call arguments are not a JSON object"


@dataclass
class ToolCall:
    name: str
    arguments: Dict[str, Any]
    id: str = ""

    def to_message(self) -> Dict[str, Any]:
        return {"type": "function", "id": self.id, "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class CallSlot:
    """One tool call of a message as vLLM returns it, at its place among the message's calls."""

    index: int  # position among the message's calls, malformed ones included
    call: Optional[ToolCall] = None  # the call, when it can run
    error: str = ""  # else the error observation it gets

    @property
    def malformed(self) -> bool:
        return self.call is None


@dataclass
class ParsedMessage:
    content: str  # what the customer / the benchmark's COMMUNICATE check sees: no reasoning, no call markup
    tool_calls: List[ToolCall] = field(default_factory=list)  # the calls that can run, in order
    errors: List[str] = field(default_factory=list)  # one error observation per malformed call, in order
    reasoning: str = ""
    #: every call in the order written: tool_calls and errors interleaved as they came
    ordered_calls: List[CallSlot] = field(default_factory=list)
    #: why call markup in the text was not read as calls (vLLM then returns it as content or drops it)
    rejected: List[str] = field(default_factory=list)

    @property
    def first_call_malformed(self) -> bool:
        """The message's first call is malformed (tau-bench runs only ``tool_calls[0]`` of a message: then no
        call of this message may run)."""
        if self.ordered_calls:
            return self.ordered_calls[0].malformed
        return bool(self.errors) and not self.tool_calls

    def _add_call(self, name: str, arguments: Dict[str, Any]) -> None:
        i = len(self.ordered_calls)
        call = ToolCall(name=name, arguments=arguments, id=f"call_{i}")
        self.tool_calls.append(call)
        self.ordered_calls.append(CallSlot(i, call=call))

    def _add_malformed(self, error: str) -> None:
        self.errors.append(error)
        self.ordered_calls.append(CallSlot(len(self.ordered_calls), error=error))


_EMPTY_THINK_BLOCK = re.compile(r"\A<think>\s*</think>\s*")


def split_reasoning(text: str, thinking: bool, prefill: Optional[str] = None) -> Tuple[str, str]:
    """(reasoning, the rest) of an assistant message, by vLLM 0.29.0's ``qwen3`` reasoning parser.

    ``text`` is what the engine generated, or the renderer's prefill followed by it (the rollout passes
    the re-rendered assistant message); ``prefill`` names that prefix exactly, which vLLM never sees
    (it was in the prompt).  Without ``prefill``, thinking off drops a leading empty ``<think></think>``
    block (the thinking-off prefill); thinking on needs nothing dropped (a leading ``<think>`` is dropped
    by the rules anyway).
    """
    if prefill and text.startswith(prefill):
        text = text[len(prefill):]
    elif not thinking:
        text = _EMPTY_THINK_BLOCK.sub("", text, count=1)
    if not thinking:
        return "", text
    ends = [(i, tag) for tag in (THINK_END, TOOL_CALL_START) if (i := text.find(tag)) >= 0]
    if not ends:
        return text.replace(THINK_START, ""), ""
    at, tag = min(ends)
    reasoning = text[:at].replace(THINK_START, "")
    rest = text[at + len(THINK_END):] if tag == THINK_END else text[at:]
    return reasoning, rest.replace(THINK_END, "")


class ToolCallParser:
    name = "base"

    def __init__(self, tools: Optional[Sequence[Dict[str, Any]]] = None):
        self.set_tools(tools)

    def set_tools(self, tools: Optional[Sequence[Dict[str, Any]]]) -> None:
        """The OpenAI-style tool schemas (``{"type": "function", "function": {...}}``) of the environment."""
        self.tools = list(tools or [])
        #: per tool name, its parameters' schemas (``parameters["properties"]``; the first tool of a name)
        self._properties: Dict[str, Dict[str, Any]] = {}
        for t in self.tools:
            f = t.get("function", t) if isinstance(t, dict) else {}
            params = f.get("parameters") or {}
            props = params.get("properties") if isinstance(params, dict) else None
            self._properties.setdefault(f.get("name"), props if isinstance(props, dict) else {})

    def parse(self, text: str) -> ParsedMessage:  # pragma: no cover - interface
        raise NotImplementedError


def _hermes_blocks(text: str) -> List[str]:
    """The bodies of the ``<tool_call>`` blocks: each up to the next ``</tool_call>``, an unclosed one to the end."""
    bodies, pos = [], 0
    while (start := text.find(TOOL_CALL_START, pos)) >= 0:
        body_start = start + len(TOOL_CALL_START)
        end = text.find(TOOL_CALL_END, body_start)
        if end < 0:
            bodies.append(text[body_start:])
            break
        bodies.append(text[body_start:end])
        pos = end + len(TOOL_CALL_END)
    return bodies


def _hermes_rejection(body: str) -> Tuple[Optional[Dict[str, Any]], str]:
    """(the call object, "") when vLLM reads the block as a call, else (None, why not)."""
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as e:
        return None, f"tool call is not valid JSON ({e.msg} at position {e.pos}): {body.strip()[:200]}"
    if not isinstance(obj, dict):
        return None, f"tool call is a JSON {type(obj).__name__}, not an object: {body.strip()[:200]}"
    if not isinstance(obj.get("name"), str):
        return None, 'tool call has no "name" string'
    if "arguments" not in obj:
        return None, f'tool call {obj["name"]} has no "arguments"'
    return obj, ""


@register_tool_call_parser("hermes")
class HermesParser(ToolCallParser):
    """JSON inside ``<tool_call>...</tool_call>``, read as vLLM 0.29.0's ``hermes`` parser reads it."""

    name = "hermes"

    def parse(self, text: str) -> ParsedMessage:
        if TOOL_CALL_START not in text:
            return ParsedMessage(content=text.strip())
        objs = []
        for i, body in enumerate(_hermes_blocks(text)):
            obj, why = _hermes_rejection(body)
            if obj is None:  # vLLM: one block it cannot read and the whole message is content, no call runs
                return ParsedMessage(content=text.strip(), rejected=[f"call {i}: {why}"])
            objs.append(obj)
        out = ParsedMessage(content=text[:text.find(TOOL_CALL_START)].strip())
        for obj in objs:
            if isinstance(obj["arguments"], dict):
                out._add_call(obj["name"], obj["arguments"])
            else:  # vLLM returns the call; its arguments are not an object, so eval's client refuses it
                out._add_malformed(ARGUMENTS_NOT_AN_OBJECT)
        return out


# ---------------------------------------------------------------------------------------------------------
# qwen3_coder: XML calls
# ---------------------------------------------------------------------------------------------------------

#: the literal tags vLLM's qwen3 engine recognises (anything else is text); the longest match wins
_XML_TAGS = sorted([THINK_START, THINK_END, TOOL_CALL_START, TOOL_CALL_END, FUNCTION_START, FUNCTION_END,
                    PARAMETER_START, PARAMETER_END, ">"], key=len, reverse=True)


def _lex(text: str) -> List[Tuple[bool, str]]:
    """The text as (is_tag, piece) pieces, tags matched left to right."""
    pieces: List[Tuple[bool, str]] = []
    i, plain = 0, 0
    while i < len(text):
        c = text[i]
        tag = None
        if c == ">":
            tag = ">"
        elif c == "<":
            tag = next((t for t in _XML_TAGS if text.startswith(t, i)), None)
        if tag is None:
            i += 1
            continue
        if plain < i:
            pieces.append((False, text[plain:i]))
        pieces.append((True, tag))
        i += len(tag)
        plain = i
    if plain < len(text):
        pieces.append((False, text[plain:]))
    return pieces


_CONTENT, _PREAMBLE, _NAME, _ARGS, _BETWEEN = range(5)


def _xml_call_spans(text: str) -> Tuple[str, List[List[str]], bool]:
    """(content before the first call with ``</think>`` dropped, [[name text, argument text]] per call opened,
    whether any call was opened) -- vLLM's qwen3 state machine, started in content."""
    state, before, calls = _CONTENT, [], []
    for is_tag, piece in _lex(text):
        tag = piece if is_tag else None
        if state == _CONTENT:
            if tag == THINK_END:
                continue
            if tag in (TOOL_CALL_START, FUNCTION_START):
                calls.append(["", ""])
                state = _PREAMBLE if tag == TOOL_CALL_START else _NAME
            elif not calls:
                before.append(piece)
        elif state == _PREAMBLE:  # inside <tool_call>, before <function=: other text is dropped
            if tag == TOOL_CALL_END:
                state = _CONTENT
            elif tag == FUNCTION_START:
                state = _NAME
        elif state == _NAME:
            if tag == ">":
                state = _ARGS
            elif tag == FUNCTION_END:
                state = _BETWEEN
            else:
                calls[-1][0] += piece
        elif state == _ARGS:
            if tag == FUNCTION_END:
                state = _BETWEEN
            else:
                calls[-1][1] += piece
        else:  # _BETWEEN: after </function>
            if tag == TOOL_CALL_END:
                state = _CONTENT
            elif tag in (TOOL_CALL_START, FUNCTION_START):
                calls.append(["", ""])
                state = _PREAMBLE if tag == TOOL_CALL_START else _NAME
    return "".join(before), calls, bool(calls)


_PARAMETER = re.compile(r"<\s*parameter\s*=\s*([^>]*)>(.*?)(?=<\s*/\s*parameter\s*>|<\s*parameter\s*=)"
                        r"(?:<\s*/\s*parameter\s*>)?", re.S)
_JSON_NAME = re.compile(r'"name"\s*:\s*"([^"]*)"')


def _xml_parameters(args: str) -> Dict[str, str]:
    """The ``<parameter=NAME>VALUE`` pairs of a call's argument text (values still text)."""
    params: Dict[str, str] = {}
    for m in _PARAMETER.finditer(args):
        value = m.group(2)
        value = value[1:] if value.startswith("\n") else value
        params[m.group(1)] = value[:-1] if value.endswith("\n") else value
    return params


def _json_body_call(args: str) -> Tuple[Any, Optional[Any]]:
    """vLLM's fallback for a call with no function name but a body: a JSON ``{"name": ..., "arguments": ...}``.
    (name or "", arguments: a dict, or another value / text vLLM would pass on)."""
    try:
        obj = json.loads(args.strip())
    except json.JSONDecodeError:
        return "", None
    if not isinstance(obj, dict):
        return "", None
    for key in ("arguments", "parameters"):
        if key in obj:
            val = obj[key]
            if isinstance(val, str):
                try:
                    val = json.loads(val)
                except json.JSONDecodeError:
                    pass
            return obj.get("name", ""), val
    return obj.get("name", ""), {k: v for k, v in obj.items() if k != "name"}


@register_tool_call_parser("qwen3_coder")
class XmlFunctionParser(ToolCallParser):
    """``<function=name><parameter=p>value</parameter></function>`` (in ``<tool_call>``), read as vLLM 0.29.0's
    ``qwen3_coder`` parser reads it."""

    name = "qwen3_coder"

    def parse(self, text: str) -> ParsedMessage:
        before, spans, opened = _xml_call_spans(text)
        out = ParsedMessage(content="")
        for i, (raw_name, args) in enumerate(spans):
            if not raw_name:  # vLLM looks for a JSON "name" in the body of a call without one
                m = _JSON_NAME.search(args)
                raw_name = m.group(1) if m else ""
            if not raw_name and not args:
                out.rejected.append(f"call {i}: <tool_call> without a <function=NAME>")
                continue
            name = raw_name.strip()
            if not name and args.strip():
                name, arguments = _json_body_call(args)
            else:
                arguments = _xml_parameters(args)
            if not isinstance(name, str) or not name:
                out.rejected.append(f"call {i}: empty function name")
                continue
            if isinstance(arguments, dict):
                out._add_call(name, self._convert(name, arguments))
            else:
                out._add_malformed(ARGUMENTS_NOT_AN_OBJECT)
        if not out.ordered_calls:  # vLLM: no call, the text (markup included) is the content
            out.content = text.strip()
            if opened and not out.rejected:
                out.rejected.append("no call could be read")
        else:
            out.content = before.strip()
        return out

    def _convert(self, name: str, arguments: Dict[str, Any]) -> Dict[str, Any]:
        props = self._properties.get(name) or {}
        if not props:
            return arguments
        return {k: (_coerce(v, props[k]) if isinstance(props.get(k), dict) else v) for k, v in arguments.items()}


# ---------------------------------------------------------------------------------------------------------
# qwen3_coder value conversion (vLLM 0.29.0)
# ---------------------------------------------------------------------------------------------------------

_TYPE_ALIASES = {"str": "string", "text": "string", "varchar": "string", "char": "string", "enum": "string",
                 "int": "integer", "int32": "integer", "int64": "integer", "uint": "integer", "uint32": "integer",
                 "uint64": "integer", "long": "integer", "short": "integer", "unsigned": "integer",
                 "float": "number", "float32": "number", "float64": "number", "double": "number",
                 "bool": "boolean", "dict": "object", "arr": "array", "list": "array", "sequence": "array"}
#: the order in which a value is tried against the types its schema allows
_TYPE_ORDER = ("null", "integer", "number", "boolean", "object", "array", "string")
_ENUM_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"))


def schema_types(schema: Any) -> List[str]:
    """Every type a parameter's JSON schema allows: ``type`` (a name or a list), the types of its ``enum``
    values, and those of ``anyOf`` / ``oneOf`` / ``allOf`` alternatives; ``["string"]`` when none is given."""
    if not isinstance(schema, dict):
        return ["string"]
    found: List[str] = []
    t = schema.get("type")
    for name in ([t] if isinstance(t, str) else t if isinstance(t, list) else []):
        if isinstance(name, str):
            found.append(name)
    enum = schema.get("enum")
    if isinstance(enum, list):
        for value in enum:
            if value is None:
                found.append("null")
            else:
                found.extend(next(([n] for cls, n in _ENUM_TYPES if isinstance(value, cls)), []))
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list):
            for alt in schema[key]:
                found.extend(schema_types(alt))
    return list(dict.fromkeys(found)) or ["string"]


def _finite(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (ValueError, TypeError):
        return False


def _coerce_text(value: str, types: Sequence[str]) -> Any:
    allowed = {_TYPE_ALIASES.get(t.strip().lower(), t.strip().lower()) for t in types}
    for kind in _TYPE_ORDER:
        if kind not in allowed:
            continue
        if kind == "null":
            if value.lower() == "null":
                return None
        elif kind == "string":
            return value
        elif kind == "integer":
            try:
                return int(value)
            except ValueError:
                pass
        elif kind == "number":
            try:
                x = float(value)
            except ValueError:
                continue
            if math.isfinite(x):
                return int(x) if x == int(x) else x
        elif kind == "boolean":
            word = value.strip().lower()
            if word in ("true", "1"):
                return True
            if word in ("false", "0"):
                return False
        else:  # object / array: JSON only
            try:
                parsed = json.loads(value)
            except (json.JSONDecodeError, ValueError):
                continue
            if _finite(parsed):
                return parsed
    try:  # no allowed type fits: the JSON reading of the text, else the text
        parsed = json.loads(value)
    except (json.JSONDecodeError, ValueError):
        return value
    return parsed if _finite(parsed) else value


def _coerce(value: Any, schema: Dict[str, Any]) -> Any:
    """A parameter value converted by its schema (text values; a JSON value's nested properties and items)."""
    if isinstance(value, str):
        return _coerce_text(value, schema_types(schema))
    if isinstance(value, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            return {k: (_coerce(v, props[k]) if isinstance(props.get(k), dict) else v) for k, v in value.items()}
        return value
    if isinstance(value, list):
        items = schema.get("items")
        return [_coerce(v, items) for v in value] if isinstance(items, dict) else value
    coerced = _coerce_text(json.dumps(value), schema_types(schema))
    return coerced if type(coerced) is not type(value) or coerced != value else value


def convert_xml_value(value: str, schema: Optional[Dict[str, Any]]) -> Any:
    """A qwen3_coder parameter's text converted by its JSON schema, as vLLM 0.29.0 converts it.

    The schema's types (:func:`schema_types`) are tried in the order null, integer, number, boolean,
    object, array, string: ``null`` (any case) is None where null is allowed; an integer is ``int()`` of
    the text; a number is ``float()`` (integral values become ints; ``inf`` / ``nan`` are not numbers);
    a boolean is true / false / 1 / 0 (any case, spaces ignored); object and array are JSON only (no
    Python literals).  String, where allowed and nothing before it fits, keeps the text as it is (so
    ``"null"`` stays the string ``"null"``).  If no allowed type fits, the text's JSON reading is used
    (``"1.5"`` for an integer is 1.5, ``"null"`` is None), else the text.  ``schema`` None (a parameter
    the schema does not list): the text.
    """
    return value if not isinstance(schema, dict) else _coerce_text(value, schema_types(schema))


def format_of_template(chat_template: Optional[str]) -> Optional[str]:
    """The tool-call parser a chat template teaches: ``qwen3_coder``, ``hermes`` or None (cannot tell)."""
    if not chat_template:
        return None
    if "<function=" in chat_template:
        return "qwen3_coder"
    if "<tool_call>" in chat_template:
        return "hermes"
    return None


@register_tool_call_parser("auto")
class AutoParser(ToolCallParser):
    """Without a chat template to read: per message, XML when it holds ``<function=``, JSON otherwise.

    :func:`parser_for` resolves ``auto`` from the chat template instead; this class only
    serves callers that have no template."""

    name = "auto"

    def parse(self, text: str) -> ParsedMessage:
        cls = XmlFunctionParser if "<function=" in text else HermesParser
        return cls(self.tools).parse(text)


def parser_for(name: Optional[str], tools: Optional[Sequence[Dict[str, Any]]] = None,
               chat_template: Optional[str] = None) -> ToolCallParser:
    """The parser registered as ``name`` with the tool schemas bound; ``auto`` + a chat template picks
    the template's format (a ``ValueError`` when the template names none)."""
    from openrlhf_mtgrpo.registry import get_tool_call_parser

    name = name or "auto"
    if name == "auto" and chat_template is not None:
        resolved = format_of_template(chat_template)
        if resolved is None:
            raise ValueError("--mtgrpo.tool_parser auto: the chat template teaches no known tool-call format "
                             "(neither <function=...> nor <tool_call>); set --mtgrpo.tool_parser hermes or "
                             "qwen3_coder")
        name = resolved
    parser = get_tool_call_parser(name)
    if hasattr(parser, "set_tools"):
        parser.set_tools(tools)
    return parser
