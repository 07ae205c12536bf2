"""The outcome reward of a finished tau2-native episode, computed as tau2's ``evaluate_simulation`` would.

tau2's evaluator (``evaluator.py``, ``EvaluationType.ALL``): an episode that did not end by the customer or
the agent (``user_stop`` / ``agent_stop``) scores 0; a task without evaluation criteria scores 1; otherwise
the reward is the product of the parts the task's reward basis names:

* DB and ENV_ASSERTION (``EnvironmentEvaluator``): tau2 replays the trajectory on a fresh environment
  (the *predicted* state) and the gold actions on another (the *gold* state, built in normal mode even for a
  solo run, its actions called without ``sync_tools``, a failing one skipped), and compares both databases'
  hashes (agent's and customer's); the env assertions run on the predicted state.  Here the predicted
  state is the live episode (the same calls, in the same order, from the same initial state; the
  differential tests check this against tau2's full replay) and the gold state's hashes are cached per
  task.  When neither gold actions nor env assertions exist (``None``), tau2 scores 1 with a DB match.
  An assertion whose check raises (the agent's calls stored a value tau2's own assertion code cannot read,
  e.g. a string where telecom's APN settings belong: tau2's tools assign arguments unvalidated) is not met,
  with the error recorded; tau2's evaluator raises there, and its run records the simulation as failed.
* ACTION and COMMUNICATE: tau2's own ``ActionEvaluator`` and ``CommunicateEvaluator`` run on the episode's
  messages (every tool call of the agent and the customer, including failed ones and unknown names;
  the text of every agent message, the greeting and tool-calling messages included).
* NL_ASSERTION needs an LLM judge: without one the reward is NaN and the note says the assertions were not
  evaluated (never counted as passed).  tau2 refuses such a task under ``EvaluationType.ALL``.

The breakdown is tau2's ``reward_breakdown`` (only parts in the basis), keyed by the basis names.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional

from openrlhf_mtgrpo.envs.base import PROPER_ENDINGS

NLJudge = Callable[[List[str], List[Dict[str, Any]]], List[bool]]
DB, ENV_ASSERTION, ACTION, COMMUNICATE, NL_ASSERTION = "DB", "ENV_ASSERTION", "ACTION", "COMMUNICATE", "NL_ASSERTION"


@dataclass
class RewardResult:
    """A finished episode's reward and what it is made of.

    db_match: the gold and the predicted state are equal, both databases (None: not computed, because DB is
    not in the basis and it was not asked for); env_assertions: one record per env assertion (``met``);
    actions: one record per gold action (``matched``: some call of the episode matches it, tau2's
    ``compare_with_tool_call``); communicate: required information -> said."""

    reward: float
    termination: str
    reward_basis: List[str]
    breakdown: Dict[str, float] = field(default_factory=dict)
    db_match: Optional[bool] = None
    env_assertions: List[Dict[str, Any]] = field(default_factory=list)
    actions: List[Dict[str, Any]] = field(default_factory=list)
    communicate: Dict[str, bool] = field(default_factory=dict)
    nl_assertions: List[str] = field(default_factory=list)
    nl_evaluated: bool = False
    nl_results: Optional[List[bool]] = None
    note: str = ""

    @property
    def success(self) -> bool:
        return not math.isnan(self.reward) and self.reward >= 1.0 - 1e-6

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["success"] = self.success
        return d


def evaluate_episode(ep: Any, termination: str, judge: Optional[NLJudge] = None,
                     messages: Optional[List[Dict[str, Any]]] = None, check_db: bool = False) -> RewardResult:
    """Score episode ``ep`` (a :class:`~.episode.Tau2NativeEpisode`) ended by ``termination``."""
    task = ep.task
    basis = list(task.reward_basis)
    nl = list(task.nl_assertions)
    if termination not in PROPER_ENDINGS:
        return RewardResult(0.0, termination, basis, nl_assertions=nl,
                            note=f"terminated prematurely: {termination} (tau2 scores 0)")
    crit = task.tau2.evaluation_criteria
    if crit is None:
        return RewardResult(1.0, termination, basis, note="no evaluation criteria (tau2 scores 1)")
    t = ep.domain.t
    trajectory = ep.tau2_messages()
    in_basis = set(basis)

    # -- EnvironmentEvaluator's part, on the live state and the cached gold state
    db_match: Optional[bool] = None
    env_reward, env_breakdown, checks = 1.0, {}, []
    if crit.actions is None and crit.env_assertions is None:
        db_match = True
    else:
        if DB in in_basis or check_db:
            db_match = ep.domain.gold_state(task) == ep.state_hashes()
        for a in crit.env_assertions or []:
            try:
                met, error = ep.env.run_env_assertion(a, raise_assertion_error=False), None
            except Exception as e:  # noqa: BLE001 -- see the module's notes: not met, where tau2's evaluator raises
                met, error = False, f"{type(e).__name__}: {e}"
            check = {"env_type": a.env_type, "func_name": a.func_name, "arguments": dict(a.arguments),
                     "assert_value": a.assert_value, "met": bool(met)}
            if error is not None:
                check["error"] = error
            checks.append(check)
        if DB in in_basis:
            env_breakdown[DB] = 1.0 if db_match else 0.0
            env_reward *= env_breakdown[DB]
        if ENV_ASSERTION in in_basis:
            env_breakdown[ENV_ASSERTION] = 1.0 if all(c["met"] for c in checks) else 0.0
            env_reward *= env_breakdown[ENV_ASSERTION]

    # -- tau2's own action and communicate evaluators on the episode's messages
    action_info = t.action_evaluator.ActionEvaluator.calculate_reward(task=task.tau2, full_trajectory=trajectory)
    comm_info = t.communicate_evaluator.CommunicateEvaluator.calculate_reward(task=task.tau2,
                                                                             full_trajectory=trajectory)
    actions = [{"action_id": c.action.action_id, "name": c.action.name, "requestor": c.action.requestor,
                "matched": bool(c.action_match)} for c in (action_info.action_checks or [])]
    communicate = {c.info: bool(c.met) for c in (comm_info.communicate_checks or [])}

    nl_results = judge(nl, messages or []) if (judge is not None and nl) else None
    reward, breakdown, note = 1.0, {}, ""
    if in_basis & {DB, ENV_ASSERTION}:
        breakdown.update(env_breakdown)
        reward *= env_reward
    if ACTION in in_basis:
        breakdown.update({_name(k): v for k, v in (action_info.reward_breakdown or {}).items()})
        reward *= action_info.reward
    if NL_ASSERTION in in_basis:
        if nl_results is None:
            reward = float("nan")
            note = "NL_ASSERTION in the reward basis: not evaluated (no judge); reward is not final"
        else:
            breakdown[NL_ASSERTION] = 1.0 if all(nl_results) else 0.0
            reward *= breakdown[NL_ASSERTION]
    if COMMUNICATE in in_basis:
        breakdown.update({_name(k): v for k, v in (comm_info.reward_breakdown or {}).items()})
        reward *= comm_info.reward
    return RewardResult(reward, termination, basis, breakdown, db_match, checks, actions, communicate, nl,
                        nl_results is not None, nl_results, note)


def _name(key: Any) -> str:
    return str(getattr(key, "value", key))
