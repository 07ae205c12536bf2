"""Eval sends the policy's earlier reasoning back the way the chat templates read it (``reasoning_content``),
so a prefix-preserving training template sees what the training rollout kept in the sequence; the customer
and the COMMUNICATE check get the answer only."""

import asyncio

import httpx

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.evaluation.chat_episode import run_chat_episode
from openrlhf_mtgrpo.evaluation.policy_client import PolicyClient, PolicySettings
from openrlhf_mtgrpo.offline.scripted import make_rule_based_user, make_scripted_policy_responder
from openrlhf_mtgrpo.rewards.calibration import load_calibration
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer
from openrlhf_mtgrpo.rollout.user_sim import UserSimConfig, UserSimulator


def test_reasoning_goes_back_to_the_policy_not_to_the_customer(data_dir):
    env = AirlineEnv("tau2", data_dir)
    task = env.task("7")
    scripted = make_scripted_policy_responder(env)
    requests, customer_saw = [], []

    def policy(req):
        requests.append(req)
        reply = dict(scripted(req))
        reply["reasoning_content"] = f"thought {len(requests)}"
        return reply

    user = make_rule_based_user(env)

    def customer(req):
        customer_saw.append(req["messages"][-1]["content"])
        return user(req)

    with LocalChatServer(policy) as pol, LocalChatServer(customer) as usr:
        async def main():
            async with httpx.AsyncClient() as http:
                client = PolicyClient(PolicySettings(pol.base_url, "stub", enable_thinking=True), http)
                sim = UserSimulator(UserSimConfig(usr.base_url, "rule", timeout=5, max_retries=1),
                                    task.user_instructions, env.customer_prompt)
                return await run_chat_episode(env, task, client, sim, load_calibration(), trial=0)

        rec = asyncio.run(main())
    assert rec["success"], rec["termination"]
    assert len(requests) >= 3
    for i, req in enumerate(requests[1:], start=1):  # every earlier assistant turn carries its reasoning
        sent = [m.get("reasoning_content") for m in req["messages"] if m["role"] == "assistant"][1:]  # skip greeting
        assert sent == [f"thought {j}" for j in range(1, i + 1)]
        assert req["chat_template_kwargs"] == {"enable_thinking": True}
    assert customer_saw and not any("thought" in c for c in customer_saw)


def test_an_empty_policy_reply_ends_the_episode_as_a_scored_agent_error(data_dir):
    """As in training (Episode.assistant_message): tau2 refuses a message with neither text nor a tool call."""
    env = AirlineEnv("tau2", data_dir)
    task = env.task("7")
    with LocalChatServer(lambda req: {"content": ""}) as pol, LocalChatServer(make_rule_based_user(env)) as usr:
        async def main():
            async with httpx.AsyncClient() as http:
                client = PolicyClient(PolicySettings(pol.base_url, "stub"), http)
                sim = UserSimulator(UserSimConfig(usr.base_url, "rule", timeout=5, max_retries=1),
                                    task.user_instructions, env.customer_prompt)
                return await run_chat_episode(env, task, client, sim, load_calibration(), trial=0)

        rec = asyncio.run(main())
    assert rec["termination"] == "agent_error" and rec["status"] == "scored" and rec["reward"] == 0.0
    assert rec["policy_calls"] == 1 and len(rec["turns"]) == 1
