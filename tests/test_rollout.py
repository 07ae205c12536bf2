"""The real executor with a scripted engine, a toy Qwen-style tokenizer and a real local HTTP user simulator."""

import asyncio
import json

import pytest
import torch

from rollout_helpers import (AirlineEnv, LocalChatServer, Params, ScriptedEngine, build_toy_tokenizer,
                             make_executor, make_rule_based_user, read_log, run)

WRITE_TASK = "7"  # update_reservation_flights + communicated info


@pytest.fixture(scope="module")
def data_dir(tau2_family):  # this module's tests hold for either tau2 task version (tau2 where available)
    return tau2_family[1]


@pytest.fixture(scope="module")
def env(tau2_family):
    return AirlineEnv(*tau2_family)


@pytest.fixture(scope="module")
def tok(data_dir, env):
    return build_toy_tokenizer(data_dir=data_dir, version=env.version)


@pytest.fixture
def user_server(env):
    with LocalChatServer(make_rule_based_user(env)) as srv:
        yield srv


def test_gold_episode_is_token_exact_and_scores_one(env, tok, user_server, tmp_path, data_dir):
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version)
    engine = ScriptedEngine(tok, env)
    out = run(ex, engine, WRITE_TASK)
    assert out["reward"] == 1.0
    log = read_log(tmp_path)
    assert len(log) == 1 and log[0]["outcome"]["db_match"] and log[0]["termination"] == "user_stop"
    tokens = out["observation_tokens"]
    # the whole sequence is the template's rendering of the conversation ...
    rendered = tok.apply_chat_template(log[0]["messages"], tools=env.tool_schemas(), tokenize=False,
                                       add_generation_prompt=False)
    assert rendered.endswith("<|im_end|>\n")
    assert tokens == tok(rendered[:-1], add_special_tokens=False)["input_ids"]
    # ... and every action range holds exactly what the engine generated (content + <|im_end|>)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    assert len(out["action_ranges"]) == len(log[0]["turns"]) == engine.calls
    for (s, e), turn in zip(out["action_ranges"], log[0]["turns"]):
        assert tokens[e - 1] == eos
        assert tokens[s:e - 1] == tok(turn["text"], add_special_tokens=False)["input_ids"]
    # tokens between turns are never inside a range
    covered = {i for s, e in out["action_ranges"] for i in range(s, e)}
    assert all(i not in covered for i in range(out["action_ranges"][0][0]))
    info = out["sample_info"]
    assert info["mtgrpo_num_turns"] == len(out["action_ranges"])
    assert info["mtgrpo_turn_spans"] == [x for r in out["action_ranges"] for x in r]
    assert max(info["mtgrpo_turn_rewards"]) == 1.0  # the gold tool call


def scripted(env, tok, texts, task=WRITE_TASK):
    return ScriptedEngine(tok, env, script={task: texts})


def test_an_unreadable_call_block_goes_to_the_customer_and_is_logged(env, tok, user_server, tmp_path, data_dir):
    """vLLM 0.29.0's hermes parser returns a message with a block it cannot read as content: no call runs, the
    customer gets the text, and the rollout log says which block was rejected and why."""
    # 3 steps: the customer's opening, the message, the customer's reply (then the budget ends it)
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version, max_steps=3)
    text = '<tool_call>\n{"name": "get_user_details", "arguments": {"user_id": \n</tool_call>'
    run(ex, scripted(env, tok, [text]), WRITE_TASK)
    turn = read_log(tmp_path)[0]["turns"][0]
    assert turn["tool_calls"] == [] and turn["parse_errors"] == []
    assert len(turn["rejected_calls"]) == 1 and turn["rejected_calls"][0].startswith("call 0:")
    assert turn["answer"] == text.strip()


def test_a_call_whose_arguments_are_not_an_object_ends_the_episode(env, tok, user_server, tmp_path, data_dir):
    """vLLM 0.29.0 returns such a call (arguments a JSON string), and tau2's run fails at it (its ToolCall model
    wants an object): the episode ends as agent_error, reward 0, with no call of the message run."""
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version)
    texts = ['<tool_call>\n{"name": "get_user_details", "arguments": "{\\"user_id\\": 1}"}\n</tool_call>\n'
             '<tool_call>\n{"name": "get_reservation_details", "arguments": {"reservation_id": "XEHM4B"}}\n'
             '</tool_call>']
    out = run(ex, scripted(env, tok, texts), WRITE_TASK)
    log = read_log(tmp_path)[0]
    assert log["termination"] == "agent_error" and out["reward"] == 0.0 and len(log["turns"]) == 1
    assert log["turns"][0]["parse_errors"] == ["Error: tool call arguments are not a JSON object"]
    assert log["turns"][0]["tool_calls"] == [] and log["turns"][0]["features"]["tool_error"] == 1.0


