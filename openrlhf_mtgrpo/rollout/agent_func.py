"""Agent file for OpenRLHF: ``--train.agent_func_path $(mtgrpo agent-path)``.

OpenRLHF 0.11 execs this file in every vLLM rollout actor and instantiates
``AgentExecutor()`` with no arguments; the configuration comes from the
``--mtgrpo.*`` flags through the environment (see openrlhf_mtgrpo.rollout.config).
"""

from openrlhf_mtgrpo.rollout.executor import MtGrpoAgentExecutor


class AgentExecutor(MtGrpoAgentExecutor):
    def __init__(self):
        super().__init__()
