"""Turn-level advantages of any registered estimator, from per-turn rewards alone.

Training calls an estimator with per-token data (:class:`~.types.EstimatorInput`); IRC and the demo
have only the logged per-turn rewards.  :func:`turn_advantages` calls the *registered* estimator
(``openrlhf_mtgrpo.registry.get_advantage_estimator``, so one added by entry point works too) on a
layout where turn k of a rollout is the single action token k, and reads each turn's advantage back
from its token.  An estimator whose per-turn values do not depend on how many tokens a turn has
(the built-in three: every token of a turn gets the turn's value) gives exactly what training gave
those turns, as float32 like training's advantages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.options import shared_option_names
from openrlhf_mtgrpo.advantages.types import EstimatorInput, EstimatorOptions, TurnInfo, checked_output


@dataclass
class TurnAdvantages:
    """turn: (N, K) float64 advantage of each turn (0 on padding turns); outcome: (N,) float64 group-normalised
    outcome advantage A^O (the reference of the turn-misalignment measure); metrics: the estimator's own."""

    turn: torch.Tensor
    outcome: torch.Tensor
    metrics: dict


def one_token_per_turn(num_turns: torch.Tensor, kmax: int):
    """(spans (N, K, 2), action mask (N, K)): turn k is action token k (on the device of ``num_turns``)."""
    n = num_turns.shape[0]
    k = torch.arange(kmax, dtype=torch.long, device=num_turns.device)
    spans = torch.stack([k, k + 1], dim=1).unsqueeze(0).expand(n, kmax, 2).contiguous()
    mask = k.unsqueeze(0) < num_turns.unsqueeze(1)
    return spans, mask


def turn_advantages(estimator: str, turn_rewards: torch.Tensor, num_turns: torch.Tensor, outcome: torch.Tensor,
                    group_index: torch.Tensor, live: Optional[torch.Tensor] = None,
                    options: Optional[EstimatorOptions] = None) -> TurnAdvantages:
    """The advantages the registered estimator ``estimator`` gives N rollouts of K (padded) turns.

    turn_rewards (N, K) per-turn rewards; num_turns (N,); outcome (N,) 0/1; group_index (N,); live (N,) bool,
    False for rollouts left out of every group statistic (default: all live); options: the estimator's options
    (an instance of the class it registered; default: that class's defaults; options of another class give their
    shared values, and the estimator's own options their defaults).  On the device of turn_rewards."""
    from openrlhf_mtgrpo.registry import advantage_estimator_options, get_advantage_estimator

    fn = get_advantage_estimator(estimator)
    cls = advantage_estimator_options(estimator)
    opts = options if options is not None else cls()
    if not isinstance(opts, cls):
        opts = cls(**{name: getattr(opts, name) for name in shared_option_names()})
    device = turn_rewards.device
    n, k = (int(d) for d in turn_rewards.shape)
    kmax = max(k, 1)
    rewards = torch.zeros(n, kmax, dtype=torch.float64, device=device)
    rewards[:, :k] = turn_rewards.to(torch.float64)
    num_turns = num_turns.to(device=device, dtype=torch.long)
    outcome, group_index = outcome.to(device), group_index.to(device)
    live = torch.ones(n, dtype=torch.bool, device=device) if live is None else live.to(device).bool()
    spans, mask = one_token_per_turn(num_turns, kmax)
    inp = EstimatorInput(rewards=outcome.to(torch.float64), group_index=group_index.to(torch.long), action_mask=mask,
                         turns=TurnInfo(spans=spans, num_turns=num_turns, rewards=rewards), excluded=~live,
                         options=opts, extra={"caller": "turn_advantages"})
    out = checked_output(estimator, fn(inp), (n, kmax))
    adv = out.advantages.to(torch.float64)
    adv = torch.where(mask & live.unsqueeze(1), adv, torch.zeros_like(adv))[:, :k]
    a_o = core.outcome_advantage(outcome, group_index, live, eps=opts.eps, std_norm=opts.std_norm, ddof=opts.std_ddof)
    return TurnAdvantages(adv, a_o.to(torch.float64), dict(out.metrics))
