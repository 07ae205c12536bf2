"""The advantage estimator ``outcome_first``: GTPO hybrid with the outcome at full weight.

GTPO hybrid (the package's ``gtpo_hybrid``) gives turn k of rollout i ``GN(R_ik) + lam * A^O_i``: the
group-normalised discounted turn return, plus the outcome advantage scaled by ``lam``.  This variant
swaps the weights::

    A_ik = A^O_i + lam * GN(R_ik)

so a turn's own credit refines the rollout's outcome advantage and outweighs it only where the turn
returns spread far more than the outcomes do.  Every option is the ``--gtpo.*`` one (gamma, lam, eps,
std_norm, std_ddof, pool, turn_indexing); groups without any difference get zero advantage, as in the
built-ins.  Written against ``openrlhf_mtgrpo.advantages.core`` and the ``EstimatorInput`` /
``EstimatorOutput`` records; torch is imported here (the entry point loads this module only where an
estimator is looked up).
"""

from __future__ import annotations

import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOutput

NAME = "outcome_first"


def outcome_first_turn_advantages(turn_rewards, num_turns, outcome, group_index, live, *, gamma, lam, eps, std_norm,
                                  ddof, pool, turn_indexing):
    """(N, K) turn advantages ``A^O_i + lam * GN(R_ik)`` and the (N,) outcome advantages ``A^O``."""
    k = torch.arange(turn_rewards.shape[1], device=turn_rewards.device)
    valid = (k.unsqueeze(0) < num_turns.unsqueeze(1)) & live.unsqueeze(1)
    returns = core.discounted_turn_returns(turn_rewards, num_turns, outcome, gamma, turn_indexing)
    gn = core.group_normalize(returns, group_index, valid, per_column=(pool == "turn"), eps=eps, std_norm=std_norm,
                              ddof=ddof)
    a_o = core.outcome_advantage(outcome, group_index, live, eps=eps, std_norm=std_norm, ddof=ddof)
    adv = a_o.to(torch.float64).unsqueeze(1) + lam * gn
    keep = valid & core.informative_groups(turn_rewards, num_turns, outcome, group_index, live).unsqueeze(1)
    return torch.where(keep, adv, torch.zeros_like(adv)), a_o


def outcome_first(inp: EstimatorInput) -> EstimatorOutput:
    """The estimator the entry point ``openrlhf_mtgrpo.advantage_estimators`` names (as ``outcome_first``)."""
    turns = inp.turns
    if turns is None:
        raise ValueError(f"advantage estimator {NAME!r} needs per-turn data from the rollout (the plugin's agent, "
                         "--train.agent_func_path $(mtgrpo agent-path)); the batch carries none")
    o = inp.options
    live = inp.live()
    turn_adv, a_o = outcome_first_turn_advantages(
        turns.rewards, turns.num_turns, inp.rewards, inp.group_index, live, gamma=o.gamma, lam=o.lam, eps=o.eps,
        std_norm=o.std_norm, ddof=o.std_ddof, pool=o.pool, turn_indexing=o.turn_indexing)
    adv = core.turn_values_to_tokens(turn_adv, turns.spans, turns.num_turns, inp.action_mask.shape[1])
    adv = (adv * inp.action_mask.to(adv.dtype)).to(torch.float32)
    metrics = core.alignment_diagnostics(turn_adv, a_o, inp.rewards, turns.valid & live.unsqueeze(1), inp.group_index)
    return EstimatorOutput(advantages=adv, returns=adv.clone(), metrics=metrics)
