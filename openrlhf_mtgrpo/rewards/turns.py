"""What a component set is told about one assistant turn: the records every set reads.

Domain-neutral: a set learns what the tools are from the domain's :class:`~openrlhf_mtgrpo.envs.base.ToolKinds`,
never from names written here.  Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class CallRecord:
    """One tool call as it ran: its name and arguments, whether the environment refused it (``error``),
    and what breaks the tool's JSON schema in its arguments (:func:`schema_problems`)."""

    name: str
    arguments: Any
    error: bool
    schema_errors: List[str] = field(default_factory=list)


@dataclass
class TurnInput:
    """One assistant turn, as a component set's scorer sees it.

    calls: the turn's tool calls that ran, in order; malformed_calls: tool calls that could not be parsed at
    all; last_user_message: the customer's last message before the turn; user_calls: the customer's own tool
    calls in answer to the turn, before its next message to the agent (dual-control domains; empty where the
    customer only talks); probes / probes_before: named measurements of the state a domain takes (values in
    [0, 1]) after the turn was answered and before the turn, for sets that score them."""

    calls: List[CallRecord]
    malformed_calls: int = 0
    last_user_message: str = ""
    user_calls: List[CallRecord] = field(default_factory=list)
    probes: Dict[str, float] = field(default_factory=dict)
    probes_before: Dict[str, float] = field(default_factory=dict)


def schema_problems(schema: Optional[Dict[str, Any]], args: Any) -> List[str]:
    """Light JSON-schema check of one call's arguments (required, unknown keys, JSON types)."""
    if schema is None:
        return ["unknown tool"]
    params = schema["function"]["parameters"]
    if not isinstance(args, dict):
        return ["arguments are not an object"]
    out = [f"missing '{k}'" for k in params.get("required", []) if k not in args]
    props = params.get("properties", {})
    out += [f"unknown argument '{k}'" for k in args if k not in props]
    kinds = {"string": str, "integer": int, "number": (int, float), "array": list, "object": dict, "boolean": bool}
    for k, v in args.items():
        t = props.get(k, {}).get("type")
        if t in kinds and (not isinstance(v, kinds[t]) or (t in ("integer", "number") and isinstance(v, bool))):
            out.append(f"'{k}' should be {t}")
        enum = props.get(k, {}).get("enum")
        if enum and v not in enum:
            out.append(f"'{k}' not one of {enum}")
    return out
