"""Episodes end where the benchmark's own run ends them (issue #22): tau2's error limit and step budget, in eval
and in training, and tau-bench's 30 actions.  The expected endings and steps are computed by hand from the
rules (docs/rollout.md, "Run rules"); tests/test_run_rules_differential.py compares with the benchmarks' own
loops."""

import json
import os

import pytest

from openrlhf_mtgrpo.cli import main as cli
from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.envs.base import RunRules
from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_policy_responder
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer

BAD_ID = "ZZZZZZ"  # no reservation has this id: get_reservation_details fails (a real tool error)


def failing_first(env, n_failing: int):
    """A policy endpoint that makes ``n_failing`` failing tool calls (one a message) and then plays the gold
    actions as the scripted policy does."""
    gold = make_scripted_policy_responder(env)

    def respond(req):
        made = sum(1 for m in req["messages"] if m["role"] == "assistant" for tc in m.get("tool_calls") or []
                   if BAD_ID in tc["function"]["arguments"])
        if made < n_failing:
            return {"content": "", "tool_calls": [{"name": "get_reservation_details",
                                                   "arguments": {"reservation_id": BAD_ID}}]}
        return gold(req)

    return respond


def eval_run(env, data_dir, out, n_failing, *extra):
    with LocalChatServer(failing_first(env, n_failing)) as pol, LocalChatServer(make_rule_based_user(env)) as usr:
        rc = cli(["eval", "--policy-base-url", pol.base_url, "--policy-model", "stub", "--user-base-url",
                  usr.base_url, "--user-model", "rule", "--trials", "1", "--split", "test", "--concurrency", "4",
                  "--out", str(out), "--data-dir", data_dir, "--no-progress", "--retries", "1", "--timeout", "10",
                  "--no-enable-thinking", *extra])
    with open(os.path.join(out, "results.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "results.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    return rc, summary, lines


@pytest.mark.slow
def test_ten_failing_calls_end_every_episode_at_the_error_limit(data_dir, tmp_path, capsys):
    """tau2-bench's run ends at its 10th failed tool call (TOO_MANY_ERRORS, reward 0); the 9th leaves the episode
    as it would be without failures."""
    env = AirlineEnv("tau2", data_dir)
    rc0, base, _ = eval_run(env, data_dir, tmp_path / "none", 0)
    capsys.readouterr()
    rc9, nine, lines9 = eval_run(env, data_dir, tmp_path / "nine", 9)
    capsys.readouterr()
    rc10, ten, lines10 = eval_run(env, data_dir, tmp_path / "ten", 10)
    out10 = capsys.readouterr().out
    assert rc0 == rc9 == rc10 == 0
    # with 10: every one of the 20 test tasks ends at the error limit after its 10th response (step 21: the
    # customer's opening, then 10 x (call, response)), scored 0
    assert ten["pass_k"]["1"]["value"] == 0.0 and ten["endings"] == {"too_many_errors": 20}
    assert {(r["termination"], r["reward"]) for r in lines10} == {("too_many_errors", 0.0)}
    assert "endings of the scored episodes: too_many_errors 20" in out10
    assert "policy failures scored 0: too_many_errors 20" in out10
    # with 9: the same successes as without failing calls
    assert nine["successes_per_task"] == base["successes_per_task"]
    assert nine["pass_k"]["1"]["value"] == base["pass_k"]["1"]["value"] > 0.5
    assert all(r["termination"] != "too_many_errors" for r in lines9)
    assert ten["identity"]["run_rules"]["max_errors"] == 10 and ten["identity"]["run_rules"]["benchmark_defaults"]


@pytest.mark.slow
def test_other_limits_are_recorded_and_flagged(data_dir, tmp_path, capsys):
    env = AirlineEnv("tau2", data_dir)
    rc, summary, lines = eval_run(env, data_dir, tmp_path / "e", 10, "--max-errors", "11", "--max-steps", "300")
    out = capsys.readouterr().out
    assert rc == 0 and summary["run_rules"]["max_errors"] == 11 and summary["run_rules"]["budget"] == 300
    assert summary["run_rules"]["benchmark_defaults"] is False
    assert "NOT RUN BY THE BENCHMARK'S RULES" in out and "not comparable" in out
    assert all(r["termination"] != "too_many_errors" for r in lines)
    # the same folder with the benchmark's rules is another run: refused, not mixed
    rc2 = cli(["eval", "--policy-base-url", "http://127.0.0.1:9/v1", "--policy-model", "stub", "--user-base-url",
               "http://127.0.0.1:9/v1", "--user-model", "rule", "--trials", "1", "--split", "test",
               "--out", str(tmp_path / "e"), "--data-dir", data_dir, "--no-progress", "--no-enable-thinking"])
    assert rc2 == 2 and "run_rules" in capsys.readouterr().err


def test_rules_of_each_version(require_version):
    """Each version's rules as its benchmark's code has them (the defaults of the code that version belongs to)."""
    tau2 = AirlineEnv("tau2-2025", require_version("tau2-2025")).run_rules
    assert (tau2.budget, tau2.unit, tau2.max_errors, tau2.opening_can_stop) == (200, "orchestrator_steps", 10, True)
    assert tau2.stop_signals == ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")
    assert tau2.agent_greeting == "Hi! How can I help you today?" and tau2.benchmark_defaults
    tau1 = AirlineEnv("tau1", require_version("tau1")).run_rules
    assert (tau1.budget, tau1.unit, tau1.max_errors, tau1.opening_can_stop) == (30, "agent_actions", None, False)
    assert tau1.stop_signals == ("###STOP###",) and tau1.agent_greeting is None


def test_overridden_rules_say_so():
    rules = RunRules(budget=200, unit="orchestrator_steps", max_errors=10, stop_signals=("###STOP###",))
    assert rules.override() is rules and rules.override(budget=200) is rules
    other = rules.override(budget=60, max_errors=None)
    assert (other.budget, other.max_errors, other.benchmark_defaults) == (60, None, False)
    assert dict(other.changed) == {"budget": "200 -> 60 orchestrator_steps", "max_errors": "10 -> None"}
    assert "NOT the benchmark's defaults" in other.describe()
    with pytest.raises(ValueError, match="positive"):
        rules.override(budget=0)


# ---------------------------------------------------------------- training: the same rules


def _train(env, data, tmp_path, texts, user, **over):
    from rollout_helpers import ScriptedEngine, build_toy_tokenizer, make_executor, read_log, run

    tok = build_toy_tokenizer(data_dir=data, version=env.version)
    task = env.tasks("base")[0]
    with LocalChatServer(user(task.id)) as srv:
        out = run(make_executor(data, srv.base_url, tmp_path, tau_version=env.version, **over),
                  ScriptedEngine(tok, env, script={task.id: texts}), task.id)
    return out, read_log(tmp_path)[0]


def _call(name, **args):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


def _talker(first="Hello, I need help.", then="Please go on.", stop_at=None):
    """A customer that answers every agent message, and stops at its ``stop_at``-th reply (1: the opening);
    its opening names the task for the scripted policy."""

    def make(task_id):
        n = {"replies": 0}

        def respond(req):
            n["replies"] += 1
            if stop_at is not None and n["replies"] >= stop_at:
                return {"content": "Thanks. ###STOP###"}
            return {"content": f"(ref: task-{task_id}) {first}" if n["replies"] == 1 else then}

        return respond

    return make


def test_training_ends_at_the_tenth_failing_call(tau2_family, tmp_path):
    env = AirlineEnv(*tau2_family)
    bad = _call("get_reservation_details", reservation_id=BAD_ID)
    out, log = _train(env, tau2_family[1], tmp_path, [bad] * 12, _talker())
    assert log["termination"] == "too_many_errors" and out["reward"] == 0.0
    assert len(log["turns"]) == 10 and log["steps"] == 21 and log["errors"] == 10
    assert out["extra_logs"]["mtgrpo_too_many_errors"] == 1.0
    # two failing calls in one message cross the limit together: 4 x 2 failures, then 2 more in the fifth
    out, log = _train(env, tau2_family[1], tmp_path / "b", [bad + "\n" + bad] * 6, _talker())
    assert log["termination"] == "too_many_errors" and len(log["turns"]) == 5 and log["errors"] == 10


def test_training_stop_at_the_budget_is_max_steps(tau2_family, tmp_path):
    """tau2 checks the budget after the step that set USER_STOP: the customer's stop at step == max_steps is
    max_steps (reward 0); one step earlier it is a user stop."""
    env = AirlineEnv(*tau2_family)
    # steps: opening 1, agent 2, reply 3 (stop) -> with a budget of 3: max_steps; of 4: user_stop
    for budget, ending in ((3, "max_steps"), (4, "user_stop")):
        out, log = _train(env, tau2_family[1], tmp_path / str(budget), ["Could you tell me more?"] * 3,
                          _talker(stop_at=2), max_steps=budget)
        assert (log["termination"], log["steps"]) == (ending, 3), budget


def test_tau1_gives_the_agent_thirty_actions(require_version, tmp_path):
    """tau-bench's loop runs 30 agent actions: a customer's stop after the 30th still ends the episode; an episode
    not done after 30 keeps reward 0 (max_steps).  Its customer's opening is never read for a stop."""
    data = require_version("tau1")
    env = AirlineEnv("tau1", data)
    talk = "Could you tell me more?"
    # the customer stops at its 31st message = the reply to the 30th action
    out, log = _train(env, data, tmp_path / "a", [talk] * 40, _talker(stop_at=31))
    assert log["termination"] == "user_stop" and log["steps"] == 30 and len(log["turns"]) == 30
    out, log = _train(env, data, tmp_path / "b", [talk] * 40, _talker(stop_at=32))
    assert log["termination"] == "max_steps" and log["steps"] == 30 and out["reward"] == 0.0
    # a stop in the opening is not read: the agent acts, and the customer's next stop ends it
    out, log = _train(env, data, tmp_path / "c", [talk] * 3, _talker(first="###STOP###", stop_at=3))
    assert log["termination"] == "user_stop" and len(log["turns"]) == 2
    # tau-bench ends only on ###STOP###
    out, log = _train(env, data, tmp_path / "d", [talk] * 3, _talker(then="###TRANSFER###", stop_at=4))
    assert log["termination"] == "user_stop" and len(log["turns"]) == 3
