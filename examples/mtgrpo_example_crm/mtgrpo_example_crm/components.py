"""The component set ``crm``: the built-in ``tau`` components plus one flag of the support desk's own.

``unnamed_target_write``: a write call that ran (no error) on a record that neither the customer named
(its id in one of their messages so far) nor the agent looked up (the id as an argument of an earlier
successful read call of the episode).  Which arguments name a write's record comes from the domain's
``ToolKinds.write_targets``; what a read is from its tool kinds, so the set works for any domain's tools.

Built on :func:`openrlhf_mtgrpo.rewards.tau.tau_components`: the ten ``tau`` values are exactly the
built-in set's, and a calibration of ``crm`` weights all eleven, which IRC then tests.  Like every
``tau`` component, the flag's value in a turn is the share of the turn's calls it fires on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Set, Tuple

from openrlhf_mtgrpo.envs.base import READ, ToolKinds
from openrlhf_mtgrpo.rewards import tau
from openrlhf_mtgrpo.rewards.turns import TurnInput

NAME = "crm"
OWN = ("unnamed_target_write",)
NAMES: Tuple[str, ...] = tau.NAMES + OWN
PINNED = tau.PINNED


class CrmScorer:
    """One episode's scorer: the ``tau`` scorer's features and the flag (stateful: what was named so far)."""

    def __init__(self, base: Any, tool_kinds: ToolKinds):
        self.base = base
        self.kinds = tool_kinds
        self.customer_said: List[str] = []
        self.looked_up: Set[str] = set()

    def _known(self, value: str) -> bool:
        v = value.strip().lower()
        return value in self.looked_up or any(v in m for m in self.customer_said)

    def features(self, turn: TurnInput) -> Dict[str, float]:
        x = self.base.features(turn)
        said = (turn.last_user_message or "").lower()
        if said and (not self.customer_said or self.customer_said[-1] != said):
            self.customer_said.append(said)
        fired = 0
        for call in turn.calls:
            args = call.arguments if isinstance(call.arguments, dict) else {}
            if call.error:
                continue
            if call.name in self.kinds.writes:
                targets = [args.get(t) for t in self.kinds.write_targets.get(call.name, ())]
                fired += any(isinstance(v, str) and v.strip() and not self._known(v) for v in targets)
            elif self.kinds.kind(call.name) == READ:
                self.looked_up.update(v for v in args.values() if isinstance(v, str))
        n = len(turn.calls) + turn.malformed_calls
        x["unnamed_target_write"] = fired / n if n else 0.0
        return x


@dataclass(frozen=True)
class CrmComponents:
    """The ``crm`` set for one domain's tools."""

    tool_kinds: ToolKinds
    name: str = NAME
    names: Tuple[str, ...] = NAMES
    pinned: Tuple[str, ...] = PINNED

    def new_episode(self, task: Any) -> CrmScorer:
        return CrmScorer(tau.tau_components(self.tool_kinds).new_episode(task), self.tool_kinds)


def crm_components(tool_kinds: ToolKinds) -> CrmComponents:
    """The factory the entry point ``openrlhf_mtgrpo.reward_components`` names (as ``crm``)."""
    if not isinstance(tool_kinds, ToolKinds):
        raise TypeError(f"crm_components needs the domain's ToolKinds, got {type(tool_kinds).__name__}")
    return CrmComponents(tool_kinds)


#: the axis without building a set (what ``rewards.sets.component_names`` reads first)
crm_components.names = NAMES
crm_components.pinned = PINNED
