"""No model output stalls a worker: every built-in domain's tools, and the example domain's, answer thousands
of hostile argument sets, each call within a second (``calculate`` within 10 ms), with a result or a clear
error, never an exception.

Through the domain interface only, as the episode loop calls a domain: ``episode.assistant_message(text,
[(name, arguments)])`` for the agent's tools, ``episode.user_tool_calls([(name, arguments)])`` for the
customer's own tools (telecom); every 40 calls the episode is evaluated (within a second, a reward) and a
fresh one is made.  The arguments are built from each tool's schema, seeded: runaway powers and nesting in
``calculate`` (``9**9**9**9``, towers up to the calculator's length bound, a megabyte of arithmetic), one-megabyte
strings, wrong types, unicode and control characters, JSON nested up to 900 levels (what a JSON parser
still reads), missing, extra and unknown arguments, arguments that are not an object, unknown tool names,
and plausible values (the tasks' own gold arguments) beside a hostile one.

Time is this thread's CPU time for the 10 ms of ``calculate`` (what a runaway ``eval`` burns; other processes
on a shared machine do not count) and wall-clock time for the one second of every call, with the garbage
collector paused during the call (a collection of earlier calls' garbage is not the call's own time).  The worst of each is printed.
"""

from __future__ import annotations

import gc
import math
import os
import random
import sys
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from openrlhf_mtgrpo.envs.base import AssistantTurn, ToolResult

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "mtgrpo_example_crm")

ARGUMENT_SETS = 4000  # per domain (the customer's tools of telecom get as many again)
CALL_LIMIT_S = 1.0
CALCULATE_LIMIT_S = 0.010
EVERY = 40  # calls per episode
MB = 1 << 20

