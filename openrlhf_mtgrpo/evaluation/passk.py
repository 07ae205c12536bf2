"""pass^k (tau-bench's reliability metric) over stored episode results.

For a task run n times with c successes, pass^k = C(c, k) / C(n, k): the chance
that k trials drawn without replacement all succeed.  The benchmark number is
the mean over tasks.  Episodes failed by infrastructure are left out first.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional


def pass_hat_k(num_trials: int, successes: int, k: int) -> float:
    if k < 1:
        raise ValueError("k must be >= 1")
    if num_trials < k:
        raise ValueError(f"number of trials {num_trials} is less than k {k}")
    if not 0 <= successes <= num_trials:
        raise ValueError(f"successes {successes} outside [0, {num_trials}]")
    return math.comb(successes, k) / math.comb(num_trials, k)


@dataclass
class PassKReport:
    pass_k: Dict[int, float]
    trials_per_task: Dict[str, int]
    successes_per_task: Dict[str, int]
    excluded_infra: int

    def table(self) -> str:
        lines = ["k  pass^k", "-- ------"] + [f"{k:<2} {v:.4f}" for k, v in sorted(self.pass_k.items())]
        return "\n".join(lines)


def compute_pass_k(results: Iterable[Mapping], max_k: Optional[int] = None) -> PassKReport:
    """results: dicts with ``task_id`` and ``success`` (or ``reward``), optional ``infra_failed``.

    k runs from 1 to the smallest trial count over tasks (or ``max_k``)."""
    trials: Dict[str, int] = defaultdict(int)
    succ: Dict[str, int] = defaultdict(int)
    excluded = 0
    for r in results:
        if r.get("infra_failed"):
            excluded += 1
            continue
        tid = str(r["task_id"])
        ok = r["success"] if "success" in r else float(r["reward"]) >= 1.0 - 1e-6
        trials[tid] += 1
        succ[tid] += int(bool(ok))
    if not trials:
        return PassKReport({}, {}, {}, excluded)
    top = min(trials.values())
    if max_k is not None:
        top = min(top, max_k)
    table = {k: sum(pass_hat_k(trials[t], succ[t], k) for t in trials) / len(trials) for k in range(1, top + 1)}
    return PassKReport(table, dict(trials), dict(succ), excluded)
