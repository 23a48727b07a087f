"""Nested global weight masks, applied in place and undone bit-exactly.

Level k masks the ``counts[k]`` least important weights of the whole group (all tensors pooled):
``counts[0] = 0`` and each level masks ``round(step * remaining)`` more, exactly what
``torch.nn.utils.prune.global_unstructured(..., amount=step)`` applied k times does. Because the
masks are nested, level k is simply "importance <= thresholds[k]" with one global threshold per
level, so no per-level mask or model copy is ever stored:

- importance = |w| (magnitude masking, the paper's default) or a seeded uniform random priority
  per weight (random masking);
- thresholds are exact order statistics found by a two-pass radix selection over the float32 bit
  patterns, one tensor at a time, so memory stays one tensor's worth however large the model;
- applying level k zeroes, in place, the weights at or below thresholds[k]; masks only grow;
- before the first level, the values of every weight the LAST level will zero are copied to the
  CPU (sparsity x model size; nothing else is kept); on exit, also on error or Ctrl-C, they are
  written back with ``masked_scatter_``, which restores the original bits (signed zeros included).
Ties at a threshold are masked together, so a level can mask a few more weights than its count
when weights share a magnitude (exact zeros, quantised weights).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from .errors import DlcpruneError
from .selection import is_real, is_whole

MAGNITUDE, RANDOM = "magnitude", "random"
NOTHING = -1.0  # a threshold below every importance: masks nothing


def level_counts(total: int, *, levels: int, step: float) -> np.ndarray:
    """Weights masked at levels 0..levels-1, shape (levels,), int64.

    counts[0] = 0 and counts[k] = counts[k-1] + round(step * (total - counts[k-1])), the count
    ``global_unstructured(amount=step)`` reaches after k applications (Python's round, as torch).
    Sparsity s_k = counts[k] / total ~= 1 - (1 - step) ** k.
    """
    counts = [0]
    for _ in range(levels - 1):
        counts.append(counts[-1] + round(step * (total - counts[-1])))
    return np.array(counts, dtype=np.int64)


def kth_smallest(chunks: Callable[[], Iterable[torch.Tensor]], ranks: Sequence[int]) -> np.ndarray:
    """Exact order statistics of non-negative float32 values given in several tensors.

    ``chunks`` is a zero-argument callable returning a fresh iterable of tensors (it is read
    twice); ``ranks`` are 1-based. Two passes of histograms over the float32 bit patterns (which
    sort like the values when non-negative): the high 16 bits locate each rank's bucket, the low 16
    bits inside those buckets give the exact value. Memory: one tensor plus 65,536 x len(ranks) counts.
    Returns float64 values, shape (len(ranks),).
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    if len(ranks) == 0:
        return np.zeros(0)
    high_hist = torch.zeros(1 << 16, dtype=torch.int64)
    total = 0
    for t in chunks():
        bits = _bits(t)
        high_hist += torch.bincount((bits >> 16).long(), minlength=1 << 16).cpu()
        total += bits.numel()
    if ranks.min() < 1 or ranks.max() > total:
        raise ValueError(f"ranks must lie in 1..{total}")
    cum = high_hist.cumsum(0).numpy()
    buckets = np.searchsorted(cum, ranks)  # first bucket whose cumulative count reaches the rank
    within = ranks - np.where(buckets > 0, cum[np.maximum(buckets - 1, 0)], 0)
    wanted = np.unique(buckets)
    slot_of = torch.full((1 << 16,), -1, dtype=torch.int64)
    slot_of[torch.from_numpy(wanted)] = torch.arange(len(wanted))
    low_hist = torch.zeros(len(wanted) << 16, dtype=torch.int64)
    for t in chunks():
        bits = _bits(t).long()
        slots = slot_of.to(bits.device)[bits >> 16]
        hit = slots >= 0
        keys = (slots[hit] << 16) | (bits[hit] & 0xFFFF)
        low_hist += torch.bincount(keys, minlength=len(wanted) << 16).cpu()
    low_cum = low_hist.view(len(wanted), 1 << 16).cumsum(1).numpy()
    slot = np.searchsorted(wanted, buckets)
    low = np.array([np.searchsorted(low_cum[s], r) for s, r in zip(slot, within)], dtype=np.int64)
    return ((buckets << 16) | low).astype(np.int32).view(np.float32).astype(np.float64)


def _bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().reshape(-1).float()
    if bool((t < 0).any()):
        raise ValueError("kth_smallest needs non-negative values")
    return t.view(torch.int32)


class NestedMasks:
    """K nested global masks over a group of weight tensors (see the module docstring).

    weights: the tensors to mask (parameters of one model, any shapes and float dtypes);
    levels: K; step: fraction of the REMAINING weights masked at each new level; or instead
    sparsities: the fraction masked at each level, strictly increasing (e.g. 0, 0.1, ..., 0.4);
    method: "magnitude" or "random"; seed: for random masking.
    After construction, ``counts_`` (K,) and ``thresholds_`` (K,) hold the plan and
    ``sparsity_`` (K,) the planned fraction masked at each level.
    """

    def __init__(self, weights: Sequence[torch.Tensor], *, levels: int = 0, step: float = 0.0,
                 sparsities: Sequence[float] | None = None, method: str = MAGNITUDE, seed: int = 0) -> None:
        if method not in (MAGNITUDE, RANDOM):
            raise DlcpruneError(f"masking method must be {MAGNITUDE!r} or {RANDOM!r}, got {method!r}")
        weights = list(weights)
        if not weights or not all(isinstance(w, torch.Tensor) and w.is_floating_point() for w in weights):
            raise DlcpruneError("weights must be a non-empty list of floating-point torch tensors (e.g. "
                                "[m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)])")
        total = sum(w.numel() for w in weights)
        if sparsities is not None:  # explicit levels: counts round(s_k * total), strictly increasing
            if levels or step:
                raise DlcpruneError("give either sparsities or levels and step, not both")
            s = np.asarray(sparsities, dtype=np.float64)
            if s.ndim != 1 or len(s) < 1 or s[0] < 0 or s[-1] >= 1 or (np.diff(s) <= 0).any():
                raise DlcpruneError(f"sparsities must increase strictly within [0, 1), got {s.tolist()}")
            counts = np.array([round(v * total) for v in s], dtype=np.int64)
            levels, step = len(s), float("nan")
        elif not (is_whole(levels) and levels >= 1 and is_real(step) and 0.0 < step < 1.0):
            raise DlcpruneError(f"need a whole number of levels >= 1 and 0 < step < 1, got levels={levels!r}, step={step!r}")
        else:
            counts = level_counts(total, levels=levels, step=step)
        self.weights, self.levels, self.step, self.method, self.seed = weights, levels, step, method, seed
        self.counts_ = counts
        self.sparsity_ = self.counts_ / total
        positive = self.counts_ > 0
        self.thresholds_ = np.full(levels, NOTHING)
        imp = lambda: (self.importance(i, w) for i, w in enumerate(self.weights))
        self.thresholds_[positive] = kth_smallest(imp, self.counts_[positive])

    def importance(self, i: int, w: torch.Tensor) -> torch.Tensor:
        """Importance of each entry of weight i (float32, same shape); lower is masked first.

        For magnitude masking this is |w| of the CURRENT weights: entries already zeroed have
        importance 0, below every later threshold, so it ranks them as the original |w| did.
        """
        if self.method == MAGNITUDE:
            return w.detach().abs().float()
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return torch.rand(w.shape, generator=gen).to(w.device)

    @contextlib.contextmanager
    def applied(self) -> Iterator["LevelSetter"]:
        """Context in which ``set_level(k)`` zeroes level k's weights and ``set_level.reset()`` brings
        the original weights back; they are restored on exit too."""
        last = self.thresholds_[-1]
        with torch.no_grad():
            saved = [w[self.importance(i, w) <= last].cpu() for i, w in enumerate(self.weights)]
        setter = LevelSetter(self, saved)
        try:
            yield setter
        finally:
            setter.reset()


class LevelSetter:
    """Moves the masked weights from one level to a higher one (masks only grow), or back to level 0."""

    def __init__(self, masks: NestedMasks, saved: list[torch.Tensor]) -> None:
        self.masks, self.saved, self.level = masks, saved, 0

    def __call__(self, level: int) -> None:
        if level < self.level:
            raise ValueError(f"masks only grow: cannot go from level {self.level} back to {level}; reset() first")
        t = self.masks.thresholds_[level]
        with torch.no_grad():
            for i, w in enumerate(self.masks.weights):
                w.masked_fill_(self.masks.importance(i, w) <= t, 0)
        self.level = level

    def reset(self) -> None:
        """The original weights, bit-exactly: every entry the last level can zero is written back
        from the saved copy (the entries at or below the last threshold are the same set at every
        level, since zeroed entries have importance 0 under magnitude masking)."""
        last = self.masks.thresholds_[-1]
        with torch.no_grad():
            for i, w in enumerate(self.masks.weights):
                w.masked_scatter_(self.masks.importance(i, w) <= last, self.saved[i].to(w.device))
        self.level = 0
