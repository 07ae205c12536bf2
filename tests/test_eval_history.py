"""What eval sends back to the policy as the conversation so far: a server that reads the history as vLLM does
accepts it, and with the real Qwen templates the policy is conditioned at eval on exactly the tokens training
conditioned it on, turn by turn."""

import asyncio
import json
from dataclasses import replace

import httpx
import pytest

from qwen_fixtures import Params, qwen_tokenizer

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.evaluation.chat_episode import run_chat_episode
from openrlhf_mtgrpo.evaluation.policy_client import PolicyClient, PolicySettings
from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_policy_responder
from openrlhf_mtgrpo.offline.scripted_qwen import ScriptedQwenEngine
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rollout.chat import ChatRenderer, resolve_chat_template
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer
from openrlhf_mtgrpo.rollout.tool_parsers import TOOL_CALL_START, parser_for, split_reasoning
from openrlhf_mtgrpo.rollout.user_sim import UserSimConfig, UserSimulator

TASK = "7"  # two reads in one turn, a write after a confirmation, two cancellations


@pytest.fixture(scope="module")
def env(data_dir):
    return AirlineEnv("tau2", data_dir)


def _eval_episode(env, task, policy_url, user_url, thinking=False):
    async def main():
        async with httpx.AsyncClient() as http:
            client = PolicyClient(PolicySettings(policy_url, "stub", enable_thinking=thinking, timeout=30,
                                                 max_retries=0), http)
            sim = UserSimulator(UserSimConfig(user_url, "rule", timeout=30, max_retries=0), task.user_instructions, env.customer_prompt)
            return await run_chat_episode(env, task, client, sim, load_calibration(), trial=0)

    return asyncio.run(main())


def vllm_reads_history(req):
    """vLLM json-loads the arguments of every tool call in the history; text that is not JSON: HTTP 400."""
    for m in req["messages"]:
        for tc in m.get("tool_calls") or []:
            try:
                json.loads(tc["function"]["arguments"])
            except ValueError:
                return 400
    return None


@pytest.mark.parametrize("raw", ['{"user_id": ', "[1, 2]", '"{}"'], ids=["truncated", "a-list", "a-string"])
def test_a_call_whose_arguments_are_not_an_object_ends_the_episode(env, raw):
    """tau2's run fails at such a message (its ToolCall model wants an object): agent_error, scored 0, and the
    policy is asked nothing more."""
    task = env.task(TASK)
    requests = []

    def policy(req):
        requests.append(req)
        return {"content": "", "tool_calls": [{"name": "get_user_details", "arguments": raw},
                                              {"name": "get_reservation_details",
                                               "arguments": json.dumps({"reservation_id": "XEHM4B"})}]}

    with LocalChatServer(policy, fault_fn=vllm_reads_history) as pol, \
            LocalChatServer(make_rule_based_user(env)) as usr:
        rec = _eval_episode(env, task, pol.base_url, usr.base_url)
    assert rec["status"] == "scored" and not rec["success"] and rec["termination"] == "agent_error"
    assert len(requests) == 1 and rec["turns"][0]["malformed"] == 1 and rec["turns"][0]["tool_calls"] == []
    logged = next(m for m in rec["messages"] if m.get("tool_calls"))  # the log keeps what the policy wrote
    assert logged["tool_calls"][0]["function"]["arguments"] == raw


def test_empty_arguments_go_back_as_an_empty_object(env):
    """A call sent with empty arguments is read as no arguments; vLLM json-loads history arguments, so they go
    back as "{}" (the empty text would get every later request refused)."""
    task = env.task(TASK)
    scripted = make_scripted_policy_responder(env)
    requests = []

    def policy(req):
        requests.append(req)
        if len(requests) == 1:
            return {"content": "", "tool_calls": [{"name": "get_user_details", "arguments": ""}]}
        return scripted(req)

    with LocalChatServer(policy, fault_fn=vllm_reads_history) as pol, \
            LocalChatServer(make_rule_based_user(env)) as usr:
        rec = _eval_episode(env, task, pol.base_url, usr.base_url)
    assert rec["status"] == "scored" and rec["success"], (rec["termination"], rec["infra"])
    sent = requests[1]["messages"][-2:]
    assert sent[0]["tool_calls"][0]["function"] == {"name": "get_user_details", "arguments": "{}"}
    assert sent[1]["role"] == "tool" and rec["turns"][0]["malformed"] == 0


