"""Prompts chosen on purpose instead of the benchmark's own (``--mtgrpo.agent_prompt``, ``--mtgrpo.user_prompt``).

The default is the benchmark's own agent and customer prompts (the domain's ``agent_prompt`` and
``customer_prompt``).  A recipe may choose otherwise on purpose, e.g. the policy alone as the system
message, or the customer prompt a paper trained with; the choice is recorded with every rollout (its
source and sha256), so logs of different prompts are never mixed unknowingly.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.envs.base import OWN_WORDS, AgentPrompt, CustomerPrompt, PromptInfo

SCENARIO = "{scenario}"

# -- our own words: chosen (``--mtgrpo.user_prompt own-words``), or a domain's fallback where the benchmark's
#    own prompt files are not on the machine; always flagged as not comparable

AGENT_NOT_COMPARABLE = "agent prompt: own words, not comparable"
CUSTOMER_NOT_COMPARABLE = "customer: own words, not comparable"
OWN_WORDS_PREFIX = (
    "You are playing a customer who contacts a company's customer-service agent. Stay in character and "
    "follow the scenario below. Write only what the customer says, one message at a time, briefly and "
    "naturally. Do not invent information the scenario does not give you; if asked for something you do not "
    "know, say so. Reveal details only when they are needed.\n\n"
    "Scenario:\n"
)
OWN_WORDS_SUFFIX = (
    "\n\n"
    "When your goal is reached or cannot be reached, reply with exactly ###STOP###. If you are transferred to "
    "a human agent, reply with exactly ###TRANSFER###. If the scenario does not say what to do next, reply "
    "with exactly ###OUT-OF-SCOPE###."
)
OWN_WORDS_OPENING = "Hi! How can I help you today?"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def own_words_customer_prompt(reason: str = "chosen (--mtgrpo.user_prompt own-words)",
                              temperature: Optional[float] = 0.0) -> CustomerPrompt:
    """Our own customer prompt (opening "Hi! How can I help you today?"), flagged as not comparable with
    ``reason``; ``temperature``: the customer model's temperature (None: none sent)."""
    return CustomerPrompt(OWN_WORDS_PREFIX, OWN_WORDS_SUFFIX, OWN_WORDS_OPENING,
                          PromptInfo(OWN_WORDS, _sha(f"{OWN_WORDS_PREFIX}{SCENARIO}{OWN_WORDS_SUFFIX}"),
                                     where=f"{__name__} (our own words)", note=CUSTOMER_NOT_COMPARABLE,
                                     reason=reason),
                          temperature)


def own_words_agent_prompt(policy: str, reason: str) -> AgentPrompt:
    """The policy alone as the system message where the benchmark's agent prompt cannot be read, flagged."""
    return AgentPrompt(policy, PromptInfo(OWN_WORDS, _sha(policy), where="the policy alone (our own choice)",
                                          note=AGENT_NOT_COMPARABLE, reason=reason))


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

    def customer_prompt_for(self, task: Any) -> CustomerPrompt:
        """The chosen customer prompt; else the domain's own (per task where it has one)."""
        per_task = getattr(self._domain, "customer_prompt_for", None)
        chosen = self.customer_prompt is not getattr(self._domain, "customer_prompt", None)
        return per_task(task) if per_task is not None and not chosen else self.customer_prompt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._domain, name)


def customer_prompt_of(domain: Any, task: Any) -> Optional[CustomerPrompt]:
    """How the simulated customer of ``task`` is prompted: the domain's ``customer_prompt``, or its per-task one
    where it has ``customer_prompt_for(task)`` (tau2-bench's banking_knowledge gives each task's customer its own
    tools, and its guidelines say whether it has any); None for a domain without a customer (solo)."""
    per_task = getattr(domain, "customer_prompt_for", None)
    return per_task(task) if per_task is not None and domain.customer_prompt is not None else domain.customer_prompt


def customer_tools_of(domain: Any, task: Any) -> Optional[List[Dict[str, Any]]]:
    """The customer's own tools in ``task`` (None: it only talks): the domain's ``customer_tool_schemas()``, or its
    per-task ``customer_tool_schemas_for(task)`` where it has one."""
    per_task = getattr(domain, "customer_tool_schemas_for", None)
    return per_task(task) if per_task is not None else domain.customer_tool_schemas()


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
        customer_prompt = own_words_customer_prompt()
    else:
        customer_prompt = customer_from_file(customer, domain.customer_prompt.opening)
    return PromptedDomain(domain, agent_prompt, customer_prompt)
