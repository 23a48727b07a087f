"""DLC scores (higher = harder) with each selection policy, and random selection."""
from __future__ import annotations

import numpy as np

from ..selection import CCS, Easy, FlexRand, Hard, Random
from .base import METHODS, ScoreMethod, SelectionInputs


class DlcMethod(ScoreMethod):
    uses = ("dlc_scores",)

    def __init__(self, policy, name: str) -> None:
        super().__init__(policy)
        self.name = name

    def score(self, inputs: SelectionInputs) -> np.ndarray:
        return inputs.dlc_scores


class RandomMethod(ScoreMethod):
    """Uniform random per class; reads nothing but the labels."""

    name = "random"

    def __init__(self) -> None:
        super().__init__(Random())

    def score(self, inputs: SelectionInputs) -> np.ndarray:
        return np.zeros(len(inputs.labels))


METHODS.register("random", summary="uniform random per class (always in every comparison)")(RandomMethod)
METHODS.register("easy", summary="DLC, top-K easiest per class")(lambda: DlcMethod(Easy(), "easy"))
METHODS.register("hard", summary="DLC, top-K hardest per class")(lambda: DlcMethod(Hard(), "hard"))
METHODS.register("flexrand", summary="DLC + FlexRand, gamma = 0.5")(lambda: DlcMethod(FlexRand(0.5), "flexrand"))
METHODS.register("ccs", summary="DLC + coverage-centric stratified sampling (CCS)")(lambda: DlcMethod(CCS(), "ccs"))
