"""Full fine-tuning of an image encoder with a new linear head, resumable epoch by epoch.

Two recipes (:data:`RECIPES`):
- ``paper``: the paper's (SGD momentum 0.9, weight decay 1e-5, batch 128, lr 1e-3 divided by 10 at
  50% and 75% of 50 epochs, random-resized-crop + horizontal flip, BatchNorm in train mode, head
  from ``nn.Linear``'s initialisation);
- ``cpu``: what converges in 8 epochs on a 2-core CPU (benchmarks/RESULTS.md, "full fine-tuning"):
  AdamW (encoder lr 1e-4, head lr 1e-3, batch 32) with one epoch of linear warm-up, then a cosine to
  0; BatchNorm statistics frozen (EfficientNet-Lite0's momentum of 0.01 lags far behind new data);
  the head started from the linear probe on the trained samples' unmasked features; mild crops
  (area 0.8..1) and no flip (digits are not symmetric). SGD with the probe-started head diverged to
  chance on some seeds even at lr 1e-3: the probe's large weights make the encoder's gradients large.

Trains a copy: the encoder passed in is left untouched. Seeded: on the CPU the same inputs, seed
and thread count give the same model, also when a run killed between epochs is resumed from its
checkpoint (on CUDA, cuDNN's own non-determinism aside). bf16 autocast for the encoder on CUDA.
"""
from __future__ import annotations

import copy
import hashlib
import io
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import files
from ..data import Dataset
from ..errors import DlcpruneError
from ..models import ImageEncoder
from ..models.base import gpu_autocast
from ..progress import bar
from .dynamics import DynamicsRecorder
from .probe import train_linear_probe


