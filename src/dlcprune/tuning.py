"""Choosing FlexRand's split gamma on a validation split (the paper tunes it by hand).

For each keep fraction b, every gamma of a small grid (default {b/2, 0.45, 0.5, 0.55, 1 - b/2},
those inside (0, 1)) selects from the selection pool, a linear probe is trained on the selected
samples' frozen features and scored on the validation samples; the gamma with the best mean
validation accuracy over ``trials`` seeds wins (ties: the gamma closest to 0.5, then the smaller).
The time this takes is recorded: it is part of what automatic gamma costs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .data import holdout_split
from .selection import FlexRand, check_keep
from .training import train_linear_probe


def default_grid(keep: float) -> list[float]:
    """{b/2, 0.45, 0.5, 0.55, 1 - b/2} inside (0, 1), sorted, rounded to 6 decimals."""
    grid = {round(g, 6) for g in (keep / 2, 0.45, 0.5, 0.55, 1 - keep / 2)}
    return sorted(g for g in grid if 0.0 < g < 1.0)


@dataclass
class SplitChoice:
    """The chosen gamma for one keep fraction, every candidate's mean validation accuracy, and the time."""

    keep: float
    split: float
    validation_accuracy: dict[float, float]
    seconds: float


def choose_split(scores: np.ndarray, labels: np.ndarray, features: np.ndarray, *, keep: float,
                 val_features: np.ndarray, val_labels: np.ndarray, seed: int = 0, trials: int = 3,
                 grid: list[float] | None = None) -> SplitChoice:
    """Pick FlexRand's gamma for ``keep`` by linear-probe accuracy on the validation samples.

    scores, labels, features: (N,), (N,), (N, D) of the selection pool (scores higher = harder);
    val_features, val_labels: (M, D), (M,) held out from selection and training.
    """
    keep = check_keep(keep)
    t0 = time.perf_counter()
    num_classes = int(max(labels.max(), val_labels.max())) + 1
    accuracy = {}
    for gamma in grid or default_grid(keep):
        policy = FlexRand(gamma)
        runs = []
        for trial in range(trials):
            kept = policy.select(scores, labels, keep=keep, seed=seed + trial)
            probe = train_linear_probe(features[kept], labels[kept], num_classes=num_classes)
            runs.append(probe.accuracy(val_features, val_labels))
        accuracy[gamma] = float(np.mean(runs))
    best = max(accuracy.values())
    split = min((g for g, a in accuracy.items() if a == best), key=lambda g: (abs(g - 0.5), g))
    return SplitChoice(keep=keep, split=split, validation_accuracy=accuracy, seconds=time.perf_counter() - t0)


@dataclass
class AutoSelection:
    """FlexRand with gamma chosen per keep fraction. ``kept[keep]``: sorted indices into the full
    set; ``pool`` / ``validation``: the indices selection drew from / held out for the choice."""

    kept: dict[float, np.ndarray]
    pool: np.ndarray
    validation: np.ndarray
    choices: dict[float, SplitChoice]


def flexrand_auto(scores: np.ndarray, labels: np.ndarray, features: np.ndarray, *, keeps: list[float],
                  val_fraction: float = 0.2, seed: int = 0, trials: int = 3) -> AutoSelection:
    """Hold out a stratified validation split, choose gamma for each keep fraction on it, and
    select with FlexRand from the rest. scores (N,) higher = harder; features (N, D)."""
    pool, val = holdout_split(labels, fraction=val_fraction, seed=seed)
    s, y, z = scores[pool], labels[pool], features[pool]
    kept, choices = {}, {}
    for keep in keeps:
        choices[keep] = choose_split(s, y, z, keep=keep, val_features=features[val], val_labels=labels[val],
                                     seed=seed, trials=trials)
        kept[keep] = pool[FlexRand(choices[keep].split).select(s, y, keep=keep, seed=seed)]
    return AutoSelection(kept=kept, pool=pool, validation=val, choices=choices)
