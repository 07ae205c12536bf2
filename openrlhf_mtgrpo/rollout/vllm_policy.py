"""OpenRLHF's rollout engine as the episode loop's policy, and the rollout log's format: what the agent executor
(:mod:`.executor`, which needs OpenRLHF) and the offline demo (which does not) share."""

from __future__ import annotations

import copy
from typing import List

from openrlhf_mtgrpo.rollout.episode import Generation

#: the rollout-log line's format: 2 adds log_schema, domain, run rules, steps and prompt sources
LOG_SCHEMA = 2


class VllmPolicy:
    """OpenRLHF's rollout engine (token ids in, token ids out) as a :class:`Policy`."""

    def __init__(self, llm_engine, sampling_params):
        self.engine = llm_engine
        self.params = sampling_params

    async def generate(self, token_ids: List[int], max_tokens: int) -> Generation:
        params = self.params.clone() if hasattr(self.params, "clone") else copy.copy(self.params)
        # per call: the run's per-turn cap (--rollout.max_new_tokens) or what is left of the episode's
        # length budget, whichever is smaller; never mutate the SamplingParams shared by concurrent episodes
        cap = getattr(self.params, "max_tokens", None)
        params.max_tokens = min(max_tokens, cap) if cap else max_tokens
        out = await self.engine.generate(token_ids, params)
        o = out.outputs[0]
        ids = list(o.token_ids)
        lps = None
        if getattr(o, "logprobs", None):
            lps = [float(step[t].logprob) if t in step else 0.0 for t, step in zip(ids, o.logprobs)]
        return Generation(ids, o.finish_reason or "stop", lps)
