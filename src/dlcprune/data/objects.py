"""Datasets users already hold, read in their own order so that dlcprune's indices are theirs:
torchvision folder datasets (``ImageFolder`` / ``DatasetFolder``: their own sample list), Hugging Face
``Dataset`` objects (an image or a text column; ``ClassLabel`` names kept), and any map-style torch
``Dataset`` whose items are (image, label) with a PIL image, an (H, W[, C]) array or a (C, H, W) tensor.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from ..errors import DlcpruneError
from .images import FileReader, ImageDataset, to_uint8
from .text import TextDataset, from_texts


def as_uint8(image: Any) -> np.ndarray:
    """(H, W, C) uint8 with C in {1, 3} from a PIL image, a numpy array or a torch tensor (CHW)."""
    if isinstance(image, Image.Image):
        arr = to_uint8(image)
    else:
        arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):  # a CHW tensor
            arr = arr.transpose(1, 2, 0)
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.floating):
                raise DlcpruneError(f"images must be uint8 or floats in [0, 1], got {arr.dtype}")
            if arr.size and (arr.min() < -1e-3 or arr.max() > 1 + 1e-3):
                raise DlcpruneError(f"float images must lie in [0, 1], got values in [{arr.min():.3g}, {arr.max():.3g}] "
                                    "(a Normalize transform?); give the dataset without normalisation")
            arr = np.round(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3) or 0 in arr.shape:
        raise DlcpruneError(f"an image of shape {arr.shape}: expected (H, W), (H, W, 1|3) or (1|3, H, W)")
    return arr


class ObjectReader:
    """Images from a user's object, ``get(index)``, converted once per read (sizes remembered)."""

    def __init__(self, get: Callable[[int], Any]) -> None:
        self.get, self._sizes = get, {}

    def read(self, index: int) -> np.ndarray:
        arr = as_uint8(self.get(index))
        self._sizes[index] = arr.shape[:2]
        return arr

    def size(self, index: int) -> tuple[int, int]:
        return self._sizes[index] if index in self._sizes else self.read(index).shape[:2]

    def digest(self, index: int) -> bytes:
        arr = self.read(index)
        return hashlib.sha256(str(arr.shape).encode() + arr.tobytes()).digest()


def from_object(obj: Any, *, text_column: str = "text", label_column: str = "label",
                split: str | None = None) -> ImageDataset | TextDataset:
    """A dlcprune dataset over ``obj`` in ``obj``'s own sample order (module docstring)."""
    if hasattr(obj, "samples") and hasattr(obj, "classes") and hasattr(obj, "root"):  # torchvision *Folder
        root = Path(obj.root)
        relpaths = [Path(p).relative_to(root).as_posix() for p, _ in obj.samples]
        return ImageDataset(ids=relpaths, labels=np.array([y for _, y in obj.samples]), class_names=list(obj.classes),
                            source=f"torchvision {type(obj).__name__} {root}", reader=FileReader(root, relpaths))
    if hasattr(obj, "column_names") and isinstance(obj.column_names, dict):  # a DatasetDict
        if split is None or split not in obj:
            raise DlcpruneError(f"the dataset has the splits {sorted(obj)}; choose one (split=..., --hf-split)")
        obj = obj[split]
    if hasattr(obj, "column_names") and hasattr(obj, "features"):  # a Hugging Face Dataset
        return _from_hf(obj, text_column=text_column, label_column=label_column)
    if isinstance(obj, np.ndarray) or (isinstance(obj, tuple) and len(obj) == 2 and hasattr(obj[0], "shape")):
        raise DlcpruneError("arrays of images and labels load with dlcprune.from_arrays(images, labels), "
                            "not load_dataset")
    if hasattr(obj, "__getitem__") and hasattr(obj, "__len__"):
        labels = []
        for i in range(len(obj)):  # one pass for the labels; the images are not kept
            item = obj[i]
            if not isinstance(item, (tuple, list)) or len(item) < 2:
                raise DlcpruneError("a torch dataset must give (image, label) pairs")
            labels.append(_label_value(item[1], i))
        if not labels:
            raise DlcpruneError("the torch dataset is empty")
        labels, names = _classes(labels, getattr(obj, "classes", None))
        return ImageDataset(ids=[str(i) for i in range(len(labels))], labels=labels, class_names=names,
                            source=f"torch dataset {type(obj).__name__}", reader=ObjectReader(lambda i: obj[i][0]))
    raise DlcpruneError(f"cannot read a {type(obj).__name__}: pass a path, a torchvision or Hugging Face dataset, "
                        "or a map-style torch dataset of (image, label) pairs")


