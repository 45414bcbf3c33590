"""Which process am I: one process, or one rank of ``torchrun`` / ``accelerate launch --multi_gpu``.

Sharding needs only ranks and barriers, so a gloo process group is enough and no accelerator
is assumed: the same code shards on GPU and CPU machines. (``accelerate launch --cpu`` starts
one process only.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass
class Topology:
    rank: int = 0
    world: int = 1
    _dist: Any = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self._dist is not None:
            self._dist.barrier()


def detect_topology() -> Topology:
    """Single process unless started by a distributed launcher (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Topology()
    import torch.distributed as dist  # only multi-process runs pay for this import

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return Topology(dist.get_rank(), dist.get_world_size(), dist)
