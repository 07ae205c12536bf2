"""Tool tables of both benchmark versions and the dispatcher that calls them.

A tool is a function ``fn(db: EpisodeDB, **arguments)`` returning the text the
agent sees.  It raises :class:`ToolError` (or any exception, as the benchmark's
own code would) for a refused call; the dispatcher turns that into the
benchmark's ``"Error: ..."`` observation.  Every check happens before the
first write, so a refused call leaves the database unchanged.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

READ, WRITE, GENERIC, THINK = "read", "write", "generic", "think"

WRITE_TOOLS = frozenset({
    "book_reservation", "cancel_reservation", "update_reservation_flights", "update_reservation_baggages",
    "update_reservation_passengers", "send_certificate",
})


class ToolError(Exception):
    """A refusal with the benchmark's message (without the ``Error: `` prefix)."""


@dataclass
class ToolSpec:
    name: str
    fn: Callable
    kind: str
    owner: str  # how the benchmark names the callable in Python's argument errors


@dataclass
class ToolResult:
    content: str
    error: bool
    name: str
    arguments: Any

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "content": self.content, "error": self.error}


def _arg_error(owner: str, fn: Callable, args: Dict[str, Any]) -> Optional[str]:
    params = [p for p in inspect.signature(fn).parameters.values()][1:]  # skip db
    names = {p.name for p in params}
    for k in args:
        if k not in names:
            return f"{owner}() got an unexpected keyword argument '{k}'"
    missing = [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in args]
    if missing:
        quoted = [f"'{m}'" for m in missing]
        listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + (", and " if len(quoted) > 2 else " and ") + quoted[-1]
        s = "s" if len(missing) > 1 else ""
        return f"{owner}() missing {len(missing)} required positional argument{s}: {listed}"
    return None


class ToolTable:
    def __init__(self, version: str, specs: List[ToolSpec], unknown_message: Callable[[str], str]):
        self.version = version
        self.specs = {s.name: s for s in specs}
        self._unknown = unknown_message

    def names(self) -> List[str]:
        return list(self.specs)

    def kind(self, name: str) -> Optional[str]:
        s = self.specs.get(name)
        return s.kind if s else None

    def call(self, db, name: str, arguments: Any) -> ToolResult:
        spec = self.specs.get(name) if isinstance(name, str) else None
        if spec is None:
            return ToolResult(self._unknown(name), True, str(name), arguments)
        if not isinstance(arguments, dict):
            return ToolResult(f"Error: arguments of {name} must be a JSON object", True, name, arguments)
        problem = _arg_error(spec.owner, spec.fn, arguments)
        if problem:
            return ToolResult(f"Error: {problem}", True, name, arguments)
        try:
            out = spec.fn(db, **arguments)
        except ToolError as e:
            return ToolResult(f"Error: {e}", True, name, arguments)
        except Exception as e:  # the benchmark reports any exception of a tool the same way
            return ToolResult(f"Error: {e}", True, name, arguments)
        return ToolResult(out, False, name, arguments)


def table_for(version: str) -> ToolTable:
    """The tool table of a version or family (``tau2`` and ``tau2-2025`` share tau2's tools)."""
    from openrlhf_mtgrpo.envs.airline.versions import family_of

    version = family_of(version)
    if version == "tau2":
        from openrlhf_mtgrpo.envs.airline.tools_tau2 import TABLE
    elif version == "tau1":
        from openrlhf_mtgrpo.envs.airline.tools_tau1 import TABLE
    else:
        raise ValueError(f"unknown airline version {version!r}")
    return TABLE


def safe_arithmetic(expression: str) -> float:
    """Evaluate + - * / ( ) and numbers, like ``eval`` on the benchmark's allowed characters, without eval."""
    import ast
    import operator

    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large")
            return ops[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.operand))
        raise SyntaxError("invalid syntax")

    return ev(ast.parse(expression.strip(), mode="eval"))


AIRPORTS = [("SFO", "San Francisco"), ("JFK", "New York"), ("LAX", "Los Angeles"), ("ORD", "Chicago"),
            ("DFW", "Dallas"), ("DEN", "Denver"), ("SEA", "Seattle"), ("ATL", "Atlanta"), ("MIA", "Miami"),
            ("BOS", "Boston"), ("PHX", "Phoenix"), ("IAH", "Houston"), ("LAS", "Las Vegas"), ("MCO", "Orlando"),
            ("EWR", "Newark"), ("CLT", "Charlotte"), ("MSP", "Minneapolis"), ("DTW", "Detroit"),
            ("PHL", "Philadelphia"), ("LGA", "LaGuardia")]
RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
CERTIFICATE_NUMBERS = (3221322, 3221323, 3221324)
NOW = "2024-05-15T15:00:00"
