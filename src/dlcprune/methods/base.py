"""Selection methods by name: DLC with a policy, and the baselines the paper compares with.

A method is fitted once on the selection pool (``fit``: its model time, e.g. a probe or the
scores from training dynamics) and then selects any number of times (``select``: its selection
time), as scikit-learn estimators are. Every method is class-stratified: class c keeps
max(1, round(n_c * keep)) samples, so methods differ only in *which* samples each class keeps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DlcpruneError
from ..registry import Registry
from ..selection import Policy

if TYPE_CHECKING:
    from ..training.dynamics import Trajectory

METHODS: Registry = Registry("method")

_HOW_TO_GET = {
    "features": "the pre-trained features (the features.npy that `dlcprune score` saves)",
    "dlc_scores": "DLC scores (`dlcprune score`)",
    "dynamics": "training dynamics, and none were recorded: pass --dynamics head (SGD on a linear head over the "
                "saved features) or --dynamics FILE (the dynamics.npz of `dlcprune finetune --trainer full "
                "--record-dynamics`)",
}


@dataclass
class SelectionInputs:
    """What a method may select from; every array is in the selection pool's sample order.

    labels: (N,) ints in 0..C-1; features: (N, D) unmasked pre-trained features; dlc_scores: (N,),
    higher = harder; dynamics: per-epoch records of a training run on these N samples.
    """

    labels: np.ndarray
    features: np.ndarray | None = None
    dlc_scores: np.ndarray | None = None
    dynamics: Trajectory | None = None
    validation: tuple[np.ndarray, np.ndarray] | None = None  # (M, D) features, (M,) labels held out

    def subset(self, rows: np.ndarray) -> "SelectionInputs":
        """The same inputs restricted to the samples ``rows`` (no validation split)."""
        take = lambda a: None if a is None else a[rows]
        return SelectionInputs(labels=self.labels[rows], features=take(self.features),
                               dlc_scores=take(self.dlc_scores),
                               dynamics=None if self.dynamics is None else self.dynamics.subset(rows))

    def require(self, what: str, method: str):
        value = getattr(self, what)
        if value is None:
            raise DlcpruneError(f"method {method!r} needs {_HOW_TO_GET[what]}")
        if what == "dynamics" and value.loss.shape[1] != len(self.labels):
            raise DlcpruneError(f"the training dynamics cover {value.loss.shape[1]} samples, the data {len(self.labels)}; "
                                "record them on the same training set")
        return value

    @property
    def num_classes(self) -> int:
        top = self.labels.max() if self.validation is None else max(self.labels.max(), self.validation[1].max())
        return int(top) + 1


class Method:
    """Base class. ``uses``: which inputs the method reads ("features", "dlc_scores", "dynamics")."""

    name = ""
    uses: tuple[str, ...] = ()
    seeded = True  # False: the seed does not change the selection (one seed suffices in a benchmark)

    def params(self) -> dict:
        return {}

    def fit(self, inputs: SelectionInputs) -> "Method":
        for what in self.uses:
            inputs.require(what, self.name)
        self.inputs_ = inputs
        return self

    def select(self, *, keep: float, seed: int = 0) -> np.ndarray:
        """Sorted int64 indices (into the pool) of the kept samples."""
        raise NotImplementedError


class ScoreMethod(Method):
    """A per-sample score (``score``, higher = harder unless the docstring says otherwise) and a policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.seeded = policy.seeded

    def params(self) -> dict:
        return {"policy": self.policy.name, **self.policy.params()}

    def score(self, inputs: SelectionInputs) -> np.ndarray:
        raise NotImplementedError

    def fit(self, inputs: SelectionInputs) -> "ScoreMethod":
        super().fit(inputs)
        self.scores_ = np.asarray(self.score(inputs), dtype=np.float64)
        return self

    def select(self, *, keep: float, seed: int = 0) -> np.ndarray:
        return self.policy.select(self.scores_, self.inputs_.labels, keep=keep, seed=seed)


def probe_probabilities(inputs: SelectionInputs, method: str) -> np.ndarray:
    """(N, C) softmax probabilities of a linear probe trained on all N pool samples."""
    from ..training import train_linear_probe

    if inputs.num_classes < 2:
        raise DlcpruneError(f"method {method!r} scores a linear probe's class probabilities, and these data have one "
                            "class: choose a method that needs no classes (random, easy, hard, flexrand, herding)")

    probe = train_linear_probe(inputs.features, inputs.labels, num_classes=inputs.num_classes)
    return probe.logits(inputs.features).softmax(1).numpy()


def make_method(name: str) -> Method:
    """A fresh, unfitted method by registered name."""
    return METHODS.get(name)()
