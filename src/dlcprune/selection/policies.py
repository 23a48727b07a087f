"""Selection policies: scores -> indices to keep. Pure numpy, no torch. (By name, with the
baselines, they are the methods of ``dlcprune.methods``.)

Every policy is class-stratified: class c keeps round(n_c * keep) samples (Python's round, ties
to even), and at least one, chosen within the class: a small keep never drops a class whole. With ``labels=None`` (data without classes) the whole set is
one class. Scores follow the project's convention: one per sample, higher = harder. Random draws
use ``numpy.random.default_rng(seed)``, classes visited in increasing label order, so the same
scores, labels, keep and seed give identical indices.
"""
from __future__ import annotations

import numbers
from typing import Callable

import numpy as np

from ..errors import DlcpruneError


def is_real(value) -> bool:
    """A plain number (numpy scalars included), not a bool and not a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_whole(value) -> bool:
    """A whole number (numpy integers included), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_keep(keep: float) -> float:
    """``keep`` is the fraction KEPT, in (0, 1]."""
    if not (is_real(keep) and 0.0 < keep <= 1.0):
        raise DlcpruneError(f"keep must be a fraction in (0, 1] (the share of samples KEPT), got {keep!r}")
    return float(keep)


def check_positions(indices, size: int) -> np.ndarray:
    """(K,) int64 positions of samples, each in 0..size-1 (K >= 1): a boolean mask or fractional or
    negative numbers (which numpy would read as positions from the end) are refused."""
    arr = np.asarray(indices.detach().cpu().numpy() if hasattr(indices, "detach") else indices)
    if arr.dtype == bool:
        raise DlcpruneError("indices are positions, and these are a boolean mask: pass np.flatnonzero(mask)")
    if arr.ndim != 1 or len(arr) == 0 or not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= size:
        raise DlcpruneError(f"indices must be a non-empty 1-d array of whole positions in 0..{size - 1}")
    return arr.astype(np.int64)


def check_seed(seed: int) -> int:
    """A seed is a whole number >= 0 (None would make the draw irreproducible)."""
    if not (is_whole(seed) and seed >= 0):
        raise DlcpruneError(f"seed must be a whole number >= 0 (the same seed gives the same selection), got {seed!r}")
    return int(seed)


def check_labels(labels, *, samples: int | None = None) -> np.ndarray:
    """(N,) int64 class ids of ``labels``, one per sample: whole numbers as they are (any range),
    strings, bools or whole floats numbered in sorted order. ``samples``: the N the labels must have.
    Cheap for integer labels (no sort): policies check them on every call."""
    if hasattr(labels, "detach"):  # a torch tensor, also one that requires grad
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise DlcpruneError(f"labels must be one class id per sample, a 1-D array; got shape {arr.shape}")
    if samples is not None and len(arr) != samples:
        raise DlcpruneError(f"need one label per sample: {len(arr)} labels for {samples} samples")
    if len(arr) == 0:
        raise DlcpruneError("no samples to select from: the labels are empty")
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
        bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))][0]
        raise DlcpruneError(f"labels must be class ids (whole numbers or strings), found {bad.item()!r}")
    if arr.dtype.kind not in "biufUSO":
        raise DlcpruneError(f"labels must be class ids (whole numbers or strings), got dtype {arr.dtype}")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    try:
        codes = np.unique(arr, return_inverse=True)[1]
    except TypeError:  # an object array of mixed types
        raise DlcpruneError("labels must be class ids of one kind (all whole numbers or all strings)") from None
    return codes.reshape(-1).astype(np.int64)


def class_codes(labels, *, samples: int | None = None) -> np.ndarray:
    """(N,) int64 classes 0..C-1 of ``labels`` (:func:`check_labels`), numbered in sorted order, so
    labels already 0..C-1 stay as they are."""
    return np.unique(check_labels(labels, samples=samples), return_inverse=True)[1].reshape(-1).astype(np.int64)


def class_counts(labels: np.ndarray, keep: float) -> dict[int, int]:
    """How many samples each class keeps: {label: max(1, round(n_c * keep))}. At least one, since
    a fine-tune on a subset missing a class cannot learn it, whatever its accuracy elsewhere.
    Python's ``round`` halves to even: n_c * keep = 2.5 keeps 2, 3.5 keeps 4."""
    keep = check_keep(keep)
    values, sizes = np.unique(labels, return_counts=True)
    return {int(c): max(1, round(int(n) * keep)) for c, n in zip(values, sizes)}


