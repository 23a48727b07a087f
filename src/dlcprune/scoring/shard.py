"""Data-parallel scoring: which samples this process scores, and the collectives that join ranks.

Under ``torchrun`` (or accelerate / SLURM launching torchrun) ``torch.distributed`` is initialised
and each rank scores one contiguous block of the samples; rank 0 holds the joined results. In a
plain process everything degenerates to one rank holding all samples, with no communication, so
the scorer has a single code path. Backend: ``gloo`` on CPU, ``nccl`` when ranks use CUDA.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist

from ..errors import DlcpruneError


def shard_bounds(n: int, world: int) -> list[tuple[int, int]]:
    """[start, stop) of each rank's block: sizes differ by at most one, the first n % world one larger."""
    base, extra = divmod(n, world)
    starts = np.cumsum([0] + [base + (r < extra) for r in range(world)])
    return [(int(starts[r]), int(starts[r + 1])) for r in range(world)]


def init_from_environment(device: str | None) -> None:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); no-op otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")


def _collective_device() -> torch.device:
    nccl = dist.get_backend() == "nccl"
    return torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def on_main(fn):
    """Run ``fn`` on rank 0 only (e.g. checking the output folder); its result, or the
    DlcpruneError it raised, reaches every rank, so no rank waits forever for a failed one."""
    if not dist.is_initialized():
        return fn()
    outcome = None
    if dist.get_rank() == 0:
        try:
            outcome = (True, fn())
        except DlcpruneError as err:
            outcome = (False, str(err))
    box = [outcome]
    dist.broadcast_object_list(box, src=0, device=_collective_device())
    ok, value = box[0]
    if not ok:
        raise DlcpruneError(value)
    return value


class Shard:
    """This process's block of ``n`` samples, and gathering results in sample order on rank 0."""

    def __init__(self, n: int, *, local: bool = False) -> None:
        """``local``: this process alone, even under torchrun (work that one rank does by itself)."""
        self.distributed = not local and dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.bounds = shard_bounds(n, self.world)
        self.start, self.stop = self.bounds[self.rank]
        self.device = _collective_device() if self.distributed else torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather(self, local: torch.Tensor) -> torch.Tensor | None:
        """Blocks (n_r, ...) of every rank, concatenated in rank (= sample) order on rank 0; None elsewhere."""
        if not self.distributed:
            return local
        longest = max(stop - start for start, stop in self.bounds)
        padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=self.device)
        padded[:len(local)] = local.to(self.device)
        parts = [torch.empty_like(padded) for _ in range(self.world)] if self.is_main else None
        dist.gather(padded, parts, dst=0)
        if not self.is_main:
            return None
        return torch.cat([p[:stop - start].cpu() for p, (start, stop) in zip(parts, self.bounds)])

    def share(self, value):
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.distributed:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]
