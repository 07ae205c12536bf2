"""The episode loop calls a domain without blocking its event loop and without hanging (issue #28 items 2 and 7,
issue #29's ``domain_timeout``), and checks every turn's features against the component set.

The domains here are small in-test tool environments implementing the interface of ``envs.base``: one whose
tools sleep (plain functions, as a user's tools doing I/O), one whose methods are coroutines, one that hangs.
The policy side and the customer are scripted (no model here); the loop, the scorer, the calibration and the
domain calls are the real ones."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

import pytest

from openrlhf_mtgrpo.envs import base
from openrlhf_mtgrpo.registry import register_reward_components
from openrlhf_mtgrpo.rewards.calibration import CalibrationError, load_calibration
from openrlhf_mtgrpo.rewards.sets import ComponentSetError, new_scorer
from openrlhf_mtgrpo.rollout.domain_calls import DomainCalls
from openrlhf_mtgrpo.rollout.failures import DOMAIN_TIMEOUT
from openrlhf_mtgrpo.rollout.loop import PolicyCall, PolicyTurn, run_conversation

RULES = base.RunRules(budget=200, unit=base.ORCHESTRATOR_STEPS, max_errors=10, stop_signals=("###STOP###",))
KINDS = base.ToolKinds({"lookup": base.READ})


class Task:
    id = "t1"
    actions: List[Any] = []
    user_instructions = "ask for a lookup"


class Outcome:
    def __init__(self, reward: float):
        self.reward, self.note = reward, ""

    @property
    def success(self) -> bool:
        return self.reward == 1.0

    def to_dict(self) -> Dict[str, Any]:
        return {"reward": self.reward, "success": self.success}


class SleepyEpisode:
    """Each tool call sleeps ``delay`` seconds in a plain function (a database or HTTP call, say)."""

    task = Task()

    def __init__(self, delay: float):
        self.delay = delay
        self.threads = set()

    def assistant_message(self, text, calls, malformed=0, first_call_malformed=False):
        import threading

        self.threads.add(threading.get_ident())
        results = []
        for name, args in calls:
            time.sleep(self.delay)
            results.append(base.ToolResult(content="ok", error=False, name=name, arguments=args))
        return base.AssistantTurn(results=results, ran=list(range(len(calls))), to_user=not calls, agent_stop=False)

    def evaluate(self, termination, judge=None, messages=None):
        return Outcome(1.0 if termination == base.USER_STOP else 0.0)


class AsyncEpisode(SleepyEpisode):
    """The same domain with coroutine methods (non-blocking tools)."""

    async def assistant_message(self, text, calls, malformed=0, first_call_malformed=False):
        await asyncio.sleep(self.delay * len(calls))
        return base.AssistantTurn(results=[base.ToolResult(content="ok", error=False, name=n, arguments=a)
                                           for n, a in calls], ran=list(range(len(calls))), to_user=not calls,
                                  agent_stop=False)

    async def evaluate(self, termination, judge=None, messages=None):
        return Outcome(1.0 if termination == base.USER_STOP else 0.0)


class Script:
    """The policy side: ``calls`` turns with one lookup each, then a message to the customer."""

    def __init__(self, calls: int = 3):
        self.left = calls

    def start(self, messages):
        pass

    async def next(self) -> PolicyTurn:
        if self.left:
            self.left -= 1
            return PolicyTurn(text="", calls=[PolicyCall(f"c{self.left}", "lookup", {"q": "x"})])
        return PolicyTurn(text="done, anything else?")

    def shown(self, turn, ran):
        return {"role": "assistant", "content": turn.text}

    def observe(self, messages, new, record):
        return ""

    def finish(self, messages):
        pass


class Customer:
    async def start(self):
        return "hi, please look it up"

    async def reply(self, agent_text):
        return "thanks ###STOP###"

    async def tool_results(self, results):
        raise AssertionError("this customer has no tools")


def converse(episode, *, calls=None, scorer=None, calibration=None):
    cal = calibration or load_calibration()
    return run_conversation(episode, Script(), Customer(), RULES, "policy", schemas={},
                            scorer=scorer or new_scorer(cal.component_set, KINDS, Task()),
                            turn_reward=cal.turn_reward, calls=calls, task_id="t1")


# -- every turn's features are checked against the set (#28 item 2) ----------------------------------------------


class _TypoScorer:
    def features(self, turn):
        return {"good": 1.0, "bda": 0.0}  # the author meant "bad"


class _TypoSet:
    name, names = "typo_set", ("good", "bad")

    def new_episode(self, task):
        return _TypoScorer()


def typo_set(tool_kinds):
    return _TypoSet()


def test_a_misspelled_component_is_an_error_at_the_first_turn():
    register_reward_components("typo_set", typo_set, override=True)
    scorer = new_scorer("typo_set", KINDS, Task())
    with pytest.raises(ComponentSetError) as e:
        asyncio.run(converse(SleepyEpisode(0.0), scorer=scorer))
    msg = str(e.value)
    assert "'typo_set'" in msg and "'bda'" in msg and "good, bad" in msg and "missing ['bad']" in msg


def test_the_calibration_refuses_a_feature_outside_its_set():
    cal = load_calibration()
    with pytest.raises(CalibrationError, match=r"unknown component\(s\) \['gold_exat'\].*gold_exact"):
        cal.turn_reward({"gold_exat": 1.0})
    assert cal.turn_reward({"gold_exact": 1.0}) == pytest.approx(min(cal.weights["gold_exact"], cal.clip[1]))


# -- plain domain methods run off the loop, coroutines are awaited (#28 item 7) --------------------------------------


async def _many(make, n: int, calls=None):
    """``n`` conversations at once, and the event loop's worst lag meanwhile (a heartbeat every 10 ms)."""
    lags, stop = [0.0], asyncio.Event()

    async def heartbeat():
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags[0] = max(lags[0], time.perf_counter() - t - 0.01)

    beat = asyncio.ensure_future(heartbeat())
    t0 = time.perf_counter()
    convs = await asyncio.gather(*(converse(make(), calls=calls) for _ in range(n)))
    seconds = time.perf_counter() - t0
    stop.set()
    await beat
    return convs, seconds, lags[0]


