"""Uncertainty baselines (DeepCore): Least Confidence, Entropy, Margin, keeping the most uncertain.

The model is the project's linear probe (L-BFGS logistic regression on standardised pre-trained
features) trained on the whole selection pool; its class probabilities p (N, C) on the same
samples give the scores, each higher = more uncertain = harder:
least confidence 1 - max_c p_c; entropy -sum_c p_c log p_c; margin -(p_(1) - p_(2)) (the gap
between the two largest probabilities, negated). Each class keeps its most uncertain samples.
"""
from __future__ import annotations

import numpy as np

from ..selection import Hard
from .base import METHODS, ScoreMethod, SelectionInputs, probe_probabilities


def least_confidence(p: np.ndarray) -> np.ndarray:
    return 1.0 - p.max(1)


def entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.maximum(p, np.finfo(np.float64).tiny))).sum(1)


def margin(p: np.ndarray) -> np.ndarray:
    top2 = np.sort(p, axis=1)[:, -2:]
    return -(top2[:, 1] - top2[:, 0])


class Uncertainty(ScoreMethod):
    uses = ("features",)

    def __init__(self, name: str, measure) -> None:
        super().__init__(Hard())
        self.name, self.measure = name, measure

    def score(self, inputs: SelectionInputs) -> np.ndarray:
        return self.measure(probe_probabilities(inputs, self.name))


METHODS.register("least-confidence", summary="most uncertain per class: 1 - max probability of a linear probe")(
    lambda: Uncertainty("least-confidence", least_confidence))
METHODS.register("entropy", summary="most uncertain per class: entropy of a linear probe's probabilities")(
    lambda: Uncertainty("entropy", entropy))
METHODS.register("margin", summary="most uncertain per class: smallest top-2 probability gap of a linear probe")(
    lambda: Uncertainty("margin", margin))
