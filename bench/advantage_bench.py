"""Time of our turn-level estimators vs OpenRLHF's own group_norm, through the same experience maker.

Batch: 512 rollouts (128 prompts x 4), 8192 action tokens each, 20 assistant turns
each, micro-batches of 8 (OpenRLHF's layout).  Both run in this process through
``RemoteExperienceMaker.compute_advantages_and_returns`` (group_norm: upstream's
code; ours: the plugin path).  Prints median times and the ratio (target <= 1.5x).

    python bench/advantage_bench.py [--rollouts 512 --tokens 8192 --turns 20 --repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import stubs  # noqa: E402  (vLLM / flash-attn CUDA stand-ins, CPU only)

stubs.install_into()

import torch  # noqa: E402

from openrlhf_fixtures import make_maker  # noqa: E402


def build(n, tokens, turns, micro, seed=0):
    from openrlhf.trainer.ppo_utils.experience import Experience

    g = torch.Generator().manual_seed(seed)
    turn_len = tokens // (turns * 2)
    exps = []
    for start in range(0, n, micro):
        b = min(micro, n - start)
        mask = torch.zeros(b, tokens, dtype=torch.bool)
        spans = []
        for k in range(turns):
            s = k * 2 * turn_len + 1
            mask[:, s:s + turn_len] = True
            spans += [s + 1, s + 1 + turn_len]  # sequence space
        info = {
            "mtgrpo_num_turns": torch.full((b,), turns, dtype=torch.long),
            "mtgrpo_turn_spans": torch.tensor([spans] * b),
            "mtgrpo_turn_rewards": torch.rand(b, turns, generator=g),
            "mtgrpo_excluded": torch.zeros(b, dtype=torch.bool),
        }
        exps.append(Experience(index=list(range(start, start + b)),
                               rewards=(torch.rand(b, generator=g) > 0.5).float(), action_mask=mask,
                               kl=torch.zeros(b, tokens), info=info))
    return exps


def timed(name, args, repeat):
    times = []
    for r in range(repeat):
        exps = build(args.rollouts, args.tokens, args.turns, args.micro, seed=r)
        maker = make_maker(name, n=4)
        t0 = time.perf_counter()
        maker.compute_advantages_and_returns(exps)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rollouts", type=int, default=512)
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--turns", type=int, default=20)
    p.add_argument("--micro", type=int, default=8)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    timed("group_norm", args, 1)  # warm-up
    base = timed("group_norm", args, args.repeat)
    print(f"batch: {args.rollouts} rollouts x {args.tokens} tokens x {args.turns} turns, micro-batch {args.micro}")
    print(f"group_norm (OpenRLHF): {base * 1e3:8.1f} ms")
    for name in ("gtpo_hybrid", "mt_grpo", "grpo_outcome"):
        t = timed(name, args, args.repeat)
        print(f"{name:<22} {t * 1e3:8.1f} ms   ratio {t / base:.2f}x")


if __name__ == "__main__":
    main()