def test_tau1_eval_ends_at_a_malformed_first_call(require_version):
    """tau-bench builds its Action from tool_calls[0] alone; arguments that are no object fail its run (reward
    0), and the valid second call never runs."""
    tau1 = AirlineEnv("tau1", require_version("tau1"))
    task = tau1.task("0")
    replies = []

    def policy(req):
        replies.append(req)
        return {"content": "", "tool_calls": [{"name": "get_user_details", "arguments": "[1]"},
                                              {"name": "get_user_details",
                                               "arguments": json.dumps({"user_id": task.user_id})}]}

    with LocalChatServer(policy) as pol, LocalChatServer(make_rule_based_user(tau1)) as usr:
        rec = _eval_episode(tau1, task, pol.base_url, usr.base_url)
    assert rec["termination"] == "agent_error" and not rec["success"] and len(replies) == 1
    assert rec["turns"][0]["malformed"] == 1 and rec["turns"][0]["tool_calls"] == []


# -- the real templates: eval's prompts are training's prompts ----------------------------------------------------


class TalkingEngine(ScriptedQwenEngine):
    """The scripted Qwen engine, saying a sentence before the tool calls of each calling turn."""

    def plan(self, task_id):
        return [replace(t, answer="Let me look that up.") if t.calls and not t.answer else t
                for t in super().plan(task_id)]


class RuleCustomer:
    """The customer of the training run (qwen_fixtures.RecordingUser), as an HTTP user simulator."""

    def __call__(self, req):
        msgs = req["messages"]
        if len(msgs) == 2:  # system prompt and the agent's greeting
            ref = next(t.id for t in self.env.tasks("base") if t.user_instructions in msgs[0]["content"])
            return {"content": f"Hello. (ref: task-{ref}) I need help with my reservation."}
        low = msgs[-1]["content"].lower()
        if "anything else" in low:
            return {"content": "No, that's all. ###STOP###"}
        return {"content": "Yes, please go ahead." if ("confirm" in low or "proceed" in low) else "Okay."}

    def __init__(self, env):
        self.env = env


class VllmLikeServer:
    """What a vLLM server does with a chat request, the scripted engine standing in for the model: history
    arguments json-loaded, the conversation rendered by the chat template with the request's
    chat_template_kwargs, the completion split by the reasoning parser and then the tool parser, the content
    being the text before the first call, as is."""

    def __init__(self, tok, env, template, engine):
        self.tok, self.template, self.engine = tok, template, engine
        self.parser = parser_for("auto", env.tool_schemas(), template)

    def __call__(self, req):
        msgs = json.loads(json.dumps(req["messages"]))
        for m in msgs:
            for tc in m.get("tool_calls") or []:
                tc["function"]["arguments"] = json.loads(tc["function"]["arguments"])
        thinking = (req.get("chat_template_kwargs") or {}).get("enable_thinking", True)
        text = self.tok.apply_chat_template(msgs, tools=req["tools"], tokenize=False, add_generation_prompt=True,
                                            chat_template=self.template, enable_thinking=thinking)
        ids = list(self.tok(text, add_special_tokens=False)["input_ids"])
        out = asyncio.run(self.engine.generate(ids, Params())).outputs[0]
        body = self.tok.decode(out.token_ids[:-1], skip_special_tokens=False)  # less <|im_end|>
        reasoning, rest = split_reasoning(body, thinking)
        at = rest.find(TOOL_CALL_START)
        calls = self.parser.parse(rest).tool_calls
        reply = {"content": (rest if at < 0 else rest[:at]) or None,
                 "tool_calls": [{"name": c.name, "arguments": json.dumps(c.arguments)} for c in calls]}
        if reasoning:
            reply["reasoning_content"] = reasoning
        return reply


