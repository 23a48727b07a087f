"""Herding (Welling, 2009; as used for coresets by Chen et al. 2010 and DeepCore), per class.

Greedily add the sample that brings the mean of the chosen features closest to the class mean:
step t picks argmin_x ||(t + 1) mu - (sum of chosen + x)||_2 among the samples not chosen yet
(ties: lowest position). Deterministic (no seed). DeepCore's code takes the argmax of that
distance, which contradicts the method's definition; we follow the definition.
"""
from __future__ import annotations

import numpy as np

from ..selection import FlexRand, stratify
from .base import METHODS, Method
from .geometry import ClassSelector


def herding_order(x: np.ndarray, n_pick: int) -> np.ndarray:
    """The first ``n_pick`` positions of the herding sequence of the rows of x (n, D)."""
    if n_pick == 0:
        return np.empty(0, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    mu, total = x.mean(0), np.zeros(x.shape[1])
    sq = np.einsum("ij,ij->i", x, x)
    free = np.ones(len(x), dtype=bool)
    picks = []
    for t in range(n_pick):
        target = (t + 1) * mu - total
        dist = sq - 2.0 * (x @ target)  # ||target - x||^2 minus the constant ||target||^2
        dist[~free] = np.inf
        p = int(np.argmin(dist))
        picks.append(p)
        free[p] = False
        total += x[p]
    return np.asarray(picks, dtype=np.int64)


@METHODS.register("herding", summary="Herding on pre-trained features: chosen mean tracks the class mean (training-free)")
class Herding(ClassSelector):
    name = "herding"
    seeded = False
    uses = ("features",)

    def fit(self, inputs):
        super().fit(inputs)
        self._orders: dict[int, np.ndarray] = {}  # per class (first member), the longest sequence so far
        return self

    def choose(self, members, n_keep, rng):
        order = self._orders.get(int(members[0]))
        if order is None or len(order) < n_keep:  # the sequence does not depend on keep: extend and reuse
            order = self._orders[int(members[0])] = herding_order(self.inputs_.features[members], n_keep)
        return order[:n_keep]


@METHODS.register("flexrand-herding", summary="DLC + FlexRand's easy/hard pools (gamma 0.5), each filled by herding "
                                                "inside the pool: coverage within difficulty strata (training-free)")
class FlexRandHerding(Method):
    """FlexRand's pools and shares (``FlexRand.shares``, split gamma) per class, but each pool's
    share is the start of the herding sequence of that pool's features (its mean tracks the pool's
    mean) instead of a random draw. Deterministic (no seed)."""

    name = "flexrand-herding"
    uses = ("dlc_scores", "features")
    seeded = False

    def __init__(self, split: float = 0.5) -> None:
        self.policy = FlexRand(split)

    def params(self) -> dict:
        return self.policy.params()

    def select(self, *, keep: float, seed: int = 0) -> np.ndarray:
        scores, features = self.inputs_.dlc_scores, self.inputs_.features

        def choose(members: np.ndarray, n_keep: int, rng) -> np.ndarray:
            order = np.argsort(scores[members], kind="stable")
            pool, n_easy, n_hard = self.policy.shares(len(members), n_keep, keep)
            easy, hard = order[:pool], order[pool:]
            return np.concatenate([easy[herding_order(features[members[easy]], n_easy)],
                                   hard[herding_order(features[members[hard]], n_hard)]])

        return stratify(self.inputs_.labels, keep=keep, seed=seed, choose=choose)
