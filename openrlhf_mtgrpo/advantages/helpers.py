"""Helpers for writing an advantage estimator: what the built-in three do around their math.

A turn-level estimator computes one value per (rollout, turn) and gives every token of the turn that
value.  With these helpers it is three lines around its own math::

    from openrlhf_mtgrpo.advantages import core
    from openrlhf_mtgrpo.advantages.helpers import estimator_output, require_turns, valid_turns

    def my_estimator(inp):
        turns = require_turns(inp, "my_estimator")      # a clear error when the rollout attached no turns
        turn_adv, a_o = ...                             # (N, K) turn values, (N,) outcome advantage
        return estimator_output(inp, turn_adv, a_o)     # per-token advantages, returns and diagnostics

Everything stays on the device of the input tensors.
"""

from __future__ import annotations

from typing import Optional

import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOutput, TurnInfo


def require_turns(inp: EstimatorInput, name: str) -> TurnInfo:
    """``inp.turns``; a ValueError naming the estimator and the fix when the batch carries no per-turn data."""
    if inp.turns is None:
        raise ValueError(
            f"advantage estimator {name!r} needs per-turn data from the rollout, but the batch carries none. "
            "Use the plugin's agent (--train.agent_func_path $(mtgrpo agent-path)) or an agent that returns "
            "per-turn 'sample_info' (mtgrpo_num_turns, mtgrpo_turn_spans, mtgrpo_turn_rewards) in its result."
        )
    return inp.turns


def valid_turns(inp: EstimatorInput) -> torch.Tensor:
    """(N, K) bool: the real turns (not padding) of the live rollouts (not ``inp.excluded``)."""
    return require_turns(inp, "this estimator").valid & inp.live().unsqueeze(1)


def estimator_output(inp: EstimatorInput, turn_adv: torch.Tensor, outcome_adv: torch.Tensor,
                     valid: Optional[torch.Tensor] = None) -> EstimatorOutput:
    """The :class:`EstimatorOutput` of per-turn values: every token of turn k of rollout i gets
    ``turn_adv[i, k]`` (0 on every other token and off the action mask), as float32; returns equal the
    advantages; metrics are :func:`core.alignment_diagnostics` against ``outcome_adv`` (A^O) over ``valid``
    (default :func:`valid_turns`)."""
    turns = require_turns(inp, "this estimator")
    valid = valid_turns(inp) if valid is None else valid
    length = inp.action_mask.shape[1]
    adv = core.turn_values_to_tokens(turn_adv, turns.spans, turns.num_turns, length)
    adv = adv * inp.action_mask.to(adv.dtype)
    metrics = core.alignment_diagnostics(turn_adv, outcome_adv, inp.rewards, valid, inp.group_index)
    adv = adv.to(torch.float32)
    return EstimatorOutput(advantages=adv, returns=adv.clone(), metrics=metrics)
