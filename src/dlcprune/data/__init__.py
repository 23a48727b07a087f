"""Dataset adapters: everything becomes an :class:`ImageDataset` with a fixed sample order."""
from __future__ import annotations

from pathlib import Path

from .. import files
from ..errors import DlcpruneError
from .builtin import DATASETS
from .splits import holdout_split, stratified_split
from .images import ImageDataset, from_arrays, load_image_folder, load_npz
from .instructions import InstructionSet, is_instructions, load_instructions, peek_columns
from .text import TextDataset, from_texts, is_hf_folder, load_hf_folder, load_text_table

Dataset = ImageDataset | TextDataset | InstructionSet

__all__ = ["list_datasets", "DATASETS", "Dataset", "ImageDataset", "InstructionSet", "TextDataset", "from_texts", "load_hf_folder", "load_text_table", "from_arrays", "load_dataset", "load_image_folder", "load_npz",
           "stratified_split", "holdout_split"]


def list_datasets() -> list[str]:
    """The built-in datasets by name (any folder or file ``load_dataset`` reads is accepted too)."""
    return DATASETS.names()


def load_dataset(spec, *, text_column: str = "text", label_column: str = "label",
                 hf_split: str | None = None) -> Dataset:
    """A built-in name (``dlcprune list``), an image folder, an ``.npz`` of images, a ``.csv`` /
    ``.jsonl`` / ``.json`` file of texts or of instruction records (Alpaca ``instruction``/``output``
    or ShareGPT ``conversations`` or chat ``messages``, and no ``label_column``: an :class:`InstructionSet`), a Hugging
    Face ``save_to_disk`` folder (images, texts or instruction records;
    ``hf_split`` picks a split of a DatasetDict, default ``train``), or an object you hold: a
    torchvision ``ImageFolder``, a Hugging Face ``Dataset`` / ``DatasetDict`` or a map-style torch
    dataset of (image, label) pairs (``data.objects``), always in its own sample order."""
    if not isinstance(spec, (str, Path)):
        from .objects import from_object

        return from_object(spec, text_column=text_column, label_column=label_column, split=hf_split)
    spec = str(spec)
    path = Path(spec)
    if hf_split is not None and not is_hf_folder(path):
        raise DlcpruneError(f"hf_split (--hf-split) picks a split of a Hugging Face save_to_disk folder; {spec} is "
                            "not one: leave it out")
    if spec in DATASETS:
        return DATASETS.get(spec)()
    if path.is_dir():
        is_dict = (path / "dataset_dict.json").exists()
        info = path / (hf_split or "train") / "dataset_info.json" if is_dict else path / "dataset_info.json"
        if info.exists() and is_instructions(files.read_json(info).get("features", {}), label_column=label_column):
            return load_instructions(path, split=hf_split)
        if info.exists() or is_dict:
            return load_hf_folder(path, text_column=text_column, label_column=label_column, split=hf_split)
        return load_image_folder(path)
    kind = files.file_kind(path) if path.is_file() else None
    if kind == ".npz":
        return load_npz(path)
    if kind in (".jsonl", ".json") and is_instructions(peek_columns(path), label_column=label_column):
        return load_instructions(path)
    if kind in (".csv", ".jsonl", ".json"):
        return load_text_table(path, text_column=text_column, label_column=label_column)
    if path.exists():
        raise DlcpruneError(f"{spec}: expected an image folder, an .npz, a .csv/.jsonl/.json of texts "
                            "or a Hugging Face dataset folder")
    raise DlcpruneError(f"no such dataset or path: {spec!r} (built-ins: {', '.join(DATASETS.names())})")