def test_unknown_and_badly_typed_calls_become_error_observations(env, tok, user_server, tmp_path, data_dir):
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version)
    texts = ['<tool_call>\n{"name": "teleport", "arguments": {}}\n</tool_call>',
             '<tool_call>\n{"name": "get_reservation_details", "arguments": {"reservation_id": 123}}\n</tool_call>',
             '<tool_call>\n{"name": "update_reservation_baggages", "arguments": {"reservation_id": "XEHM4B"}}\n'
             '</tool_call>',
             "Done. Is there anything else I can help you with?"]
    out = run(ex, scripted(env, tok, texts), WRITE_TASK)
    turns = read_log(tmp_path)[0]["turns"]
    assert len(turns) == 4 and read_log(tmp_path)[0]["termination"] == "user_stop"
    assert turns[0]["tool_calls"][0]["content"] == "Error: Tool 'teleport' not found."
    assert turns[1]["tool_calls"][0]["content"] == "Error: Reservation 123 not found"
    assert "missing 3 required positional arguments" in turns[2]["tool_calls"][0]["content"]
    assert [t["features"]["tool_error"] for t in turns[:3]] == [1.0] * 3
    assert turns[2]["features"]["schema_invalid"] == 1.0
    text = tok.decode(out["observation_tokens"])
    assert "Error: Tool 'teleport' not found." in text  # the policy sees the error and can recover
    assert out["reward"] == 0.0  # the gold write never happened


def test_user_simulator_500s_are_retried(env, tok, tmp_path, data_dir):
    with LocalChatServer(make_rule_based_user(env), faults=[500, 500]) as srv:
        ex = make_executor(data_dir, srv.base_url, tmp_path, user_max_retries=2, tau_version=env.version)
        out = run(ex, ScriptedEngine(tok, env), WRITE_TASK)
    assert out["reward"] == 1.0 and out["extra_logs"]["mtgrpo_infra_failed"] == 0.0


@pytest.mark.parametrize("faults", [[500] * 3, [("sleep", 3.0)] * 3], ids=["http500", "timeout"])
def test_dead_user_simulator_marks_infrastructure_failure(env, tok, tmp_path, data_dir, faults):
    with LocalChatServer(make_rule_based_user(env), faults=faults) as srv:
        ex = make_executor(data_dir, srv.base_url, tmp_path, user_max_retries=2, user_timeout=1.0, tau_version=env.version)
        out = run(ex, ScriptedEngine(tok, env), WRITE_TASK)
    log = read_log(tmp_path)[0]
    assert log["infra_failed"] and log["termination"] == "infrastructure_error"
    assert "failed after 3 attempts" in log["infra_error"]
    assert log["infra_cause"] == ("server_error" if faults[0] == 500 else "timeout")
    assert out["sample_info"]["mtgrpo_excluded"] is True and out["reward"] == 0.0
    assert out["observation_tokens"] and out["action_ranges"] == []


def test_unreachable_endpoint_is_infrastructure_failure(env, tok, tmp_path, data_dir):
    ex = make_executor(data_dir, "http://127.0.0.1:9/v1", tmp_path, user_max_retries=1, tau_version=env.version)
    out = run(ex, ScriptedEngine(tok, env), WRITE_TASK)
    assert out["extra_logs"]["mtgrpo_infra_failed"] == 1.0
    assert "Connection" in read_log(tmp_path)[0]["infra_error"] or "connect" in read_log(tmp_path)[0]["infra_error"]
    assert read_log(tmp_path)[0]["infra_cause"] == "unreachable"


def test_missing_user_endpoint_is_a_clear_error(env, tok, tmp_path, data_dir):
    ex = make_executor(data_dir, None, tmp_path, tau_version=env.version)
    with pytest.raises(ValueError, match="--mtgrpo.user_base_url"):
        run(ex, ScriptedEngine(tok, env), WRITE_TASK)


