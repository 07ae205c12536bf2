"""Prompts chosen on purpose instead of the benchmark's own (``--mtgrpo.agent_prompt``, ``--mtgrpo.user_prompt``).

The default is the benchmark's own agent and customer prompts (the domain's ``agent_prompt`` and
``customer_prompt``).  A recipe may choose otherwise on purpose, e.g. the policy alone as the system
message, or the customer prompt a paper trained with; the choice is recorded with every rollout (its
source and sha256), so logs of different prompts are never mixed unknowingly.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from openrlhf_mtgrpo.envs.base import AgentPrompt, CustomerPrompt, PromptInfo

SCENARIO = "{scenario}"


class PromptedDomain:
    """A loaded domain with other prompts; everything else is the domain's own."""

    def __init__(self, domain: Any, agent_prompt: AgentPrompt, customer_prompt: CustomerPrompt):
        self._domain = domain
        self.agent_prompt = agent_prompt
        self.customer_prompt = customer_prompt

        self._chosen_agent = agent_prompt is not getattr(domain, "agent_prompt", None)

    def agent_prompt_for(self, task: Any) -> AgentPrompt:
        """The chosen system message; else the domain's own (per task where it has one)."""
        per_task = getattr(self._domain, "agent_prompt_for", None)
        return per_task(task) if per_task is not None and not self._chosen_agent else self.agent_prompt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._domain, name)


def policy_only(domain: Any) -> AgentPrompt:
    """The domain policy alone as the system message."""
    text = domain.policy
    return AgentPrompt(text, PromptInfo("policy alone", hashlib.sha256(text.encode()).hexdigest(),
                                        note="agent prompt: the policy alone (chosen), not the benchmark's",
                                        reason="--mtgrpo.agent_prompt policy"))


def customer_from_file(path: str, opening: str) -> CustomerPrompt:
    """A customer prompt from a text file with one ``{scenario}`` where the task's scenario goes."""
    if not os.path.isfile(path):
        raise ValueError(f"--mtgrpo.user_prompt {path!r} is neither 'benchmark', 'own-words' nor a file")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.count(SCENARIO) != 1:
        raise ValueError(f"--mtgrpo.user_prompt {path}: the file must hold {SCENARIO} exactly once, where the "
                         f"task's scenario goes (found {text.count(SCENARIO)})")
    prefix, suffix = text.split(SCENARIO)
    return CustomerPrompt(prefix, suffix, opening,
                          PromptInfo("file", hashlib.sha256(text.encode()).hexdigest(), where=os.path.abspath(path),
                                     note=f"customer: {os.path.basename(path)} (chosen), not the benchmark's",
                                     reason="--mtgrpo.user_prompt"))


def with_prompts(domain: Any, agent: str = "benchmark", customer: str = "benchmark") -> Any:
    """``domain`` prompted as chosen (``benchmark``: its own, unchanged)."""
    if agent == "benchmark" and customer == "benchmark":
        return domain
    if agent not in ("benchmark", "policy"):
        raise ValueError(f"--mtgrpo.agent_prompt must be 'benchmark' or 'policy', got {agent!r}")
    agent_prompt = domain.agent_prompt if agent == "benchmark" else policy_only(domain)
    if customer == "benchmark":
        customer_prompt = domain.customer_prompt
    elif customer == "own-words":
        from openrlhf_mtgrpo.benchdata.prompts import own_words_customer_prompt

        customer_prompt = own_words_customer_prompt()
    else:
        customer_prompt = customer_from_file(customer, domain.customer_prompt.opening)
    return PromptedDomain(domain, agent_prompt, customer_prompt)
