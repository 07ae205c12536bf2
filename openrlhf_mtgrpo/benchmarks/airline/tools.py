"""tau1's tool table and the dispatcher that calls it (tau2's versions run tau2's own toolkit).

:mod:`.tools_tau1` mirrors how tau-bench calls a tool: the Python signatures, the names Python prints in an
argument error, the order of the checks, and what a failing call leaves behind.  tau-bench turns any
exception of a tool into the observation ``"Error: " + str(exception)``; so do we, and the error texts are
Python's own, not imitations.  A refused call leaves the database exactly as tau-bench's would.

Arguments are deep-copied before a tool sees them: the database never holds a
reference to the caller's objects, so a later call cannot change the logged
arguments of an earlier one (tau1's ``book_reservation`` stores the lists it is
given).  Within an episode this is invisible to the benchmark's results: its
agent parses fresh arguments for every call.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

# the benchmarks' ``calculate`` (Python's eval, bounded: see the module)
from openrlhf_mtgrpo.benchmarks.calculator import (  # noqa: F401 -- the tool module imports them from here
    CALCULATOR_CHARACTERS, calculator_result, outside_alphabet,
)

from openrlhf_mtgrpo.envs.base import GENERIC, READ, THINK, WRITE, ToolKinds, ToolResult  # noqa: F401

WRITE_TOOLS = frozenset({
    "book_reservation", "cancel_reservation", "update_reservation_flights", "update_reservation_baggages",
    "update_reservation_passengers", "send_certificate",
})
#: what a write changes: a soft match of a write must name the gold target (docs/irc.md)
WRITE_TARGETS = {"book_reservation": ("user_id",), "cancel_reservation": ("reservation_id",),
                 "update_reservation_flights": ("reservation_id",), "update_reservation_baggages": ("reservation_id",),
                 "update_reservation_passengers": ("reservation_id",), "send_certificate": ("user_id",)}
TRANSFER_TOOL = "transfer_to_human_agents"


class ToolError(Exception):
    """A refusal with the benchmark's message (without the ``Error: `` prefix)."""


class RunFailure(Exception):
    """The benchmark's run itself fails at this call (its harness raises outside the tool, so the
    episode ends there with reward 0); the message says why."""


@dataclass
class ToolSpec:
    name: str
    kind: str


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

    def tool_kinds(self) -> ToolKinds:
        """The tools' kinds for the reward components (the write set is the benchmark's: tau2's ToolType)."""
        return ToolKinds({n: s.kind for n, s in self.specs.items()},
                         {n: t for n, t in WRITE_TARGETS.items() if n in self.specs}, TRANSFER_TOOL)

    def call(self, db, name: str, arguments: Any) -> ToolResult:
        if not isinstance(arguments, dict):
            # Both benchmarks crash on this (their tool-call records require an object); we refuse the call.
            return ToolResult(f"Error: arguments of {name} must be a JSON object", True, str(name), arguments)
        try:
            content, error = self._dispatch(db, name, _own_copy(arguments))
        except RunFailure as e:
            return ToolResult(f"Error: {e}", True, name, arguments, run_failure=str(e))
        return ToolResult(content, error, name, arguments)


def _own_copy(arguments: Dict[str, Any]) -> Dict[str, Any]:
    """A deep copy of the arguments; nested deeper than :func:`copy.deepcopy` recurses (JSON parses ~1,000
    levels, deepcopy manages ~300), they are passed as they are, as tau-bench passes its freshly parsed ones."""
    try:
        return copy.deepcopy(arguments)
    except RecursionError:
        return arguments


def table_for(version: str) -> ToolTable:
    """The tool table of tau1 (tau2's versions call tau2's own toolkit)."""
    if version != "tau1":
        raise ValueError(f"our own airline tools exist for tau1 only, not {version!r}")
    from openrlhf_mtgrpo.benchmarks.airline.tools_tau1 import TABLE

    return TABLE


AIRPORTS = [("SFO", "San Francisco"), ("JFK", "New York"), ("LAX", "Los Angeles"), ("ORD", "Chicago"),
            ("DFW", "Dallas"), ("DEN", "Denver"), ("SEA", "Seattle"), ("ATL", "Atlanta"), ("MIA", "Miami"),
            ("BOS", "Boston"), ("PHX", "Phoenix"), ("IAH", "Houston"), ("LAS", "Las Vegas"), ("MCO", "Orlando"),
            ("EWR", "Newark"), ("CLT", "Charlotte"), ("MSP", "Minneapolis"), ("DTW", "Detroit"),
            ("PHL", "Philadelphia"), ("LGA", "LaGuardia")]
CERTIFICATE_NUMBERS = (3221322, 3221323, 3221324)
NOW = "2024-05-15T15:00:00"