def _label_value(y, i: int):
    """A map-style dataset's label as a plain int or str (0-d tensors and numpy scalars included)."""
    if hasattr(y, "ndim") and hasattr(y, "item"):  # a tensor or a numpy value
        if (y.numel() if hasattr(y, "numel") else np.size(y)) != 1:
            raise DlcpruneError(f"sample {i}'s label has shape {tuple(y.shape)}; give one class id per sample "
                                "(e.g. argmax of a one-hot vector)")
        y = y.item()
    if isinstance(y, str) or (isinstance(y, (int, np.integer)) and not isinstance(y, bool)):
        return y
    if isinstance(y, float) and y.is_integer():
        return int(y)
    raise DlcpruneError(f"sample {i}'s label is {y!r}; labels must be class ids (whole numbers or strings)")


def _classes(values: list, classes) -> tuple[np.ndarray, list[str]]:
    """(labels 0..C-1, class names): the dataset's own ``classes`` where its labels index them and
    every class has a sample; else the labels present, numbered in sorted order."""
    if len({type(v) for v in values}) > 1:
        raise DlcpruneError("labels mix whole numbers and strings; give class ids of one kind")
    present = sorted(set(values))
    if classes is not None and all(isinstance(v, int) for v in present) and present == list(range(len(classes))):
        return np.array(values, dtype=np.int64), [str(c) for c in classes]
    names = [str(classes[v]) if classes is not None and isinstance(v, int) and 0 <= v < len(classes) else str(v)
             for v in present]
    return np.searchsorted(np.array(present), np.array(values)).astype(np.int64), names


def _from_hf(ds, *, text_column: str, label_column: str) -> ImageDataset | TextDataset:
    if label_column not in ds.column_names:
        raise DlcpruneError(f"the dataset has no column {label_column!r} (columns: {', '.join(ds.column_names)}); "
                            "pass --label-column")
    feature = ds.features[label_column]
    names = list(feature.names) if hasattr(feature, "names") else None  # ClassLabel
    if names is not None:
        unlabelled = np.flatnonzero(np.asarray(ds[label_column]) < 0)
        if len(unlabelled):  # ClassLabel's -1: no label (as in many Hugging Face test splits)
            raise DlcpruneError(f"{len(unlabelled)} row(s) have no label (-1), e.g. row {unlabelled[0]}; drop them "
                                f"first: ds.filter(lambda r: r[{label_column!r}] >= 0)")
    images = [c for c, f in ds.features.items() if type(f).__name__ == "Image"]
    source = f"hf dataset {getattr(ds, 'info', None) and ds.info.dataset_name or ''}".strip()
    if images:
        labels = np.asarray(ds[label_column])
        if names is None:
            values = sorted(set(labels.tolist()))
            names, labels = [str(v) for v in values], np.searchsorted(values, labels)
        column = images[0]
        return ImageDataset(ids=[str(i) for i in range(len(ds))], labels=labels, class_names=names,
                            source=f"{source} ({column})", reader=ObjectReader(lambda i: ds[i][column]))
    if text_column not in ds.column_names:
        raise DlcpruneError(f"the dataset has no image column and no column {text_column!r} "
                            f"(columns: {', '.join(ds.column_names)}); pass --text-column")
    data = from_texts(ds[text_column], ds[label_column], source=source)
    if names is not None:
        data.class_names = [names[int(v)] for v in data.class_names]
    return data
