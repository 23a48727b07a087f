"""DLC: Distorting-based Learning Complexity (Jiang et al., ICLR 2025), for image encoders.

1. z_i = h(x_i) with the unmasked encoder (the deterministic evaluation transform, no augmentation);
2. class prototypes mu_c = mean of z_i over class c, computed ONCE and kept fixed;
3. for k = 0..K-1: mask the encoder's weights to sparsity s_k = 1 - (1 - step)^k (nested global
   magnitude masks, see :mod:`dlcprune.masking`), re-extract z_i^(k) and take
   l_i^(k) = CrossEntropy(logits = [1 / ||z_i^(k) - mu_c||_2]_c, y_i);
4. DLC_i = mean_k l_i^(k). Higher = harder.
Level 0 is the unmasked encoder, as in the official ``score-wot.py``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .. import files
from ..data import Dataset, ImageDataset, TextDataset
from ..errors import DlcpruneError
from ..masking import NestedMasks
from ..models import Encoder, TextEncoder
from ..progress import bar
from .adaptive import AdaptiveLevels, interpolated_mean
from .shard import Shard

MIN_DISTANCE = 1e-12  # a feature exactly on its prototype would give an infinite logit


def class_prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean feature of each class: (N, D), (N,) -> (C, D) float64."""
    z = features.double()
    sums = torch.zeros(num_classes, z.shape[1], dtype=torch.float64).index_add_(0, labels, z)
    counts = torch.bincount(labels, minlength=num_classes).double()
    return sums / counts[:, None]


