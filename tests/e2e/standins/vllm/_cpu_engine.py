"""TEST STAND-IN (docs/testing.md): an ``AsyncLLMEngine``-like engine that generates on the CPU.

What OpenRLHF's ``RolloutRayActor`` (openrlhf/trainer/ray/vllm_engine.py) needs from vLLM, and
how it is done here:

* ``generate(TokensPrompt, SamplingParams, request_id)``: an async generator whose last item is a
  ``RequestOutput``.  Sampling is a plain loop over the Hugging Face model's forward pass with a
  KV cache, honouring what vLLM honours for the parameters OpenRLHF and our rollout set:
  ``max_tokens`` (None: up to ``max_model_len``), ``min_tokens``, ``temperature`` (0: greedy),
  ``top_k``, ``top_p``, ``seed``, ``stop_token_ids`` and the model's EOS (the stop token is part
  of ``token_ids``), ``ignore_eos``, ``stop`` strings, ``logprobs`` (raw log-softmax, or after
  temperature/top-k/top-p with ``logprobs_mode="processed_logprobs"``).  ``finish_reason`` is
  ``"stop"`` or ``"length"`` as in vLLM.
* ``collective_rpc(method, args=...)``: calls ``method`` on the engine's one worker, an object
  whose class mixes in the ``worker_extension_cls`` OpenRLHF names
  (``openrlhf.trainer.ray.vllm_worker_wrap.WorkerWrap``), exactly as vLLM's worker does.  So
  OpenRLHF's own ``init_process_group`` / ``update_weight`` run.  The worker's device is the
  CPU: while it runs, tensor factories asked for ``device="cuda"`` get the CPU
  (vllm_worker_wrap.py:40 allocates the receive buffer on "cuda").  Weights arrive through
  ``model_runner.model.load_weights``, by parameter name, as in vLLM.
* ``sleep`` / ``wake_up`` / ``is_sleeping`` / ``reset_prefix_cache`` / ``pause_generation`` /
  ``resume_generation`` / ``output_processor.get_num_unfinished_requests``: bookkeeping only
  (there is no GPU memory to release and no prefix cache).

Only tensor parallel size 1 is supported.  Every call is logged for the tests when
``MTGRPO_E2E_PROBE_DIR`` is set (see tests/e2e/standins/mtgrpo_e2e_probe.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import importlib
import socket
import threading
import time
from types import SimpleNamespace
from typing import Dict, List, Optional

import torch
from torch.overrides import TorchFunctionMode

from vllm import CompletionOutput, Logprob, RequestOutput

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32, "auto": torch.bfloat16}


def _probe():
    try:
        import mtgrpo_e2e_probe
    except ImportError:
        return None
    return mtgrpo_e2e_probe


class _CudaFactoriesOnCpu(TorchFunctionMode):
    """Inside the worker, ``device="cuda"`` means the worker's device, which is the CPU."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        dev = kwargs.get("device")
        if dev is not None and torch.device(dev).type == "cuda":
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


class _LoadableModel:
    """``model_runner.model`` of a vLLM worker: ``load_weights(weights=[(name, tensor), ...])``."""

    def __init__(self, hf_model):
        self.hf_model = hf_model
        self.params = dict(hf_model.named_parameters())
        self.loaded: List[str] = []

    @torch.no_grad()
    def load_weights(self, weights):
        for name, tensor in weights:
            if name not in self.params:
                raise KeyError(f"vLLM stand-in: unknown parameter {name!r}")
            p = self.params[name]
            if tuple(p.shape) != tuple(tensor.shape):
                raise ValueError(f"vLLM stand-in: {name} has shape {tuple(p.shape)}, got {tuple(tensor.shape)}")
            p.copy_(tensor.to(p.dtype))
            self.loaded.append(name)


class _CpuWorkerBase:
    """The attributes of a vLLM GPU worker that OpenRLHF's WorkerWrap uses."""

    def __init__(self, hf_model, dtype, max_model_len):
        self.device = torch.device("cpu")
        self.model_config = SimpleNamespace(dtype=dtype, max_model_len=max_model_len)
        self.model_runner = SimpleNamespace(model=_LoadableModel(hf_model))
        # vLLM's worker initialises torch.distributed for its tensor-parallel group (world size 1 here)
        if not torch.distributed.is_initialized():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0,
                                                 world_size=1, timeout=datetime.timedelta(minutes=10))


