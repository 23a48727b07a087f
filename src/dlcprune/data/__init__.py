"""Dataset adapters: everything becomes an :class:`ImageDataset` with a fixed sample order."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DlcpruneError
from .builtin import DATASETS
from .images import ImageDataset, from_arrays, load_image_folder, load_npz
from .text import TextDataset, from_texts, load_hf_folder, load_text_table

Dataset = ImageDataset | TextDataset

__all__ = ["DATASETS", "Dataset", "ImageDataset", "TextDataset", "from_texts", "load_hf_folder", "load_text_table", "from_arrays", "load_dataset", "load_image_folder", "load_npz",
           "stratified_split", "holdout_split"]


def load_dataset(spec: str, *, text_column: str = "text", label_column: str = "label") -> ImageDataset | TextDataset:
    """A built-in name (``dlcprune list``), an image folder, an ``.npz`` of images, a ``.csv`` /
    ``.jsonl`` / ``.json`` file of texts, or a Hugging Face ``save_to_disk`` folder of texts."""
    if spec in DATASETS:
        return DATASETS.get(spec)()
    path = Path(spec)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return load_hf_folder(path, text_column=text_column, label_column=label_column)
        return load_image_folder(path)
    if path.is_file() and path.suffix == ".npz":
        return load_npz(path)
    if path.is_file() and path.suffix in (".csv", ".jsonl", ".json"):
        return load_text_table(path, text_column=text_column, label_column=label_column)
    if path.exists():
        raise DlcpruneError(f"{spec}: expected an image folder, an .npz, a .csv/.jsonl/.json of texts "
                            "or a Hugging Face dataset folder")
    raise DlcpruneError(f"no such dataset or path: {spec!r} (built-ins: {', '.join(DATASETS.names())})")


def stratified_split(labels: np.ndarray, sizes: dict[str, int], *, seed: int) -> dict[str, np.ndarray]:
    """Disjoint class-stratified parts, e.g. ``{"train": 300, "test": 200}`` samples PER CLASS.

    Returns sorted index arrays. Each class is shuffled once with ``seed`` and cut in the order
    of ``sizes``.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in sizes}
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) < sum(sizes.values()):
            raise DlcpruneError(f"class {c} has {len(members)} samples, fewer than the "
                                f"{sum(sizes.values())} per class the split asks for")
        start = 0
        for name, n in sizes.items():
            parts[name].append(members[start:start + n])
            start += n
    return {name: np.sort(np.concatenate(p)) for name, p in parts.items()}


def holdout_split(labels: np.ndarray, *, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held_out): sorted indices; each class puts round(n_c * fraction) samples, drawn with
    ``seed``, in the held-out part (a validation or test split). Refuses a split that would leave a class without samples on either side."""
    if not 0.0 < fraction < 1.0:
        raise DlcpruneError(f"the validation fraction must lie in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_val = round(len(members) * fraction)
        if n_val == 0 or n_val == len(members):
            raise DlcpruneError(f"class {c} has {len(members)} sample(s): a {fraction:.0%} held-out split would "
                                f"leave it with {'no held-out' if n_val == 0 else 'no remaining'} samples; "
                                "add samples to it or remove the class")
        val.append(rng.choice(members, size=n_val, replace=False))
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx
