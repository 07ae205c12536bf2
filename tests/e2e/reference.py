"""The turn-level estimators written out again from docs/method.md, in plain Python.

Independent of openrlhf_mtgrpo.advantages (no shared code, no tensors): the end-to-end test
recomputes a training step's advantages with these from the step's rollout log and compares
them with what the trainer put into the experiences.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence


def normalise(values: Sequence[float], eps: float) -> List[float]:
    """(x - mean) / (sample std + eps); a lone value has nothing to be compared with: 0."""
    n = len(values)
    if n < 2:
        return [0.0] * n
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return [(v - mean) / (std + eps) for v in values]


def _informative(group: List[Dict]) -> bool:
    """At least two rollouts differing in outcome, turn count or some turn reward."""
    return len({(g["outcome"], len(g["rewards"]), tuple(g["rewards"])) for g in group}) > 1 and len(group) >= 2


def _per_index(rows: List[List[float]], eps: float) -> List[List[float]]:
    """Normalise column l over the rows that have an entry l."""
    out = [[0.0] * len(row) for row in rows]
    for col in range(max((len(row) for row in rows), default=0)):
        members = [i for i, row in enumerate(rows) if len(row) > col]
        for i, v in zip(members, normalise([rows[i][col] for i in members], eps)):
            out[i][col] = v
    return out


def gtpo_hybrid(group: List[Dict], gamma=0.9, lam=0.3, eps=1e-6, pool="turn") -> List[List[float]]:
    """A_ik = GN(R_ik) + lam * A^O_i, R_ik = sum_{l>=k} gamma^(l-k) r_il + gamma^(K_i-k) o_i; GN per turn index
    (pool "turn") or over all turns of the group (pool "group")."""
    if not _informative(group):
        return [[0.0] * len(g["rewards"]) for g in group]
    returns = []
    for g in group:
        r, k_i, o = g["rewards"], len(g["rewards"]), g["outcome"]
        returns.append([sum(gamma ** (l - k) * r[l] for l in range(k, k_i)) + gamma ** (k_i - k) * o
                        for k in range(k_i)])
    if pool == "turn":
        normalised = _per_index(returns, eps)
    else:
        flat, normalised, pos = normalise([x for row in returns for x in row], eps), [], 0
        for row in returns:
            normalised.append(flat[pos:pos + len(row)])
            pos += len(row)
    a_o = normalise([g["outcome"] for g in group], eps)
    return [[normalised[i][k] + lam * a_o[i] for k in range(len(row))] for i, row in enumerate(returns)]


def mt_grpo(group: List[Dict], eps=1e-6) -> List[List[float]]:
    """A_ik = sum_{l=k}^{K_i-1} GN_l(r_il) + A^O_i, GN_l over the rollouts that have a turn l."""
    if not _informative(group):
        return [[0.0] * len(g["rewards"]) for g in group]
    per_index = _per_index([g["rewards"] for g in group], eps)
    a_o = normalise([g["outcome"] for g in group], eps)
    return [[sum(per_index[i][k:]) + a_o[i] for k in range(len(g["rewards"]))] for i, g in enumerate(group)]


ESTIMATORS = {"gtpo_hybrid": gtpo_hybrid, "mt_grpo": mt_grpo}


def token_advantages(turn_adv: List[float], spans: List[List[int]], action_len: int, clip=(-10.0, 10.0)) -> List[float]:
    """Every token of turn k gets A_k: sequence span [s, e) is action positions [s-1, e-1); 0 elsewhere."""
    out = [0.0] * action_len
    for a, (s, e) in zip(turn_adv, spans):
        a = min(max(a, clip[0]), clip[1])
        for p in range(max(s - 1, 0), min(e - 1, action_len)):
            out[p] = a
    return out
