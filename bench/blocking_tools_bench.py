"""A rollout batch against a domain whose tools block: the episode loop must not stall on them.

A user's tools often do I/O (a database, an HTTP API, a sandbox) in plain functions.  This runs a batch of
concurrent episodes through the one episode loop (``rollout/loop.py``, as training and eval run it) against a
small domain whose every tool call sleeps ``--delay`` seconds in a plain function (blocking), and the same batch
against the same domain written with coroutines (``asyncio.sleep``: non-blocking), and prints the ratio of the
two wall times.  Goal: at most 1.2x.  Before the loop ran plain methods off the event loop, the blocking batch
took about ``episodes x calls x delay`` (64 x 3 x 50 ms = 9.6 s) against about 0.15 s.

The policy and the customer are scripted (no model): what is measured is the loop's handling of the domain.

    python bench/blocking_tools_bench.py [--episodes 64] [--calls 3] [--delay 0.05] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from openrlhf_mtgrpo.envs import base
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rewards.sets import new_scorer
from openrlhf_mtgrpo.rollout.loop import PolicyCall, PolicyTurn, run_conversation

RULES = base.RunRules(budget=200, unit=base.ORCHESTRATOR_STEPS, max_errors=10, stop_signals=("###STOP###",))
KINDS = base.ToolKinds({"lookup": base.READ})


class Task:
    id, actions, user_instructions = "t1", [], "ask for a lookup"


class Outcome:
    def __init__(self, ok: bool):
        self.reward, self.note, self.success = float(ok), "", ok

    def to_dict(self):
        return {"reward": self.reward, "success": self.success}


def _turn(calls):
    return base.AssistantTurn(results=[base.ToolResult("ok", False, n, a) for n, a in calls],
                              ran=list(range(len(calls))), to_user=not calls, agent_stop=False)


class Blocking:
    task = Task()

    def __init__(self, delay):
        self.delay = delay

    def assistant_message(self, text, calls, malformed=0, first_call_malformed=False):
        for _ in calls:
            time.sleep(self.delay)
        return _turn(calls)

    def evaluate(self, termination, judge=None, messages=None):
        return Outcome(termination == base.USER_STOP)


class NonBlocking(Blocking):
    async def assistant_message(self, text, calls, malformed=0, first_call_malformed=False):
        for _ in calls:
            await asyncio.sleep(self.delay)
        return _turn(calls)


class Script:
    def __init__(self, calls):
        self.left = calls

    def start(self, messages):
        pass

    async def next(self):
        if self.left:
            self.left -= 1
            return PolicyTurn(text="", calls=[PolicyCall(f"c{self.left}", "lookup", {"q": "x"})])
        return PolicyTurn(text="done")

    def shown(self, turn, ran):
        return {"role": "assistant", "content": turn.text}

    def observe(self, messages, new, record):
        return ""

    def finish(self, messages):
        pass


class Customer:
    async def start(self):
        return "hi"

    async def reply(self, text):
        return "thanks ###STOP###"


async def batch(make, episodes: int, calls: int) -> float:
    cal = load_calibration()
    t0 = time.perf_counter()
    convs = await asyncio.gather(*(run_conversation(
        make(), Script(calls), Customer(), RULES, "policy", schemas={},
        scorer=new_scorer(cal.component_set, KINDS, Task()), turn_reward=cal.turn_reward)
        for _ in range(episodes)))
    seconds = time.perf_counter() - t0
    assert all(c.termination == base.USER_STOP for c in convs), {c.termination for c in convs}
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=64)
    p.add_argument("--calls", type=int, default=3, help="tool calls per episode")
    p.add_argument("--delay", type=float, default=0.05, help="seconds each tool call sleeps")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    blocking, non_blocking = [], []
    for _ in range(a.repeats):
        non_blocking.append(asyncio.run(batch(lambda: NonBlocking(a.delay), a.episodes, a.calls)))
        blocking.append(asyncio.run(batch(lambda: Blocking(a.delay), a.episodes, a.calls)))
    nb, b = statistics.median(non_blocking), statistics.median(blocking)
    serial = a.episodes * a.calls * a.delay
    print(f"{a.episodes} concurrent episodes, {a.calls} tool calls each, every call {a.delay * 1000:.0f} ms "
          f"(median of {a.repeats})")
    print(f"non-blocking tools (coroutines): {nb:.3f} s")
    print(f"blocking tools (plain functions, run off the loop): {b:.3f} s  (one call after another: {serial:.1f} s)")
    print(f"ratio blocking / non-blocking: {b / nb:.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
