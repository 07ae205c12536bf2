"""TEST STAND-IN (docs/testing.md): ``StatelessProcessGroup``, as vLLM's: a TCP store shared by the
trainer's rank 0 and every engine rank, without touching the global torch.distributed group.
OpenRLHF creates it in ``openrlhf/utils/distributed_util.py:stateless_init_process_group``."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import torch.distributed as dist


@dataclass
class StatelessProcessGroup:
    rank: int
    world_size: int
    store: "dist.Store"

    @staticmethod
    def create(host: str, port: int, rank: int, world_size: int, store_timeout: int = 300) -> "StatelessProcessGroup":
        store = dist.TCPStore(host_name=host, port=port, world_size=world_size, is_master=(rank == 0),
                              timeout=datetime.timedelta(seconds=store_timeout))
        return StatelessProcessGroup(rank=rank, world_size=world_size, store=store)
