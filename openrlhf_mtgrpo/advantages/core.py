"""The math of the turn-level estimators, as plain functions over tensors.

Shapes: N rollouts, K turns (padded), A action tokens.  Groups are given by an
integer id per rollout.  Nothing here knows about OpenRLHF.  Loops run over
turns (K), never over tokens.  Device-agnostic: every tensor is allocated on the
device of the inputs (``tests/test_advantage_devices.py`` checks it on CPU, and on
CUDA where there is one).
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch


def _dense_groups(group_index: torch.Tensor) -> Tuple[torch.Tensor, int]:
    uniq, inv = torch.unique(group_index, return_inverse=True)
    return inv, int(uniq.numel())


def group_normalize(
    x: torch.Tensor,
    group_index: torch.Tensor,
    valid: torch.Tensor,
    *,
    per_column: bool,
    eps: float = 1e-6,
    std_norm: bool = True,
    ddof: int = 1,
) -> torch.Tensor:
    """Normalise ``x`` within groups of rollouts.

    x: (N,) or (N, K); valid: same shape, bool.  With ``per_column`` the statistics
    are taken per (group, column) cell -- per turn index --, otherwise over all
    valid entries of a group.  Returns (x - mean) / (std + eps), or x - mean without
    ``std_norm``; 0 where invalid and in cells with fewer than ``ddof + 1`` members
    (a lone rollout has nothing to be compared with).
    """
    squeeze = x.dim() == 1
    if squeeze:
        x, valid = x.unsqueeze(1), valid.unsqueeze(1)
    x = x.to(torch.float64)
    v = valid.to(torch.float64)
    gid, n_groups = _dense_groups(group_index)
    cols = x.shape[1] if per_column else 1

    def per_group(t: torch.Tensor) -> torch.Tensor:  # (N, K) -> (G, cols)
        if not per_column:
            t = t.sum(1, keepdim=True)
        out = torch.zeros(n_groups, cols, dtype=t.dtype, device=t.device)
        return out.index_add_(0, gid, t)

    count = per_group(v)
    mean = per_group(x * v) / count.clamp(min=1)
    centred = (x - mean[gid]) * v
    out = centred
    enough = count[gid] > ddof
    if std_norm:
        var = per_group(centred.pow(2)) / (count - ddof).clamp(min=1)
        out = centred / (var.sqrt()[gid] + eps)
    out = torch.where(valid & enough, out, torch.zeros_like(out))
    return out.squeeze(1) if squeeze else out


def informative_groups(turn_rewards, num_turns, outcome, group_index, live) -> torch.Tensor:
    """(N,) bool: the rollout's group has at least two live rollouts that differ somewhere
    (outcome, turn count or any turn reward).  Other groups carry no learning signal:
    their rollouts get zero advantage (a lone rollout has nothing to be compared with;
    identical rollouts cannot be told apart)."""
    gid, n_groups = _dense_groups(group_index)
    device = turn_rewards.device
    k = torch.arange(turn_rewards.shape[1], device=device)
    r = turn_rewards.to(torch.float64)
    r = torch.where(k.unsqueeze(0) < num_turns.unsqueeze(1), r, torch.zeros_like(r))
    sig = torch.cat([outcome.to(torch.float64).unsqueeze(1), num_turns.to(torch.float64).unsqueeze(1), r], dim=1)
    big = torch.finfo(torch.float64).max
    hi = torch.where(live.unsqueeze(1), sig, torch.full_like(sig, -big))
    lo = torch.where(live.unsqueeze(1), sig, torch.full_like(sig, big))
    idx = gid.unsqueeze(1).expand_as(sig)
    table = (n_groups, sig.shape[1])
    gmax = torch.full(table, -big, dtype=torch.float64, device=device).scatter_reduce(0, idx, hi, "amax")
    gmin = torch.full(table, big, dtype=torch.float64, device=device).scatter_reduce(0, idx, lo, "amin")
    n_live = torch.zeros(n_groups, dtype=torch.float64, device=device).index_add_(0, gid, live.to(torch.float64))
    varied = (gmax != gmin).any(1) & (n_live >= 2)
    return varied[gid] & live


def outcome_advantage(outcome, group_index, live, *, eps=1e-6, std_norm=True, ddof=1) -> torch.Tensor:
    """A^O_i = (o_i - mean_j o_j) / (std_j o_j + eps) over the live rollouts of a group."""
    return group_normalize(outcome, group_index, live, per_column=False, eps=eps, std_norm=std_norm, ddof=ddof)


def reverse_cumsum(x: torch.Tensor) -> torch.Tensor:
    """out[:, k] = sum_{l >= k} x[:, l]."""
    return x.flip(-1).cumsum(-1).flip(-1)


def discounted_turn_returns(
    turn_rewards: torch.Tensor, num_turns: torch.Tensor, outcome: torch.Tensor, gamma: float, turn_indexing: str = "zero"
) -> torch.Tensor:
    """R_ik = sum_{l=k}^{K_i-1} gamma^(l-k) r_il + gamma^(K_i-k) o_i  (0 on padding turns).

    ``turn_indexing="one"`` reads the paper's sum with turns numbered 1..K: the
    last turn's own reward is left out and the outcome sits one step closer,
    R_ik = sum_{l=k}^{K_i-2} gamma^(l-k) r_il + gamma^(K_i-1-k) o_i.
    """
    n, kmax = turn_rewards.shape
    r = turn_rewards.to(torch.float64)
    o = outcome.to(torch.float64)
    last = num_turns.unsqueeze(1) - 1
    k_idx = torch.arange(kmax, device=r.device).unsqueeze(0)
    if turn_indexing == "one":
        r = torch.where(k_idx == last, torch.zeros_like(r), r)
        # the outcome enters the last turn undiscounted: R_last = o
        first_step = o
    else:
        first_step = None
    out = torch.zeros_like(r)
    nxt = torch.zeros(n, dtype=r.dtype, device=r.device)
    for k in range(kmax - 1, -1, -1):  # loop over turns only
        is_last = num_turns - 1 == k
        if first_step is not None:
            val = torch.where(is_last, first_step, r[:, k] + gamma * nxt)
        else:
            val = r[:, k] + gamma * torch.where(is_last, o, nxt)
        val = torch.where(k < num_turns, val, torch.zeros_like(val))
        out[:, k] = val
        nxt = val
    return out


def mt_grpo_turn_advantages(turn_rewards, num_turns, outcome, group_index, live, *, eps, std_norm, ddof):
    """A_ik = sum_{l=k}^{K_i-1} GN_l(r_il) + A^O_i  (per-turn-index group normalisation)."""
    k = torch.arange(turn_rewards.shape[1], device=turn_rewards.device)
    valid = (k.unsqueeze(0) < num_turns.unsqueeze(1)) & live.unsqueeze(1)
    a_i = group_normalize(turn_rewards, group_index, valid, per_column=True, eps=eps, std_norm=std_norm, ddof=ddof)
    a_o = outcome_advantage(outcome, group_index, live, eps=eps, std_norm=std_norm, ddof=ddof)
    adv = reverse_cumsum(a_i * valid) + a_o.unsqueeze(1)
    keep = valid & informative_groups(turn_rewards, num_turns, outcome, group_index, live).unsqueeze(1)
    return torch.where(keep, adv, torch.zeros_like(adv)), a_o


def gtpo_hybrid_turn_advantages(
    turn_rewards, num_turns, outcome, group_index, live, *, gamma, lam, eps, std_norm, ddof, pool, turn_indexing
):
    """A_ik = GN(R_ik) + lam * A^O_i with R the discounted turn return (paper Eq. 2)."""
    k = torch.arange(turn_rewards.shape[1], device=turn_rewards.device)
    valid = (k.unsqueeze(0) < num_turns.unsqueeze(1)) & live.unsqueeze(1)
    returns = discounted_turn_returns(turn_rewards, num_turns, outcome, gamma, turn_indexing)
    gn = group_normalize(
        returns, group_index, valid, per_column=(pool == "turn"), eps=eps, std_norm=std_norm, ddof=ddof
    )
    a_o = outcome_advantage(outcome, group_index, live, eps=eps, std_norm=std_norm, ddof=ddof)
    adv = gn + lam * a_o.unsqueeze(1)
    keep = valid & informative_groups(turn_rewards, num_turns, outcome, group_index, live).unsqueeze(1)
    return torch.where(keep, adv, torch.zeros_like(adv)), a_o, returns


def naive_turn_advantages(turn_rewards, num_turns, group_index, live, *, eps, std_norm, ddof):
    """A_ik = GN_k(r_ik): dense per-turn rewards normalised per turn index, no outcome.

    The formulation whose failure mode the paper describes; kept for diagnostics/tests."""
    k = torch.arange(turn_rewards.shape[1], device=turn_rewards.device)
    valid = (k.unsqueeze(0) < num_turns.unsqueeze(1)) & live.unsqueeze(1)
    return group_normalize(turn_rewards, group_index, valid, per_column=True, eps=eps, std_norm=std_norm, ddof=ddof)


# ---------------------------------------------------------------- token layout


def turn_index_map(spans: torch.Tensor, num_turns: torch.Tensor, length: int) -> torch.Tensor:
    """(N, A) long map: k + 1 on the tokens of turn k, 0 elsewhere (padded layout).

    spans are [start, end) per turn in the same index space; they are clipped to
    ``length`` (truncation) and must not overlap.  Built with a difference array
    and a cumulative sum: no loop over tokens or turns.
    """
    n, kmax, _ = spans.shape
    k = torch.arange(kmax, device=spans.device).unsqueeze(0)
    valid = k < num_turns.unsqueeze(1)
    start = spans[..., 0].clamp(0, length)
    end = spans[..., 1].clamp(0, length)
    valid = valid & (end > start)
    tag = (k + 1).expand(n, kmax) * valid
    diff = torch.zeros(n, length + 1, dtype=torch.long, device=spans.device)
    diff.scatter_add_(1, torch.where(valid, start, length), tag)
    diff.scatter_add_(1, torch.where(valid, end, length), -tag)
    return diff[:, :length].cumsum(1)


def turn_values_to_tokens(values: torch.Tensor, spans: torch.Tensor, num_turns: torch.Tensor, length: int):
    """Give every token of turn k the value values[:, k]; 0 on all other tokens. Padded (N, A) layout."""
    idx = turn_index_map(spans, num_turns, length)
    padded = torch.cat([torch.zeros_like(values[:, :1]), values], dim=1)
    return padded.gather(1, idx)


def turn_values_to_packed_tokens(
    values: torch.Tensor, spans: torch.Tensor, num_turns: torch.Tensor, offsets: torch.Tensor, total: int
) -> torch.Tensor:
    """Packed layout: samples concatenated in one row; sample i starts at offsets[i].

    spans are relative to each sample.  Returns (total,)."""
    flat_spans = (spans + offsets.view(-1, 1, 1)).reshape(1, -1, 2)
    kmax = spans.shape[1]
    k = torch.arange(kmax, device=spans.device).unsqueeze(0)
    valid = (k < num_turns.unsqueeze(1)).reshape(1, -1)
    count = torch.tensor([flat_spans.shape[1]], device=spans.device)
    # invalid turns become empty spans so they mark nothing
    flat_spans = torch.where(valid.unsqueeze(-1), flat_spans, torch.zeros_like(flat_spans))
    return turn_values_to_tokens(values.reshape(1, -1), flat_spans, count, total)[0]


def spans_from_action_ranges(action_ranges, action_length: int, device=None) -> torch.Tensor:
    """Rollout action ranges (sequence space) -> action-space spans: (s, e) -> (s - 1, e - 1), clipped.
    ``device``: where the spans go (the ranges' own device when they are a tensor, else the CPU)."""
    if device is None and isinstance(action_ranges, torch.Tensor):
        device = action_ranges.device
    t = torch.as_tensor(action_ranges, dtype=torch.long, device=device).reshape(-1, 2) - 1
    return t.clamp(0, action_length)


# ---------------------------------------------------------------- diagnostics


def alignment_diagnostics(
    turn_adv: torch.Tensor, a_o: torch.Tensor, outcome: torch.Tensor, valid: torch.Tensor, group_index: torch.Tensor
) -> Dict[str, float]:
    """Turn misalignment, dead turns, mean advantage of successes/failures, zero-variance groups.

    misalignment_rate: share of turns whose advantage has the opposite sign of their
    rollout's outcome advantage, over groups with a non-zero outcome spread (0 by
    construction for outcome-only GRPO; it also counts intended turn-level credit,
    e.g. a gold first turn of a failed rollout, as misaligned: see
    :func:`component_alignment` for the paper's per-component measure).
    dead_turn_rate: share of valid turns with exactly zero advantage.
    adv_mean_success / adv_mean_failure: mean turn advantage of successful / failed
    rollouts, present only when the batch has turns of that class (success_turns /
    failure_turns count them).
    """
    valid = valid.bool()
    a_o64 = a_o.to(torch.float64)
    spread = a_o64 != 0
    gid, n_groups = _dense_groups(group_index)
    group_spread = torch.zeros(n_groups, dtype=torch.float64, device=a_o.device).index_add_(0, gid, spread.double()) > 0
    has_spread = group_spread[gid]
    judged = valid & has_spread.unsqueeze(1) & spread.unsqueeze(1)
    opposite = (turn_adv.to(torch.float64) * a_o64.unsqueeze(1)) < 0
    n_judged = int(judged.sum())
    n_valid = int(valid.sum())
    success = outcome > 0.5
    vs = valid & success.unsqueeze(1)
    vf = valid & ~success.unsqueeze(1)
    out = {
        "misalignment_rate": float((opposite & judged).sum()) / n_judged if n_judged else 0.0,
        "misaligned_turns": float((opposite & judged).sum()),
        "judged_turns": float(n_judged),
        "dead_turn_rate": float(((turn_adv == 0) & valid).sum()) / n_valid if n_valid else 0.0,
        "zero_variance_group_rate": 1.0 - float(group_spread.double().mean()) if n_groups else 0.0,
        "success_turns": float(vs.sum()),
        "failure_turns": float(vf.sum()),
    }
    for key, mask in (("adv_mean_success", vs), ("adv_mean_failure", vf)):
        m = int(mask.sum())
        if m:  # no NaN for a batch without one class: the key is left out, the count says why
            out[key] = float((turn_adv.to(torch.float64) * mask).sum() / m)
    return out


def component_alignment(
    turn_adv: torch.Tensor, fires: torch.Tensor, valid: torch.Tensor, direction: torch.Tensor
) -> Dict[str, torch.Tensor]:
    """The paper's misalignment, per component: does the advantage of a component's turns point the way
    the component relates to success?

    turn_adv (N, K); fires (N, K, C) bool, the component fired in the turn; valid (N, K);
    direction (C,) in {-1, 0, +1}: the sign of the component's correlation with success
    where the evidence supports one (0: no known direction, not judged).

    Per component (C,): ``turns`` (fired, valid, non-zero advantage), ``opposing`` (of those, advantage
    sign opposite to the direction), ``mean_advantage`` (over fired valid turns, NaN when none) and
    ``agrees`` (sign of the mean advantage equals the direction; False where undefined).
    Aggregates: ``opposing_rate`` = sum(opposing) / sum(turns) over judged components,
    ``misaligned_components`` = judged components whose mean advantage does not agree.
    """
    adv = turn_adv.to(torch.float64)
    f = (fires.bool() & valid.bool().unsqueeze(-1)).to(torch.float64)  # (N, K, C)
    d = direction.to(torch.float64)
    live = (adv != 0).to(torch.float64).unsqueeze(-1)
    fired_turns = f.sum((0, 1))
    turns = (f * live).sum((0, 1))
    sign = torch.sign(adv).unsqueeze(-1)
    opposing = (f * live * (sign * d < 0).to(torch.float64)).sum((0, 1))
    mean_adv = (f * adv.unsqueeze(-1)).sum((0, 1)) / fired_turns
    judged = (d != 0) & (fired_turns > 0)
    agrees = judged & (torch.sign(mean_adv) == d)
    n_turns = float(turns[judged].sum())
    return {
        "turns": turns, "opposing": opposing, "mean_advantage": mean_adv, "agrees": agrees, "judged": judged,
        "opposing_rate": torch.tensor(float(opposing[judged].sum()) / n_turns if n_turns else 0.0, device=adv.device),
        "misaligned_components": torch.tensor(int((judged & ~agrees).sum()), device=adv.device),
    }
