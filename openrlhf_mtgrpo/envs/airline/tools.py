"""Tool tables of both benchmark versions and the dispatcher that calls them.

Each family module (:mod:`.tools_tau2`, :mod:`.tools_tau1`) mirrors how its
benchmark calls a tool: the Python signatures, the names Python prints in an
argument error, the order of the checks, and what a failing call leaves behind.
The benchmark turns any exception of a tool into the observation
``"Error: " + str(exception)``; so do we, and the error texts are Python's and
pydantic's own, not imitations.  A refused call leaves the database exactly as
the benchmark's would, including the writes a benchmark tool makes before it
fails (e.g. tau2 debits a gift card before it builds the payment record).

Arguments are deep-copied before a tool sees them: the database never holds a
reference to the caller's objects, so a later call cannot change the logged
arguments of an earlier one (tau1's ``book_reservation`` stores the lists it is
given).  Within an episode this is invisible to the benchmark's results: its
agent parses fresh arguments for every call.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

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
    kind: str


@dataclass
class ToolResult:
    content: str
    error: bool
    name: str
    arguments: Any

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "content": self.content, "error": self.error}


#: (db, name, arguments) -> (observation text, error flag), the way the benchmark calls a tool
Dispatch = Callable[[Any, str, Dict[str, Any]], Tuple[str, bool]]


class ToolTable:
    def __init__(self, version: str, specs: List[ToolSpec], dispatch: Dispatch):
        self.version = version
        self.specs = {s.name: s for s in specs}
        self._dispatch = dispatch

    def names(self) -> List[str]:
        return list(self.specs)

    def kind(self, name: str) -> Optional[str]:
        s = self.specs.get(name)
        return s.kind if s else None

    def call(self, db, name: str, arguments: Any) -> ToolResult:
        if not isinstance(arguments, dict):
            # Both benchmarks crash on this (their tool-call records require an object); we refuse the call.
            return ToolResult(f"Error: arguments of {name} must be a JSON object", True, str(name), arguments)
        content, error = self._dispatch(db, name, copy.deepcopy(arguments))
        return ToolResult(content, error, name, arguments)


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


# ------------------------------------------------------------------ calculate

CALCULATOR_CHARACTERS = "0123456789+-*/(). "
#: Largest integer (in bits) a ``*`` or ``**`` may produce in an expression with ``**``.  Both
#: benchmarks ``eval`` the expression, so ``9**9**9`` makes them compute for minutes and
#: gigabytes; we refuse such a step instead ("expression too large to evaluate") -- the only
#: place where our calculator and the benchmark's differ (also for an expression with ``**``
#: nested deeper than Python's AST objects go, several hundred levels).  Without ``**`` a value
#: has at most as many digits as the expression, so nothing needs guarding.
MAX_INT_BITS = 1 << 20
_TOO_LARGE = "expression too large to evaluate"


def _checked_pow(a, b):
    if type(a) is int and type(b) is int and b > 0 and abs(a) > 1 and a.bit_length() * b > MAX_INT_BITS:
        raise OverflowError(_TOO_LARGE)
    return a ** b


def _checked_mul(a, b):
    if type(a) is int and type(b) is int and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise OverflowError(_TOO_LARGE)
    return a * b


_HELPERS = {ast.Pow: "_mtgrpo_pow", ast.Mult: "_mtgrpo_mul"}
_GLOBALS = {"__builtins__": None, "_mtgrpo_pow": _checked_pow, "_mtgrpo_mul": _checked_mul}


def _guarded(source: str):
    """``source`` compiled with every ``*`` and ``**`` replaced by a size-checked call (same
    operands, same evaluation order, same exceptions).  Iterative, so deep expressions work."""
    try:
        tree = ast.parse(source, "<string>", "eval")
    except RecursionError:  # deeper than Python's AST objects go (eval itself would compile it)
        raise OverflowError(_TOO_LARGE) from None
    targets = []
    for node in ast.walk(tree):  # breadth first: a node comes after its ancestors
        for name, value in ast.iter_fields(node):
            for i, child in (enumerate(value) if isinstance(value, list) else [(None, value)]):
                if isinstance(child, ast.BinOp) and type(child.op) in _HELPERS:
                    targets.append((node, name, i, child))
    for parent, name, i, op in reversed(targets):  # innermost first
        helper = ast.copy_location(ast.Name(_HELPERS[type(op.op)], ast.Load()), op)
        call = ast.copy_location(ast.Call(helper, [op.left, op.right], []), op)
        if i is None:
            setattr(parent, name, call)
        else:
            getattr(parent, name)[i] = call
    try:
        return compile(tree, "<string>", "eval")
    except RecursionError:
        raise OverflowError(_TOO_LARGE) from None


def benchmark_eval(expression: Any):
    """``eval(expression, {"__builtins__": None}, {})`` as both benchmarks' ``calculate`` runs it,
    for an expression that passed their character check.

    Python itself compiles and evaluates (same results, same error texts); only in an expression
    with ``**`` are ``*`` and ``**`` on integers size-checked (:data:`MAX_INT_BITS`)."""
    if not isinstance(expression, str):
        return eval(expression, {"__builtins__": None}, {})  # raises eval's own TypeError for a list or dict
    source = expression.lstrip(" \t")  # eval() skips leading spaces and tabs of a string
    code = compile(source, "<string>", "eval")  # the SyntaxError (or RecursionError) eval would raise
    if "**" in source:
        code = _guarded(source)
    return eval(code, _GLOBALS, {})


def calculator_result(expression: Any) -> str:
    """The text of a successful ``calculate``: ``str(round(float(value), 2))``."""
    return str(round(float(benchmark_eval(expression)), 2))


AIRPORTS = [("SFO", "San Francisco"), ("JFK", "New York"), ("LAX", "Los Angeles"), ("ORD", "Chicago"),
            ("DFW", "Dallas"), ("DEN", "Denver"), ("SEA", "Seattle"), ("ATL", "Atlanta"), ("MIA", "Miami"),
            ("BOS", "Boston"), ("PHX", "Phoenix"), ("IAH", "Houston"), ("LAS", "Las Vegas"), ("MCO", "Orlando"),
            ("EWR", "Newark"), ("CLT", "Charlotte"), ("MSP", "Minneapolis"), ("DTW", "Detroit"),
            ("PHL", "Philadelphia"), ("LGA", "LaGuardia")]
RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
CERTIFICATE_NUMBERS = (3221322, 3221323, 3221324)
NOW = "2024-05-15T15:00:00"
