"""How the airline policy and customer are prompted, per benchmark version: the benchmark's own prompts.

The texts are read at run time from the benchmark's own files (:mod:`openrlhf_mtgrpo.benchmarks.data.prompts`:
tau2-bench's agent instructions around the policy and its user-simulator guidelines; tau-bench's wiki
alone and its user prompt), each file checked against its pin; where the files are not on this
machine, our own words stand in, flagged not comparable in every rollout line and eval result.
"""

from __future__ import annotations

from typing import Optional, Tuple

from openrlhf_mtgrpo.envs.base import AgentPrompt, CustomerPrompt


def resolve_prompts(version: str, policy: str, data_dir: Optional[str] = None
                    ) -> Tuple[AgentPrompt, CustomerPrompt, Optional[str]]:
    """(the policy's system message, the customer's prompt, the agent's greeting) of ``version``."""
    from openrlhf_mtgrpo.benchmarks.data import prompts
    return (prompts.airline_agent_prompt(version, policy, data_dir), prompts.airline_customer_prompt(version, data_dir),
            prompts.airline_greeting(version, data_dir))



def resolve_greeting(version: str, data_dir: Optional[str] = None) -> Optional[str]:
    """The agent's greeting of ``version`` (tau2 family: the orchestrator's; tau1: None)."""
    from openrlhf_mtgrpo.benchmarks.data import prompts
    return prompts.airline_greeting(version, data_dir)