pytestmark = [pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::UserWarning")]


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    """A value ``depth`` containers deep (built without recursion)."""
    v = leaf
    for i in range(depth):
        v = [v] if kind == "list" or (kind == "mixed" and i % 2) else {"k": v}
    return v


def tower(n: int, base: str = "9") -> str:
    return "**".join([base] * n)


EXPRESSIONS = [
    "9**9**9", "9**9**9**9", tower(30), tower(333, "2"), tower(2000, "2"), "(" * 150 + "9**9**9" + ")" * 150,
    "(9**9)**(9**9)**(9**9)", "(9**9**9)//(9**9**9)", "-(9**9**9)+9**9**9", "(9**9**9)*0", "1/(9**9**9)",
    "(-1)**(9**9**9)", "(1)(*9**9**9)", "()*(9**9**9)", "9**-9**9**9", "0**9**9**9", ".5**9**9**9", "9.**9**9",
    "(2**64)**(2**64)", "9" * 900 + "**" + "9" * 90, "-" * 990 + "9**9**9", "2**" * 333 + "2",
    "(3**600000)*(3**600000)" + "+(3**600000)*(3**600000)" * 40, "1+" * 499 + "1", "1+" * 500_000 + "1",
    "1+" * 500_000 + "a", "9**9**9" + " " * MB, "(" * 5000 + "1" + ")" * 5000, "-" * 5000 + "1", "2*" * 5000 + "1",
    "\u00b2", "\u0663+1", "9**9**9\u0000", "\uff19**\uff19", "1e9999", "", " ", "()", "...", "(1)(2)", "1..2",
    "2 + 2", "(100 * 3) / 7", "10 // 3", "1/0", "01", "abc", "__import__('os')",
]


def _hostile() -> List[Any]:
    return [
        "x" * MB, "\u00e9\u00fc\u4f60\U0001F600" * 1000, "\x00\x01\x1b[31m", "", " ", "null", "None", "-1", "1e400",
        "{\"a\": 1}", "[1, 2]", "'; DROP TABLE users; --", "\ud800", "a\nb\tc", "9**9**9**9",
        0, -1, 1, 2**63, 10**100, -10**300, 1.5, -0.0, 1e308, float("inf"), float("nan"), True, False, None,
        [], {}, [None], ["x" * 1000] * 10, {"": ""}, {"a": {"b": {"c": [1, 2, 3]}}}, list(range(1000)),
        {str(i): i for i in range(1000)}, nested(100), nested(400, {}, "dict"), nested(900, "x", "mixed"),
        [nested(900)] * 3, [{"first_name": "A" * MB, "last_name": "B", "dob": "2000-01-01"}] * 3,
    ]


_HOSTILE: List[Any] = []


def hostile_values(rng: random.Random) -> List[Any]:
    """Values no parameter should get, and one of the hostile expressions (built once: a domain copies what it
    is given, or leaves alone what is too deep to copy)."""
    if not _HOSTILE:
        _HOSTILE.extend(_hostile())
    return _HOSTILE + [rng.choice(EXPRESSIONS)]


def plausible_values(domain) -> Dict[str, List[Any]]:
    """Every argument value the tasks' gold actions use, by parameter name."""
    out: Dict[str, List[Any]] = {}
    for task in domain.tasks("base")[:60]:
        for a in task.actions:
            for k, v in (a.arguments or {}).items():
                out.setdefault(k, []).append(v)
    return out


def argument_sets(schemas: List[Dict[str, Any]], plausible: Dict[str, List[Any]], rng: random.Random,
                  n: int) -> Iterator[Tuple[str, Any]]:
    """``n`` seeded hostile (tool name, arguments) pairs for the tools of ``schemas``."""
    import copy

    names = [s["function"]["name"] for s in schemas]
    params = {s["function"]["name"]: list((s["function"].get("parameters") or {}).get("properties") or {})
              for s in schemas}

    def plausible_or_hostile(p):
        pool = plausible.get(p)
        if pool and rng.random() < 0.5:
            return copy.deepcopy(rng.choice(pool))
        return rng.choice(hostile_values(rng))

    for i in range(n):
        name = rng.choice(names)
        kind = rng.random()
        if "calculate" in names and i % 5 == 0:  # calculate gets a fifth of the sets in every domain that has it
            yield "calculate", {"expression": rng.choice(EXPRESSIONS + [rng.choice(hostile_values(rng))])}
        elif kind < 0.35:  # every parameter hostile
            yield name, {p: rng.choice(hostile_values(rng)) for p in params[name]}
        elif kind < 0.7:  # one hostile parameter beside plausible ones
            args = {p: plausible_or_hostile(p) for p in params[name]}
            if params[name]:
                args[rng.choice(params[name])] = rng.choice(hostile_values(rng))
            yield name, args
        elif kind < 0.8:  # missing, extra or oddly named arguments
            args = {p: plausible_or_hostile(p) for p in params[name] if rng.random() < 0.5}
            args.update(rng.choice([{}, {"extra": 1}, {"self": 1}, {"requestor": "user"}, {"tool_name": "x"},
                                    {"data": 1}, {"": None}, {"\u0000": 1}, {"x" * MB: 1}]))
            yield name, args
        elif kind < 0.9:  # arguments that are not an object
            yield name, rng.choice([[], [1, 2], "abc", "x" * MB, None, 5, 1.5, True, nested(900)])
        else:  # a tool that does not exist
            yield rng.choice(["", "x" * MB, "calculate ", "CALCULATE", "\u0000", "../../etc/passwd", "__init__",
                              "get_db_hash", "_get_user", "use_tool", "tools", "db", "\U0001F600"]), {}


def _check_result(r: Any) -> None:
    assert isinstance(r, ToolResult), type(r)
    assert isinstance(r.error, bool) and (r.content is None or isinstance(r.content, str))
    if r.error:
        assert r.content and r.content.strip(), "an error without a message"


class Clock:
    """The worst wall-clock time of any call and the worst CPU time of a ``calculate`` call."""

    def __init__(self):
        self.calls = self.calculate = 0
        self.worst_wall = self.worst_calculate_cpu = self.worst_calculate_wall = 0.0
        self.errors = self.results = self.agent_errors = 0

    def __call__(self, fn, is_calculate: bool):
        gc.disable()  # a collection of earlier calls' garbage is not this call's time (collected between episodes)
        try:
            w0, c0 = time.perf_counter(), time.thread_time()
            out = fn()
            wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
        finally:
            gc.enable()
        self.calls += 1
        self.worst_wall = max(self.worst_wall, wall)
        assert wall < CALL_LIMIT_S, (wall, fn)
        if is_calculate:
            self.calculate += 1
            self.worst_calculate_cpu = max(self.worst_calculate_cpu, cpu)
            self.worst_calculate_wall = max(self.worst_calculate_wall, wall)
            assert cpu < CALCULATE_LIMIT_S, cpu
        return out

    def line(self, label: str) -> str:
        return (f"{label}: {self.calls} calls ({self.calculate} of calculate), {self.results} results "
                f"({self.errors} errors), {self.agent_errors} messages refused as a whole; worst call "
                f"{self.worst_wall * 1e3:.1f} ms, worst calculate {self.worst_calculate_cpu * 1e3:.2f} ms CPU "
                f"({self.worst_calculate_wall * 1e3:.2f} ms wall)")


def _domain(name: str, version, require_version):
    if name == "example_crm":
        sys.path.insert(0, EXAMPLE)
        try:
            from mtgrpo_example_crm.domain import make_domain
        finally:
            sys.path.remove(EXAMPLE)
        return make_domain()
    from openrlhf_mtgrpo.envs import load_domain

    data_dir = require_version(version) if name == "airline" or version == "retail" else None
    return load_domain(name, version, data_dir)


def _evaluate(domain, ep, clock: Clock) -> None:
    end = "agent_stop" if getattr(domain, "solo", False) else "user_stop"
    out = clock(lambda: ep.evaluate(end), False)
    assert isinstance(out.reward, float) and (math.isnan(out.reward) or 0.0 <= out.reward <= 1.0)


def _play(domain, sets, clock: Clock, customer: bool = False) -> None:
    gc.collect()
    gc.freeze()  # the loaded domains stay out of the collections the calls' garbage triggers
    try:
        _play_frozen(domain, sets, clock, customer)
    finally:
        gc.unfreeze()


def _play_frozen(domain, sets, clock: Clock, customer: bool) -> None:
    tasks = domain.tasks("base")
    ep = None
    for i, (name, args) in enumerate(sets):
        if i % EVERY == 0:
            if ep is not None:
                _evaluate(domain, ep, clock)
            ep = domain.reset(tasks[(i // EVERY) % len(tasks)])
        if customer:
            try:
                results = clock(lambda: ep.user_tool_calls([(name, args)]), name == "calculate")
            except ValueError as e:  # the domain refuses a customer call whose arguments are not an object
                assert not isinstance(args, dict) and "must be a JSON object" in str(e)
                clock.agent_errors += 1
                continue
        else:
            turn = clock(lambda: ep.assistant_message("", [(name, args)]), name == "calculate")
            assert isinstance(turn, AssistantTurn)
            results = turn.results
            clock.agent_errors += turn.agent_error
            assert turn.agent_error or turn.agent_stop or len(results) == 1, (name, turn)
        for r in results:
            _check_result(r)
            clock.results += 1
            clock.errors += r.error
    _evaluate(domain, ep, clock)


DOMAINS = [("airline", "tau2"), ("airline", "tau2-2025"), ("airline", "tau1"), ("retail", "retail"),
           ("retail", "retail-2025"),
           ("telecom", "telecom"), ("telecom", "telecom-solo"), ("example_crm", None)]


@pytest.mark.slow
@pytest.mark.parametrize("name,version", DOMAINS, ids=[f"{n}-{v}" if v else n for n, v in DOMAINS])
def test_hostile_arguments_never_stall_a_tool(name, version, require_version):
    domain = _domain(name, version, require_version)
    rng = random.Random(f"{name}/{version}")
    plausible = plausible_values(domain)
    clock = Clock()
    _play(domain, argument_sets(domain.tool_schemas(), plausible, rng, ARGUMENT_SETS), clock)
    print(clock.line(f"{name} {version or ''} agent"))
    # the sets reach the tools' refusals and their successes alike
    assert clock.calls >= ARGUMENT_SETS and clock.errors > ARGUMENT_SETS // 4 and clock.results > clock.errors
    if any(s["function"]["name"] == "calculate" for s in domain.tool_schemas()):
        assert clock.calculate >= ARGUMENT_SETS // 5
    customer = domain.customer_tool_schemas()
    if customer:
        clock = Clock()
        _play(domain, argument_sets(customer, plausible, rng, ARGUMENT_SETS), clock, customer=True)
        print(clock.line(f"{name} {version or ''} customer"))
        assert clock.calls >= ARGUMENT_SETS * 0.8 and clock.errors > ARGUMENT_SETS // 4 and clock.results > clock.errors


def test_the_generator_reaches_what_it_promises():
    """The argument sets carry the hostile values this file promises (so the test above cannot pass vacuously)."""
    rng = random.Random(0)
    schemas = [{"type": "function", "function": {"name": "calculate", "parameters": {
        "type": "object", "properties": {"expression": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "get", "parameters": {
            "type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}}}}]
    sets = list(argument_sets(schemas, {"id": ["A1"]}, rng, 3000))
    flat = [(n, a) for n, a in sets]
    exprs = [a.get("expression") for n, a in flat if n == "calculate" and isinstance(a, dict)]
    assert "9**9**9**9" in exprs and any(isinstance(e, str) and len(e) > MB for e in exprs)
    assert any(not isinstance(a, dict) for _, a in flat)  # not an object
    assert any(n not in ("calculate", "get") for n, _ in flat)  # unknown tools
    values = [v for _, a in flat if isinstance(a, dict) for v in a.values()]
    assert any(isinstance(v, str) and len(v) >= MB for v in values)
    assert any(isinstance(v, float) and math.isnan(v) for v in values)

    def depth(v):
        d = 0
        while isinstance(v, (list, dict)) and v:
            v = v[0] if isinstance(v, list) else next(iter(v.values()))
            d += 1
        return d

    assert max(depth(v) for v in values) >= 900
    assert any(a.get("id") == "A1" for n, a in flat if n == "get" and isinstance(a, dict))
