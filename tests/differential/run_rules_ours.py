"""Our side of the run-rules differential: a :class:`~differential.run_rules_scripts.Script` played through
the package's one episode loop (``rollout.loop.run_conversation``, the loop training and eval run), with
the airline domain's own per-message rules and run rules.  The scripted policy and customer replace only
the model and the customer's model: everything that decides where the conversation ends is ours."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

from differential.run_rules_scripts import Malformed, Script

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rewards.sets import build_component_set
from openrlhf_mtgrpo.rollout.loop import NoTurn, PolicyCall, PolicyTurn, run_conversation


class _ScriptedPolicy:
    def __init__(self, script: Script):
        self.messages = list(script.agent)
        self.read = 0

    def start(self, messages):
        pass

    async def next(self) -> PolicyTurn:
        if self.read >= len(self.messages):
            raise NoTurn("script_exhausted", "the script has no further agent message")
        m = self.messages[self.read]
        self.read += 1
        calls = [PolicyCall(f"call_{i}", n, a) for i, (n, a) in enumerate(m.calls) if not isinstance(a, Malformed)]
        return PolicyTurn(text=m.text or "", calls=calls, malformed=m.n_malformed,
                          first_call_malformed=m.first_call_malformed)

    def shown(self, turn, ran):
        return {"role": "assistant", "content": turn.text}

    def observe(self, messages, new, record):
        return ""

    def finish(self, messages):
        pass


class _ScriptedCustomer:
    def __init__(self, script: Script):
        self.replies = list(script.user)
        self.read = 0

    async def _next(self) -> str:
        if self.read >= len(self.replies):
            raise RuntimeError("the script has no further customer message")
        self.read += 1
        return self.replies[self.read - 1]

    async def start(self):
        return await self._next()

    async def reply(self, agent_text):
        return await self._next()

    async def tool_results(self, results):
        raise RuntimeError("the airline customer has no tools")


_envs: Dict[tuple, AirlineEnv] = {}


def run_ours(version: str, script: Script, data_dir: Optional[str] = None) -> Dict[str, Any]:
    """termination, steps, errors (None for tau1, as tau-bench counts none), reward, messages read."""
    key = (version, data_dir)
    if key not in _envs:
        _envs[key] = AirlineEnv(version, data_dir)
    env = _envs[key]
    rules = env.run_rules.override(budget=script.max_steps,
                                   max_errors="keep" if script.max_errors is None else script.max_errors)
    task = env.task(script.task_id)
    policy, customer = _ScriptedPolicy(script), _ScriptedCustomer(script)
    cal = load_calibration()
    conv = asyncio.run(run_conversation(
        env.reset(task), policy, customer, rules, env.agent_prompt.text,
        schemas={s["function"]["name"]: s for s in env.tool_schemas()}, scorer=build_component_set(cal.component_set, env.tool_kinds).new_episode(task),
        turn_reward=cal.turn_reward))
    return {"termination": conv.termination, "steps": conv.steps,
            "errors": conv.errors if env.family == "tau2" else None, "reward": conv.reward,
            "agent_consumed": policy.read, "user_consumed": customer.read}
