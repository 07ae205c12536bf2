"""Tool-call parsers: assistant text -> (content, tool calls, parse errors).

Two formats are built in and registered:

* ``hermes``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (Qwen2.5/Qwen3);
* ``qwen3_coder``: ``<tool_call><function=NAME><parameter=ARG>value</parameter></function></tool_call>``
  (Qwen3-Coder / Qwen3.5 templates).

A malformed call is not an exception: it comes back in ``errors`` with a message
the environment turns into an error observation the policy can recover from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.registry import register_tool_call_parser


@dataclass
class ToolCall:
    name: str
    arguments: Dict[str, Any]
    id: str = ""

    def to_message(self) -> Dict[str, Any]:
        return {"type": "function", "id": self.id, "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class ParsedMessage:
    content: str
    tool_calls: List[ToolCall] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)  # one per malformed call


class ToolCallParser:
    name = "base"

    def parse(self, text: str) -> ParsedMessage:  # pragma: no cover - interface
        raise NotImplementedError


_TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)


def _strip_blocks(text: str) -> str:
    return _TOOL_CALL_BLOCK.sub("", text).strip()


@register_tool_call_parser("hermes")
class HermesParser(ToolCallParser):
    """JSON inside ``<tool_call>...</tool_call>``."""

    name = "hermes"

    def parse(self, text: str) -> ParsedMessage:
        out = ParsedMessage(content=_strip_blocks(text))
        for i, m in enumerate(_TOOL_CALL_BLOCK.finditer(text)):
            body = m.group(1).strip()
            try:
                obj = json.loads(body)
            except json.JSONDecodeError as e:
                out.errors.append(f"Error: tool call is not valid JSON ({e.msg} at position {e.pos}): {body[:200]}")
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
                out.errors.append('Error: tool call must be a JSON object {"name": ..., "arguments": {...}}')
                continue
            args = obj.get("arguments", obj.get("parameters", {}))
            if isinstance(args, str):
                try:
                    args = json.loads(args) if args.strip() else {}
                except json.JSONDecodeError:
                    out.errors.append(f"Error: arguments of tool call {obj['name']} are not a JSON object")
                    continue
            if not isinstance(args, dict):
                out.errors.append(f"Error: arguments of tool call {obj['name']} must be a JSON object")
                continue
            out.tool_calls.append(ToolCall(name=obj["name"], arguments=args, id=f"call_{i}"))
        return out


_FUNCTION = re.compile(r"<function=([^>\s]+)>(.*?)(?:</function>|$)", re.S)
_PARAM = re.compile(r"<parameter=([^>\s]+)>(.*?)(?:</parameter>|(?=<parameter=)|$)", re.S)


def _xml_value(raw: str) -> Any:
    v = raw.strip("\n")
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


@register_tool_call_parser("qwen3_coder")
class XmlFunctionParser(ToolCallParser):
    """``<function=name><parameter=p>value</parameter></function>`` inside ``<tool_call>``."""

    name = "qwen3_coder"

    def parse(self, text: str) -> ParsedMessage:
        out = ParsedMessage(content=_strip_blocks(text))
        for i, m in enumerate(_TOOL_CALL_BLOCK.finditer(text)):
            body = m.group(1)
            f = _FUNCTION.search(body)
            if f is None:
                out.errors.append(f"Error: tool call has no <function=...> element: {body.strip()[:200]}")
                continue
            args = {p.group(1): _xml_value(p.group(2)) for p in _PARAM.finditer(f.group(2))}
            out.tool_calls.append(ToolCall(name=f.group(1), arguments=args, id=f"call_{i}"))
        return out


@register_tool_call_parser("auto")
class AutoParser(ToolCallParser):
    """Per tool-call block: XML when it holds ``<function=``, JSON otherwise."""

    name = "auto"

    def parse(self, text: str) -> ParsedMessage:
        xml = "<function=" in text
        return (XmlFunctionParser() if xml else HermesParser()).parse(text)


def parser_for(name: Optional[str]) -> ToolCallParser:
    from openrlhf_mtgrpo.registry import get_tool_call_parser

    return get_tool_call_parser(name or "auto")
