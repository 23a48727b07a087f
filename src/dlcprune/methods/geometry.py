"""Shared pieces of the geometry methods: per-class selectors and farthest-first traversal.

Distances are computed one centre at a time against all points (memory linear in N, never an
N x N matrix), in float64.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..selection import stratify
from .base import Method


class ClassSelector(Method):
    """A method that picks within each class directly (no per-sample score)."""

    def select(self, *, keep: float, seed: int = 0) -> np.ndarray:
        return stratify(self.inputs_.labels, keep=keep, seed=seed, choose=self.choose)

    def choose(self, members: np.ndarray, n_keep: int, rng: np.random.Generator) -> np.ndarray:
        """Positions into ``members`` (one class's pool indices) of its ``n_keep`` picks."""
        raise NotImplementedError


def farthest_first(first: int, n_pick: int, distances_from: Callable[[int], np.ndarray]) -> np.ndarray:
    """Greedy k-center: start at ``first``, then repeatedly add the point farthest from the chosen
    ones (largest distance to its nearest chosen point; ties: lowest position).

    ``distances_from(p)``: (n,) distances from point p to every point. Returns the n_pick picks in order.
    """
    if n_pick == 0:
        return np.empty(0, dtype=np.int64)
    picks = [first]
    nearest = distances_from(first).astype(np.float64)
    nearest[first] = -np.inf
    for _ in range(n_pick - 1):
        p = int(np.argmax(nearest))
        picks.append(p)
        nearest = np.minimum(nearest, distances_from(p))
        nearest[picks] = -np.inf
    return np.asarray(picks, dtype=np.int64)


def euclidean_from(x: np.ndarray) -> Callable[[int], np.ndarray]:
    """distances_from(p) = ||x_i - x_p||_2 for all i, one row at a time. x: (n, D)."""
    x = np.asarray(x, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    return lambda p: np.sqrt(np.maximum(sq - 2.0 * (x @ x[p]) + sq[p], 0.0))