def stratify(labels: np.ndarray, *, keep: float, seed: int,
             choose: Callable[[np.ndarray, int, np.random.Generator], np.ndarray]) -> np.ndarray:
    """Class-stratified selection: sorted int64 indices of the kept samples.

    For each class in increasing label order, ``choose(members, n_keep, rng)`` returns positions
    into ``members`` (that class's indices, ascending) of its ``class_counts`` picks; one
    ``numpy.random.default_rng(seed)`` is shared by all classes, so a seed fixes the whole draw.
    """
    rng = np.random.default_rng(seed)
    kept = []
    for c, n_keep in class_counts(labels, keep).items():
        members = np.flatnonzero(labels == c)
        picks = np.asarray(choose(members, n_keep, rng), dtype=np.int64)
        if len(picks) != n_keep or len(np.unique(picks)) != n_keep:  # a selector bug, never the user's
            raise AssertionError(f"class {c}: chose {len(picks)} distinct of {n_keep} requested")
        kept.append(members[picks])
    return np.sort(np.concatenate(kept)).astype(np.int64)


def check_scores(scores) -> np.ndarray:
    """(N,) finite float64 scores, one per sample (N >= 1)."""
    if hasattr(scores, "detach"):
        scores = scores.detach().cpu().numpy()
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise DlcpruneError(f"scores must be numbers, one per sample; got {type(scores).__name__}") from None
    if arr.ndim != 1:
        raise DlcpruneError(f"scores must be one number per sample, a 1-D array; got shape {arr.shape}")
    if len(arr) == 0:
        raise DlcpruneError("no samples to select from: the scores are empty")
    if not np.isfinite(arr).all():
        raise DlcpruneError(f"{int((~np.isfinite(arr)).sum())} score(s) are NaN or inf; re-run the scorer")
    return arr


class Policy:
    """Base class: ``select`` loops over classes and asks ``choose`` for each one's picks."""

    name = ""
    seeded = True  # False: the seed does not change the selection

    def params(self) -> dict:
        return {}

    def select(self, scores: np.ndarray, labels: np.ndarray | None = None, *, keep: float, seed: int = 0) -> np.ndarray:
        """Sorted int64 indices of the kept samples. scores: (N,), higher = harder; labels: (N,) or None."""
        scores = check_scores(scores)
        labels = np.zeros(len(scores), dtype=np.int64) if labels is None else check_labels(labels, samples=len(scores))
        return stratify(labels, keep=keep, seed=check_seed(seed),
                        choose=lambda members, n_keep, rng: self.choose(scores[members], n_keep, keep=keep, rng=rng))

    def choose(self, scores: np.ndarray, n_keep: int, *, keep: float, rng: np.random.Generator) -> np.ndarray:
        """Positions (into ``scores``, one class) of the ``n_keep`` samples to keep."""
        raise NotImplementedError


class Random(Policy):
    name = "random"

    def choose(self, scores, n_keep, *, keep, rng):
        return rng.choice(len(scores), size=n_keep, replace=False)


class Easy(Policy):
    name = "easy"
    seeded = False

    def choose(self, scores, n_keep, *, keep, rng):
        return np.argsort(scores, kind="stable")[:n_keep]


class Hard(Policy):
    name = "hard"
    seeded = False

    def choose(self, scores, n_keep, *, keep, rng):
        return np.argsort(-scores, kind="stable")[:n_keep]


