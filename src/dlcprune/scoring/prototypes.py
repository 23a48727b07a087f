"""DLC's loss for an encoder: cross-entropy over inverse distances to fixed class prototypes."""
from __future__ import annotations

import numpy as np
import torch

from .. import files

MIN_DISTANCE = 1e-12  # a feature exactly on its prototype would give an infinite logit


def class_prototypes(features: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                     num_classes: int) -> torch.Tensor:
    """Mean feature of each class: (N, D), (N,) -> (C, D) float64. Summed in float64 in sample
    order, a chunk of rows at a time (a memory-mapped array is never read whole)."""
    z = features.numpy() if isinstance(features, torch.Tensor) else features
    y = torch.as_tensor(labels)
    sums = torch.zeros(num_classes, z.shape[1], dtype=torch.float64)
    for start, chunk in files.row_chunks(z):
        sums.index_add_(0, y[start:start + len(chunk)], torch.from_numpy(np.asarray(chunk)).double())
    counts = torch.bincount(y, minlength=num_classes).double()
    return sums / counts[:, None]


def prototype_losses(features: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy over inverse distances to the prototypes: (N,) float64.

    logits[i, c] = 1 / max(||z_i - mu_c||_2, 1e-12); loss_i = CE(logits[i], y_i). Higher = harder.
    """
    z, mu = features.double(), prototypes.double()
    sq = (z * z).sum(1, keepdim=True) - 2.0 * z @ mu.T + (mu * mu).sum(1)[None, :]
    logits = 1.0 / sq.clamp_min(0.0).sqrt().clamp_min(MIN_DISTANCE)
    return torch.nn.functional.cross_entropy(logits, labels, reduction="none")
