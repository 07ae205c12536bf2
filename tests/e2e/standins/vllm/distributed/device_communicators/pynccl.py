"""TEST STAND-IN (docs/testing.md): ``PyNcclCommunicator`` over gloo instead of NCCL.

vLLM's class runs NCCL on a GPU; here the same broadcast runs on CPU tensors through a gloo
process group built on the :class:`StatelessProcessGroup`'s store.  ``stream`` is accepted and
ignored (there are no CUDA streams on a CPU)."""

from __future__ import annotations

import datetime

import torch
import torch.distributed as dist


class PyNcclCommunicator:
    def __init__(self, group, device=None):
        self.rank, self.world_size = group.rank, group.world_size
        self.device = device
        store = dist.PrefixStore("openrlhf-weight-sync", group.store)
        self._pg = dist.ProcessGroupGloo(store, group.rank, group.world_size, datetime.timedelta(seconds=300))

    def broadcast(self, tensor: torch.Tensor, src: int, stream=None) -> None:
        if tensor.device.type != "cpu":
            raise ValueError(f"the gloo stand-in broadcasts CPU tensors, got {tensor.device}")
        opts = dist.BroadcastOptions()
        opts.rootRank = src
        self._pg.broadcast([tensor], opts).wait()

    def all_reduce(self, tensor: torch.Tensor, stream=None) -> torch.Tensor:
        self._pg.allreduce([tensor]).wait()
        return tensor
