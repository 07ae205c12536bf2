"""tau1's outcome reward for one finished episode (tau2's versions use tau2's own evaluators).

DB: replay the task's gold actions on a fresh database and compare final-state hashes.  outputs: every
required string must occur in a reply to the customer (case-insensitive, commas removed from the message).
An episode that did not end by the agent or the user (the action budget, the length budget) scores 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

PROPER_ENDINGS = ("user_stop", "agent_stop")


@dataclass
class RewardResult:
    reward: float
    db_match: bool
    communicate: Dict[str, bool]
    reward_basis: List[str]
    termination: str
    nl_assertions: List[str] = field(default_factory=list)
    nl_evaluated: bool = False
    nl_results: Optional[List[bool]] = None
    note: str = ""

    @property
    def success(self) -> bool:
        return self.reward >= 1.0 - 1e-6

    def to_dict(self):
        d = asdict(self)
        d["success"] = self.success
        return d


def communicated(required: Sequence[str], assistant_texts: Sequence[str]) -> Dict[str, bool]:
    texts = [t.lower().replace(",", "") for t in assistant_texts if t]
    return {info: any(info.lower() in t for t in texts) for info in required}


NLJudge = Callable[[List[str], List[Dict]], List[bool]]


def evaluate_episode(episode, termination: str, judge: Optional[NLJudge] = None,
                     messages: Optional[List[Dict]] = None) -> RewardResult:
    task = episode.task
    basis = list(task.reward_basis)
    nl = list(task.nl_assertions)
    nl_results = judge(nl, messages or []) if (judge is not None and nl) else None
    if termination not in PROPER_ENDINGS:
        return RewardResult(0.0, False, {}, basis, termination, nl, nl_results is not None, nl_results,
                            note=f"terminated prematurely: {termination}")
    db_match = episode.state_hash() == episode.env.gold_hash(task)
    comm = communicated(task.communicate_info, episode.assistant_texts)
    reward = 1.0
    if "DB" in basis:
        reward *= 1.0 if db_match else 0.0
    if {"COMMUNICATE", "OUTPUTS"} & set(basis):
        reward *= 1.0 if all(comm.values()) else 0.0
    note = ""
    if "NL_ASSERTION" in basis:
        if nl_results is None:
            note = "NL_ASSERTION in reward basis but no judge: reward is not final"
            reward = float("nan")
        else:
            reward *= 1.0 if all(nl_results) else 0.0
    return RewardResult(reward, db_match, comm, basis, termination, nl, nl_results is not None, nl_results, note)
