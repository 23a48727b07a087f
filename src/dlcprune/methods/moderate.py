"""Moderate-DS (Xia et al., ICLR 2023): keep the samples of moderate distance to their class centre.

Per class: the distance of each pre-trained feature to the class centre (the mean feature, as in
the authors' code); sorted by that distance, the kept samples are the middle band of ranks,
positions (n - n_keep) // 2 up to that plus n_keep, i.e. the ones whose distance is closest to the
class's median distance. Deterministic (ties: lower position first).
"""
from __future__ import annotations

import numpy as np

from .base import METHODS
from .geometry import ClassSelector


def middle_band(distances: np.ndarray, n_keep: int) -> np.ndarray:
    """Positions of the n_keep values in the middle of the ascending order of ``distances``."""
    order = np.argsort(distances, kind="stable")
    start = (len(distances) - n_keep) // 2
    return order[start:start + n_keep]


@METHODS.register("moderate", summary="Moderate-DS: middle band of distances to the class centre (training-free)")
class Moderate(ClassSelector):
    name = "moderate"
    seeded = False
    uses = ("features",)

    def choose(self, members, n_keep, rng):
        x = np.asarray(self.inputs_.features[members], dtype=np.float64)
        return middle_band(np.linalg.norm(x - x.mean(0), axis=1), n_keep)