def _training_prompts(env, task, tok, template, thinking, engine_cls):
    """The prompt of every generation call of a training rollout of ``task`` (qwen_fixtures.run_scripted's)."""
    from qwen_fixtures import RecordingUser

    from openrlhf_mtgrpo.rollout.episode import run_episode
    from openrlhf_mtgrpo.rollout.executor import VllmPolicy

    renderer = ChatRenderer(tok, env.tool_schemas(), thinking, chat_template=template)
    engine = engine_cls(tok, env, chat_template=template, enable_thinking=thinking)
    parser = parser_for("auto", tools=env.tool_schemas(), chat_template=template)
    res = asyncio.run(run_episode(env, task, VllmPolicy(engine, Params()), renderer, parser, RecordingUser(task),
                                  load_calibration(), max_length=60000))
    assert res.reward == 1.0 and not res.template_drift_turns
    return [entry["prompt"] for entry in engine.log]


def _first_difference(tok, a, b):
    x, y = tok.decode(a, skip_special_tokens=False), tok.decode(b, skip_special_tokens=False)
    k = next((i for i in range(min(len(x), len(y))) if x[i] != y[i]), min(len(x), len(y)))
    return f"training {x[k - 60:k + 40]!r}\n     eval {y[k - 60:k + 40]!r}"


@pytest.mark.parametrize("talks", [False, True], ids=["calls-only", "text-then-calls"])
@pytest.mark.parametrize("stock,thinking", [("qwen3", True), ("qwen3", False), ("qwen3_5_think", True),
                                            ("qwen3_5_think", False)])
def test_eval_prompts_the_policy_with_exactly_the_training_tokens(env, stock, thinking, talks):
    """Training template (the recipes'), thinking as trained: at every turn the prompt the served model gets at
    eval (rendered by the server from the history eval sends back) is token for token the prompt the engine got
    in the training rollout of the same episode."""
    tok = qwen_tokenizer(stock)
    template = resolve_chat_template("training", tok)
    task = env.task(TASK)
    engine_cls = TalkingEngine if talks else ScriptedQwenEngine
    trained = _training_prompts(env, task, tok, template, thinking, engine_cls)
    served = engine_cls(tok, env, chat_template=template, enable_thinking=thinking)
    with LocalChatServer(VllmLikeServer(tok, env, template, served)) as pol, \
            LocalChatServer(RuleCustomer(env)) as usr:
        rec = _eval_episode(env, task, pol.base_url, usr.base_url, thinking=thinking)
    assert rec["status"] == "scored" and rec["success"], (rec["termination"], rec["infra"])
    at_eval = [entry["prompt"] for entry in served.log]
    assert len(at_eval) == len(trained) >= 5
    for turn, (a, b) in enumerate(zip(trained, at_eval)):
        assert a == b, f"turn {turn}:\n{_first_difference(tok, a, b)}"


def test_a_reply_cut_where_the_context_ends_is_length_budget(env):
    """Near the context's end the cap shrinks to what is left (vLLM names the prompt's length); a reply cut
    there ends the episode as length_budget, the training rollout's name for it, not turn_too_long."""
    from openrlhf_mtgrpo.rollout.local_server import estimated_tokens

    task = env.task(TASK)
    asked = []

    def policy(req):
        asked.append((estimated_tokens(req), req["max_tokens"]))
        return {"content": "Let me look at your reserv", "finish_reason": "length"}

    async def main(url, user_url):
        async with httpx.AsyncClient() as http:
            client = PolicyClient(PolicySettings(url, "stub", enable_thinking=False, timeout=30, max_retries=0,
                                                 max_tokens=8192), http)
            sim = UserSimulator(UserSimConfig(user_url, "rule", timeout=30, max_retries=0), task.user_instructions, env.customer_prompt)
            return await run_chat_episode(env, task, client, sim, load_calibration(), trial=0)

    with LocalChatServer(make_rule_based_user(env)) as usr:
        with LocalChatServer(policy) as probe:  # the first prompt's estimated length, as the server counts it
            asyncio.run(main(probe.base_url, usr.base_url))
        limit = asked[0][0] + 40
        asked.clear()
        with LocalChatServer(policy, context_limit=limit) as pol:
            rec = asyncio.run(main(pol.base_url, usr.base_url))
    assert asked == [(limit - 40, 40)] and rec["turns"][0]["max_tokens"] == 40
    assert rec["termination"] == "length_budget" and rec["status"] == "scored" and not rec["success"]
