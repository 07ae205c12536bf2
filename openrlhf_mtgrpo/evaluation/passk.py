"""pass^k (tau-bench's reliability metric) over stored episode results, only over complete data.

For a task run n times with c successes, pass^k = C(c, k) / C(n, k): the chance
that k trials drawn without replacement all succeed.  The benchmark number is the
mean over tasks.

A task counts only when every requested trial of it was scored: a task with fewer
scored trials (infrastructure failures, episodes not run yet) is *incomplete*.  It
is listed, never averaged away and never scored with fewer trials; every row of the
table says how many tasks and trials it covers, and the report says whether
anything is missing (:attr:`PassKReport.complete`).  pass^k is reported for every k
from 1 to the number of trials requested.

The interval beside each pass^k is a percentile bootstrap over tasks (tasks drawn
with replacement, trials kept): identical tau-bench reruns differ by several points,
and one task is 5 points of a 20-task split.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from openrlhf_mtgrpo.evaluation.outcomes import INFRA, SCORED


def pass_hat_k(num_trials: int, successes: int, k: int) -> float:
    if k < 1:
        raise ValueError("k must be >= 1")
    if num_trials < k:
        raise ValueError(f"number of trials {num_trials} is less than k {k}")
    if not 0 <= successes <= num_trials:
        raise ValueError(f"successes {successes} outside [0, {num_trials}]")
    return math.comb(successes, k) / math.comb(num_trials, k)


def record_status(r: Mapping) -> str:
    """scored / infra / unscored of one result record (records before ``status`` existed carry ``infra_failed``)."""
    if "status" in r:
        return str(r["status"])
    return INFRA if r.get("infra_failed") else SCORED


def record_success(r: Mapping) -> bool:
    if "success" in r:
        return bool(r["success"])
    return float(r["reward"]) >= 1.0 - 1e-6


def bootstrap_ci(values, n_boot: int = 10000, seed: int = 0, confidence: float = 0.95):
    """Percentile bootstrap interval of the column means of ``values`` (tasks x statistics), resampling tasks.

    Returns (low, high), arrays with one entry per column.  Seeded: the same input gives the same interval."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError("values must be a non-empty (tasks x statistics) array")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    means = values[idx].mean(axis=1)  # (n_boot, statistics)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return low, high


@dataclass
class PassKRow:
    k: int
    value: Optional[float]  # None when no task is complete
    ci_low: Optional[float]
    ci_high: Optional[float]
    tasks: int  # complete tasks the number covers
    tasks_requested: int
    trials: int  # trials per task


@dataclass
class PassKReport:
    trials: int
    task_ids: List[str]
    rows: List[PassKRow]
    successes_per_task: Dict[str, int]  # over scored trials
    scored_trials_per_task: Dict[str, int]
    incomplete_tasks: List[str]
    episodes: Dict[str, int]  # requested, scored, infra, unscored, not_run
    infra_causes: Dict[str, int]  # "user simulator unreachable" -> episodes
    policy_failures: Dict[str, int]  # terminations of scored episodes that ended early (context_overflow, ...)
    confidence: float = 0.95
    missing: List[Tuple[str, int, str]] = field(default_factory=list)  # (task, trial, why) of each gap
    endings: Dict[str, int] = field(default_factory=dict)  # how the scored episodes ended (user_stop, max_steps, ...)

    @property
    def complete(self) -> bool:
        return not self.incomplete_tasks

    @property
    def pass_k(self) -> Dict[int, Optional[float]]:
        return {r.k: r.value for r in self.rows}


from openrlhf_mtgrpo.envs.base import PROPER_ENDINGS  # noqa: E402  (the endings a reward is computed for)


def compute_pass_k(records: Iterable[Mapping], task_ids: Sequence[str], trials: int, *, n_boot: int = 10000,
                   seed: int = 0, confidence: float = 0.95) -> PassKReport:
    """pass^1..pass^trials over the tasks whose ``trials`` trials (0 .. trials-1) were all scored.

    records: one per (task_id, trial) -- the latest attempt -- with ``status`` (scored / infra /
    unscored; or the older ``infra_failed``), ``success`` (or ``reward``), ``termination`` and, for
    infrastructure failures, ``infra`` (``{"cause": ...}``).  Records of other tasks or trials are ignored."""
    import numpy as np

    if trials < 1:
        raise ValueError("trials must be >= 1")
    task_ids = [str(t) for t in task_ids]
    wanted = set(task_ids)
    latest: Dict[Tuple[str, int], Mapping] = {}
    for r in records:
        key = (str(r["task_id"]), int(r["trial"]))
        if key[0] in wanted and 0 <= key[1] < trials:
            latest[key] = r
    succ: Dict[str, int] = {t: 0 for t in task_ids}
    scored: Dict[str, int] = {t: 0 for t in task_ids}
    episodes = Counter(requested=len(task_ids) * trials, scored=0, infra=0, unscored=0, not_run=0)
    infra_causes: Counter = Counter()
    policy_failures: Counter = Counter()
    endings: Counter = Counter()
    missing: List[Tuple[str, int, str]] = []
    for t in task_ids:
        for k in range(trials):
            r = latest.get((t, k))
            if r is None:
                episodes["not_run"] += 1
                missing.append((t, k, "not run"))
                continue
            status = record_status(r)
            if status == SCORED:
                episodes["scored"] += 1
                scored[t] += 1
                ok = record_success(r)
                succ[t] += int(ok)
                term = r.get("termination") or ""
                endings[term or "unknown"] += 1
                if not ok and term and term not in PROPER_ENDINGS:
                    policy_failures[term] += 1
            elif status == INFRA:
                episodes["infra"] += 1
                cause = ((r.get("infra") or {}).get("cause")) or "infrastructure failure"
                infra_causes[cause] += 1
                missing.append((t, k, cause))
            else:
                episodes["unscored"] += 1
                missing.append((t, k, str(r.get("unscored_reason") or "not scored")))
    complete = [t for t in task_ids if scored[t] == trials]
    incomplete = [t for t in task_ids if scored[t] < trials]
    rows: List[PassKRow] = []
    if complete:
        values = np.array([[pass_hat_k(trials, succ[t], k) for k in range(1, trials + 1)] for t in complete])
        point = values.mean(axis=0)
        low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed, confidence=confidence)
        for k in range(1, trials + 1):
            rows.append(PassKRow(k, float(point[k - 1]), float(low[k - 1]), float(high[k - 1]), len(complete),
                                 len(task_ids), trials))
    else:
        rows = [PassKRow(k, None, None, None, 0, len(task_ids), trials) for k in range(1, trials + 1)]
    return PassKReport(trials=trials, task_ids=task_ids, rows=rows, successes_per_task=succ,
                       scored_trials_per_task=scored, incomplete_tasks=incomplete, episodes=dict(episodes),
                       infra_causes=dict(infra_causes), policy_failures=dict(policy_failures),
                       confidence=confidence, missing=missing, endings=dict(endings))
