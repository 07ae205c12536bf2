"""The three registered estimators: gtpo_hybrid, mt_grpo and grpo_outcome.

Each turns an :class:`EstimatorInput` into per-token advantages: compute one value
per (rollout, turn) with :mod:`.core`, then give every token of the turn that value.
"""

from __future__ import annotations

import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOutput
from openrlhf_mtgrpo.registry import register_advantage_estimator


def _require_turns(inp: EstimatorInput, name: str):
    if inp.turns is None:
        raise ValueError(
            f"advantage estimator {name!r} needs per-turn data from the rollout, but the batch carries none. "
            "Use the plugin's agent (--train.agent_func_path $(mtgrpo agent-path)) or an agent that returns "
            "per-turn 'sample_info' (mtgrpo_num_turns, mtgrpo_turn_spans, mtgrpo_turn_rewards) in its result."
        )
    return inp.turns


def _finish(inp: EstimatorInput, turn_adv, a_o, valid) -> EstimatorOutput:
    turns = inp.turns
    length = inp.action_mask.shape[1]
    adv = core.turn_values_to_tokens(turn_adv, turns.spans, turns.num_turns, length)
    adv = adv * inp.action_mask.to(adv.dtype)
    metrics = core.alignment_diagnostics(turn_adv, a_o, inp.rewards, valid, inp.group_index)
    adv = adv.to(torch.float32)
    return EstimatorOutput(advantages=adv, returns=adv.clone(), metrics=metrics)


def _valid(inp: EstimatorInput):
    return inp.turns.valid & inp.live().unsqueeze(1)


@register_advantage_estimator("gtpo_hybrid")
def gtpo_hybrid(inp: EstimatorInput) -> EstimatorOutput:
    """GTPO hybrid (paper Eq. 2): GN(discounted per-turn return with the outcome at the end) + lam * A^O."""
    turns = _require_turns(inp, "gtpo_hybrid")
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
    return _finish(inp, turn_adv, a_o, _valid(inp))


@register_advantage_estimator("mt_grpo")
def mt_grpo(inp: EstimatorInput) -> EstimatorOutput:
    """MT-GRPO: sum of later per-turn-index normalised turn rewards + A^O."""
    turns = _require_turns(inp, "mt_grpo")
    o = inp.options
    turn_adv, a_o = core.mt_grpo_turn_advantages(
        turns.rewards, turns.num_turns, inp.rewards, inp.group_index, inp.live(),
        eps=o.eps, std_norm=o.std_norm, ddof=o.std_ddof,
    )
    return _finish(inp, turn_adv, a_o, _valid(inp))


@register_advantage_estimator("grpo_outcome")
def grpo_outcome(inp: EstimatorInput) -> EstimatorOutput:
    """Sparse baseline: A^O_i on every turn of rollout i."""
    turns = _require_turns(inp, "grpo_outcome")
    o = inp.options
    a_o = core.outcome_advantage(inp.rewards, inp.group_index, inp.live(), eps=o.eps, std_norm=o.std_norm, ddof=o.std_ddof)
    valid = _valid(inp)
    turn_adv = torch.where(valid, a_o.unsqueeze(1).expand_as(turns.rewards).to(torch.float64), torch.zeros(()).double())
    return _finish(inp, turn_adv, a_o, valid)
