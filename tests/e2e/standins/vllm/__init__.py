"""TEST STAND-IN for vLLM (docs/testing.md): the slice of vLLM's API that OpenRLHF 0.11.2 calls,
with generation done by a Hugging Face model on the CPU.

vLLM needs a CUDA GPU and cannot be installed on a CPU machine.  OpenRLHF's rollout actor
(``openrlhf/trainer/ray/vllm_engine.py``) builds ``vllm.AsyncEngineArgs`` and
``vllm.AsyncLLMEngine.from_engine_args``, generates with ``llm.generate(TokensPrompt, SamplingParams,
request_id)`` and syncs weights with ``llm.collective_rpc("init_process_group" | "update_weight")``,
which run OpenRLHF's own ``WorkerWrap`` (``worker_extension_cls``) inside the engine's worker.
This package provides exactly those names; see :mod:`vllm._cpu_engine` for the engine.
Only tests put it on ``PYTHONPATH``; it is never part of the installed package.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

#: the version OpenRLHF 0.11.2 pins (its code branches on it in two places)
__version__ = "0.29.0"


class SamplingParams:
    """vLLM's sampling parameters (the fields OpenRLHF and our rollout set); unknown names are refused."""

    _DEFAULTS: Dict[str, Any] = dict(
        n=1, temperature=1.0, top_p=1.0, top_k=-1, min_p=0.0, seed=None, max_tokens=16, min_tokens=0,
        stop=None, stop_token_ids=None, ignore_eos=False, logprobs=None, prompt_logprobs=None,
        skip_special_tokens=True, spaces_between_special_tokens=True, include_stop_str_in_output=False,
        repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0,
    )

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(self._DEFAULTS)
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keyword arguments {sorted(unknown)}")
        for k, v in self._DEFAULTS.items():
            setattr(self, k, copy.copy(kwargs.get(k, v)))
        if self.temperature < 0:
            raise ValueError(f"temperature must be non-negative, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        for name in ("repetition_penalty", "presence_penalty", "frequency_penalty", "min_p"):
            if getattr(self, name) != self._DEFAULTS[name]:
                raise NotImplementedError(f"the CPU stand-in engine does not implement {name}")

    def clone(self) -> "SamplingParams":
        return copy.deepcopy(self)

    def __repr__(self):
        return "SamplingParams(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self._DEFAULTS) + ")"


@dataclass
class Logprob:
    logprob: float
    rank: Optional[int] = None
    decoded_token: Optional[str] = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: List[int]
    cumulative_logprob: Optional[float]
    logprobs: Optional[List[Dict[int, Logprob]]]
    finish_reason: Optional[str] = None
    stop_reason: Any = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: Optional[str]
    prompt_token_ids: List[int]
    outputs: List[CompletionOutput] = field(default_factory=list)
    finished: bool = True


class AsyncEngineArgs:
    """Keeps the engine arguments OpenRLHF passes (``create_vllm_engines``)."""

    def __init__(self, model: str, **kwargs):
        self.model = model
        self.kwargs = dict(kwargs)

    def __getattr__(self, item):
        try:
            return self.__dict__["kwargs"][item]
        except KeyError:
            raise AttributeError(item) from None


class AsyncLLMEngine:
    @classmethod
    def from_engine_args(cls, engine_args: AsyncEngineArgs):
        from vllm._cpu_engine import CpuAsyncEngine

        return CpuAsyncEngine(engine_args)


class LLM:  # OpenRLHF only names it; constructing one means a code path we do not stand in for
    def __init__(self, *a, **k):
        raise NotImplementedError("the vLLM stand-in has no offline LLM class")