def prototype_losses(features: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy over inverse distances to the prototypes: (N,) float64.

    logits[i, c] = 1 / max(||z_i - mu_c||_2, 1e-12); loss_i = CE(logits[i], y_i). Higher = harder.
    """
    z, mu = features.double(), prototypes.double()
    sq = (z * z).sum(1, keepdim=True) - 2.0 * z @ mu.T + (mu * mu).sum(1)[None, :]
    logits = 1.0 / sq.clamp_min(0.0).sqrt().clamp_min(MIN_DISTANCE)
    return torch.nn.functional.cross_entropy(logits, labels, reduction="none")


@dataclass
class DlcResult:
    """scores: (N,) mean loss over levels, higher = harder, in sample order;
    level_losses: (K, N) (with adaptive levels: the K' computed ones); features: (N, D) unmasked
    features; sparsity: (K,) or (K',) per level."""

    scores: np.ndarray
    level_losses: np.ndarray
    features: np.ndarray
    sparsity: np.ndarray
    parameters: dict
    timings: dict = field(default_factory=dict)


def check_dataset(dataset: Dataset, encoder: Encoder) -> None:
    """Reject data DLC cannot score, before any work is done."""
    if len(dataset) == 0:
        raise DlcpruneError(f"{dataset.source}: the dataset is empty")
    if isinstance(dataset, TextDataset) != isinstance(encoder, TextEncoder):
        kind = "text" if isinstance(dataset, TextDataset) else "image"
        raise DlcpruneError(f"{dataset.source} holds {kind}s but {encoder.name} is not a {kind} encoder; "
                            f"use --model {'minilm' if kind == 'text' else 'efficientnet_lite0'} or another {kind} model")
    counts = np.bincount(dataset.labels, minlength=dataset.num_classes)
    if (counts > 0).sum() < 2:
        raise DlcpruneError(f"{dataset.source} has one class: DLC's loss compares each sample's distance to every "
                            "class prototype, so with one class every score is 0; score data with at least 2 classes")
    for c in np.flatnonzero(counts < 2):
        raise DlcpruneError(
            f"class {dataset.class_names[c]!r} has {counts[c]} sample(s); DLC needs at least 2 per class "
            "(a one-sample prototype is the sample itself, at distance 0): add samples or remove the class")
    if isinstance(dataset, ImageDataset) and encoder.image_size is None:
        sizes = dataset.sizes()
        if len(sizes) > 1:
            (a, _), (b, _) = sorted(sizes.items(), key=lambda kv: -kv[1])[:2]
            raise DlcpruneError(
                f"images have {len(sizes)} different sizes (e.g. {dataset.first_with_size(a)} is {a[1]}x{a[0]}, "
                f"{dataset.first_with_size(b)} is {b[1]}x{b[0]}); pass --image-size N to resize them all to NxN")


def batches(dataset: Dataset, *, batch_size: int, workers: int = 0) -> Iterator[tuple[range, list]]:
    """(positions, decoded samples) of consecutive batches, in order. ``workers`` > 0 decodes the
    next batches in DataLoader worker processes while the encoder runs on the current one."""
    spans = [range(s, min(s + batch_size, len(dataset))) for s in range(0, len(dataset), batch_size)]
    if workers <= 0:
        for span in spans:
            yield span, dataset.items(span)
        return
    loader = torch.utils.data.DataLoader(_Spans(dataset, spans), batch_size=None, num_workers=workers,
                                         collate_fn=_as_is, prefetch_factor=2)
    for span, items in zip(spans, loader):
        if isinstance(items, DlcpruneError):  # a worker's bad-input error, raised here as one line
            raise items
        yield span, items


class _Spans(torch.utils.data.Dataset):
    def __init__(self, dataset: Dataset, spans: list[range]) -> None:
        self.dataset, self.spans = dataset, spans

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i: int) -> list | DlcpruneError:
        try:
            return self.dataset.items(self.spans[i])
        except DlcpruneError as err:  # handed back as a value: a raise would arrive wrapped in a worker traceback
            return err


def _as_is(batch):
    return batch


def extract_features(encoder: Encoder, dataset: Dataset, *, batch_size: int, workers: int = 0,
                     description: str = "features", progress: bool = True) -> torch.Tensor:
    """Features of every sample, (N, D) float32, in sample order; rejects NaN / inf."""
    chunks = []
    with bar(description, len(dataset), enabled=progress) as advance:
        for span, items in batches(dataset, batch_size=batch_size, workers=workers):
            chunks.append(encoder.features(items))
            advance(len(span))
    z = torch.cat(chunks)
    _check_finite(z, description)
    return z


def _check_finite(z: torch.Tensor, where: str) -> None:
    bad = ~torch.isfinite(z).all(1)
    if bad.any():
        first = int(bad.nonzero()[0])
        raise DlcpruneError(f"the encoder produced NaN/inf features for {int(bad.sum())} sample(s) "
                            f"({where}; first: index {first}); check the images and the preprocessing")


def score_dlc(encoder: Encoder, dataset: Dataset, *, levels: int = 50, step: float = 0.02,
              masking: str = "magnitude", seed: int = 0, batch_size: int = 64, workers: int = 0, adaptive: bool = False,
              checkpoint_dir: str | Path | None = None, progress: bool = True) -> DlcResult | None:
    """DLC scores of every sample of ``dataset`` (higher = harder). See the module docstring.

    ``checkpoint_dir``: per-level losses are saved there as they are computed, so a run killed
    midway and started again with the same arguments continues where it stopped and ends with
    identical scores. The encoder's weights are restored bit-exactly on return, error or Ctrl-C.

    ``workers``: DataLoader processes decoding the next batches while the encoder runs (0: none).
    ``adaptive``: ``levels`` is the most levels of the path and only those the ranking needs are
    computed (``--levels auto``, :mod:`dlcprune.scoring.adaptive`); the score is then the estimate
    of the full path's mean, ``level_losses`` (K', N) holds the computed levels only, and
    ``parameters["levels_computed"]`` says which.

    Under ``torch.distributed`` (torchrun), each rank scores one block of samples; rank 0 joins
    the features and per-level losses in sample order, builds the prototypes from all samples and
    shares them, keeps the checkpoint and returns the result; the other ranks return None.
    """
    if levels < 1:
        raise DlcpruneError(f"levels must be at least 1, got {levels}")
    if not 0.0 < step < 1.0:
        raise DlcpruneError(f"step must lie in (0, 1), got {step}")
    check_dataset(dataset, encoder)
    params = dict(levels=levels, step=step, masking=masking, seed=seed, batch_size=batch_size,
                  **({"adaptive": True} if adaptive else {}), **encoder.preprocessing())
    shard = Shard(len(dataset))
    progress = progress and shard.is_main
    ckpt = Checkpoint(checkpoint_dir if shard.is_main else None,
                      key=dict(params, model=encoder.name, weights_sha256=encoder.weights_sha256,
                               dataset=dataset.fingerprint()))
    labels = torch.from_numpy(dataset.labels)
    mine = dataset if shard.world == 1 else dataset.subset(np.arange(shard.start, shard.stop))
    timings = ckpt.timings

    z0 = ckpt.load_features()
    if not shard.share(z0 is not None):
        t = time.perf_counter()
        z0 = shard.gather(extract_features(encoder, mine, batch_size=batch_size, workers=workers,
                                           description="plain pass (unmasked)",
                                           progress=progress))
        timings["plain_pass_s"] = time.perf_counter() - t
        ckpt.save_features(z0)
    # From all samples on rank 0 (the same sums in the same order as one process), then shared.
    prototypes = shard.share(class_prototypes(z0, labels, dataset.num_classes) if shard.is_main else None)
    losses = {0: prototype_losses(z0, labels, prototypes).numpy()} if shard.is_main else {}

    t = time.perf_counter()
    masks = NestedMasks([w for _, w in encoder.maskable], levels=levels, step=step, method=masking, seed=seed)
    timings["thresholds_s"] = time.perf_counter() - t
    my_labels = labels[shard.start:shard.stop]

    def compute(wanted: list[int]) -> None:
        """Losses of the levels in ``wanted`` not computed yet, in increasing order (masks only grow).
        A level a killed run finished is read back only when it is wanted: with adaptive levels the
        plan must see exactly the levels a run from scratch would have, or a resumed run refines differently."""
        for k in wanted:
            if k not in losses and (cached := ckpt.load_level(k)) is not None:
                losses[k] = cached
        todo = shard.share([k for k in wanted if k not in losses])
        with masks.applied() as set_level, bar("masked levels", len(todo) * len(mine), enabled=progress) as advance:
            for k in todo:
                t = time.perf_counter()
                set_level(k)
                mine_k = _level_losses(encoder, mine, prototypes, my_labels, batch_size=batch_size, workers=workers,
                                       where=f"level {k}, sparsity {masks.sparsity_[k]:.3f}", advance=advance)
                joined = shard.gather(mine_k)
                timings.setdefault("level_s", {})[str(k)] = time.perf_counter() - t
                if shard.is_main:
                    losses[k] = joined.numpy()
                    ckpt.save_level(k, losses[k])

    if adaptive:
        plan = AdaptiveLevels(levels, dataset.num_classes)
        wanted = plan.first_round()
        while wanted:
            compute(wanted)
            wanted = shard.share(plan.next_round(losses) if shard.is_main else None)
        params.update(levels_computed=sorted(losses), collapse_level=plan.collapse_level_,
                      refinement=[list(h) for h in plan.history_])
    else:
        compute(list(range(1, levels)))
    if not shard.is_main:
        return None
    computed = sorted(losses)
    level_losses = np.stack([losses[k] for k in computed])
    scores = interpolated_mean(losses, levels) if adaptive else level_losses.mean(0)
    level_times = [v for k, v in timings.get("level_s", {}).items() if int(k) in losses]
    timings["masking_loop_s"] = float(sum(level_times))
    timings["mean_masked_level_s"] = float(np.mean(level_times)) if level_times else 0.0
    timings["processes"] = shard.world
    return DlcResult(scores=scores, level_losses=level_losses, features=z0.numpy(),
                     sparsity=masks.sparsity_[computed], parameters=params, timings=timings)


def _level_losses(encoder, dataset, prototypes, labels, *, batch_size, workers, where, advance) -> torch.Tensor:
    out = []
    for span, items in batches(dataset, batch_size=batch_size, workers=workers):
        z = encoder.features(items)
        _check_finite(z, where)
        out.append(prototype_losses(z, labels[span.start:span.stop], prototypes))
        advance(len(span))
    return torch.cat(out)


class Checkpoint:
    """Per-level losses of an unfinished run, valid only for the same ``key`` (arguments + data + weights)."""

    def __init__(self, folder: str | Path | None, *, key: dict) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.timings: dict = {}
        if self.folder is None:
            return
        key_file = self.folder / "key.json"
        if key_file.exists() and files.read_json(key_file) == key:
            if (self.folder / "timings.json").exists():
                self.timings = files.read_json(self.folder / "timings.json")
        else:
            for stale in self.folder.glob("*.npy"):
                stale.unlink()
            files.write_json(key_file, key)

    def load_features(self) -> torch.Tensor | None:
        f = self.folder / "features.npy" if self.folder else None
        return torch.from_numpy(np.load(f)) if f and f.exists() else None

    def save_features(self, z: torch.Tensor) -> None:
        if self.folder:
            files.save_npy(self.folder / "features.npy", z.numpy())
            files.write_json(self.folder / "timings.json", self.timings)

    def load_level(self, k: int) -> np.ndarray | None:
        f = self.folder / f"level_{k:04d}.npy" if self.folder else None
        return np.load(f) if f and f.exists() else None

    def save_level(self, k: int, losses: np.ndarray) -> None:
        if self.folder:
            files.save_npy(self.folder / f"level_{k:04d}.npy", losses)
            files.write_json(self.folder / "timings.json", self.timings)
