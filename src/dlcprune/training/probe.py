"""Linear probe: multinomial logistic regression on frozen features (full-batch L-BFGS).

Deterministic on the CPU: same features, labels and options give the same weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DlcpruneError


@dataclass
class LinearProbe:
    """Learned state: ``mean_``, ``std_`` (D,) feature standardisation; ``weight_`` (C, D); ``bias_`` (C,)."""

    mean_: torch.Tensor
    std_: torch.Tensor
    weight_: torch.Tensor
    bias_: torch.Tensor

    def logits(self, features: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N, C) logits."""
        x = (torch.as_tensor(features, dtype=torch.float64) - self.mean_) / self.std_
        return x @ self.weight_.T + self.bias_

    def predict(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        return self.logits(features).argmax(1).numpy()

    def accuracy(self, features: np.ndarray | torch.Tensor, labels: np.ndarray) -> float:
        """Fraction of correct predictions, in [0, 1]."""
        return float((self.predict(features) == np.asarray(labels)).mean())


def train_linear_probe(features: np.ndarray | torch.Tensor, labels: np.ndarray, *, num_classes: int,
                       l2: float = 1e-3, max_iter: int = 200, scale_floor: float = 0.0) -> LinearProbe:
    """Fit softmax regression on (N, D) features and (N,) labels in 0..C-1.

    Minimises mean cross-entropy + l2/2 * ||W||^2 on standardised features (each dimension to
    zero mean, unit variance over the training samples), with L-BFGS and a strong-Wolfe line search.
    ``scale_floor``: no dimension's scale is taken below this share of the mean scale (0: none).
    """
    x = torch.as_tensor(features, dtype=torch.float64)
    _check_probe_inputs(x, labels, num_classes)
    std = x.std(0, unbiased=False)
    mean, std = x.mean(0), std.clamp_min(max(scale_floor * float(std.mean()), 1e-8))
    w, b = fit_softmax((x - mean) / std, labels, num_classes=num_classes, l2=l2, max_iter=max_iter)
    return LinearProbe(mean_=mean, std_=std, weight_=w, bias_=b)


def _check_probe_inputs(x: torch.Tensor, labels, num_classes: int) -> None:
    """One line for what would otherwise fail deep in torch, or fit a probe of NaN."""
    y = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
    if x.ndim != 2 or len(x) == 0:
        raise DlcpruneError(f"a linear probe needs (N, D) features with N >= 1; got shape {tuple(x.shape)}")
    if y.shape != (len(x),):
        raise DlcpruneError(f"need one label per feature row: {y.shape} labels for {len(x)} rows")
    if y.dtype.kind not in "iub" or y.min() < 0 or y.max() >= num_classes:
        raise DlcpruneError(f"labels must be whole numbers in 0..{num_classes - 1} (num_classes={num_classes}); "
                            f"got {y.dtype} values from {y.min().item()!r} to {y.max().item()!r}")
    if not torch.isfinite(x).all():
        raise DlcpruneError(f"the features of {int((~torch.isfinite(x)).any(1).sum())} sample(s) hold NaN or inf")


def fit_softmax(x: torch.Tensor, labels: np.ndarray, *, num_classes: int, l2: float = 1e-3, max_iter: int = 200,
                init: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (C, D), bias (C,)) minimising mean cross-entropy + l2/2 * ||W||^2 on (N, D) features
    as given (no standardisation), by L-BFGS from ``init`` (default zeros)."""
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if init is None:
        init = (torch.zeros(num_classes, x.shape[1], dtype=x.dtype), torch.zeros(num_classes, dtype=x.dtype))
    w, b = (t.detach().clone().requires_grad_(True) for t in init)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6,
                            tolerance_change=1e-10, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()
