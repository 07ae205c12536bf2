"""Records exchanged between the trainer glue and advantage estimators.

They are framework-independent: plain tensors, no OpenRLHF types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch

from openrlhf_mtgrpo.advantages.options import EstimatorOptions  # noqa: F401  (re-exported: the options live there)


@dataclass
class TurnInfo:
    """Per-turn data of N rollouts, padded to K turns.

    spans: (N, K, 2) long, [start, end) of each assistant turn in *action space*
        (the index space of OpenRLHF's action_mask, i.e. sequence position - 1).
    num_turns: (N,) long, K_i; turns k >= K_i are padding.
    rewards: (N, K) float, the per-turn reward r_ik from the reward model.
    """

    spans: torch.Tensor
    num_turns: torch.Tensor
    rewards: torch.Tensor

    @property
    def valid(self) -> torch.Tensor:
        k = torch.arange(self.rewards.shape[1], device=self.rewards.device)
        return k.unsqueeze(0) < self.num_turns.unsqueeze(1)


@dataclass
class EstimatorInput:
    """What a registered estimator receives for one training batch.

    rewards: (N,) outcome reward of each rollout (after OpenRLHF's length penalties).
    group_index: (N,) long, rollouts with the same value were sampled from the same prompt.
    action_mask: (N, A) bool, OpenRLHF's action mask, right-padded to a common A.
    turns: per-turn data attached by the rollout, None when the agent attached none.
    excluded: (N,) bool, rollouts to leave out (infrastructure failures): zero advantage,
        not part of any group statistic.
    options: the estimator's options: an :class:`EstimatorOptions`, or the subclass the estimator registered
        with ``options=`` (its own options beside the shared ``--gtpo.*`` ones).
    extra: anything else the glue passes through (e.g. ``args``).
    """

    rewards: torch.Tensor
    group_index: torch.Tensor
    action_mask: torch.Tensor
    turns: Optional[TurnInfo] = None
    excluded: Optional[torch.Tensor] = None
    options: EstimatorOptions = field(default_factory=EstimatorOptions)
    extra: Dict[str, Any] = field(default_factory=dict)

    def live(self) -> torch.Tensor:
        if self.excluded is None:
            return torch.ones_like(self.rewards, dtype=torch.bool)
        return ~self.excluded.bool()


@dataclass
class EstimatorOutput:
    """Per-token advantages and returns, (N, A), zero on non-action tokens, plus scalar metrics."""

    advantages: torch.Tensor
    returns: torch.Tensor
    metrics: Dict[str, float] = field(default_factory=dict)


def checked_output(name: str, out: Any, shape: tuple) -> EstimatorOutput:
    """``out`` as the estimator ``name`` returned it, refused unless it is an :class:`EstimatorOutput` whose
    advantages and returns have ``shape`` (the action mask's)."""
    if not isinstance(out, EstimatorOutput):
        raise TypeError(f"advantage estimator {name!r} returned {type(out).__name__}, not an EstimatorOutput "
                        "(openrlhf_mtgrpo.advantages.helpers.estimator_output builds one)")
    for what in ("advantages", "returns"):
        got = tuple(getattr(out, what).shape)
        if got != tuple(shape):
            raise ValueError(f"advantage estimator {name!r} returned {what} of shape {got}, expected {tuple(shape)} "
                             "(the action mask's)")
    return out
