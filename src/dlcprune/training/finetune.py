"""Full fine-tuning of an image encoder with a new linear head, the paper's recipe.

SGD (momentum 0.9, weight decay 1e-5), batch 128, lr 1e-3 divided by 10 at 50% and 75% of the
epochs, 50 epochs by default; random-resized-crop + horizontal flip on training images, the
deterministic evaluation transform on test images. Trains a copy: the encoder passed in is left
untouched. Seeded: on the CPU the same inputs and seed give the same model.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torchvision.transforms import v2

from ..data import Dataset
from ..errors import DlcpruneError
from ..models import ImageEncoder
from ..progress import bar
from .dynamics import DynamicsRecorder


@dataclass
class FinetuneResult:
    """accuracy in [0, 1] on the test set; per_class_accuracy (C,); train_loss per epoch."""

    accuracy: float
    per_class_accuracy: list[float]
    train_loss: list[float]
    seconds: float
    parameters: dict = field(default_factory=dict)


class _Classifier(nn.Module):
    def __init__(self, encoder: ImageEncoder, num_classes: int, dim: int) -> None:
        super().__init__()
        self.trunk, self.feature_fn = encoder.module, encoder.feature_fn
        self.head = nn.Linear(dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_fn(self.trunk, x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def finetune(encoder: ImageEncoder, train: Dataset, test: Dataset, *, indices: np.ndarray | None = None,
             epochs: int = 50, lr: float = 1e-3, batch_size: int = 128, momentum: float = 0.9,
             weight_decay: float = 1e-5, seed: int = 0, recorder: DynamicsRecorder | None = None,
             progress: bool = True) -> FinetuneResult:
    """Fine-tune on ``train[indices]`` (all when None) and evaluate on ``test``.

    ``recorder``: sized for the ``len(indices)`` trained samples (row i = ``indices[i]``) and
    ``epochs``; receives every sample's logits and head input as it is presented (training dynamics).
    """
    if not isinstance(encoder, ImageEncoder):
        raise DlcpruneError(f"full fine-tuning needs an image encoder, not {encoder.name}; use the probe trainer")
    if epochs < 1:
        raise DlcpruneError(f"epochs must be at least 1, got {epochs}")
    idx = np.arange(len(train)) if indices is None else np.asarray(indices, dtype=np.int64)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    work = copy.copy(encoder)
    work.module = copy.deepcopy(encoder.module)
    dim = work.features(train.items(idx[:1])).shape[1]
    model = _Classifier(work, train.num_classes, dim).to(work.device).requires_grad_(True)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(0.5 * epochs), int(0.75 * epochs)], gamma=0.1)
    size = tuple(work.preprocess(train.items(idx[:1])).shape[-2:])
    augment = v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()])
    labels = torch.from_numpy(train.labels)
    row_of = dict(zip(idx.tolist(), range(len(idx))))
    losses = []
    with bar("fine-tuning", epochs * len(idx), enabled=progress) as advance:
        for epoch in range(epochs):
            model.train()
            order, total = rng.permutation(idx), 0.0
            for start in range(0, len(order), batch_size):
                b = order[start:start + batch_size]
                x = work.preprocess(train.items(b))
                x = torch.stack([augment(xi) for xi in x])
                h = model.embed(x)
                logits = model.head(h)
                if recorder is not None:
                    recorder.add(epoch, np.array([row_of[i] for i in b.tolist()]), logits, h)
                loss = nn.functional.cross_entropy(logits, labels[b].to(x.device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
                advance(len(b))
            sched.step()
            losses.append(total / len(idx))
    correct = _predict(model, work, test, batch_size) == test.labels
    per_class = [float(correct[test.labels == c].mean()) if (test.labels == c).any() else float("nan")
                 for c in range(test.num_classes)]
    return FinetuneResult(accuracy=float(correct.mean()), per_class_accuracy=per_class, train_loss=losses,
                          seconds=time.perf_counter() - t0,
                          parameters=dict(epochs=epochs, lr=lr, batch_size=batch_size, momentum=momentum,
                                          weight_decay=weight_decay, seed=seed, kept=int(len(idx))))


@torch.inference_mode()
def _predict(model: nn.Module, work: ImageEncoder, data: Dataset, batch_size: int) -> np.ndarray:
    model.eval()
    preds = [model(work.preprocess(data.items(range(s, min(s + batch_size, len(data)))))).argmax(1).cpu()
             for s in range(0, len(data), batch_size)]
    return torch.cat(preds).numpy()
