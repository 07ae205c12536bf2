"""One conversation's environment: the benchmark's rules for an agent message, and its outcome check.

The rules (:meth:`CrmEpisode.assistant_message`), this benchmark's own:

* a message with a call whose arguments are not a JSON object (``malformed``) ends the run as a failure of
  the agent (``agent_error``, reward 0), and no call of it runs;
* a message with neither text nor tool calls does too;
* otherwise every call runs, in order, up to and including a successful ``transfer_to_human``, which ends
  the episode (``agent_stop``); calls after it in the same message do not run;
* a message without tool calls goes to the customer.

The outcome (:meth:`CrmEpisode.evaluate`): reward 1 when the conversation ended properly (the customer
stopped, or the agent transferred), the final database equals the gold replay's and every piece of
``communicate_info`` occurs in some agent message (case-insensitive, commas removed); else 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.envs.base import PROPER_ENDINGS, AssistantTurn, ToolResult

from mtgrpo_example_crm import tools
from mtgrpo_example_crm.data import Task
from mtgrpo_example_crm.state import EpisodeState

if TYPE_CHECKING:  # pragma: no cover
    from mtgrpo_example_crm.domain import CrmDomain


@dataclass
class CrmOutcome:
    """A finished episode's reward and why."""

    reward: float
    termination: str
    db_match: bool = False
    communicated: Dict[str, bool] = field(default_factory=dict)
    changed: List[str] = field(default_factory=list)  # "table/key" of the records the episode changed
    note: str = ""

    @property
    def success(self) -> bool:
        return self.reward >= 1.0

    def to_dict(self) -> Dict[str, Any]:
        return dict(asdict(self), success=self.success)


def communicated(required: Sequence[str], texts: Sequence[str]) -> Dict[str, bool]:
    """Each required string: does it occur in one of the agent's messages (case-insensitive, commas removed)?"""
    said = [t.lower().replace(",", "") for t in texts if t]
    return {info: any(info.lower().replace(",", "") in t for t in said) for info in required}


class CrmEpisode:
    """The episode state of one task; made by :meth:`CrmDomain.reset`."""

    def __init__(self, domain: "CrmDomain", task: Task, state: EpisodeState):
        self.domain = domain
        self.task = task
        self.state = state
        self.results: List[ToolResult] = []
        self.said: List[str] = []  # the agent's message texts, for the communicate check
        self.transferred = False

    def call_tool(self, name: str, arguments: Any) -> ToolResult:
        res = tools.call(self.state, name, arguments)
        self.results.append(res)
        if name == tools.TRANSFER_TOOL and not res.error:
            self.transferred = True
        return res

    def assistant_message(self, text: str, calls: Sequence[Tuple[str, Any]], malformed: int = 0,
                          first_call_malformed: bool = False) -> AssistantTurn:
        """Apply one agent message by the benchmark's rules (the module docstring)."""
        calls = list(calls)
        if malformed or (not calls and not (text or "").strip()):
            return AssistantTurn([], [], to_user=False, agent_stop=False, agent_error=True)
        if text:
            self.said.append(text)
        results, ran = [], []
        for i, (name, arguments) in enumerate(calls):
            results.append(self.call_tool(name, arguments))
            ran.append(i)
            if self.transferred:
                break
        return AssistantTurn(results, ran, to_user=not calls, agent_stop=self.transferred)

    def evaluate(self, termination: str, judge: Any = None,
                 messages: Optional[List[Dict[str, Any]]] = None) -> CrmOutcome:
        """The outcome (the module docstring); ``judge`` and ``messages`` are not needed here."""
        changed = sorted(f"{t}/{k}" for t, recs in self.state.changes().items() for k in recs)
        if termination not in PROPER_ENDINGS:
            return CrmOutcome(0.0, termination, changed=changed,
                              note=f"ended by {termination}, not by the customer or a transfer: scored 0")
        db_match = self.state.state_hash() == self.domain.gold_hash(self.task)
        comm = communicated(self.task.communicate_info, self.said)
        ok = db_match and all(comm.values())
        return CrmOutcome(1.0 if ok else 0.0, termination, db_match, comm, changed)
