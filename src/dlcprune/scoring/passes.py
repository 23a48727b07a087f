"""Passes of an encoder over a dataset: batches in sample order, the plain feature pass (streamed to
disk when asked, so N x D features are never held in memory), and blocks of preprocessed batches
that every masked level reuses, so each sample is read and decoded once for all levels.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .. import files
from ..data import Dataset
from ..errors import DlcpruneError
from ..models import Encoder
from ..progress import bar
from ..selection import is_whole

BLOCK_BYTES = 1 << 30  # preprocessed inputs held at once for the level loop (on the encoder's device)


def batches(dataset: Dataset, *, batch_size: int, workers: int = 0, start: int = 0) -> Iterator[tuple[range, list]]:
    """(positions, decoded samples) of consecutive batches from sample ``start`` (a multiple of
    ``batch_size``), in order. ``workers`` > 0 decodes the next batches in DataLoader worker
    processes while the encoder runs on the current one."""
    spans = [range(s, min(s + batch_size, len(dataset))) for s in range(start, len(dataset), batch_size)]
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


def extract_features(encoder: Encoder, dataset: Dataset, *, batch_size: int = 64, workers: int = 0,
                     description: str = "features", progress: bool = True, into: str | Path | None = None
                     ) -> np.ndarray:
    """Features of every sample, (N, D) float32, in sample order; rejects NaN / inf.

    ``into``: a ``.npy`` path the features stream to batch by batch (written atomically); the
    result is then that file memory-mapped, and memory stays one batch whatever N.
    """
    check_kinds(encoder, dataset)
    if not is_whole(batch_size) or batch_size < 1:
        raise DlcpruneError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if into is not None and Path(into).is_dir():
        raise DlcpruneError(f"into={str(into)!r} is a folder; name the .npy file the features go to")
    chunks: list[np.ndarray] = []
    with bar(description, len(dataset), enabled=progress) as advance, \
            (files.NpyRows(into, len(dataset)) if into is not None else contextlib.nullcontext(chunks)) as sink:
        for span, items in batches(dataset, batch_size=batch_size, workers=workers):
            z = encoder.features(items)
            check_finite(z, description, offset=span.start)
            sink.append(z.numpy())
            advance(len(span))
    return np.load(into, mmap_mode="r") if into is not None else np.concatenate(chunks)


def check_kinds(encoder, dataset) -> None:
    """Arguments of the right kinds, in the right order, before anything reads them."""
    from ..data import InstructionSet
    from ..models import ImageEncoder, TextEncoder
    from ..models.causal import CausalLM

    if not isinstance(dataset, (Dataset, InstructionSet)):
        hint = " (the arguments are the model, then the data)" if isinstance(encoder, (Dataset, InstructionSet)) else ""
        raise DlcpruneError(f"the data must be a dlcprune dataset (dlcprune.load_dataset, dlcprune.from_arrays), "
                            f"got a {type(dataset).__name__}{hint}")
    if not isinstance(encoder, (ImageEncoder, TextEncoder, CausalLM)):
        raise DlcpruneError(f"the model must be a dlcprune model (dlcprune.load_model, dlcprune.from_module), "
                            f"got a {type(encoder).__name__}")


def check_finite(z: torch.Tensor, where: str, *, offset: int = 0) -> None:
    """Refuse NaN / inf features; ``offset``: the sample index of row 0."""
    bad = ~torch.isfinite(z).all(1)
    if bad.any():
        first = offset + int(bad.nonzero()[0])
        raise DlcpruneError(f"the encoder produced NaN/inf features for {int(bad.sum())} sample(s) "
                            f"({where}; first: index {first}); check the images and the preprocessing")


def prepared_blocks(encoder: Encoder, dataset: Dataset, *, batch_size: int, workers: int = 0, start: int = 0,
                    block_bytes: int = BLOCK_BYTES) -> Iterator[list[tuple[range, object]]]:
    """Consecutive batches from sample ``start``, decoded and preprocessed once (``encoder.preprocess``),
    grouped into blocks of about ``block_bytes`` of prepared inputs (at least one batch each)."""
    block, size = [], 0
    for span, items in batches(dataset, batch_size=batch_size, workers=workers, start=start):
        inputs = encoder.preprocess(items)
        block.append((span, inputs))
        size += _nbytes(inputs)
        if size >= block_bytes:
            yield block
            block, size = [], 0
    if block:
        yield block


def _nbytes(inputs) -> int:
    tensors = [inputs] if isinstance(inputs, torch.Tensor) else inputs.values()  # one tensor or a tokenizer's batch
    return sum(t.element_size() * t.nelement() for t in tensors if isinstance(t, torch.Tensor))
