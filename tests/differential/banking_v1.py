"""banking_knowledge: tau2-bench v1.0.1's own harness against this package, on the same scripted conversations.

Run under the Python that has tau2-bench >= 1.0 installed from source (``tests/test_banking_knowledge.py`` runs
it in a subprocess)::

    PYTHONPATH=tests <python3.12> -m differential.banking_v1 --mutants 3 --seed 0 --out report.json

**The reference** is tau2-bench's text harness for one task, as its batch runner calls it
(``runner/batch.py``: ``build_orchestrator`` then ``run_simulation(orchestrator, env_kwargs=_build_env_kwargs(
config, task))``): ``TextRunConfig(domain="banking_knowledge", retrieval_config=<config>)``,
``build_text_orchestrator`` (its environment from the registry with the task's env kwargs: the retrieval
configuration, the task, the read-log allowlist; its ``LLMAgent`` with ``environment.get_tools()``; its
``UserSimulator`` with ``get_user_tools(include=task.user_tools)``), its ``Orchestrator`` (200 steps, 10 errors,
or the script's budget), and ``evaluate_simulation`` (``EvaluationType.ALL``, strict replay).  Only the LLM is
replaced: ``generate`` in tau2's agent and user modules returns the script's next message.  A run that raises
(an empty agent message, arguments that are not an object) is recorded with where it failed: tau2-bench's batch
runner retries such a simulation and, failing again, records it as ``infrastructure_error`` (left out of its
metrics); this package ends the episode there as ``agent_error`` (reward 0).  Both must fail at the same message.
NL assertions (one task, task_102) need an LLM judge neither side has here: the reference's
``NLAssertionsEvaluator`` is replaced by one that finds every assertion met, and the comparison takes the DB
part of that task (ours: DB match and breakdown; its reward is NaN without a judge).

**Our side** runs the same script through the package's episode loop (``rollout.loop.run_conversation``, as
training and eval run it) over :class:`~openrlhf_mtgrpo.benchmarks.tau2_native.banking.BankingDomain`.

**Compared**, per run: the calls made (name, requestor), each call's content (KB_search's answer ends in a
``[Timing: ...]`` line of wall-clock times, taken off on both sides) and error flag, the database hash after
each call (tau2's ``get_db_hash``), how the run ended, its steps and failed calls, the reward, its breakdown,
the DB verdict, the action checks.  Prints one JSON report.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import sys
import time
from typing import Any, Dict, List, Optional

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from differential.banking_scripts import scripts_for  # noqa: E402
from differential.tau2_native_reference import ScriptError, play_script  # noqa: E402
from differential.tau2_native_scripts import Event, Script  # noqa: E402

AGENT_LLM, USER_LLM = "script-agent", "script-user"
KINDS = ("calls", "content", "error", "state", "termination", "steps", "reward", "breakdown", "db_match", "actions",
         "final_state")
_TIMING = re.compile(r"\n\n\[Timing: [^\]]*\]$")


def norm(content: Optional[str]) -> Optional[str]:
    return _TIMING.sub("", content) if isinstance(content, str) else content


def reference_run(task_model, script: Script, retrieval: str, max_steps: int, max_errors: int) -> Dict[str, Any]:
    import tau2.agent.llm_agent as agent_mod
    import tau2.evaluator.evaluator_nl_assertions as nl_mod
    import tau2.user.user_simulator as user_mod
    from tau2.data_model.message import AssistantMessage, ToolCall
    from tau2.data_model.simulation import RewardInfo, TextRunConfig
    from tau2.data_model.tasks import RewardType
    from tau2.runner.build import _build_env_kwargs, build_text_orchestrator
    from tau2.runner.simulation import run_simulation

    events = list(script.events)
    n = [0]

    def generate(model, messages, tools=None, tool_choice=None, **kwargs):
        if not events:
            raise ScriptError(f"{script.task_id} {script.kind}: {model} asked for a message after the script")
        ev: Event = events.pop(0)
        want = "agent" if model == AGENT_LLM else "user"
        if ev.role != want:
            raise ScriptError(f"{script.task_id} {script.kind}: {model} asked, the script has a {ev.role} message")
        calls = []
        for name, args in list(ev.calls) + list(ev.malformed):
            n[0] += 1
            calls.append(ToolCall(id=f"tc{n[0]}", name=name, arguments=copy.deepcopy(args)))
        return AssistantMessage(role="assistant", content=ev.text, tool_calls=calls or None, cost=0.0)

    class AllMet:  # no LLM judge here: every NL assertion met (the comparison takes such a task's DB part)
        @classmethod
        def calculate_reward(cls, task, full_trajectory, **kwargs):
            return RewardInfo(reward=1.0, reward_breakdown={RewardType.NL_ASSERTION: 1.0})

    config = TextRunConfig(domain="banking_knowledge", retrieval_config=retrieval, llm_agent=AGENT_LLM,
                           llm_user=USER_LLM, max_steps=max_steps, max_errors=max_errors)
    orch = build_text_orchestrator(config, task_model)
    env = orch.environment
    calls: List[Dict[str, Any]] = []
    original = env.get_response

    def recording(tc):
        msg = original(tc)
        calls.append({"name": tc.name, "requestor": tc.requestor, "content": norm(msg.content), "error": msg.error,
                      "state": env.get_db_hash()})
        return msg

    env.get_response = recording
    saved = agent_mod.generate, user_mod.generate, nl_mod.NLAssertionsEvaluator
    agent_mod.generate = user_mod.generate = generate
    import tau2.evaluator.evaluator as ev_mod

    saved_nl = ev_mod.NLAssertionsEvaluator
    ev_mod.NLAssertionsEvaluator = AllMet
    failed, sim = None, None
    try:
        sim = run_simulation(orch, env_kwargs=_build_env_kwargs(config, task_model) or None)
    except ScriptError:
        raise
    except Exception as e:  # noqa: BLE001 -- tau2's run fails: its batch runner retries, then infrastructure_error
        failed = f"{type(e).__name__}: {str(e)[:300]}"
    finally:
        agent_mod.generate, user_mod.generate, nl_mod.NLAssertionsEvaluator = saved
        ev_mod.NLAssertionsEvaluator = saved_nl
    out = {"calls": calls, "failed": failed, "steps": orch.step_count, "errors": orch.num_errors,
           "final_state": env.get_db_hash()}
    if sim is not None:
        info = sim.reward_info
        out.update(
            termination=str(getattr(sim.termination_reason, "value", sim.termination_reason)), reward=info.reward,
            breakdown={str(getattr(k, "value", k)): v for k, v in (info.reward_breakdown or {}).items()},
            db_match=info.db_check.db_match if info.db_check is not None else None,
            actions=[c.action_match for c in info.action_checks] if info.action_checks is not None else None)
    return out


def our_run(domain, task, script: Script, rules) -> Dict[str, Any]:
    ep, conv, states, res = play_script(domain, task, script, rules, domain.demo_calibration,
                                        lambda e: e.env.get_db_hash())
    calls = [{"name": r.name, "requestor": r.requestor, "content": norm(r.content), "error": r.error,
              "state": states[i]} for i, r in enumerate(ep.tool_results)]
    return {"calls": calls, "termination": conv.termination, "steps": conv.steps, "errors": conv.errors,
            "final_state": ep.env.get_db_hash(), "result": res}


def compare(domain, scripts, retrieval: str) -> Dict[str, Any]:
    report: Dict[str, Any] = {"runs": 0, "calls": 0, "failed_calls": 0, "by_kind": {}, "reward_one": {},
                              "terminations": {}, "run_failures": 0, "nl_tasks_db_only": 0,
                              "mismatches": {k: 0 for k in KINDS}, "examples": []}

    def note(kind, text):
        report["mismatches"][kind] += 1
        if len(report["examples"]) < 20:
            report["examples"].append(f"[{kind}] {text}")

    t0 = time.perf_counter()
    for task, script in scripts:
        rules = domain.run_rules if script.budget is None else domain.run_rules.override(budget=script.budget)
        theirs = reference_run(task.tau2, script, retrieval, rules.budget, rules.max_errors)
        ours = our_run(domain, task, script, rules)
        res = ours["result"]
        tag = f"{task.id} {script.kind}"
        report["runs"] += 1
        report["by_kind"][script.kind] = report["by_kind"].get(script.kind, 0) + 1
        tc, oc = theirs["calls"], ours["calls"]
        report["calls"] += len(tc)
        report["failed_calls"] += sum(c["error"] for c in tc)
        if [(c["name"], c["requestor"]) for c in tc] != [(c["name"], c["requestor"]) for c in oc]:
            note("calls", f"{tag}: tau2 {[(c['name'], c['requestor']) for c in tc]}, ours "
                          f"{[(c['name'], c['requestor']) for c in oc]}")
        for i, (a, b) in enumerate(zip(tc, oc)):
            if a["content"] != b["content"]:
                note("content", f"{tag} call {i} {a['name']}: {str(a['content'])[:160]!r} vs "
                                f"{str(b['content'])[:160]!r}")
            if a["error"] != b["error"]:
                note("error", f"{tag} call {i} {a['name']}: {a['error']} vs {b['error']}")
            if a["state"] != b["state"]:
                note("state", f"{tag} call {i} {a['name']}: the database hashes differ")
        if theirs["final_state"] != ours["final_state"]:
            note("final_state", f"{tag}: the end states differ")
        if theirs["failed"] is not None:
            # tau2's run raised at a message (empty, arguments not an object): ours must end there as agent_error
            report["run_failures"] += 1
            end = "run fails (tau2: retried, then infrastructure_error; ours: agent_error)"
            report["terminations"][end] = report["terminations"].get(end, 0) + 1
            if ours["termination"] != "agent_error":
                note("termination", f"{tag}: tau2's run failed ({theirs['failed']}), ours ended {ours['termination']}")
            if (theirs["steps"], theirs["errors"]) != (ours["steps"], ours["errors"]):
                note("steps", f"{tag}: tau2 failed at step {theirs['steps']} ({theirs['errors']} errors), ours "
                              f"{ours['steps']} ({ours['errors']})")
            continue
        report["terminations"][theirs["termination"]] = report["terminations"].get(theirs["termination"], 0) + 1
        if (ours["termination"] or "max_steps") != theirs["termination"]:
            note("termination", f"{tag}: tau2 {theirs['termination']}, ours {ours['termination']}")
        if (theirs["steps"], theirs["errors"]) != (ours["steps"], ours["errors"]):
            note("steps", f"{tag}: tau2 step {theirs['steps']} errors {theirs['errors']}, ours {ours['steps']} "
                          f"{ours['errors']}")
        nl = "NL_ASSERTION" in (task.reward_basis or []) and theirs["termination"] in ("user_stop", "agent_stop")
        if nl:
            report["nl_tasks_db_only"] += 1
            if theirs["breakdown"].get("DB") != res.breakdown.get("DB"):
                note("breakdown", f"{tag}: DB part tau2 {theirs['breakdown']}, ours {res.breakdown}")
            if not (isinstance(res.reward, float) and math.isnan(res.reward)):
                note("reward", f"{tag}: ours scored an NL task without a judge: {res.reward}")
        else:
            if theirs["reward"] != res.reward:
                note("reward", f"{tag}: tau2 {theirs['reward']}, ours {res.reward} ({res.note})")
            if theirs["breakdown"] != res.breakdown:
                note("breakdown", f"{tag}: tau2 {theirs['breakdown']}, ours {res.breakdown}")
        if theirs["reward"] == 1.0 and not nl:
            report["reward_one"][script.kind] = report["reward_one"].get(script.kind, 0) + 1
        if theirs["db_match"] is not None and theirs["db_match"] != res.db_match:
            note("db_match", f"{tag}: tau2 {theirs['db_match']}, ours {res.db_match}")
        if theirs["actions"] and theirs["actions"] != [a["matched"] for a in res.actions]:
            note("actions", f"{tag}: tau2 {theirs['actions']}, ours {[a['matched'] for a in res.actions]}")
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["total_mismatches"] = sum(report["mismatches"].values())
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--version", default="banking_knowledge")
    p.add_argument("--tasks", default="all", help="'all' or a comma-separated list of task ids")
    p.add_argument("--mutants", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    ns = p.parse_args(argv)
    from loguru import logger

    logger.remove()  # tau2's logging (the batch runner's console lines) is not wanted here
    from openrlhf_mtgrpo.benchmarks.tau2_native.banking import make_banking

    domain = make_banking(ns.version)
    tasks = domain.tasks("base") if ns.tasks == "all" else [domain.task(t) for t in ns.tasks.split(",")]
    scripts = scripts_for(domain, tasks, ns.mutants, ns.seed)
    report = compare(domain, scripts, domain.retrieval_config)
    report.update(version=domain.version, retrieval_config=domain.retrieval_config, identity=domain.identity,
                  tasks=len(tasks), seed=ns.seed, mutants_per_task=ns.mutants, python=sys.version.split()[0])
    text = json.dumps(report, indent=1, sort_keys=True)
    if ns.out:
        with open(ns.out, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
