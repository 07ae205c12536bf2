"""The advantage estimator ``outcome_first``: GTPO hybrid with the outcome at full weight.

GTPO hybrid (the package's ``gtpo_hybrid``) gives turn k of rollout i ``GN(R_ik) + lam * A^O_i``: the
group-normalised discounted turn return, plus the outcome advantage scaled by ``lam``.  This variant
swaps the weights::

    A_ik = outcome_weight * A^O_i + lam * GN(R_ik)

so a turn's own credit refines the rollout's outcome advantage and outweighs it only where the turn
returns spread far more than the outcomes do.  The shared options are the ``--gtpo.*`` ones (gamma, lam,
eps, std_norm, std_ddof, pool, turn_indexing); ``outcome_weight`` (default 1) is this estimator's own,
declared in :class:`OutcomeFirstOptions`: training takes it as ``--outcome_first.outcome_weight`` (recipe key
``outcome_first.outcome_weight``), the rollout logs record it and ``mtgrpo irc analyze`` re-checks with it.
Groups without any difference get zero advantage, as in the built-ins.  Written against
``openrlhf_mtgrpo.advantages.core``, the public helpers of ``openrlhf_mtgrpo.advantages.helpers`` and the
``EstimatorInput`` / ``EstimatorOutput`` records; torch is imported here (the entry point loads this module only
where an estimator is looked up).  Importing the module registers the estimator with its options, under the
name its entry point gives it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.helpers import estimator_output, require_turns, valid_turns
from openrlhf_mtgrpo.advantages.options import EstimatorOptions, option
from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOutput
from openrlhf_mtgrpo.registry import register_advantage_estimator

NAME = "outcome_first"


@dataclass
class OutcomeFirstOptions(EstimatorOptions):
    """The shared options, and this estimator's own (flags ``--outcome_first.<field>``)."""

    outcome_weight: float = option(1.0, "weight of the outcome advantage A^O in outcome_first (the turn returns "
                                        "weigh --gtpo.lam)", check=(lambda v: v >= 0, ">= 0"))


def outcome_first_turn_advantages(turn_rewards, num_turns, outcome, group_index, live, *, gamma, lam, eps, std_norm,
                                  ddof, pool, turn_indexing, outcome_weight=1.0):
    """(N, K) turn advantages ``outcome_weight * A^O_i + lam * GN(R_ik)`` and the (N,) outcome advantages ``A^O``."""
    k = torch.arange(turn_rewards.shape[1], device=turn_rewards.device)
    valid = (k.unsqueeze(0) < num_turns.unsqueeze(1)) & live.unsqueeze(1)
    returns = core.discounted_turn_returns(turn_rewards, num_turns, outcome, gamma, turn_indexing)
    gn = core.group_normalize(returns, group_index, valid, per_column=(pool == "turn"), eps=eps, std_norm=std_norm,
                              ddof=ddof)
    a_o = core.outcome_advantage(outcome, group_index, live, eps=eps, std_norm=std_norm, ddof=ddof)
    adv = outcome_weight * a_o.to(torch.float64).unsqueeze(1) + lam * gn
    keep = valid & core.informative_groups(turn_rewards, num_turns, outcome, group_index, live).unsqueeze(1)
    return torch.where(keep, adv, torch.zeros_like(adv)), a_o


@register_advantage_estimator(NAME, options=OutcomeFirstOptions)
def outcome_first(inp: EstimatorInput) -> EstimatorOutput:
    """The estimator the entry point ``openrlhf_mtgrpo.advantage_estimators`` names (as ``outcome_first``);
    ``inp.options`` is an :class:`OutcomeFirstOptions`."""
    turns = require_turns(inp, NAME)
    o = inp.options
    turn_adv, a_o = outcome_first_turn_advantages(
        turns.rewards, turns.num_turns, inp.rewards, inp.group_index, inp.live(), gamma=o.gamma, lam=o.lam, eps=o.eps,
        std_norm=o.std_norm, ddof=o.std_ddof, pool=o.pool, turn_indexing=o.turn_indexing,
        outcome_weight=o.outcome_weight)
    return estimator_output(inp, turn_adv, a_o, valid_turns(inp))
