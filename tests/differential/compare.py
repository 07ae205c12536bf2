"""Replay trajectories through tau2-bench's own code and through ours; count every difference.

Ours is the package's airline domain for tau2's versions: tau2's own toolkit, environment and evaluators run
by the tau2-native layer (copy-on-access databases, a cached gold end state, the state digest over the
records mutating calls looked up, the bounded ``calculate``, its own ``get_response`` path).  The reference
is tau2's code alone (:mod:`.tau2_reference`): ``get_response`` on a fresh ``get_environment`` and
``evaluate_simulation``.

After every tool call: the error flag, the observation text and the database hash
(:class:`.tau2_reference.DBDigest` over all records; records neither side touched
are the pristine ones, compared once in full), and our own digest's verdict over the
records it digests against the same digest over every record our episode copied
(the tau2 rule it relies on: only WRITE tools change the database).  After every
trajectory: the final database and the reward of tau2's own evaluator (DB and
COMMUNICATE; no NL assertions, they need an LLM) against ours, with the components
(DB match and every communicate check) that make it up, and how the run ended.

How a run ends is each side's own rule: tau2's code decides for its side (its client's
``ToolCall`` model, its orchestrator's ``AssistantMessage.validate``; see
:meth:`.tau2_reference.Tau2Reference.run`), our domain's ``assistant_message`` for ours (the
rollout ends the episode on ``agent_error``).  A message with a call whose arguments are not a
JSON object ends tau2's run (a failed sample, reward 0) and ours alike; every difference counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List

from differential.tau2_reference import DBDigest
from differential.trajectories import Generator, Trajectory

TABLES = ("flights", "users", "reservations")
KINDS = ("error", "text", "db", "final_db", "reward", "db_match", "communicate", "termination")


@dataclass
class Report:
    version: str
    trajectories: int = 0
    calls: int = 0
    refused: int = 0
    rewards_one: int = 0
    by_kind: Dict[str, int] = field(default_factory=dict)  # trajectories per trajectory kind
    ones_by_kind: Dict[str, int] = field(default_factory=dict)  # of those, with reward 1 from tau2's evaluator
    said_nothing_required: int = 0  # tasks whose communicate_info is empty
    ended_empty: int = 0  # trajectories tau2 ended at an empty message (agent_error; ours agreed unless noted)
    with_malformed: int = 0  # trajectories with a call whose arguments are not an object
    #: trajectories that ended at a malformed call (tau2's run fails there, reward 0; so does ours)
    ended_malformed: int = 0
    mismatches: Dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    examples: List[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_mismatches(self) -> int:
        return sum(self.mismatches.values())

    def line(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))
        miss = ", ".join(f"{k} {v}" for k, v in self.mismatches.items())
        return (f"{self.version}: {self.trajectories} trajectories ({kinds}), {self.calls} tool calls "
                f"({self.refused} refused), {self.rewards_one} with reward 1, {self.ended_empty} ended at an "
                f"empty message, {self.ended_malformed} at a malformed call ({self.with_malformed} trajectories "
                f"with one); mismatches: {miss} [{self.seconds:.0f}s]")

    def note(self, kind: str, text: str) -> None:
        self.mismatches[kind] += 1
        if len(self.examples) < 30:
            self.examples.append(f"{kind}: {text}")


def our_digest(ep, base: DBDigest) -> str:
    """The reference's digest of our episode's agent database: every record it copied, dumped."""
    db = ep.env.tools.db
    return base.with_changes({t: {k: dict.__getitem__(getattr(db, t), k).model_dump()
                                  for k in getattr(db, t).touched} for t in TABLES})


def run_ours(env, task, traj: Trajectory, pristine) -> Dict[str, Any]:
    """The trajectory through our domain, the way the rollout and eval apply messages: each message's
    text, its calls that can run, and how many are malformed; the episode ends where
    ``assistant_message`` says ``agent_error``."""
    ep = env.reset(task)
    calls: List[Dict[str, Any]] = []
    respond = ep._respond
    k = 0

    def traced(tc):
        content, error = respond(tc)
        calls.append({"name": tc.name, "content": content, "error": error, "db": our_digest(ep, pristine),
                      "message": k, "digest_agrees": ep.state_hashes() == env.state_hashes(ep.env)})
        return content, error

    ep._respond = traced
    termination, ended_at = traj.termination, None
    for k, m in enumerate(traj.messages):
        turn = ep.assistant_message(m.text or "", m.calls, malformed=len(m.malformed))
        if turn.agent_error:
            termination, ended_at = "agent_error", k
            break
    res = ep.evaluate(termination)
    return {"calls": calls, "reward": res.reward, "db_match": res.db_match, "communicate": res.communicate,
            "final_db": our_digest(ep, pristine), "termination": termination, "ended_at": ended_at}


def compare_version(version: str, data_dir: str, ref, n_mutated: int, seed: int) -> Report:
    from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv

    t0 = time.perf_counter()
    env = AirlineEnv(version, data_dir)
    report = Report(version)
    pristine = DBDigest(env.pristine.model_dump())
    if pristine.total != ref.digest.total:
        report.note("db", "the loaded databases differ before any call")
    gen = Generator(env.data.db, seed)
    for task in env.tasks("base"):
        plain = env.data.tasks[task.id]  # the trajectory generator reads the task's user
        for traj in gen.for_task(plain, n_mutated):
            theirs = ref.run(task.raw, [(m.text, m.calls, m.malformed) for m in traj.messages], traj.termination)
            ours = run_ours(env, task, traj, pristine)
            report.trajectories += 1
            report.by_kind[traj.kind] = report.by_kind.get(traj.kind, 0) + 1
            report.with_malformed += traj.has_malformed
            report.ended_empty += theirs["why"] == "empty"
            report.ended_malformed += theirs["why"] == "malformed"
            report.rewards_one += theirs["reward"] == 1.0
            report.ones_by_kind[traj.kind] = report.ones_by_kind.get(traj.kind, 0) + (theirs["reward"] == 1.0)
            where = f"{version} task {task.id} ({traj.kind})"
            _compare_calls(report, where, theirs, ours)
            if theirs["termination"] != ours["termination"]:
                report.note("termination", f"{where}: tau2 ended {theirs['termination']} (at message "
                                           f"{theirs['ended_at']}), ours {ours['termination']} "
                                           f"(at {ours['ended_at']})")
            if theirs["final_db"] != ours["final_db"]:
                report.note("final_db", f"{where}: final database differs")
            if theirs["reward"] != ours["reward"]:
                report.note("reward", f"{where}: tau2 reward {theirs['reward']}, ours {ours['reward']} "
                                      f"(termination {theirs['termination']})")
            if theirs["termination"] not in ("max_turns", "agent_error"):  # tau2 checks nothing after a premature end
                if theirs["db_match"] is not None and theirs["db_match"] != ours["db_match"]:
                    report.note("db_match", f"{where}: tau2 db_match {theirs['db_match']}, ours {ours['db_match']}")
                if (theirs["communicate"] or {}) != (ours["communicate"] or {}):
                    report.note("communicate", f"{where}: tau2 {theirs['communicate']}, ours {ours['communicate']}")
        report.said_nothing_required += not task.communicate_info
    if not ref.pristine_intact():
        report.note("db", "tau2's pristine database changed during the run")
    if DBDigest(env.pristine.model_dump()).total != pristine.total or not env.pristine_intact():
        report.note("db", "our shared base database changed during the run")
    report.seconds = time.perf_counter() - t0
    return report


def _compare_calls(report: Report, where: str, theirs: Dict[str, Any], ours: Dict[str, Any]) -> None:
    """After every call: error flag, observation text, database hash."""
    if len(theirs["calls"]) != len(ours["calls"]):
        report.note("error", f"{where}: {len(theirs['calls'])} calls ran in tau2, {len(ours['calls'])} here")
    for i, (t, o) in enumerate(zip(theirs["calls"], ours["calls"])):
        report.calls += 1
        report.refused += t["error"]
        call = f"{where} call {i} {t['name']}"
        if t["error"] != o["error"]:
            report.note("error", f"{call}: tau2 error={t['error']}, ours {o['error']}")
        if t["content"] != o["content"]:
            report.note("text", f"{call}:\n  tau2: {t['content'][:300]}\n  ours: {o['content'][:300]}")
        if t["db"] != o["db"]:
            report.note("db", f"{call}: database differs after the call")
        if not o["digest_agrees"]:
            report.note("db", f"{call}: our digest of the records mutating calls looked up is not the digest of "
                              f"every record the episode copied (a non-WRITE tool changed a record?)")
