import asyncio
import json
import os

from openrlhf_mtgrpo.benchmarks.airline import AirlineEnv
from openrlhf_mtgrpo.offline.scripted import ScriptedEngine, make_rule_based_user
from openrlhf_mtgrpo.offline.toy_tokenizer import build_toy_tokenizer
from openrlhf_mtgrpo.rollout.config import AgentConfig
from openrlhf_mtgrpo.rollout.executor import MtGrpoAgentExecutor
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer


class Params:
    """Stands in for vLLM's SamplingParams (vLLM is not installable on CPU)."""

    def __init__(self, max_tokens=1024, logprobs=None):
        self.max_tokens, self.logprobs = max_tokens, logprobs

    def clone(self):
        return Params(self.max_tokens, self.logprobs)


def make_executor(data_dir, base_url, log_dir, **over):
    cfg = AgentConfig(data_dir=data_dir, user_base_url=base_url, user_model="rule-user", rollout_log_dir=str(log_dir),
                      user_timeout=2.0, user_max_retries=2, estimator="gtpo_hybrid")
    for k, v in over.items():
        setattr(cfg, "version" if k == "tau_version" else k, v)
    ex = MtGrpoAgentExecutor(cfg)
    return ex


def run(ex, engine, label, max_length=60000, params=None):
    tok = build_toy_tokenizer(data_dir=ex.config.data_dir, version=ex.config.version)
    return asyncio.run(ex.execute(prompt="", label=label, sampling_params=params or Params(), max_length=max_length,
                                  hf_tokenizer=tok, llm_engine=engine))


def read_log(log_dir):
    lines = []
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name)) as f:
            lines += [json.loads(line) for line in f]
    return lines


__all__ = ["AirlineEnv", "ScriptedEngine", "make_rule_based_user", "build_toy_tokenizer", "LocalChatServer",
           "Params", "make_executor", "run", "read_log"]
