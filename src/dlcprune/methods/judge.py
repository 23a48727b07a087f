"""The validation judge behind ``auto`` and the verdict: how well would a linear probe trained on
a subset do, and is that better than a random subset of the same size?

``ProbeJudge`` trains a logistic-regression probe on the frozen features of a subset of the
selection pool and says which validation samples it classifies correctly. To make hundreds of fits
cheap it standardises the features once with the pool's statistics, keeps their leading principal
components (``dims``), fits in float32 and warm-starts every fit from the whole pool's probe; the
objective is the bench's probe (cross-entropy + l2/2 ||W||^2, L-BFGS).

``bootstrap`` turns per-draw correctness into an estimate with a 95% interval: validation samples
are resampled once per round and shared by both sides (the comparison is paired over them), and
each side's draws (seeded selections) are resampled on their own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ProbeJudge:
    """Validation correctness of probes trained on subsets of a pool.

    features (N, D), labels (N,): the selection pool; val_features (M, D), val_labels (M,): the
    held-out validation split (never selected from, never trained on).
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, val_features: np.ndarray, val_labels: np.ndarray, *,
                 num_classes: int, l2: float = 1e-3, dims: int | None = 256, max_iter: int = 100,
                 dtype: str = "float32") -> None:
        import torch

        x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        v = torch.as_tensor(np.asarray(val_features), dtype=torch.float64)
        mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-8)
        x, v = (x - mean) / std, (v - mean) / std
        if dims is not None and dims < x.shape[1]:
            # leading principal directions of the standardised pool, from an SVD of X: eigh of X^T X
            # failed to converge on pools smaller than D (rank-deficient, many zero eigenvalues)
            basis = torch.linalg.svd(x, full_matrices=False).Vh[:dims].T
            x, v = x @ basis, v @ basis
        # fits in float32 by default: 1.4x faster than float64; on the demo's data the same choices,
        # validation accuracies within 0.33 points of float64 fits (benchmarks/judge_precision.py)
        self.x, self.v = x.to(getattr(torch, dtype)), v.to(getattr(torch, dtype))
        self.labels, self.val_labels = np.asarray(labels), np.asarray(val_labels)
        self.num_classes, self.l2, self.max_iter = num_classes, l2, max_iter
        self.fits = 0
        self._start = None
        self._start = self._fit(np.arange(len(self.labels)))

    def _fit(self, kept: np.ndarray):
        from ..training.probe import fit_softmax

        self.fits += 1
        return fit_softmax(self.x[kept], self.labels[kept], num_classes=self.num_classes, l2=self.l2,
                           max_iter=self.max_iter, init=self._start)

    def correct(self, kept: np.ndarray | None = None) -> np.ndarray:
        """(M,) bool: validation samples classified correctly by the probe trained on the pool
        samples ``kept`` (None: the whole pool). An empty subset trains nothing: all wrong."""
        if kept is not None and len(kept) == 0:
            return np.zeros(len(self.val_labels), dtype=bool)
        w, b = self._start if kept is None else self._fit(np.asarray(kept))
        return ((self.v @ w.T + b).argmax(1).numpy() == self.val_labels)


@dataclass(frozen=True)
class Estimate:
    """A value (a fraction, e.g. an accuracy or an accuracy difference) with a bootstrap interval."""

    value: float
    low: float
    high: float

    def points(self) -> list[float]:
        """[value, low, high] in percentage points, rounded for manifests."""
        return [round(100 * self.value, 3), round(100 * self.low, 3), round(100 * self.high, 3)]


def replicates(correct: dict[str, np.ndarray], *, rounds: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """(rounds,) bootstrap replicates of each selection's mean validation accuracy.

    correct[label]: (R, M) bool, one row per draw of that selection. Every round resamples the M
    validation samples once for all selections (so their differences are paired) and each
    selection's own draws, with replacement.
    """
    rng = np.random.default_rng(seed)
    m = next(iter(correct.values())).shape[1]
    out: dict[str, list[np.ndarray]] = {label: [] for label in correct}
    for start in range(0, rounds, CHUNK):  # (chunk, M) weights at a time: memory bounded for large M
        n = min(CHUNK, rounds - start)
        weights = rng.multinomial(m, np.full(m, 1.0 / m), size=n) / m
        for label, c in correct.items():
            per_draw = weights @ c.T.astype(np.float64)  # (n, R): accuracy of each draw
            picks = rng.integers(len(c), size=(n, len(c)))
            out[label].append(np.take_along_axis(per_draw, picks, axis=1).mean(1))
    return {label: np.concatenate(parts) for label, parts in out.items()}


CHUNK = 250  # bootstrap rounds per batch of resampling weights


def bootstrap(a: np.ndarray, b: np.ndarray | None = None, *, rounds: int = 2000, seed: int = 0) -> np.ndarray:
    """(rounds,) replicates of mean accuracy of ``a`` (minus that of ``b``, paired); see ``replicates``."""
    reps = replicates({"a": a, **({"b": b} if b is not None else {})}, rounds=rounds, seed=seed)
    return reps["a"] - reps.get("b", 0.0)


def simultaneous(correct: dict[str, np.ndarray], reference: str, *, rounds: int = 2000,
                 seed: int = 0) -> tuple[dict[str, float], np.ndarray]:
    """Gains of every selection over ``reference`` and the bootstrap distribution of their largest
    error: (gains, (rounds,) max over selections of (replicate gain - gain)). With ``q`` its
    (1 - a) quantile, every gain_l - q is a lower bound at simultaneous level 1 - a (max-type
    bootstrap: it accounts for choosing the best of several)."""
    reps = replicates(correct, rounds=rounds, seed=seed)
    mean = {label: float(c.mean()) for label, c in correct.items()}
    others = [label for label in correct if label != reference]
    gains = {label: mean[label] - mean[reference] for label in others}
    errors = np.stack([(reps[label] - reps[reference]) - gains[label] for label in others])
    return gains, errors


def estimate(a: np.ndarray, b: np.ndarray | None = None, *, rounds: int = 2000, seed: int = 0,
             level: float = 0.95) -> Estimate:
    """Mean accuracy of ``a`` (minus ``b``'s) with its central ``level`` bootstrap interval."""
    value = a.mean() - (b.mean() if b is not None else 0.0)
    reps = bootstrap(a, b, rounds=rounds, seed=seed)
    low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(value), float(low), float(high))


def signed_points(fraction: float) -> str:
    """A difference of accuracies (fractions) in signed points, 2 decimals; never "-0.00"."""
    return f"{round(100 * fraction, 2) + 0.0:+.2f}"


def verdict_line(gain: Estimate) -> str:
    """One plain line from the difference (chosen - random) and its 95% interval."""
    interval = f"[{signed_points(gain.low)}, {signed_points(gain.high)}]"
    if gain.low > 0:
        return f"beats random by {100 * abs(gain.value):.2f} points {interval}"
    if gain.high < 0:
        return f"worse than random by {100 * abs(gain.value):.2f} points {interval}"
    return f"level with random ({signed_points(gain.value)} points {interval})"
