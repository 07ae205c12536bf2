"""Real Qwen tokenizer and chat templates for the tests (from the registry packages dashscope and trl).

Install them with ``pip install --no-deps dashscope==2.0.2 trl==1.16.0``; without them these
tests skip with that command (and fail where MTGRPO_REQUIRE_DATA is set, as in CI).
"""

import asyncio

from conftest import missing_data

from openrlhf_mtgrpo.offline.qwen_tokenizer import INSTALL_COMMAND, QwenFixturesMissing, build_qwen3_tokenizer

#: (template, enable_thinking) of the issue's five real setups: Qwen3 hermes with thinking on and off,
#: Qwen3.5 XML with thinking on and off, Qwen3-2507 instruct (no thinking mode).
REAL_SETUPS = [("qwen3", True), ("qwen3", False), ("qwen3_5_think", True), ("qwen3_5_think", False),
               ("qwen3_instruct_2507", False)]
#: ... and the other shipped originals and the prefix-preserving training variants.
MORE_SETUPS = [("qwen3_5_nothink", True), ("qwen3_5_nothink", False), ("qwen3_training", True),
               ("qwen3_training", False), ("qwen3_5_think_training", True), ("qwen3_5_think_training", False),
               ("qwen3_5_nothink_training", False), ("qwen3_instruct_2507_training", False)]


def qwen_tokenizer(template: str = "qwen3"):
    try:
        return build_qwen3_tokenizer(template)
    except QwenFixturesMissing as e:
        missing_data(f"the real Qwen tokenizer/templates ({e})", INSTALL_COMMAND)


class Params:
    """Stands in for vLLM's SamplingParams (vLLM is not installable on CPU)."""

    def __init__(self, max_tokens=8192, logprobs=None):
        self.max_tokens, self.logprobs = max_tokens, logprobs

    def clone(self):
        return Params(self.max_tokens, self.logprobs)


class RecordingUser:
    """The customer, in process: opens with the task reference, confirms, stops when offered more help.
    Records every message the agent sent it."""

    def __init__(self, task):
        self.task, self.calls, self.received = task, 0, []

    async def start(self):
        return f"Hello. (ref: task-{self.task.id}) I need help with my reservation."

    async def reply(self, text):
        self.received.append(text)
        low = text.lower()
        if "anything else" in low:
            return "No, that's all. ###STOP###"
        return "Yes, please go ahead." if ("confirm" in low or "proceed" in low) else "Okay."


def run_scripted(env, task, template, thinking, *, chat_template=None, max_length=60000, spacing="exact"):
    """One episode with the real template and the scripted Qwen engine: (result, renderer, engine, user).
    ``spacing``: the engine's whitespace variant(s) around the reasoning tags (offline/scripted_qwen.py)."""
    from openrlhf_mtgrpo.offline.scripted_qwen import ScriptedQwenEngine
    from openrlhf_mtgrpo.rewards.calibration import load_calibration
    from openrlhf_mtgrpo.rollout.chat import ChatRenderer
    from openrlhf_mtgrpo.rollout.episode import run_episode
    from openrlhf_mtgrpo.rollout.executor import VllmPolicy
    from openrlhf_mtgrpo.rollout.tool_parsers import parser_for

    tok = qwen_tokenizer(template)
    renderer = ChatRenderer(tok, env.tool_schemas(), thinking, chat_template=chat_template)
    engine = ScriptedQwenEngine(tok, env, chat_template=renderer.template, enable_thinking=thinking,
                                spacing=spacing)
    user = RecordingUser(task)
    parser = parser_for("auto", tools=env.tool_schemas(), chat_template=renderer.template)
    result = asyncio.run(run_episode(env, task, VllmPolicy(engine, Params()), renderer, parser, user,
                                     load_calibration(), max_length=max_length))
    return result, renderer, engine, user
