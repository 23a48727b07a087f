"""``--levels auto``: compute only as many masking levels as the ranking needs.

The full path has K nested levels (level k at sparsity 1 - (1 - step)^k) and the DLC score is
the mean loss over all of them. The loss of a sample changes smoothly with k, so the mean can be
estimated from a subset of levels, refined coarse to fine:

1. round 1 computes every ``first_spacing``-th level and the last one;
2. the encoder has *collapsed* at the first computed level whose mean loss is within
   ``collapse`` x (the level-0 gap) of log(C): with prototype-distance logits every sample's loss
   tends to log(C) as the features lose their class structure, so later levels carry almost no
   ranking information: they are never refined and the score leaves them out, the collapsed
   level's losses standing for every level after it (EfficientNet-Lite0 collapses near 40% sparsity);
3. each next round halves the spacing below the collapse point;
4. the estimate is, per sample, the mean over all K levels of the losses interpolated linearly
   between computed levels; refinement stops once the Spearman correlation between the estimates
   of two successive rounds reaches ``stability`` (or every level below the collapse is computed).
Rank ties are broken by sample order (losses are continuous, ties are rare).

On large data the rounds run on a class-stratified subsample (:func:`planning_subsample`: 5% of
each class, at least 30 of it), and only the levels they chose up to the collapse then run on
every sample, in one level loop (on small data, where the rounds run on everything, round 1's
levels past the collapse are computed and then left out alike): a sample outside the subsample is read twice whatever the number of rounds, one in it
twice plus once per round. The floor of 30 weighs small classes more in the subsample's mean
loss, which decides the collapse. Where the subsample would exceed half the data (it would save
nothing) the rounds run on everything, as they always did.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two (N,) arrays (ranks by stable argsort)."""
    ra = np.argsort(np.argsort(a, kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(b, kind="stable"), kind="stable").astype(np.float64)
    if ra.std() == 0 or rb.std() == 0:
        return 1.0
    return float(np.corrcoef(ra, rb)[0, 1])


def interpolated_mean(losses: dict[int, np.ndarray], levels: int) -> np.ndarray:
    """(N,) mean over levels 0..levels-1 of each sample's loss, linear between computed levels
    (``losses``: level -> (N,)); beyond the last computed level its value is held."""
    ks = np.array(sorted(losses))
    stacked = np.stack([losses[k] for k in ks])  # (k', N)
    total = np.zeros(stacked.shape[1])
    for j in range(levels):
        i = int(np.searchsorted(ks, j))
        if i < len(ks) and ks[i] == j:
            total += stacked[i]
        elif i == len(ks):
            total += stacked[-1]
        else:
            w = (j - ks[i - 1]) / (ks[i] - ks[i - 1])
            total += (1 - w) * stacked[i - 1] + w * stacked[i]
    return total / levels


PLAN_FRACTION, PLAN_MIN_PER_CLASS = 0.05, 30


def planning_subsample(labels: np.ndarray, *, seed: int = 0, fraction: float = PLAN_FRACTION,
                       min_per_class: int = PLAN_MIN_PER_CLASS) -> np.ndarray:
    """Sorted sample indices: per class, ceil(fraction x its size) drawn at random (seeded), at
    least ``min_per_class`` (or the whole class when smaller)."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = min(len(members), max(min_per_class, int(np.ceil(fraction * len(members)))))
        picked.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


@dataclass
class AdaptiveLevels:
    """The refinement plan for a K-level path (see the module docstring)."""

    levels: int
    num_classes: int
    stability: float = 0.995
    collapse: float = 0.1
    first_spacing: int = 16
    spacing_: int = 0
    collapse_level_: int | None = None
    history_: list = field(default_factory=list)  # (levels computed, Spearman with the previous estimate)

    def first_round(self) -> list[int]:
        self.spacing_ = self.first_spacing
        return sorted(set(range(0, self.levels, self.first_spacing)) | {self.levels - 1})

    def used(self, computed) -> list[int]:
        """The computed levels the score is the interpolated mean of: those up to the collapse."""
        return sorted(k for k in computed if self.collapse_level_ is None or k <= self.collapse_level_)

    def next_round(self, losses: dict[int, np.ndarray]) -> list[int]:
        """Levels to compute next (ascending), given the losses so far; [] = stop."""
        if self.collapse_level_ is None:
            log_c, gap0 = np.log(self.num_classes), np.log(self.num_classes) - losses[0].mean()
            collapsed = [k for k in sorted(losses) if k > 0 and log_c - losses[k].mean() <= self.collapse * gap0]
            self.collapse_level_ = collapsed[0] if collapsed else self.levels
        estimate = interpolated_mean(losses, self.levels)
        if self.history_:
            rho = spearman(estimate, self._previous)
            self.history_[-1] = (self.history_[-1][0], rho)
            if rho >= self.stability:
                return []
        self._previous = estimate
        while self.spacing_ > 1:
            self.spacing_ //= 2
            new = [k for k in range(0, self.collapse_level_, self.spacing_) if k not in losses]
            if new:
                self.history_.append((len(losses) + len(new), None))
                return new
        return []