def test_sleeping_plain_tools_do_not_stall_the_loop():
    """64 episodes x 3 tool calls of 50 ms: 9.6 s one after the other; concurrently about the time of one episode,
    and the loop keeps answering meanwhile."""
    convs, seconds, lag = asyncio.run(_many(lambda: SleepyEpisode(0.05), 64))
    assert all(c.termination == base.USER_STOP and c.reward == 1.0 for c in convs)
    # one call after another: 9.6 s, and the loop blocked for each; margins for a loaded 2-core machine
    assert seconds < 3.0, f"64 episodes took {seconds:.2f} s: the tool calls ran one at a time"
    assert lag < 0.5, f"the event loop stalled for {lag * 1000:.0f} ms"


def test_plain_methods_run_in_threads_coroutines_on_the_loop():
    import threading

    sleepy, asynchronous = SleepyEpisode(0.0), AsyncEpisode(0.0)

    async def main():
        await converse(sleepy)
        loop_thread = threading.get_ident()
        conv = await converse(asynchronous)
        return loop_thread, conv

    loop_thread, conv = asyncio.run(main())
    assert sleepy.threads and loop_thread not in sleepy.threads
    assert conv.termination == base.USER_STOP and conv.reward == 1.0


# -- a call past its limit ends the episode as infrastructure, never a hang (#29) -----------------------------------


@pytest.mark.parametrize("make", [lambda: SleepyEpisode(30.0), lambda: AsyncEpisode(30.0)], ids=["plain", "coroutine"])
def test_a_hanging_tool_call_ends_the_episode_as_domain_timeout(make):
    t0 = time.perf_counter()
    conv = asyncio.run(converse(make(), calls=DomainCalls(timeout=0.3)))
    assert time.perf_counter() - t0 < 3.0
    assert conv.termination == base.INFRASTRUCTURE_ERROR and conv.infra.cause == DOMAIN_TIMEOUT
    assert "assistant_message" in str(conv.infra) and "0.3 s" in str(conv.infra)
    assert conv.reward == 0.0 and conv.outcome["success"] is False


def test_a_hanging_reset_ends_the_episode_as_domain_timeout():
    def reset():
        time.sleep(30)

    conv = asyncio.run(converse(reset, calls=DomainCalls(timeout=0.2)))
    assert conv.termination == base.INFRASTRUCTURE_ERROR and conv.infra.cause == DOMAIN_TIMEOUT
    assert "reset" in str(conv.infra) and conv.task_id == "t1" and not conv.turns


def test_the_limit_counts_from_when_a_call_starts_not_while_it_waits_for_a_thread():
    """One thread, four episodes whose calls take 0.15 s each under a 0.4 s limit: every call waits for the others
    (about 1.8 s in all), none runs past the limit."""
    calls = DomainCalls(timeout=0.4, pool=ThreadPoolExecutor(max_workers=1))
    convs, seconds, _ = asyncio.run(_many(lambda: SleepyEpisode(0.15), 4, calls=calls))
    assert seconds > 4 * 3 * 0.15 * 0.9
    assert [c.termination for c in convs] == [base.USER_STOP] * 4


def test_a_limit_must_be_positive():
    with pytest.raises(ValueError, match="> 0 seconds"):
        DomainCalls(timeout=0)