class FlexRand(Policy):
    """FlexRand (Jiang et al. 2025, DESIGN.md section 3) with split gamma in (0, 1).

    Per class of n samples sorted by ascending score (stable), the first round(gamma * n) form the
    easy pool and the rest the hard pool. With budget b = keep: if gamma <= 0.5 the easy share is
    min(gamma, b/2) and the hard share b - easy; otherwise the hard share is min(1 - gamma, b/2)
    and the easy share b - hard. Counts: the capped share is rounded, round(n * share), and the
    other pool takes the rest of round(n * b), each clipped to its pool's size (any overflow moves
    to the other pool). Each count is drawn uniformly without replacement from its pool.
    gamma = 0.5 is hardness-stratified random; gamma = b/2 keeps the easiest b/2 plus random others.
    """

    name = "flexrand"

    def __init__(self, split: float = 0.5) -> None:
        if not (is_real(split) and 0.0 < split < 1.0):
            raise DlcpruneError(f"split (FlexRand's gamma) must be a number strictly between 0 and 1, got {split!r}")
        self.split = float(split)

    def params(self) -> dict:
        return {"split": self.split}

    def shares(self, n: int, n_keep: int, keep: float) -> tuple[int, int, int]:
        """(easy pool size, easy count, hard count) for a class of n keeping n_keep."""
        pool = round(n * self.split)
        if self.split <= 0.5:
            easy = min(round(n * min(self.split, keep / 2)), pool, n_keep)
            hard = n_keep - easy
        else:
            hard = min(round(n * min(1.0 - self.split, keep / 2)), n - pool, n_keep)
            easy = n_keep - hard
        if easy > pool:  # rounding left one pool short: the other takes the overflow
            easy, hard = pool, n_keep - pool
        if hard > n - pool:
            easy, hard = n_keep - (n - pool), n - pool
        return pool, easy, hard

    def choose(self, scores, n_keep, *, keep, rng):
        order = np.argsort(scores, kind="stable")
        pool, n_easy, n_hard = self.shares(len(scores), n_keep, keep)
        easy = rng.choice(order[:pool], size=n_easy, replace=False)
        hard = rng.choice(order[pool:], size=n_hard, replace=False)
        return np.concatenate([easy, hard])


def ccs_hard_cut(keep: float) -> float:
    """CCS's default share of hardest samples removed before sampling, by keep fraction: the
    CIFAR-10 settings of Zheng et al. (2023): 0 for keep >= 0.5, 0.1 down to keep 0.2, 0.3 below."""
    return 0.0 if keep >= 0.5 else 0.1 if keep >= 0.2 else 0.3


class CCS(Policy):
    """Coverage-centric coreset selection (Zheng et al., ICLR 2023), applied within each class.

    Per class: remove the hardest ``round(n * cut)`` samples (at most ``n - n_keep``), split the
    rest's score range [min, max] into ``strata`` equal-width bins (the maximum falls in the last
    bin), then visit the non-empty bins from the smallest to the largest, each taking
    ``min(size, remaining_budget // remaining_bins)`` random members. The original runs on the
    whole set; we run it per class like every other policy here. ``cut=None``: ``ccs_hard_cut(keep)``.
    """

    name = "ccs"

    def __init__(self, cut: float | None = None, strata: int = 50) -> None:
        if cut is not None and not 0.0 <= cut < 1.0:
            raise DlcpruneError(f"CCS's hard cut must be a fraction in [0, 1), got {cut}")
        self.cut, self.strata = cut, int(strata)

    def params(self) -> dict:
        return {"cut": "by keep (0 / 0.1 / 0.3)" if self.cut is None else self.cut, "strata": self.strata}

    def bin_budgets(self, sizes: np.ndarray, budget: int) -> np.ndarray:
        """Samples drawn from each bin: smallest bins first, each min(size, rest // bins left)."""
        take = np.zeros(len(sizes), dtype=np.int64)
        order = [i for i in np.argsort(sizes, kind="stable") if sizes[i] > 0]
        for left, i in zip(range(len(order), 0, -1), order):
            take[i] = min(int(sizes[i]), budget // left)
            budget -= take[i]
        return take

    def choose(self, scores, n_keep, *, keep, rng):
        n = len(scores)
        cut = min(round(n * (ccs_hard_cut(keep) if self.cut is None else self.cut)), n - n_keep)
        rest = np.argsort(-scores, kind="stable")[cut:]
        s = scores[rest]
        width = (s.max() - s.min()) / self.strata
        bins = np.zeros(len(s), dtype=np.int64) if width == 0 else np.minimum(((s - s.min()) / width).astype(np.int64), self.strata - 1)
        take = self.bin_budgets(np.bincount(bins, minlength=self.strata), n_keep)
        picks = [rng.choice(rest[bins == b], size=k, replace=False) for b, k in enumerate(take) if k]
        return np.concatenate(picks) if picks else np.empty(0, dtype=np.int64)