def test_length_budget_exhausted_mid_turn(env, tok, user_server, tmp_path, data_dir):
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version)
    first = run(ex, ScriptedEngine(tok, env), WRITE_TASK)
    prompt_len = first["action_ranges"][0][0]
    out = run(make_executor(data_dir, user_server.base_url, tmp_path / "b", tau_version=env.version), ScriptedEngine(tok, env), WRITE_TASK,
              max_length=prompt_len + 5)
    assert out["truncated"] is True and out["reward"] == 0.0
    assert out["action_ranges"] == [(prompt_len, prompt_len + 5)] and len(out["observation_tokens"]) == prompt_len + 5
    assert read_log(tmp_path / "b")[0]["termination"] == "length_budget"


def test_prompt_longer_than_the_budget_is_a_clear_error_not_a_truncation(env, tok, user_server, tmp_path,
                                                                          data_dir):
    from openrlhf_mtgrpo.rollout.episode import PromptTooLong

    first = run(make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version), ScriptedEngine(tok, env), WRITE_TASK)
    prompt_len = first["action_ranges"][0][0]
    with pytest.raises(PromptTooLong, match=rf"is {prompt_len} tokens.*budget of {prompt_len} tokens.*--data.max_len"):
        run(make_executor(data_dir, user_server.base_url, tmp_path / "b", tau_version=env.version), ScriptedEngine(tok, env), WRITE_TASK,
            max_length=prompt_len)
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").iterdir())  # nothing logged as an episode


def test_step_budget(env, tok, user_server, tmp_path, data_dir):
    """tau2 counts steps: the customer's opening (1), the first call (2) and its response (3), the second call
    (4) and its response (5): the check after step 5 ends the run at a budget of 4, reward 0."""
    ex = make_executor(data_dir, user_server.base_url, tmp_path, max_steps=4, tau_version=env.version)
    out = run(ex, ScriptedEngine(tok, env), WRITE_TASK)
    log = read_log(tmp_path)[0]
    assert log["termination"] == "max_steps" and log["steps"] == 5 and len(log["turns"]) == 2
    assert out["reward"] == 0.0 and out["extra_logs"]["mtgrpo_max_steps_hit"] == 1.0
    assert log["run_rules"]["budget"] == 4 and log["run_rules"]["benchmark_defaults"] is False
    assert [t["steps"] for t in log["turns"]] == [3, 5]


def test_the_agents_stop_text_goes_to_the_customer(env, tok, tmp_path, data_dir):
    """tau2's agent never ends a conversation by text (LLMAgent has no is_stop): ###STOP### is a message to the
    customer, whose reply continues it."""
    replies = iter(["Hello. (ref: task-7) I want to change my flight.", "What do you mean?", "Bye. ###STOP###"])
    with LocalChatServer(lambda req: {"content": next(replies)}) as srv:
        ex = make_executor(data_dir, srv.base_url, tmp_path, tau_version=env.version)
        run(ex, scripted(env, tok, ["I am done. ###STOP###", "Goodbye."]), WRITE_TASK)
    log = read_log(tmp_path)[0]
    assert log["termination"] == "user_stop" and len(log["turns"]) == 2 and log["steps"] == 5


@pytest.mark.parametrize("signal", ["###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###"])
def test_stop_signals_end_the_conversation(env, tok, tmp_path, data_dir, signal):
    replies = iter(["Hello. (ref: task-7) I want to change my flight.", f"Thanks. {signal}"])
    with LocalChatServer(lambda req: {"content": next(replies)}) as srv:
        ex = make_executor(data_dir, srv.base_url, tmp_path, tau_version=env.version)
        run(ex, scripted(env, tok, ["Could you tell me more?", "unused"]), WRITE_TASK)
    log = read_log(tmp_path)[0]
    assert log["termination"] == "user_stop" and len(log["turns"]) == 1


def test_logprobs_aligned_when_requested(env, tok, user_server, tmp_path, data_dir):
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version)
    out = run(ex, ScriptedEngine(tok, env), WRITE_TASK, params=Params(logprobs=1))
    assert len(out["rollout_log_probs"]) == len(out["observation_tokens"])


