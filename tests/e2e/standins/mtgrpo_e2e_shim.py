"""TEST STAND-INS for CUDA-only calls in upstream code, and the probes' import hooks (docs/testing.md).

Loaded by ``sitecustomize`` in every process of an end-to-end run (the launcher, and every Ray
worker, which inherit ``PYTHONPATH``) when ``MTGRPO_E2E_STANDINS=1``.  On a machine without CUDA,
after ``torch`` is imported:

* ``torch.cuda.set_device``: a no-op.  openrlhf/utils/deepspeed/deepspeed.py:97 pins the local
  rank's GPU; torch.distributed's ``init_device_mesh("cuda", ...)`` (deepspeed.py:105) does too.
* ``torch.cuda.current_device``: the CPU device.  Callers move tensors to it
  (openrlhf/trainer/ray/ppo_actor.py:171, :627, openrlhf/trainer/ray/launcher.py:136,
  openrlhf/utils/deepspeed/deepspeed.py:614, :633); openrlhf/trainer/ppo_utils/replay_buffer.py:40
  formats it into ``f"cuda:{index}"`` for an attribute that is only used by ``sample()``, which
  the trainer never calls, so formatted it reads as index 0.
* ``torch.cuda.synchronize``: a no-op (openrlhf/utils/distributed_util.py:10,
  openrlhf/trainer/ray/ppo_actor.py:605).
* ``torch.cuda.current_stream``: None, the ``stream`` argument of the weight broadcast
  (openrlhf/trainer/ray/ppo_actor.py:436, openrlhf/trainer/ray/vllm_worker_wrap.py:46), which
  the gloo stand-in of PyNcclCommunicator ignores.

With ``MTGRPO_E2E_PROBE_DIR`` set, the probes of :mod:`mtgrpo_e2e_probe` are attached to
``NaiveReplayBuffer.append`` and ``ActorPPOTrainer.ppo_train`` when those modules are imported.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading

_installed = {"done": False}
_tls = threading.local()


class _CpuDevice(str):
    """``"cpu"`` for ``tensor.to(...)``; formatted into a "cuda:{index}" string it reads as 0."""

    def __format__(self, spec):
        return format(0, spec)


CPU_DEVICE = _CpuDevice("cpu")


def _patch_torch(torch) -> None:
    if torch.cuda.is_available():
        return  # a real GPU: nothing to stand in for
    cuda = torch.cuda

    def set_device(device):
        return None

    def current_device():
        return CPU_DEVICE

    def synchronize(device=None):
        return None

    def current_stream(device=None):
        return None

    cuda.set_device, cuda.current_device = set_device, current_device
    cuda.synchronize, cuda.current_stream = synchronize, current_stream


def _attach_replay_buffer(module) -> None:
    import mtgrpo_e2e_probe

    mtgrpo_e2e_probe.wrap_replay_buffer(module)


def _attach_ppo_actor(module) -> None:
    import mtgrpo_e2e_probe

    mtgrpo_e2e_probe.wrap_policy_trainer(module)


HOOKS = {
    "torch": _patch_torch,
    "openrlhf.trainer.ppo_utils.replay_buffer": _attach_replay_buffer,
    "openrlhf.trainer.ray.ppo_actor": _attach_ppo_actor,
}


class _Loader(importlib.abc.Loader):
    def __init__(self, inner, name):
        self._inner, self._name = inner, name

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        HOOKS[self._name](module)

    def __getattr__(self, item):
        return getattr(self._inner, item)


class _Finder(importlib.abc.MetaPathFinder):
    """Post-import hooks; re-entrancy guarded (other finders may ask the whole meta path too)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in HOOKS:
            return None
        busy = getattr(_tls, "busy", None)
        if busy is None:
            busy = _tls.busy = set()
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                        spec.loader = _Loader(spec.loader, fullname)
                    return spec
            return None
        finally:
            busy.discard(fullname)


def install() -> None:
    if _installed["done"]:
        return
    _installed["done"] = True
    sys.meta_path.insert(0, _Finder())
    for name, hook in HOOKS.items():
        if name in sys.modules:
            hook(sys.modules[name])
