"""k-Center Greedy (Sener & Savarese, 2018) and Contextual Diversity (Agarwal et al., 2020).

Both are farthest-first traversals within each class (DeepCore's ``balance=True``): the first
centre is drawn at random (seeded), then each step adds the sample farthest from its nearest
chosen centre. k-Center measures Euclidean distance between pre-trained features; Contextual
Diversity measures the symmetric KL divergence 0.5 KL(p||q) + 0.5 KL(q||p) between the class
probability vectors of a linear probe trained on the whole pool (as DeepCore, which trains a model
on the full data first). Probabilities are floored at the smallest positive float64 so the logs
are finite.
"""
from __future__ import annotations

import numpy as np

from .base import METHODS, probe_probabilities
from .geometry import ClassSelector, euclidean_from, farthest_first


@METHODS.register("kcenter", summary="k-Center Greedy on pre-trained features, per class (training-free)")
class KCenterGreedy(ClassSelector):
    name = "kcenter"
    uses = ("features",)

    def choose(self, members, n_keep, rng):
        first = int(rng.integers(len(members))) if n_keep else 0
        return farthest_first(first, n_keep, euclidean_from(self.inputs_.features[members]))


@METHODS.register("contextual-diversity", summary="Contextual Diversity: k-center on probe probabilities, symmetric KL")
class ContextualDiversity(ClassSelector):
    name = "contextual-diversity"
    uses = ("features",)

    def fit(self, inputs):
        super().fit(inputs)
        self.probabilities_ = np.maximum(probe_probabilities(inputs, self.name), np.finfo(np.float64).tiny)
        return self

    def choose(self, members, n_keep, rng):
        p = self.probabilities_[members]
        log_p = np.log(p)

        def symmetric_kl(i: int) -> np.ndarray:  # 0.5 sum (p_i - p_j)(log p_i - log p_j)
            return 0.5 * ((p[i] - p) * (log_p[i] - log_p)).sum(1)

        first = int(rng.integers(len(members))) if n_keep else 0
        return farthest_first(first, n_keep, symmetric_kl)