def test_64_concurrent_episodes(env, tok, user_server, tmp_path, data_dir):
    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version)
    engine = ScriptedEngine(tok, env)
    write_tasks = [t.id for t in env.tasks("base") if t.has_write_action][:16]

    async def main():
        return await asyncio.gather(*[
            ex.execute(prompt="", label=json.dumps({"task_id": write_tasks[i % 16]}), sampling_params=Params(),
                       max_length=60000, hf_tokenizer=tok, llm_engine=engine) for i in range(64)])

    outs = asyncio.run(main())
    log = read_log(tmp_path)
    assert len(log) == 64
    assert all(json.loads(json.dumps(line))["task_id"] for line in log)
    rewards = sorted(o["reward"] for o in outs)
    assert rewards == [1.0] * 64, [(l["task_id"], l["outcome"]) for l in log if not l["success"]][:3]


def test_episodes_flow_through_openrlhf_into_gtpo_advantages(env, tok, user_server, tmp_path, data_dir):
    """Executor results -> OpenRLHF's samples generator -> experience maker (gtpo_hybrid via our hook)."""
    from openrlhf_fixtures import make_maker
    from openrlhf.trainer.ppo_utils.experience import Experience
    from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator

    ex = make_executor(data_dir, user_server.base_url, tmp_path, tau_version=env.version)
    engine = ScriptedEngine(tok, env, mistake_rate=0.15, seed=3)

    async def group():
        return await asyncio.gather(*[ex.execute(prompt="", label=WRITE_TASK, sampling_params=Params(),
                                                 max_length=60000, hf_tokenizer=tok, llm_engine=engine)
                                      for _ in range(8)])

    outs = asyncio.run(group())
    gen = SamplesGenerator.__new__(SamplesGenerator)
    singles = [gen._process_response_into_experience(o, max_len=60000) for o in outs]
    for i, s in enumerate(singles):
        s.index = [i]
    exps = [Experience.concat_experiences(singles[i:i + 4], 0) for i in (0, 4)]
    exps = make_maker("gtpo_hybrid", n=8).compute_advantages_and_returns(exps)
    rewards = [o["reward"] for o in outs]
    assert 0 < sum(rewards) < 8, rewards  # mistakes make some rollouts fail: the group has signal
    for e in exps:
        for row, mask in zip(e.advantages, e.action_mask):
            assert torch.all(row[~mask.bool()] == 0)
        assert "mtgrpo_turn_rewards" not in e.info
    flat = [(float(e.advantages[i][e.action_mask[i].bool()].mean()), float(e.rewards[i]))
            for e in exps for i in range(len(e.advantages))]
    mean_success = sum(a for a, r in flat if r == 1.0) / max(1, sum(r == 1.0 for _, r in flat))
    mean_failure = sum(a for a, r in flat if r == 0.0) / max(1, sum(r == 0.0 for _, r in flat))
    assert mean_success > 0 > mean_failure


def test_openrlhf_loads_our_agent_file_and_runs_a_group(env, tok, user_server, tmp_path, data_dir, monkeypatch):
    """OpenRLHF's own loader (_load_agent_executor) and RolloutRayActor.generate_responses, with the agent
    configured the way the plugin forwards the --mtgrpo.* flags (OPENRLHF_MTGRPO_AGENT_CONFIG)."""
    from types import SimpleNamespace

    from openrlhf.trainer.ray import vllm_engine

    from openrlhf_mtgrpo.cli import main as cli
    from openrlhf_mtgrpo.rollout.config import CONFIG_ENV

    monkeypatch.setenv(CONFIG_ENV, json.dumps({
        "data_dir": data_dir, "tau_version": env.version, "user_base_url": user_server.base_url,
        "user_model": "rule", "rollout_log_dir": str(tmp_path), "estimator": "gtpo_hybrid"}))
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli(["agent-path"]) == 0
    executor = vllm_engine._load_agent_executor(buf.getvalue().strip())
    engine = ScriptedEngine(tok, env)
    actor = SimpleNamespace(executor=executor, generate=engine.generate)
    cls = vllm_engine.RolloutRayActor.__ray_metadata__.modified_class
    outs = asyncio.run(cls.generate_responses(actor, prompt="p", label=json.dumps({"task_id": WRITE_TASK}),
                                              sampling_params=Params(), max_length=60000, hf_tokenizer=tok,
                                              num_samples=4))
    assert [o["reward"] for o in outs] == [1.0] * 4
    assert len(read_log(tmp_path)) == 4 and all("sample_info" in o for o in outs)