def _import_class(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


class _OutputProcessor:
    def __init__(self):
        self.unfinished = 0
        self._lock = threading.Lock()

    def get_num_unfinished_requests(self) -> int:
        return self.unfinished


class CpuAsyncEngine:
    def __init__(self, engine_args):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw = engine_args.kwargs
        if int(kw.get("tensor_parallel_size", 1)) != 1:
            raise NotImplementedError("the vLLM stand-in runs tensor_parallel_size=1 only")
        self.model_path = engine_args.model
        self.dtype = _DTYPES[str(kw.get("dtype", "auto"))]
        self.max_model_len = int(kw.get("max_model_len") or 4096)
        self.logprobs_mode = kw.get("logprobs_mode") or "raw_logprobs"
        self.seed = int(kw.get("seed", 0))
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, trust_remote_code=True)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype, attn_implementation="sdpa")
        self.model.eval()
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(i) for i in eos + [self.tokenizer.eos_token_id] if i is not None}
        ext = kw.get("worker_extension_cls")
        bases = (_CpuWorkerBase,) + ((_import_class(ext),) if ext else ())
        self.worker = type("CpuWorker", bases, {})(self.model, self.dtype, self.max_model_len)
        self._generator = torch.Generator().manual_seed(self.seed)
        # one thread does all model work, in order (a GPU worker runs one thing at a time)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="vllm-standin")
        self._sleeping = False
        self.output_processor = _OutputProcessor()
        self._log("loaded", model=self.model_path, dtype=str(self.dtype), seed=self.seed,
                  eos_ids=sorted(self.eos_ids), digest=self.weights_digest())

    # ------------------------------------------------------------ bookkeeping
    def _log(self, event: str, **fields) -> None:
        p = _probe()
        if p is not None:
            p.log_event("engine", event, **fields)

    def weights_digest(self) -> str:
        p = _probe()
        return p.weights_digest(self.model) if p is not None else ""

    async def is_sleeping(self) -> bool:
        return self._sleeping

    async def sleep(self, level: int = 1) -> None:
        self._sleeping = True
        self._log("sleep", level=level)

    async def wake_up(self, tags=None) -> None:
        self._sleeping = False
        self._log("wake_up", tags=tags)

    async def reset_prefix_cache(self) -> None:
        self._log("reset_prefix_cache")

    async def pause_generation(self, mode: str = "keep") -> None:
        self._log("pause_generation", mode=mode)

    async def resume_generation(self) -> None:
        self._log("resume_generation")

    # ------------------------------------------------------------ collective rpc
    def _rpc(self, method: str, args, kwargs):
        with _CudaFactoriesOnCpu():
            return getattr(self.worker, method)(*args, **kwargs)

    async def collective_rpc(self, method: str, timeout=None, args=(), kwargs=None):
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, self._rpc, method, tuple(args), dict(kwargs or {}))
        if method == "update_weight":
            name, empty_cache = args[0], (args[3] if len(args) > 3 else False)
            # OpenRLHF sets empty_cache on the last parameter of a sync (ppo_actor.py broadcast_to_vllm)
            if empty_cache:
                self._log("weights_synced", n_params=len(self.worker.model_runner.model.loaded),
                          digest=self.weights_digest())
                self.worker.model_runner.model.loaded = []
        else:
            self._log("rpc", method=method)
        return [result]

    # ------------------------------------------------------------ generation
    def _stop_ids(self, sp) -> set:
        ids = set(int(i) for i in (sp.stop_token_ids or []))
        if not sp.ignore_eos:
            ids |= self.eos_ids
        return ids

    @staticmethod
    def _process(logits: torch.Tensor, sp) -> torch.Tensor:
        """vLLM's order: temperature, then top-k, then top-p; masked entries become -inf."""
        x = logits / sp.temperature
        if sp.top_k is not None and 0 < sp.top_k < x.numel():
            kth = torch.topk(x, sp.top_k).values[-1]
            x = x.masked_fill(x < kth, float("-inf"))
        if sp.top_p < 1.0:
            sorted_x, idx = torch.sort(x, descending=True)
            probs = torch.softmax(sorted_x, -1)
            drop = probs.cumsum(-1) - probs >= sp.top_p  # keep the smallest prefix with mass >= top_p
            x = x.masked_fill(torch.zeros_like(drop).scatter(0, idx, drop), float("-inf"))
        return x

    @torch.no_grad()
    def _generate(self, prompt_ids: List[int], sp) -> CompletionOutput:
        if len(prompt_ids) >= self.max_model_len:
            raise ValueError(f"prompt of {len(prompt_ids)} tokens is longer than max_model_len={self.max_model_len}")
        room = self.max_model_len - len(prompt_ids)
        max_tokens = room if sp.max_tokens is None else min(sp.max_tokens, room)
        gen = torch.Generator().manual_seed(sp.seed) if sp.seed is not None else self._generator
        stop_ids = self._stop_ids(sp)
        greedy = sp.temperature < 1e-5
        out_ids: List[int] = []
        logprobs: Optional[List[Dict[int, Logprob]]] = [] if sp.logprobs is not None else None
        cumulative = 0.0
        finish, stop_reason = "length", None
        past, inp = None, torch.tensor([prompt_ids])
        while len(out_ids) < max_tokens:
            o = self.model(input_ids=inp, past_key_values=past, use_cache=True)
            past = o.past_key_values
            raw = o.logits[0, -1].float()
            if len(out_ids) < sp.min_tokens and stop_ids:
                raw = raw.clone()
                raw[list(stop_ids)] = float("-inf")
            if greedy:
                processed = raw
                tok = int(torch.argmax(raw))
            else:
                processed = self._process(raw, sp)
                tok = int(torch.multinomial(torch.softmax(processed, -1), 1, generator=gen))
            lp_vec = torch.log_softmax(processed if self.logprobs_mode == "processed_logprobs" else raw, -1)
            lp = float(lp_vec[tok])
            cumulative += lp
            if logprobs is not None:
                logprobs.append({tok: Logprob(logprob=lp, rank=int((lp_vec > lp_vec[tok]).sum()) + 1)})
            out_ids.append(tok)
            if tok in stop_ids:
                finish, stop_reason = "stop", tok
                break
            if sp.stop:
                text = self.tokenizer.decode(out_ids, skip_special_tokens=sp.skip_special_tokens)
                hit = next((s for s in sp.stop if s in text), None)
                if hit is not None:
                    finish, stop_reason = "stop", hit
                    break
            inp = torch.tensor([[tok]])
        shown = out_ids[:-1] if finish == "stop" and isinstance(stop_reason, int) else out_ids
        text = self.tokenizer.decode(shown, skip_special_tokens=sp.skip_special_tokens)
        return CompletionOutput(index=0, text=text, token_ids=out_ids, cumulative_logprob=cumulative,
                                logprobs=logprobs, finish_reason=finish, stop_reason=stop_reason)

    async def generate(self, prompt, sampling_params, request_id: str, **kwargs):
        if kwargs.get("lora_request") is not None:
            raise NotImplementedError("the vLLM stand-in has no LoRA")
        if isinstance(prompt, dict):
            if prompt.get("multi_modal_data"):
                raise NotImplementedError("the vLLM stand-in is text-only")
            ids = list(prompt["prompt_token_ids"])
        else:
            raise TypeError("the vLLM stand-in takes TokensPrompt inputs")
        if self._sleeping:
            raise RuntimeError("generate() on a sleeping engine (vLLM would fail the same way)")
        self.output_processor.unfinished += 1
        t0 = time.time()
        try:
            loop = asyncio.get_running_loop()
            completion = await loop.run_in_executor(self._pool, self._generate, ids, sampling_params)
        finally:
            self.output_processor.unfinished -= 1
        self._log("generate", prompt_len=len(ids), max_tokens=sampling_params.max_tokens,
                  n_out=len(completion.token_ids), finish_reason=completion.finish_reason,
                  temperature=sampling_params.temperature, logprobs=sampling_params.logprobs,
                  seconds=round(time.time() - t0, 4))
        yield RequestOutput(request_id=request_id, prompt=None, prompt_token_ids=ids, outputs=[completion])
