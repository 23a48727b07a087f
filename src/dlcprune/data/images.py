"""Labelled image datasets in a fixed, documented sample order.

Order (indices everywhere are positions in it):
- image folder: exactly torchvision's ``ImageFolder``: every sub-folder is a class (sorted by name),
  and within a class the folders of ``os.walk`` sorted by path, then their file names sorted; a file
  counts when its lower-cased name ends in one of torchvision's image extensions. So
  ``Subset(ImageFolder(root), indices)`` holds the samples that dlcprune's indices name;
- ``.npz`` / arrays: array order;
- built-ins: the order of the package's own files.

Images are handed out as uint8 arrays of shape (H, W, C) with C = 1 (grey) or 3 (RGB), values
0..255; the model adapter does the rest of the preprocessing.
"""
from __future__ import annotations

import functools
import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DlcpruneError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
# Decoded folder images are kept in memory for the K+1 passes of DLC when they fit in this.
DECODED_CACHE_BYTES = 2 << 30  # DLCPRUNE_DECODED_CACHE_BYTES overrides (0: decode on every read)


class ImageReader(Protocol):
    def read(self, index: int) -> np.ndarray: ...
    def size(self, index: int) -> tuple[int, int]: ...
    def digest(self, index: int) -> bytes: ...


@dataclass
class ImageDataset:
    """N labelled images.

    ids: N names, the relative file path or the array position; labels: (N,) int64 class indices
    in 0..C-1; class_names: C names, ``class_names[c]`` is the class of label c.
    """

    ids: list[str]
    labels: np.ndarray
    class_names: list[str]
    source: str
    reader: ImageReader = field(repr=False)
    positions: np.ndarray = field(repr=False, default=None)  # rows of ``reader`` in this order

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.positions is None:
            self.positions = np.arange(len(self.ids), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def items(self, indices: Sequence[int]) -> list[np.ndarray]:
        """The images at ``indices`` as (H, W, C) uint8 arrays, C in {1, 3}."""
        return [self.reader.read(int(self.positions[i])) for i in indices]

    def sizes(self) -> dict[tuple[int, int], int]:
        """Image sizes (H, W) and how many images have each; reads headers only."""
        counts: dict[tuple[int, int], int] = {}
        for p in self.positions:
            hw = self.reader.size(int(p))
            counts[hw] = counts.get(hw, 0) + 1
        return counts

    def first_with_size(self, hw: tuple[int, int]) -> str:
        return next(self.ids[i] for i, p in enumerate(self.positions) if self.reader.size(int(p)) == hw)

    def subset(self, indices: Sequence[int], *, source: str | None = None) -> "ImageDataset":
        """The samples at ``indices``, in that order, with the same classes."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageDataset(
            ids=[self.ids[i] for i in idx], labels=self.labels[idx], class_names=list(self.class_names),
            source=source or f"{self.source}[subset of {len(idx)}]", reader=self.reader,
            positions=self.positions[idx],
        )

    def fingerprint(self) -> str:
        """sha256 over the samples (computed once: scoring and its manifest both need it)."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        """sha256 over every sample's id, label and image content, in sample order."""
        h = hashlib.sha256()
        h.update("\n".join(self.class_names).encode())
        for i, p in enumerate(self.positions):
            h.update(f"\n{self.ids[i]}\t{self.labels[i]}\t".encode())
            h.update(self.reader.digest(int(p)))
        return h.hexdigest()


class ArrayReader:
    """Images held in one (N, H, W, C) uint8 array."""

    def __init__(self, images: np.ndarray) -> None:
        self.array = images

    def read(self, index: int) -> np.ndarray:
        return self.array[index]

    def size(self, index: int) -> tuple[int, int]:
        return self.array.shape[1], self.array.shape[2]

    def digest(self, index: int) -> bytes:
        return hashlib.sha256(np.ascontiguousarray(self.array[index]).tobytes()).digest()


def to_uint8(im: Image.Image) -> np.ndarray:
    """(H, W) grey or (H, W, 3) RGB uint8 pixels. 16- and 32-bit grey images are scaled to 0..255
    (Pillow's own conversion would clip them, turning most pixels white)."""
    if im.mode.startswith("I"):  # "I;16", "I;16B", "I": integer grey
        wide = np.asarray(im).astype(np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or wide.max(initial=0) <= 65535 else float(wide.max())
        return np.round(np.clip(wide, 0, top) * (255.0 / top)).astype(np.uint8)
    if im.mode == "F":
        raise ValueError("floating-point images are not supported; save it as 8- or 16-bit")
    return np.asarray(im.convert("L" if im.mode in ("L", "1") else "RGB"), dtype=np.uint8)


if os.environ.get("DLCPRUNE_MAX_IMAGE_PIXELS"):  # Pillow's decompression-bomb limit, raised on request
    Image.MAX_IMAGE_PIXELS = int(os.environ["DLCPRUNE_MAX_IMAGE_PIXELS"])


class FileReader:
    """Image files under ``root``, decoded with Pillow (and kept decoded when they fit in memory)."""

    def __init__(self, root: Path, relpaths: list[str]) -> None:
        self.root, self.relpaths = root, relpaths
        self._sizes: dict[int, tuple[int, int]] = {}
        self._decoded: dict[int, np.ndarray] | None = None

    def _fail(self, index: int, err: Exception) -> DlcpruneError:
        if isinstance(err, Image.DecompressionBombError):
            return DlcpruneError(f"image {self.root / self.relpaths[index]} has more pixels than the safety limit of "
                                 f"{Image.MAX_IMAGE_PIXELS:,} (a decompression bomb?); if it is genuine, raise the "
                                 "limit with the environment variable DLCPRUNE_MAX_IMAGE_PIXELS")
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return DlcpruneError(f"cannot read image {self.root / self.relpaths[index]}: {reason}; "
                             "fix or remove the file")

    def size(self, index: int) -> tuple[int, int]:
        if index not in self._sizes:
            try:
                with Image.open(self.root / self.relpaths[index]) as im:
                    self._sizes[index] = (im.height, im.width)
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
                raise self._fail(index, err) from None
        return self._sizes[index]

    def read(self, index: int) -> np.ndarray:
        if self._decoded is not None and index in self._decoded:
            return self._decoded[index]
        try:
            with Image.open(self.root / self.relpaths[index]) as im:
                arr = to_uint8(im)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
            raise self._fail(index, err) from None
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        if self._decoded is None:
            estimate = sum(h * w * 3 for h, w in (self.size(i) for i in range(len(self.relpaths))))
            limit = int(os.environ.get("DLCPRUNE_DECODED_CACHE_BYTES", DECODED_CACHE_BYTES))
            self._decoded = {} if estimate <= limit else None
        if self._decoded is not None:
            self._decoded[index] = arr
        return arr

    def digest(self, index: int) -> bytes:
        try:
            return hashlib.sha256((self.root / self.relpaths[index]).read_bytes()).digest()
        except OSError as err:
            raise self._fail(index, err) from None


def load_image_folder(path: str | Path) -> ImageDataset:
    """An ``ImageFolder`` tree, read with torchvision's rules and in its order (module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise DlcpruneError(f"{root} is not a folder")
    names = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    relpaths, labels = [], []
    for c, name in enumerate(names):
        for folder, _, file_names in sorted(os.walk(root / name, followlinks=True)):
            for file_name in sorted(file_names):
                if file_name.lower().endswith(IMAGE_SUFFIXES):
                    relpaths.append(Path(folder, file_name).relative_to(root).as_posix())
                    labels.append(c)
    if not relpaths:
        raise DlcpruneError(f"no images found under {root}: expected one sub-folder per class with "
                            f"image files ({', '.join(IMAGE_SUFFIXES)}) inside")
    return ImageDataset(ids=relpaths, labels=np.array(labels), class_names=names,
                        source=f"image folder {root}", reader=FileReader(root, relpaths))


def from_arrays(images: np.ndarray, labels: np.ndarray, *, class_names: Sequence[str] | None = None,
                source: str = "arrays") -> ImageDataset:
    """Images (N, H, W) or (N, H, W, C) uint8 with C in {1, 3}, and N integer labels.

    Labels are mapped to 0..C-1 in sorted order of their values; ``class_names`` default to the
    original label values.
    """
    try:
        images, labels = np.asarray(images), np.asarray(labels)
    except ValueError:  # a list of images of different sizes
        raise DlcpruneError(f"{source}: the images must all have one size to stack as (N, H, W[, C]); "
                            "resize them first, or save them as an image folder") from None
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or 0 in images.shape[1:3]:
        raise DlcpruneError(f"{source}: images must have shape (N,H,W) or (N,H,W,C) with C = 1 or 3, "
                            f"got {images.shape}")
    if images.dtype != np.uint8:
        raise DlcpruneError(f"{source}: images must be uint8 values 0..255, got {images.dtype}; "
                            "convert with (x * 255).round().astype(np.uint8) if they are 0..1 floats")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DlcpruneError(f"{source}: {len(images)} images but labels of shape {labels.shape}; "
                            "give one label per image")
    if len(images) == 0:
        raise DlcpruneError(f"{source}: the dataset is empty")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DlcpruneError(f"{source}: labels must be integers, got {labels.dtype}")
    values, codes = np.unique(labels, return_inverse=True)
    names = list(class_names) if class_names is not None else [str(v) for v in values]
    if len(names) != len(values):
        raise DlcpruneError(f"{source}: {len(names)} class names for {len(values)} distinct labels")
    return ImageDataset(ids=[str(i) for i in range(len(images))], labels=codes, class_names=names,
                        source=source, reader=ArrayReader(images))


def load_npz(path: str | Path) -> ImageDataset:
    """An ``.npz`` with ``images`` (N,H,W or N,H,W,C uint8) and ``labels`` (N ints)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"images", "labels"} - set(f.files)
            if missing:
                raise DlcpruneError(f"{path} lacks the array(s) {sorted(missing)}; it has {sorted(f.files)}")
            images, labels = f["images"], f["labels"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # missing, truncated, not an npz
        raise DlcpruneError(f"cannot read {path} as .npz: {err}") from None
    return from_arrays(images, labels, source=str(path))
