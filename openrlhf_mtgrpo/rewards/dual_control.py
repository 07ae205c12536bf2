"""The component set ``tau_dual``: ``tau`` plus credit for what the customer does on its own side.

In a dual-control domain (tau2's telecom) the customer, not the agent, performs most of the fixing: it
toggles airplane mode, reseats the SIM, runs a speed test, with its own tools, because the agent asked it
to.  The turn that deserves the credit is the agent's turn the customer acted on.  Three components, all
starting at weight 0 (untested) so IRC decides them from evidence, on top of the ten of ``tau`` (scored
unchanged on the agent's own calls):

* ``user_gold_induced``: after this agent turn, before its next message to the agent, the customer
  performed a pending gold customer action (the task's gold actions with ``requestor`` "user", each matched
  once; where the gold gives ``compare_args``, only those arguments must be equal, as tau2's action check
  compares them): 1.0, else 0;
* ``user_state_change``: in that span the customer made a write (a call of a customer tool of kind write;
  a dispatching tool's call by the kind of the tool it runs, ``ToolKinds.call_kind``) that is not one of the
  pending gold customer actions: 1.0, else 0;
* ``assertion_progress``: the increase, over the turn and its answer, of the fraction of the task's
  assertions met on the live state (the domain's ``env_assertions_met`` probe), clipped to [0, 1].

What the customer's tools are comes from ``ToolKinds.customer``; a domain without customer tools gets 0 for
the first two (the set still works, but ``tau`` is the set for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.envs.base import WRITE, ToolKinds
from openrlhf_mtgrpo.rewards.matching import deep_equal
from openrlhf_mtgrpo.rewards.tau import NAMES as TAU_NAMES
from openrlhf_mtgrpo.rewards.tau import PINNED, TauScorer, agent_gold
from openrlhf_mtgrpo.rewards.turns import TurnInput

NAME = "tau_dual"
DUAL_NAMES = ("user_gold_induced", "user_state_change", "assertion_progress")
NAMES = TAU_NAMES + DUAL_NAMES
PROBE = "env_assertions_met"


def customer_gold(actions: Sequence[Any]) -> List[Tuple[str, Dict[str, Any], Optional[Tuple[str, ...]]]]:
    """(name, arguments, compare_args) of the task's gold actions the customer is to perform."""
    return [(a.name, dict(a.arguments or {}), None if getattr(a, "compare_args", None) is None
             else tuple(a.compare_args)) for a in actions if getattr(a, "requestor", "assistant") == "user"]


def matches(gold: Tuple[str, Dict[str, Any], Optional[Tuple[str, ...]]], name: str, arguments: Any) -> bool:
    """A call performs a gold action: the same tool, and equal arguments (only ``compare_args`` where given)."""
    g_name, g_args, compare = gold
    if name != g_name or not isinstance(arguments, dict):
        return False
    keys = tuple(g_args) if compare is None else compare
    return all(k in arguments and deep_equal(arguments[k], g_args.get(k)) for k in keys) and \
        (compare is not None or set(arguments) == set(g_args))


class DualScorer:
    """Scores one episode's turns: ``tau`` on the agent's calls, the three customer components on the rest."""

    def __init__(self, task: Any, tool_kinds: ToolKinds):
        self.tau = TauScorer(agent_gold(task.actions), tool_kinds)
        self.pending = customer_gold(task.actions)
        self.customer = tool_kinds.customer

    def features(self, turn: TurnInput) -> Dict[str, float]:
        x = self.tau.features(turn)
        induced = changed = 0.0
        for call in turn.user_calls:
            if call.error:
                continue
            hit = next((i for i, g in enumerate(self.pending) if matches(g, call.name, call.arguments)), None)
            if hit is not None:
                del self.pending[hit]
                induced = 1.0
            elif self.customer is not None and self.customer.call_kind(call.name, call.arguments) == WRITE:
                changed = 1.0
        before, after = turn.probes_before.get(PROBE), turn.probes.get(PROBE)
        progress = 0.0 if before is None or after is None else min(1.0, max(0.0, float(after) - float(before)))
        x.update(user_gold_induced=induced, user_state_change=changed, assertion_progress=progress)
        return x


@dataclass(frozen=True)
class DualControlComponents:
    """The ``tau_dual`` set for one domain's tools (see the module docstring)."""

    tool_kinds: ToolKinds
    name: str = NAME
    names: Tuple[str, ...] = NAMES
    pinned: Tuple[str, ...] = PINNED

    def new_episode(self, task: Any) -> DualScorer:
        return DualScorer(task, self.tool_kinds)


def dual_control_components(tool_kinds: ToolKinds) -> DualControlComponents:
    """The factory registered as ``tau_dual``."""
    if not isinstance(tool_kinds, ToolKinds):
        raise TypeError(f"dual_control_components needs the domain's ToolKinds, got {type(tool_kinds).__name__}")
    return DualControlComponents(tool_kinds)


dual_control_components.names = NAMES
dual_control_components.pinned = PINNED
