"""Training-dynamics baselines, scored from a recorded ``Trajectory`` (E epochs x N samples).

Each score is higher = harder, and by default each class keeps its hardest samples, as the
papers prune the easy ones:
- Forgetting (Toneva et al., 2019): forgetting events, i.e. presentations misclassified right
  after a correctly classified one; a sample never classified correctly counts E (more than any
  learned sample can reach), standing for "forgotten infinitely often" as in the paper.
- EL2N (Paul et al., 2021): ||softmax - onehot||_2 at an early epoch (default: epoch
  max(1, round(0.1 E)), 1-based, as their epoch 20 of 200); one training run, not an average of 10.
- GraNd (Paul et al., 2021): the norm of the loss gradient w.r.t. the linear head at the same
  epoch (DeepCore takes the last layer's gradient too).
- AUM (Pleiss et al., 2020): the area under the margin, the mean over epochs of (assigned logit
  - largest other logit); low AUM = hard or mislabelled, so the score is -AUM.
- Optimisation-based learning complexity (the DLC paper's CLE / CLH): the mean training loss over
  the epochs; ``cle`` keeps the easiest, ``clh`` the hardest.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..selection import CCS, Easy, Hard
from .base import METHODS, ScoreMethod, SelectionInputs

if TYPE_CHECKING:
    from ..training.dynamics import Trajectory


def early_epoch(epochs: int) -> int:
    """0-based index of the epoch EL2N and GraNd read: max(1, round(0.1 * E)) - 1."""
    return max(1, round(0.1 * epochs)) - 1


def forgetting_events(t: Trajectory) -> np.ndarray:
    learned_then_lost = (t.correct[:-1] & ~t.correct[1:]).sum(0)
    return np.where(t.correct.any(0), learned_then_lost, t.epochs).astype(np.float64)


def el2n(t: Trajectory) -> np.ndarray:
    return t.error_l2[early_epoch(t.epochs)]


def grand(t: Trajectory) -> np.ndarray:
    return t.grad_norm[early_epoch(t.epochs)]


def negative_aum(t: Trajectory) -> np.ndarray:
    return -t.margin.mean(0)


def mean_loss(t: Trajectory) -> np.ndarray:
    return t.loss.mean(0)


class DynamicsMethod(ScoreMethod):
    uses = ("dynamics",)

    def __init__(self, name: str, measure, policy) -> None:
        super().__init__(policy)
        self.name, self.measure = name, measure

    def score(self, inputs: SelectionInputs) -> np.ndarray:
        return self.measure(inputs.dynamics)


for _name, _measure, _policy, _summary in [
        ("forgetting", forgetting_events, Hard, "most forgotten per class (forgetting events during training)"),
        ("grand", grand, Hard, "largest GraNd per class (head-gradient norm at an early epoch)"),
        ("el2n", el2n, Hard, "largest EL2N per class (||softmax - onehot|| at an early epoch)"),
        ("aum", negative_aum, Hard, "lowest area under the margin per class"),
        ("clh", mean_loss, Hard, "optimisation-based learning complexity (mean training loss), keep hardest"),
        ("cle", mean_loss, Easy, "optimisation-based learning complexity (mean training loss), keep easiest"),
        ("ccs-aum", negative_aum, CCS, "CCS over AUM (the CCS paper's score)")]:
    METHODS.register(_name, summary=_summary)(
        lambda n=_name, m=_measure, p=_policy: DynamicsMethod(n, m, p()))
