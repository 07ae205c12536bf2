"""Records exchanged between the trainer glue and advantage estimators.

They are framework-independent: plain tensors, no OpenRLHF types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch


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
class EstimatorOptions:
    """Options of the turn-level estimators (``--gtpo.*`` flags)."""

    gamma: float = 0.9  # paper
    lam: float = 0.3  # paper
    eps: float = 1e-6
    std_norm: bool = True  # False: Dr. GRPO style, mean-centring only
    std_ddof: int = 1  # 1 = torch.std / OpenRLHF group_norm; 0 = population std
    pool: str = "turn"  # GN per turn index ("turn") or over all turns of a group ("group"); docs/method.md
    turn_indexing: str = "zero"  # "zero": every turn's own reward counts; "one": the paper's sum read 1-based

    def __post_init__(self):
        if self.pool not in ("group", "turn"):
            raise ValueError(f"pool must be 'group' or 'turn', got {self.pool!r}")
        if self.turn_indexing not in ("zero", "one"):
            raise ValueError(f"turn_indexing must be 'zero' or 'one', got {self.turn_indexing!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.std_ddof not in (0, 1):
            raise ValueError(f"std_ddof must be 0 or 1, got {self.std_ddof}")


@dataclass
class EstimatorInput:
    """What a registered estimator receives for one training batch.

    rewards: (N,) outcome reward of each rollout (after OpenRLHF's length penalties).
    group_index: (N,) long, rollouts with the same value were sampled from the same prompt.
    action_mask: (N, A) bool, OpenRLHF's action mask, right-padded to a common A.
    turns: per-turn data attached by the rollout, None when the agent attached none.
    excluded: (N,) bool, rollouts to leave out (infrastructure failures): zero advantage,
        not part of any group statistic.
    options: estimator options.
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
