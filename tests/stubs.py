"""Stand-ins for the two modules a CPU machine cannot import: ``vllm`` and ``flash_attn_2_cuda``.

Only these two, and only in tests (see docs/testing.md).  ``install_into(sys.modules)``
is also used by subprocess tests through ``python -c``.
"""

import sys
import types


def make_vllm():
    vllm = types.ModuleType("vllm")
    vllm.__version__ = "0.29.0"

    class SamplingParams:
        def __init__(self, **kw):
            self.__dict__.update(kw)
            self.__dict__.setdefault("max_tokens", 16)
            self.__dict__.setdefault("logprobs", None)

    vllm.SamplingParams = SamplingParams
    vllm.LLM = object
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = dict
    utils = types.ModuleType("vllm.utils")
    utils.random_uuid = lambda: "uuid"
    vllm.inputs, vllm.utils = inputs, utils
    return {"vllm": vllm, "vllm.inputs": inputs, "vllm.utils": utils}


def install_into(modules=None):
    modules = sys.modules if modules is None else modules
    for name, mod in make_vllm().items():
        modules.setdefault(name, mod)
    modules.setdefault("flash_attn_2_cuda", types.ModuleType("flash_attn_2_cuda"))
