"""The three registered estimators: gtpo_hybrid, mt_grpo and grpo_outcome.

Each turns an :class:`EstimatorInput` into per-token advantages: compute one value
per (rollout, turn) with :mod:`.core`, then give every token of the turn that value
(:mod:`.helpers`, the same helpers a third-party estimator uses).  Their options are the
shared ones, :class:`~.options.EstimatorOptions` (``--gtpo.*``).
"""

from __future__ import annotations

import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.helpers import estimator_output, require_turns, valid_turns
from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOutput
from openrlhf_mtgrpo.registry import register_advantage_estimator


@register_advantage_estimator("gtpo_hybrid")
def gtpo_hybrid(inp: EstimatorInput) -> EstimatorOutput:
    """GTPO hybrid (paper Eq. 2): GN(discounted per-turn return with the outcome at the end) + lam * A^O."""
    turns = require_turns(inp, "gtpo_hybrid")
    o = inp.options
    turn_adv, a_o, _ = core.gtpo_hybrid_turn_advantages(
        turns.rewards,
        turns.num_turns,
        inp.rewards,
        inp.group_index,
        inp.live(),
        gamma=o.gamma,
        lam=o.lam,
        eps=o.eps,
        std_norm=o.std_norm,
        ddof=o.std_ddof,
        pool=o.pool,
        turn_indexing=o.turn_indexing,
    )
    return estimator_output(inp, turn_adv, a_o, valid_turns(inp))


@register_advantage_estimator("mt_grpo")
def mt_grpo(inp: EstimatorInput) -> EstimatorOutput:
    """MT-GRPO: sum of later per-turn-index normalised turn rewards + A^O."""
    turns = require_turns(inp, "mt_grpo")
    o = inp.options
    turn_adv, a_o = core.mt_grpo_turn_advantages(
        turns.rewards, turns.num_turns, inp.rewards, inp.group_index, inp.live(),
        eps=o.eps, std_norm=o.std_norm, ddof=o.std_ddof,
    )
    return estimator_output(inp, turn_adv, a_o, valid_turns(inp))


@register_advantage_estimator("grpo_outcome")
def grpo_outcome(inp: EstimatorInput) -> EstimatorOutput:
    """Sparse baseline: A^O_i on every turn of rollout i."""
    turns = require_turns(inp, "grpo_outcome")
    o = inp.options
    a_o = core.outcome_advantage(inp.rewards, inp.group_index, inp.live(), eps=o.eps, std_norm=o.std_norm, ddof=o.std_ddof)
    valid = valid_turns(inp)
    turn_adv = a_o.unsqueeze(1).expand_as(turns.rewards).to(torch.float64)
    turn_adv = torch.where(valid, turn_adv, torch.zeros_like(turn_adv))
    return estimator_output(inp, turn_adv, a_o, valid)
