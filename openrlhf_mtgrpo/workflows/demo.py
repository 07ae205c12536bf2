"""``mtgrpo demo``: the method end to end on a CPU, offline, in about a minute.

G rollouts per training task in the real airline environment, played by a
*scripted* stochastic policy (gold actions mixed with realistic mistakes) against
a rule-based customer served over local HTTP; per-turn rewards from the paper's
initial dense calibration; one IRC iteration; misalignment of the three
estimators before and after calibration; the IRC table, report and chart.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Dict, Optional

import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.envs.airline import AirlineEnv
from openrlhf_mtgrpo.offline.scripted import ScriptedEngine, make_rule_based_user
from openrlhf_mtgrpo.offline.toy_tokenizer import build_toy_tokenizer
from openrlhf_mtgrpo.rewards.calibration import Calibration, load_calibration
from openrlhf_mtgrpo.rollout.chat import ChatRenderer
from openrlhf_mtgrpo.rollout.episode import run_episode
from openrlhf_mtgrpo.rollout.executor import VllmPolicy
from openrlhf_mtgrpo.rollout.jsonl import append_jsonl
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer
from openrlhf_mtgrpo.rollout.tool_parsers import parser_for
from openrlhf_mtgrpo.rollout.user_sim import UserSimConfig, UserSimulator

BANNER = ("NOTE: the policy in this demo is SCRIPTED (gold actions mixed with random mistakes), not a language "
          "model;\nthe customer is rule-based. The environment, rewards, estimators and IRC are the real ones.")


class _Params:
    def __init__(self, max_tokens=4096):
        self.max_tokens, self.logprobs = max_tokens, None

    def clone(self):
        return _Params(self.max_tokens)


def generate_logs(data_dir: Optional[str], log_path: str, *, version: str = "tau2", split: str = "train",
                  group_size: int = 4, mistake_rate: float = 0.25, seed: int = 0,
                  calibration: Optional[Calibration] = None, concurrency: int = 16, max_turns: int = 30,
                  progress=None) -> Dict[str, float]:
    """Run ``group_size`` scripted episodes per task of ``split`` and append them to ``log_path``."""
    env = AirlineEnv(version, data_dir)
    tok = build_toy_tokenizer(data_dir=data_dir)
    cal = calibration or load_calibration("paper-dense")
    renderer = ChatRenderer(tok, env.tool_schemas())
    engine = ScriptedEngine(tok, env, mistake_rate=mistake_rate, seed=seed)
    tasks = env.tasks(split)
    stats = {"episodes": 0, "success": 0, "turns": 0}
    with LocalChatServer(make_rule_based_user(env)) as srv:
        cfg = UserSimConfig(base_url=srv.base_url, model="rule-based-user", timeout=10.0, max_retries=2)

        async def one(task, sem):
            async with sem:
                res = await run_episode(env, task, VllmPolicy(engine, _Params()), renderer, parser_for("auto"),
                                        UserSimulator(cfg, task.user_instructions), cal, max_turns=max_turns,
                                        max_length=100000)
            append_jsonl(log_path, res.log_record(calibration=cal.name, calibration_sha256=cal.sha256,
                                                  policy="scripted"), fsync=False)
            stats["episodes"] += 1
            stats["success"] += int(res.outcome.get("success", False))
            stats["turns"] += len(res.turns)
            if progress:
                progress(stats["episodes"])

        async def main():
            sem = asyncio.Semaphore(concurrency)
            # a task's G episodes are consecutive in the log: they form one group
            for task in tasks:
                await asyncio.gather(*[one(task, sem) for _ in range(group_size)])

        asyncio.run(main())
    return stats


def estimator_misalignment(batch, weights, clip) -> Dict[str, float]:
    """Misalignment rate of the three estimators (and naive dense normalisation) on logged episodes."""
    from openrlhf_mtgrpo.irc.analyze import turn_rewards

    r = torch.from_numpy(turn_rewards(batch, weights, clip))
    k, o, g = (torch.from_numpy(x) for x in (batch.num_turns, batch.outcome, batch.group))
    live = torch.ones(batch.n, dtype=torch.bool)
    valid = torch.from_numpy(batch.turn_valid())
    kw = dict(eps=1e-6, std_norm=True, ddof=1)
    a_o = core.outcome_advantage(o, g, live, **kw)
    rate = lambda adv: core.alignment_diagnostics(adv, a_o, o, valid, g)["misalignment_rate"]
    return {
        "naive_dense": rate(core.naive_turn_advantages(r, k, g, live, **kw)),
        "mt_grpo": rate(core.mt_grpo_turn_advantages(r, k, o, g, live, **kw)[0]),
        "gtpo_hybrid": rate(core.gtpo_hybrid_turn_advantages(r, k, o, g, live, gamma=0.9, lam=0.3, pool="group",
                                                             turn_indexing="zero", **kw)[0]),
        "grpo_outcome": rate(a_o.unsqueeze(1).expand_as(r) * valid),
    }


def run_demo(data_dir: Optional[str], out_dir: str, *, group_size: int = 4, mistake_rate: float = 0.25,
             seed: int = 0, out=None) -> Dict[str, object]:
    from openrlhf_mtgrpo.irc.analyze import IRCOptions, analyze
    from openrlhf_mtgrpo.irc.logs import read_logs
    from openrlhf_mtgrpo.irc.report import table, write_outputs

    out = out or sys.stdout
    print(BANNER, file=out)
    os.makedirs(out_dir, exist_ok=True)
    log_path = os.path.join(out_dir, "rollouts-demo.jsonl")
    if os.path.exists(log_path):
        os.remove(log_path)
    start_cal = load_calibration("paper-dense")
    t0 = time.perf_counter()
    stats = generate_logs(data_dir, log_path, group_size=group_size, mistake_rate=mistake_rate, seed=seed,
                          calibration=start_cal)
    print(f"\nrollouts: {stats['episodes']} episodes ({group_size} per tau2 train task), "
          f"{stats['turns']} assistant turns, success rate {stats['success'] / max(1, stats['episodes']):.1%}, "
          f"{time.perf_counter() - t0:.1f} s", file=out)
    batch = read_logs([log_path], group_size=group_size)
    result = analyze(batch, start_cal, IRCOptions(estimator="gtpo_hybrid"), sources=[log_path])
    paths = write_outputs(result, out_dir)
    before = estimator_misalignment(batch, start_cal.weights, start_cal.clip)
    after = estimator_misalignment(batch, result.calibration.weights, result.calibration.clip)
    print("\nIRC table (starting from the paper's initial dense weights):", file=out)
    print(table(result), file=out)
    print("\nturn misalignment rate (share of turns whose advantage opposes the outcome):", file=out)
    print(f"{'estimator':<14} {'before IRC':>10} {'after IRC':>10}", file=out)
    for name in before:
        print(f"{name:<14} {before[name]:>10.3f} {after[name]:>10.3f}", file=out)
    print("\ncomponents whose mean gtpo_hybrid advantage opposes their weight: "
          f"{', '.join(result.tier_mismatches_before) or 'none'} -> {', '.join(result.tier_mismatches_after) or 'none'}",
          file=out)
    summary = {"episodes": stats["episodes"], "success_rate": stats["success"] / max(1, stats["episodes"]),
               "misalignment_before": before, "misalignment_after": after,
               "tier_mismatches_before": result.tier_mismatches_before,
               "tier_mismatches_after": result.tier_mismatches_after,
               "weights_after": result.calibration.weights, "files": {**paths, "log": log_path}}
    with open(os.path.join(out_dir, "demo_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("\nwrote: " + ", ".join(f"{k}={v}" for k, v in summary["files"].items()), file=out)
    print(BANNER.splitlines()[0], file=out)
    return summary


def add_command(sub) -> None:
    p = sub.add_parser("demo", help="offline CPU demo: scripted rollouts -> per-turn rewards -> IRC -> estimators")
    p.add_argument("--data-dir", default=None, help="tau-airline data (else $MTGRPO_DATA_DIR)")
    p.add_argument("--out", default="mtgrpo_demo")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--mistake-rate", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)

    def fn(ns):
        from openrlhf_mtgrpo.envs.airline.data import DataNotFound

        try:
            run_demo(ns.data_dir, ns.out, group_size=ns.group_size, mistake_rate=ns.mistake_rate, seed=ns.seed)
        except DataNotFound as e:
            print(f"mtgrpo demo: error: {e}", file=sys.stderr)
            return 2
        return 0

    p.set_defaults(fn=fn)
