"""Replay trajectories through tau2-bench's own code and through ours; count every difference.

After every tool call: the error flag, the observation text and the database hash
(:class:`.tau2_reference.DBDigest` over all records; records neither side touched
are the pristine ones, compared once in full).  After every trajectory: the final
database and the reward of tau2's own evaluator (DB and COMMUNICATE; no NL
assertions, they need an LLM) against ours, with the components (DB match and
every communicate check) that make it up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List

from differential.tau2_reference import DBDigest
from differential.trajectories import Generator, Trajectory

TABLES = ("flights", "users", "reservations")
KINDS = ("error", "text", "db", "final_db", "reward", "db_match", "communicate")


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
                f"({self.refused} refused), {self.rewards_one} with reward 1; mismatches: {miss} "
                f"[{self.seconds:.0f}s]")

    def note(self, kind: str, text: str) -> None:
        self.mismatches[kind] += 1
        if len(self.examples) < 30:
            self.examples.append(f"{kind}: {text}")


def our_digest(ep, base: DBDigest) -> str:
    return base.with_changes({t: ep.db.written(t) for t in TABLES})


def run_ours(env, task, traj: Trajectory, pristine) -> Dict[str, Any]:
    """The trajectory through our environment, the way the rollout and eval apply messages."""
    ep = env.reset(task)
    calls: List[Dict[str, Any]] = []
    call_tool = ep.call_tool

    def traced(name, arguments):
        res = call_tool(name, arguments)
        calls.append({"name": name, "content": res.content, "error": res.error, "db": our_digest(ep, pristine)})
        return res

    ep.call_tool = traced
    for m in traj.messages:
        ep.assistant_message(m.text or "", m.calls)
    res = ep.evaluate(traj.termination)
    return {"calls": calls, "reward": res.reward, "db_match": res.db_match, "communicate": res.communicate,
            "final_db": our_digest(ep, pristine), "termination": traj.termination}


def compare_version(version: str, data_dir: str, ref, n_mutated: int, seed: int) -> Report:
    from openrlhf_mtgrpo.envs.airline import AirlineEnv

    t0 = time.perf_counter()
    env = AirlineEnv(version, data_dir)
    report = Report(version)
    pristine = DBDigest(env.data.db)
    if pristine.total != ref.digest.total:
        report.note("db", "the loaded databases differ before any call")
    gen = Generator(env.data.db, seed)
    for task in env.tasks("base"):
        for traj in gen.for_task(task, n_mutated):
            theirs = ref.run(task.raw, [(m.text, m.calls) for m in traj.messages], traj.termination)
            ours = run_ours(env, task, traj, pristine)
            report.trajectories += 1
            report.by_kind[traj.kind] = report.by_kind.get(traj.kind, 0) + 1
            where = f"{version} task {task.id} ({traj.kind})"
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
            if theirs["final_db"] != ours["final_db"]:
                report.note("final_db", f"{where}: final database differs")
            if theirs["reward"] != ours["reward"]:
                report.note("reward", f"{where}: tau2 reward {theirs['reward']}, ours {ours['reward']} "
                                      f"(termination {traj.termination})")
            if traj.termination != "max_turns":  # tau2 checks nothing after a premature end
                if theirs["db_match"] is not None and theirs["db_match"] != ours["db_match"]:
                    report.note("db_match", f"{where}: tau2 db_match {theirs['db_match']}, ours {ours['db_match']}")
                if (theirs["communicate"] or {}) != (ours["communicate"] or {}):
                    report.note("communicate", f"{where}: tau2 {theirs['communicate']}, ours {ours['communicate']}")
            report.rewards_one += theirs["reward"] == 1.0
            report.ones_by_kind[traj.kind] = report.ones_by_kind.get(traj.kind, 0) + (theirs["reward"] == 1.0)
        report.said_nothing_required += not task.communicate_info
    if not ref.pristine_intact():
        report.note("db", "tau2's pristine database changed during the run")
    if DBDigest(env.data.db).total != pristine.total:
        report.note("db", "our shared base database changed during the run")
    report.seconds = time.perf_counter() - t0
    return report
