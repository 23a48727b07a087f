"""Train on a kept subset and test: the one call behind ``dlcprune finetune``."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..data import Dataset
from ..errors import DlcpruneError
from ..models import Encoder
from ..selection import check_positions
from .dynamics import DynamicsRecorder, Trajectory
from .finetune import RECIPES, Recipe, finetune
from .probe import train_linear_probe


def read_indices(path: str | Path, *, size: int) -> np.ndarray:
    """A ``keep_indices.npy``: a non-empty 1-d integer array of distinct positions in 0..size-1,
    returned sorted (int64), so that what is trained on, and any dynamics recorded, follow sample order."""
    try:
        idx = np.load(path)
    except (OSError, ValueError) as err:
        raise DlcpruneError(f"cannot read indices {path}: {err}") from None
    if not isinstance(idx, np.ndarray):
        raise DlcpruneError(f"{path} holds several arrays; indices are one .npy array of positions")
    try:
        positions = check_positions(idx, size)
    except DlcpruneError as err:
        raise DlcpruneError(f"{path}: {err}") from None
    distinct = np.unique(positions)
    if len(distinct) < len(positions):
        raise DlcpruneError(f"{path} repeats {len(positions) - len(distinct):,} of its {len(positions):,} positions" + (
            " (it looks like a 0/1 mask: save np.flatnonzero(mask) instead)" if distinct.max() <= 1 else "")
            + "; indices name each kept sample once")
    return distinct


def train_and_test(encoder: Encoder, train: Dataset, test: Dataset, *, indices: np.ndarray | None = None,
                   trainer: str = "probe", recipe: Recipe | None = None, seed: int = 0,
                   record_dynamics: bool = False, progress: bool = True) -> tuple[dict, Trajectory | None]:
    """Train on ``train[indices]`` (all when None) and test on ``test``: (metrics, dynamics or None).

    trainer "probe": logistic regression on the frozen features; "full": fine-tune the encoder with
    ``recipe`` (default: the paper's; ``record_dynamics``: also every trained sample's per-epoch records). metrics:
    accuracy in [0, 1], per_class_accuracy (C,), parameters, trainer, seconds, and for "full" the
    train loss per epoch.
    """
    from ..scoring import extract_features
    from ..scoring.dlc import check_dataset

    if test.class_names != train.class_names:
        raise DlcpruneError("the test set must have the same classes as the training set")
    if record_dynamics and trainer != "full":
        raise DlcpruneError("record_dynamics records a full fine-tuning run; use trainer 'full'")
    if trainer not in ("probe", "full"):
        raise DlcpruneError(f"trainer must be probe or full, got {trainer!r}")
    check_dataset(train, encoder)
    recipe = recipe or RECIPES["paper"]
    idx = np.arange(len(train)) if indices is None else np.asarray(indices, dtype=np.int64)
    t0 = time.perf_counter()
    recorder = DynamicsRecorder(train.labels[idx], recipe.epochs) if record_dynamics else None
    dynamics = None
    if trainer == "full":
        r = finetune(encoder, train, test, indices=idx, recipe=recipe, seed=seed, recorder=recorder, progress=progress)
        metrics = {"accuracy": r.accuracy, "per_class_accuracy": r.per_class_accuracy, "train_loss": r.train_loss,
                   "parameters": r.parameters}
        if recorder is not None:  # the training time only, as the bench charges it
            dynamics = recorder.trajectory(seconds=r.seconds, trainer="full fine-tuning", parameters=r.parameters)
    else:
        sub = train.subset(idx)
        z = extract_features(encoder, sub, batch_size=64, description="train features", progress=progress)
        zt = extract_features(encoder, test, batch_size=64, description="test features", progress=progress)
        pred = train_linear_probe(z, sub.labels, num_classes=train.num_classes).predict(zt)
        metrics = {"accuracy": float((pred == test.labels).mean()),
                   "per_class_accuracy": [float((pred[test.labels == c] == c).mean()) for c in range(test.num_classes)],
                   "parameters": {"kept": int(len(idx)), "l2": 1e-3}}
    metrics.update(trainer=trainer, seconds=time.perf_counter() - t0)
    return metrics, dynamics
