"""The masked levels of an encoder's DLC path, block by block: each block of preprocessed samples is
read once and every wanted level runs over it (the mask switched in place) before the next is read."""
from __future__ import annotations

import time

import numpy as np
import torch

from ..data import Dataset
from ..masking import NestedMasks
from ..models import Encoder
from ..progress import bar
from .checkpoint import Checkpoint, LevelRows
from .passes import check_finite, prepared_blocks
from .prototypes import prototype_losses
from .shard import Shard


class LevelLoop:
    """Per-sample losses at masked levels: blocks of preprocessed batches, every level over a block
    (its mask switched in place, then all weights restored) before the next block is read. Each
    block's losses go to ``rows`` (rank 0's per-level losses; None on the other ranks) as it ends."""

    def __init__(self, encoder: Encoder, dataset: Dataset, prototypes: torch.Tensor, labels: torch.Tensor, *,
                 masks: NestedMasks, shard: Shard, ckpt: Checkpoint, rows: LevelRows | None, batch_size: int,
                 workers: int, block_bytes: int, progress: bool, label: str = "masked levels") -> None:
        self.encoder, self.dataset, self.prototypes, self.labels = encoder, dataset, prototypes, labels
        self.masks, self.shard, self.ckpt, self.rows, self.progress, self.label = masks, shard, ckpt, rows, progress, label
        self.reading = dict(batch_size=batch_size, workers=workers, block_bytes=block_bytes)

    def run(self, todo: list[int]) -> None:
        """Fill the rows of the levels in ``todo``. One process resumes each level where its row
        ends (a block a level finished is not computed again); ranks write their shard at the end."""
        if not todo:
            return
        timings = self.ckpt.timings.setdefault("level_s", {})
        n = len(self.dataset)
        alone = self.shard.world == 1
        done = {k: self.ckpt.done(k) if alone else 0 for k in todo}
        mine = None if alone else np.empty((len(todo), n))  # a rank's own samples, joined at the end
        with self.masks.applied() as set_level, \
                bar(self.label, len(todo) * n, enabled=self.progress) as advance:
            first = min(done.values())
            advance(sum(done.values()))
            blocks = prepared_blocks(self.encoder, self.dataset, start=first, **self.reading)
            while True:
                t = time.perf_counter()  # reading + preprocessing a block, and the reset after it
                block = next(blocks, None)
                read_s = time.perf_counter() - t
                if block is None:
                    break
                start, stop = block[0][0].start, block[-1][0].stop
                for j, k in enumerate(todo):
                    if done[k] >= stop:
                        continue
                    t = time.perf_counter()
                    set_level(k)
                    losses = level_losses(self.encoder, block, self.prototypes, self.labels, advance=advance,
                                           where=f"level {k}, sparsity {self.masks.sparsity_[k]:.3f}")
                    timings[str(k)] = timings.get(str(k), 0.0) + time.perf_counter() - t
                    if alone:
                        self.rows.write(k, start, losses)
                        self.ckpt.record(k, stop)  # with the timings so far
                    else:
                        mine[j, start:stop] = losses
                t = time.perf_counter()
                set_level.reset()
                del block  # before the next one is read: one block in memory at a time
                read_s += time.perf_counter() - t
                self.ckpt.timings["level_loop_read_s"] = self.ckpt.timings.get("level_loop_read_s", 0.0) + read_s
        if alone:
            return
        for j, k in enumerate(todo):
            joined = self.shard.gather(torch.from_numpy(mine[j]))
            if self.shard.is_main:
                self.rows.write(k, 0, joined.numpy())
                self.ckpt.record(k, len(joined))


def level_losses(encoder: Encoder, block: list[tuple[range, object]], prototypes: torch.Tensor,
                  labels: torch.Tensor, *, where: str, advance) -> np.ndarray:
    """Losses (n,) float64 of one block's samples under the weights as they are now."""
    first = block[0][0].start
    out = np.empty(block[-1][0].stop - first)
    for span, inputs in block:
        z = encoder.encode(inputs)
        check_finite(z, where, offset=span.start)
        out[span.start - first:span.stop - first] = prototype_losses(z, labels[span.start:span.stop], prototypes).numpy()
        advance(len(span))
    return out