@dataclass(frozen=True)
class Recipe:
    """Everything that shapes a fine-tuning run (the seed aside)."""

    epochs: int = 50
    lr: float = 1e-3  # encoder
    head_lr: float | None = None  # None: the encoder's
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (with momentum) or "adamw"
    momentum: float = 0.9  # SGD only
    weight_decay: float = 1e-5
    schedule: str = "step"  # "step": /10 at 50% and 75% of the epochs; "cosine": per step, to 0
    warmup_epochs: float = 0.0  # linear warm-up from 0 over this many epochs (per step), then the schedule
    freeze_batchnorm: bool = False  # BatchNorm layers in eval mode while the rest trains (statistics fixed)
    head_init: str = "random"  # "random" (nn.Linear's) or "probe" (the linear probe on the trained samples)
    crop_scale: float = 0.08  # RandomResizedCrop's smallest area share; 1.0 = no crop
    flip: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise DlcpruneError(f"epochs must be at least 1, got {self.epochs}")
        if self.optimizer not in ("sgd", "adamw"):
            raise DlcpruneError(f"optimizer must be sgd or adamw, got {self.optimizer!r}")
        if self.schedule not in ("step", "cosine"):
            raise DlcpruneError(f"schedule must be step or cosine, got {self.schedule!r}")
        if self.head_init not in ("random", "probe"):
            raise DlcpruneError(f"head_init must be random or probe, got {self.head_init!r}")
        for name in ("lr", "head_lr", "weight_decay", "momentum"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise DlcpruneError(f"{name} must be a finite number >= 0, got {value}")
        if self.batch_size < 1:
            raise DlcpruneError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise DlcpruneError(f"warmup_epochs must be in [0, epochs], got {self.warmup_epochs}")
        if not 0 < self.crop_scale <= 1:
            raise DlcpruneError(f"crop_scale must be in (0, 1], got {self.crop_scale}")


RECIPES = {
    "paper": Recipe(),
    "cpu": Recipe(epochs=8, lr=1e-4, head_lr=1e-3, batch_size=32, optimizer="adamw", schedule="cosine",
                  warmup_epochs=1.0, freeze_batchnorm=True, head_init="probe", crop_scale=0.8, flip=False),
}


def recipe(name: str, **overrides) -> Recipe:
    """A named recipe with some fields replaced (``None`` values are ignored)."""
    if name not in RECIPES:
        raise DlcpruneError(f"unknown fine-tuning recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class FinetuneResult:
    """accuracy in [0, 1] on the test set; per_class_accuracy (C,); train_loss per epoch;
    curve: test accuracy after each epoch (when asked for); seconds: training only (no test passes),
    summed over resumed parts."""

    accuracy: float
    per_class_accuracy: list[float]
    train_loss: list[float]
    seconds: float
    curve: list[float] = field(default_factory=list)
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

    def train_mode(self, freeze_batchnorm: bool) -> None:
        self.train()
        if freeze_batchnorm:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()


def finetune(encoder: ImageEncoder, train: Dataset, test: Dataset, *, indices: np.ndarray | None = None,
             recipe: Recipe = RECIPES["paper"], seed: int = 0, features: np.ndarray | None = None,
             recorder: DynamicsRecorder | None = None, curve: bool = False, checkpoint: Path | None = None,
             progress: bool = True) -> FinetuneResult:
    """Fine-tune on ``train[indices]`` (all when None) and evaluate on ``test``.

    ``features``: (len(indices), D) unmasked features of the trained samples, for the probe-started
    head (extracted when None). ``recorder``: sized for the ``len(indices)`` trained samples (row i =
    ``indices[i]``) and the recipe's epochs; receives every sample's logits and head input as it is
    presented (training dynamics). ``curve``: also test after every epoch. ``checkpoint``: a file
    written after every epoch (atomically) and resumed from when it holds this same run; removed
    when the run ends.
    """
    if not isinstance(encoder, ImageEncoder):
        raise DlcpruneError(f"full fine-tuning needs an image encoder, not {encoder.name}; use the probe trainer")
    idx = np.arange(len(train)) if indices is None else np.asarray(indices, dtype=np.int64)
    key = _run_key(encoder, train, test, idx, recipe, seed, recorder is not None, curve)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    work = copy.copy(encoder)
    work.module = copy.deepcopy(encoder.module)
    model = _Classifier(work, train.num_classes, _feature_dim(work, train, idx)).to(work.device).requires_grad_(True)
    opt = _optimizer(model, recipe)
    sched = _scheduler(opt, recipe, -(-len(idx) // recipe.batch_size))
    state = {"epoch": 0, "losses": [], "curve": [], "seconds": 0.0}
    resumed = _load_checkpoint(checkpoint, key)
    if resumed is not None:
        state = _restore(resumed, model, opt, sched, rng, recorder)
    elif recipe.head_init == "probe":
        t0 = time.perf_counter()
        _init_head_from_probe(model.head, work, train, idx, features)
        state["seconds"] += time.perf_counter() - t0
    augment = _augmentation(tuple(work.preprocess(train.items(idx[:1])).shape[-2:]), recipe)
    labels = torch.from_numpy(train.labels)
    with bar("fine-tuning", recipe.epochs * len(idx), enabled=progress) as advance:
        advance(state["epoch"] * len(idx))
        for epoch in range(state["epoch"], recipe.epochs):
            t0 = time.perf_counter()
            model.train_mode(recipe.freeze_batchnorm)
            mean_loss = _train_epoch(model, work, train, idx, labels, epoch=epoch, order=rng.permutation(len(idx)),
                                     augment=augment, opt=opt, sched=sched, recorder=recorder,
                                     batch_size=recipe.batch_size, advance=advance)
            state["losses"].append(mean_loss)
            state["seconds"] += time.perf_counter() - t0
            if curve:
                state["curve"].append(float((_predict(model, work, test, recipe.batch_size) == test.labels).mean()))
            state["epoch"] = epoch + 1
            if checkpoint is not None and epoch + 1 < recipe.epochs:
                _save_checkpoint(checkpoint, key, model, opt, sched, rng, recorder, state)
    correct = _predict(model, work, test, recipe.batch_size) == test.labels
    per_class = [float(correct[test.labels == c].mean()) if (test.labels == c).any() else float("nan")
                 for c in range(test.num_classes)]
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return FinetuneResult(accuracy=float(correct.mean()), per_class_accuracy=per_class, train_loss=state["losses"],
                          seconds=state["seconds"], curve=state["curve"],
                          parameters={**asdict(recipe), "seed": seed, "kept": int(len(idx))})


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimizer, the head in a group of its own (its own rate when ``head_lr`` is set)."""
    groups = [{"params": model.trunk.parameters(), "lr": recipe.lr},
              {"params": model.head.parameters(), "lr": recipe.lr if recipe.head_lr is None else recipe.head_lr}]
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def _restore(resumed: dict, model, opt, sched, rng: np.random.Generator, recorder) -> dict:
    """Put a checkpoint's model, optimizer, schedule, random streams and dynamics back; its state."""
    model.load_state_dict(resumed["model"])
    opt.load_state_dict(resumed["optimizer"])
    sched.load_state_dict(resumed["scheduler"])
    rng.bit_generator.state = resumed["numpy_rng"]
    torch.set_rng_state(resumed["torch_rng"])
    if resumed.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(resumed["cuda_rng"])
    if recorder is not None:
        recorder.load_state(resumed["recorder"])
    return resumed["state"]


def _train_epoch(model, work: ImageEncoder, train: Dataset, idx: np.ndarray, labels: torch.Tensor, *, epoch: int,
                 order: np.ndarray, augment, opt, sched, recorder, batch_size: int, advance) -> float:
    """One pass over ``train[idx[order]]`` in batches; the mean training loss."""
    total = 0.0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        x = torch.stack([augment(xi) for xi in work.preprocess(train.items(idx[rows]))])
        try:
            with gpu_autocast(work.device):  # the encoder in bf16 on CUDA; the head and the loss in float32
                h = model.embed(x)
        except ValueError as err:
            if "more than 1 value per channel" not in str(err):
                raise
            raise DlcpruneError(f"a batch of {len(rows)} sample(s) at {tuple(x.shape[-2:])} px leaves the encoder's "
                                "BatchNorm layers one value per channel to normalise: choose a batch size that "
                                f"leaves no single sample over ({len(idx)} samples now), a larger image size, or a "
                                "recipe that freezes BatchNorm (--recipe cpu)") from None
        h = h.float()
        logits = model.head(h)
        if recorder is not None:
            recorder.add(epoch, rows, logits, h)
        loss = nn.functional.cross_entropy(logits, labels[idx[rows]].to(x.device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(rows)
        advance(len(rows))
    return total / len(idx)


def _feature_dim(work: ImageEncoder, train: Dataset, idx: np.ndarray) -> int:
    return work.features(train.items(idx[:1])).shape[1]


def _scheduler(opt: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning-rate factor of every step: linear warm-up, then step decay (the paper's: x0.1 at
    50% and 75% of the epochs, as MultiStepLR stepped per epoch) or a cosine to 0."""
    warm, total = round(recipe.warmup_epochs * steps_per_epoch), recipe.epochs * steps_per_epoch
    milestones = [m for m in (int(0.5 * recipe.epochs), int(0.75 * recipe.epochs)) if m > 0]  # none before epoch 1

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if recipe.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
        return 0.1 ** sum(step // steps_per_epoch >= m for m in milestones)

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _augmentation(size: tuple[int, int], recipe: Recipe):
    from torchvision.transforms import v2  # torchvision costs ~2 s to import: only when training

    steps = [] if recipe.crop_scale >= 1 else [v2.RandomResizedCrop(size, scale=(recipe.crop_scale, 1.0), antialias=True)]
    steps += [v2.RandomHorizontalFlip()] if recipe.flip else []
    return v2.Compose(steps) if steps else (lambda x: x)


def _init_head_from_probe(head: nn.Linear, work: ImageEncoder, train: Dataset, idx: np.ndarray,
                          features: np.ndarray | None) -> None:
    """The head = a linear probe on the trained samples, its standardisation folded into W and b.

    Each feature's scale is floored at 10% of the mean scale: a nearly constant feature (a unit
    that is almost never active) would otherwise get a weight of w / ~0, and the first steps that
    move it would blow the logits up (seen: some seeds diverged to chance in the first epoch).
    """
    from ..scoring import extract_features

    if features is None:
        features = extract_features(work, train.subset(idx), batch_size=64, progress=False)
    probe = train_linear_probe(features, train.labels[idx], num_classes=train.num_classes, scale_floor=0.1)
    weight = probe.weight_ / probe.std_
    with torch.no_grad():
        head.weight.copy_(weight.float())
        head.bias.copy_((probe.bias_ - weight @ probe.mean_).float())


def _run_key(encoder: ImageEncoder, train: Dataset, test: Dataset, idx: np.ndarray, recipe: Recipe, seed: int,
             records: bool, curve: bool) -> str:
    """What a checkpoint must match to be resumed (the test set too: the curve is measured on it)."""
    h = hashlib.sha256(repr((encoder.name, encoder.weights_sha256, encoder.preprocessing(), train.fingerprint(),
                             test.fingerprint() if curve else "", asdict(recipe), seed, records, curve,
                             torch.get_num_threads())).encode())
    h.update(idx.tobytes())
    return h.hexdigest()


def _save_checkpoint(path: Path, key: str, model: nn.Module, opt, sched, rng: np.random.Generator,
                     recorder: DynamicsRecorder | None, state: dict) -> None:
    buf = io.BytesIO()
    torch.save({"key": key, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "recorder": recorder.state() if recorder else None, "state": state}, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path | None, key: str) -> dict | None:
    """The checkpoint's contents when it belongs to this run; None otherwise (a stale one is ignored)."""
    if path is None or not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a checkpoint is an optimisation: an unreadable one means starting over
        return None
    return saved if isinstance(saved, dict) and saved.get("key") == key else None


@torch.inference_mode()
def _predict(model: _Classifier, work: ImageEncoder, data: Dataset, batch_size: int) -> np.ndarray:
    model.eval()
    preds = []
    for s in range(0, len(data), batch_size):
        x = work.preprocess(data.items(range(s, min(s + batch_size, len(data)))))
        with gpu_autocast(work.device):
            h = model.embed(x)
        preds.append(model.head(h.float()).argmax(1).cpu())
    return torch.cat(preds).numpy()
