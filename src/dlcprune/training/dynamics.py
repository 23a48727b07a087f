"""Training dynamics: what each sample looked like to the model at every epoch of a training run.

The training-based baselines (Forgetting, GraNd, EL2N, AUM, optimisation-based learning
complexity) read these records. A record is taken when a sample is *presented* in its mini-batch
(the forward pass of the training step, before that step's update), as Toneva et al. and Pleiss
et al. define forgetting events and the area under the margin. Two trainers record them:
``record_head_dynamics`` (SGD on a linear head over frozen features; cheap, the CPU default) and
full fine-tuning (``finetune(..., recorder=...)``).
"""
from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import files
from ..errors import DlcpruneError


@dataclass
class Trajectory:
    """Per-epoch, per-sample records; arrays are (E, N) with samples in the trained set's order.

    loss: cross-entropy; correct: argmax == label; margin: assigned logit minus the largest other;
    error_l2: ||softmax - onehot||_2; grad_norm: norm of the loss gradient w.r.t. the linear head
    (weight and bias), ||softmax - onehot|| * sqrt(||h||^2 + 1) for head input h.
    ``seconds``: the training time, which the training-based methods count as their model time.
    """

    loss: np.ndarray
    correct: np.ndarray
    margin: np.ndarray
    error_l2: np.ndarray
    grad_norm: np.ndarray
    seconds: float = 0.0
    trainer: str = ""
    parameters: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return self.loss.shape[0]

    def subset(self, rows: np.ndarray) -> "Trajectory":
        """The records of the samples ``rows`` only (same epochs, time and trainer)."""
        arrays = {k: getattr(self, k)[:, rows] for k in ("loss", "correct", "margin", "error_l2", "grad_norm")}
        return Trajectory(**arrays, seconds=self.seconds, trainer=self.trainer, parameters=self.parameters)

    def save(self, path: Path) -> None:
        arrays = {k: getattr(self, k) for k in ("loss", "correct", "margin", "error_l2", "grad_norm")}
        meta = {"seconds": self.seconds, "trainer": self.trainer, "parameters": self.parameters}
        buf = io.BytesIO()
        np.savez(buf, **arrays, meta=np.array(json.dumps(meta)))
        files.write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "Trajectory":
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in ("loss", "correct", "margin", "error_l2", "grad_norm")}
                meta = json.loads(str(f["meta"]))
        except (OSError, KeyError, ValueError) as err:
            raise DlcpruneError(f"cannot read training dynamics from {path}: {err}; expected the dynamics.npz "
                                "that `dlcprune finetune --record-dynamics` writes") from None
        return cls(**arrays, **meta)


class DynamicsRecorder:
    """Collects presentation records of ``n`` samples over ``epochs`` epochs (rows 0..n-1)."""

    def __init__(self, labels: np.ndarray, epochs: int) -> None:
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        shape = (epochs, len(self.labels))
        self.loss, self.margin, self.error_l2, self.grad_norm = (np.full(shape, np.nan) for _ in range(4))
        self.correct = np.zeros(shape, dtype=bool)

    @torch.no_grad()
    def add(self, epoch: int, rows: np.ndarray, logits: torch.Tensor, head_input: torch.Tensor) -> None:
        """logits (B, C) and head input (B, D) of the samples ``rows`` (B,) as presented in ``epoch``."""
        logits, h = logits.detach().double().cpu(), head_input.detach().double().cpu().flatten(1)
        y = self.labels[rows]
        p = logits.softmax(1)
        onehot = torch.nn.functional.one_hot(y, logits.shape[1]).double()
        other = logits.masked_fill(onehot.bool(), -torch.inf).amax(1)
        assigned = logits.gather(1, y[:, None])[:, 0]
        error = (p - onehot).norm(dim=1)
        self.loss[epoch, rows] = torch.nn.functional.cross_entropy(logits, y, reduction="none").numpy()
        self.correct[epoch, rows] = (logits.argmax(1) == y).numpy()
        self.margin[epoch, rows] = (assigned - other).numpy()
        self.error_l2[epoch, rows] = error.numpy()
        self.grad_norm[epoch, rows] = (error * (h.pow(2).sum(1) + 1).sqrt()).numpy()

    _ARRAYS = ("loss", "correct", "margin", "error_l2", "grad_norm")

    def state(self) -> dict[str, torch.Tensor]:
        """The records so far as tensors, for a checkpoint (``load_state`` takes them back)."""
        return {k: torch.from_numpy(getattr(self, k).copy()) for k in self._ARRAYS}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        for k in self._ARRAYS:
            setattr(self, k, state[k].numpy().copy())

    def trajectory(self, *, seconds: float, trainer: str, parameters: dict) -> Trajectory:
        if np.isnan(self.loss).any():
            raise AssertionError("some samples were never presented in some epoch")
        return Trajectory(loss=self.loss, correct=self.correct, margin=self.margin, error_l2=self.error_l2,
                          grad_norm=self.grad_norm, seconds=seconds, trainer=trainer, parameters=parameters)


def record_head_dynamics(features: np.ndarray, labels: np.ndarray, *, num_classes: int, epochs: int = 20,
                         lr: float = 0.01, batch_size: int = 128, momentum: float = 0.9,
                         weight_decay: float = 1e-5, seed: int = 0) -> Trajectory:
    """Train a linear head on (N, D) frozen features with mini-batch SGD and record every epoch.

    Features are standardised (zero mean, unit variance per dimension, over these samples); the
    head starts from ``torch.nn.Linear``'s initialisation under ``torch.manual_seed(seed)``; the
    batch order is ``numpy.random.default_rng(seed)``'s permutation per epoch; constant lr.
    """
    if epochs < 1:
        raise DlcpruneError(f"dynamics_epochs must be at least 1, got {epochs}")
    t0 = time.perf_counter()
    x = torch.as_tensor(features, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0, unbiased=False).clamp_min(1e-8)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = torch.nn.Linear(x.shape[1], num_classes)
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    recorder = DynamicsRecorder(labels, epochs)
    with torch.enable_grad():
        for epoch in range(epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                logits = head(x[rows])
                recorder.add(epoch, rows, logits, x[rows])
                loss = torch.nn.functional.cross_entropy(logits, y[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
    params = dict(epochs=epochs, lr=lr, batch_size=batch_size, momentum=momentum, weight_decay=weight_decay, seed=seed)
    return recorder.trajectory(seconds=time.perf_counter() - t0, trainer="linear head (SGD on frozen features)",
                               parameters=params)
