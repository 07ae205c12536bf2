"""The support desk's tools: four reads, two writes and a hand-off, over an :class:`EpisodeState`.

Each tool is a function ``(state, **arguments)`` returning a JSON-serialisable value or raising
:class:`ToolError`; :func:`call` checks the arguments against the tool's schema, runs it and turns the
outcome into the observation the agent sees: sorted-key JSON (deterministic), or ``"Error: ..."`` for a
refused call.  The schemas the agent sees are written here (:data:`SCHEMAS`), in this order.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List

from openrlhf_mtgrpo.envs.base import GENERIC, READ, WRITE, ToolKinds, ToolResult

from mtgrpo_example_crm.state import EpisodeState

TICKET_STATUSES = ("open", "pending", "resolved")  # what update_ticket may set ("closed" is final)
PRIORITIES = ("low", "normal", "high", "urgent")
TRANSFER_TOOL = "transfer_to_human"
TRANSFERRED = "Transfer successful: a human agent will take over this conversation."


class ToolError(Exception):
    """A refused call; its message becomes the observation ``"Error: <message>"``."""


def _ticket(state: EpisodeState, ticket_id: str) -> Dict[str, Any]:
    rec = state.get("tickets", ticket_id)
    if rec is None:
        raise ToolError(f"no ticket with id {ticket_id!r}")
    return rec


def _customer(state: EpisodeState, customer_id: str) -> Dict[str, Any]:
    rec = state.get("customers", customer_id)
    if rec is None:
        raise ToolError(f"no customer with id {customer_id!r}")
    return rec


def find_customer_by_email(state: EpisodeState, email: str) -> Dict[str, Any]:
    want = email.strip().lower()
    for c in state.values("customers"):
        if c["email"].lower() == want:
            return {"customer_id": c["customer_id"], "name": c["name"]}
    raise ToolError(f"no customer with email {email!r}")


def get_customer(state: EpisodeState, customer_id: str) -> Dict[str, Any]:
    return _customer(state, customer_id)


def get_ticket(state: EpisodeState, ticket_id: str) -> Dict[str, Any]:
    return _ticket(state, ticket_id)


def list_plans(state: EpisodeState) -> List[Dict[str, Any]]:
    return list(state.values("plans"))


def update_ticket(state: EpisodeState, ticket_id: str, status: str = None, priority: str = None) -> Dict[str, Any]:
    ticket = _ticket(state, ticket_id)
    if status is None and priority is None:
        raise ToolError("give a new status, a new priority, or both")
    if status is not None and status not in TICKET_STATUSES:
        raise ToolError(f"status must be one of {', '.join(TICKET_STATUSES)}, got {status!r}")
    if priority is not None and priority not in PRIORITIES:
        raise ToolError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    if ticket["status"] == "closed":
        raise ToolError(f"ticket {ticket_id} is closed and cannot be changed")
    rec = state.edit("tickets", ticket_id)
    if status is not None:
        rec["status"] = status
    if priority is not None:
        rec["priority"] = priority
    return dict(rec)


def change_plan(state: EpisodeState, customer_id: str, plan_id: str) -> Dict[str, Any]:
    customer = _customer(state, customer_id)
    if state.get("plans", plan_id) is None:
        raise ToolError(f"no plan {plan_id!r}; plans: {', '.join(p['plan_id'] for p in state.values('plans'))}")
    if customer["account_status"] != "active":
        raise ToolError(f"account {customer_id} is {customer['account_status']}; only active accounts can change plan")
    if customer["plan"] == plan_id:
        raise ToolError(f"customer {customer_id} is already on plan {plan_id!r}")
    rec = state.edit("customers", customer_id)
    rec["plan"] = plan_id
    return dict(rec)


def transfer_to_human(state: EpisodeState, summary: str) -> str:
    if not summary.strip():
        raise ToolError("give a summary of the customer's request for the human agent")
    return TRANSFERRED


def _schema(name: str, description: str, properties: Dict[str, Dict[str, Any]], required: List[str]):
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


_ID = {"type": "string"}
SCHEMAS: List[Dict[str, Any]] = [
    _schema("find_customer_by_email", "Find a customer by the email address of their account. Returns the "
            "customer id and name.", {"email": dict(_ID, description="The customer's email address.")}, ["email"]),
    _schema("get_customer", "Get a customer's account: name, email, plan, account status (active, suspended or "
            "closed) and the ids of their tickets.",
            {"customer_id": dict(_ID, description="The customer id, such as 'C-1001'.")}, ["customer_id"]),
    _schema("get_ticket", "Get a support ticket: its customer, subject, status and priority.",
            {"ticket_id": dict(_ID, description="The ticket id, such as 'T-2001'.")}, ["ticket_id"]),
    _schema("list_plans", "List the subscription plans with their monthly price in USD and their seats.", {}, []),
    _schema("update_ticket", "Change a ticket's status, priority, or both. A closed ticket cannot be changed.",
            {"ticket_id": dict(_ID, description="The ticket id."),
             "status": {"type": "string", "enum": list(TICKET_STATUSES), "description": "The new status."},
             "priority": {"type": "string", "enum": list(PRIORITIES), "description": "The new priority."}},
            ["ticket_id"]),
    _schema("change_plan", "Move an active account to another subscription plan.",
            {"customer_id": dict(_ID, description="The customer id."),
             "plan_id": {"type": "string", "description": "The plan id, as list_plans gives it."}},
            ["customer_id", "plan_id"]),
    _schema(TRANSFER_TOOL, "Transfer the customer to a human agent, with a summary of their request. Use it only "
            "for what the policy says you cannot do. This ends your part of the conversation.",
            {"summary": {"type": "string", "description": "A short summary of the customer's request."}},
            ["summary"]),
]

TOOLS: Dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    find_customer_by_email, get_customer, get_ticket, list_plans, update_ticket, change_plan, transfer_to_human)}

TOOL_KINDS = ToolKinds(
    kinds={"find_customer_by_email": READ, "get_customer": READ, "get_ticket": READ, "list_plans": READ,
           "update_ticket": WRITE, "change_plan": WRITE, TRANSFER_TOOL: GENERIC},
    write_targets={"update_ticket": ("ticket_id",), "change_plan": ("customer_id",)},
    transfer_tool=TRANSFER_TOOL)

_PARAMS = {s["function"]["name"]: s["function"]["parameters"] for s in SCHEMAS}
_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list}


def argument_error(name: str, arguments: Any) -> str:
    """Why ``arguments`` do not fit tool ``name``'s schema ("" when they do)."""
    if name not in _PARAMS:
        return f"unknown tool {name!r}"
    if not isinstance(arguments, dict):
        return f"the arguments of {name} must be a JSON object"
    params = _PARAMS[name]
    props = params["properties"]
    for key in params["required"]:
        if key not in arguments:
            return f"missing argument {key!r} of {name}"
    for key, value in arguments.items():
        if key not in props:
            return f"{name} has no argument {key!r}"
        want = _JSON_TYPES[props[key]["type"]]
        if not isinstance(value, want) or isinstance(value, bool) and want is not bool:
            return f"argument {key!r} of {name} must be a {props[key]['type']}"
    return ""


def call(state: EpisodeState, name: str, arguments: Any) -> ToolResult:
    """Run one tool call; every refusal is an observation ``"Error: ..."`` with ``error=True``."""
    problem = argument_error(name, arguments)
    if not problem:
        try:
            out = TOOLS[name](state, **arguments)
        except ToolError as e:
            problem = str(e)
        else:
            content = out if isinstance(out, str) else json.dumps(out, sort_keys=True)
            return ToolResult(content=content, error=False, name=name, arguments=arguments)
    return ToolResult(content=f"Error: {problem}", error=True, name=name, arguments=arguments)
