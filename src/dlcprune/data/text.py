"""Labelled text datasets: CSV / JSONL files, Hugging Face ``datasets`` folders, built-ins.

Order: the file's row order (the dataset's for Hugging Face folders). Labels may be integers or
strings; they are mapped to 0..C-1 in sorted order of their values and the mapping is kept in
``class_names`` (written to the manifest).
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DlcpruneError
from ..files import file_kind


@dataclass
class TextDataset:
    """N labelled texts. ids: row numbers (or given ids); labels: (N,) int64 in 0..C-1."""

    ids: list[str]
    labels: np.ndarray
    class_names: list[str]
    source: str
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def items(self, indices: Sequence[int]) -> list[str]:
        return [self.texts[i] for i in indices]

    def subset(self, indices: Sequence[int], *, source: str | None = None) -> "TextDataset":
        idx = np.asarray(indices, dtype=np.int64)
        return TextDataset(ids=[self.ids[i] for i in idx], labels=self.labels[idx], class_names=list(self.class_names),
                           source=source or f"{self.source}[subset of {len(idx)}]", texts=[self.texts[i] for i in idx])

    def fingerprint(self) -> str:
        """sha256 over the samples (computed once: scoring and its manifest both need it)."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        h = hashlib.sha256("\n".join(self.class_names).encode())
        for sid, y, t in zip(self.ids, self.labels, self.texts):
            h.update(f"\n{sid}\t{y}\t".encode() + hashlib.sha256(t.encode()).digest())
        return h.hexdigest()


def from_texts(texts: Sequence[str], labels: Sequence, *, source: str = "texts") -> TextDataset:
    """Texts and labels (ints or strings), mapped to classes in sorted order of the label values."""
    texts, raw = list(texts), list(labels)
    if len(texts) != len(raw):
        raise DlcpruneError(f"{source}: {len(texts)} texts but {len(raw)} labels; give one label per text")
    if not texts:
        raise DlcpruneError(f"{source}: the dataset is empty")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()), None)
    if bad is not None:
        raise DlcpruneError(f"{source}: row {bad} has an empty or non-text value in the text column")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in raw):
        values, codes = np.unique(np.asarray(raw, dtype=np.int64), return_inverse=True)
    else:
        values, codes = np.unique(np.asarray([str(v) for v in raw]), return_inverse=True)
    return TextDataset(ids=[str(i) for i in range(len(texts))], labels=codes.astype(np.int64),
                       class_names=[str(v) for v in values], source=source, texts=texts)


def read_json_array(path: Path) -> list:
    """The elements of a JSON array file, in order (their positions are the samples' indices); a
    UTF-8 BOM is skipped. One line for a file that is not UTF-8, not JSON, or not an array."""
    try:
        data = path.read_bytes()
        rows = json.loads(data)  # bytes: json detects UTF-8 and skips a BOM
    except OSError as err:
        raise DlcpruneError(f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise DlcpruneError(f"{path}, line {line}, byte {err.start}: not UTF-8 text; save the file as UTF-8") from None
    except json.JSONDecodeError as err:
        raise DlcpruneError(f"{path}, line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(rows, list):
        raise DlcpruneError(f"{path}: expected a JSON array of records ([{{...}}, ...]), not a single "
                            f"{'object' if isinstance(rows, dict) else 'value'}")
    return rows


def load_text_table(path: str | Path, *, text_column: str = "text", label_column: str = "label") -> TextDataset:
    """A ``.csv`` (header row) or ``.jsonl`` / ``.json`` file with a text and a label column."""
    path = Path(path)
    try:
        if file_kind(path) == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM, as Excel writes, is no header
                rows = list(csv.DictReader(f))
        elif file_kind(path) == ".jsonl":
            rows = []
            for n, line in enumerate(path.read_bytes().decode("utf-8").split("\n"), start=1):  # "\n" only
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise DlcpruneError(f"{path}:{n}: not valid JSON ({err.msg})") from None
        else:
            rows = read_json_array(path)
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise DlcpruneError(f"{path}, line {line}, byte {err.start}: not UTF-8 text; save the file as UTF-8") from None
    except (OSError, json.JSONDecodeError, csv.Error) as err:
        raise DlcpruneError(f"cannot read {path}: {err}") from None
    return _from_rows(rows, text_column, label_column, str(path))


HF_FOLDER_FILES = ("dataset_dict.json", "dataset_info.json", "state.json")  # what save_to_disk writes


def is_hf_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder that a Hugging Face ``save_to_disk`` wrote (a Dataset or a DatasetDict)."""
    p = Path(path)
    return p.is_dir() and any((p / name).is_file() for name in HF_FOLDER_FILES)


def load_hf_folder(path: str | Path, *, text_column: str = "text", label_column: str = "label",
                   split: str | None = None) -> "TextDataset":
    """A folder written by ``datasets``' ``save_to_disk`` (a Dataset, or a DatasetDict's ``split``,
    default train), of images (its first Image column) or texts (``text_column``)."""
    from datasets import load_from_disk

    from .objects import from_object

    try:
        ds = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise DlcpruneError(f"{path} is no readable `save_to_disk` folder ({str(err).splitlines()[0]}); "
                            "save it again with Dataset.save_to_disk") from None
    ds, split = pick_split(ds, split, path)
    data = from_object(ds, text_column=text_column, label_column=label_column)
    data.source = f"hf dataset {path}" + (f" [{split}]" if split else "")
    return data


def pick_split(ds, split: str | None, path) -> tuple[object, str | None]:
    """(the Dataset, its split name or None) of what ``load_from_disk`` returned: a DatasetDict's
    ``split`` (default train); a split asked of a plain Dataset is refused (it would be ignored)."""
    from datasets import DatasetDict

    if not isinstance(ds, DatasetDict):
        if split is not None:
            raise DlcpruneError(f"{path} is one dataset, not a DatasetDict of splits: leave out --hf-split")
        return ds, None
    split = split or "train"
    if split not in ds:
        raise DlcpruneError(f"{path} has the splits {sorted(ds)}, not {split!r}; pass --hf-split")
    return ds[split], split


def _from_rows(rows: list, text_column: str, label_column: str, source: str) -> TextDataset:
    if not isinstance(rows, list) or not rows:
        raise DlcpruneError(f"{source}: no rows found")
    odd = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if odd is not None:
        raise DlcpruneError(f"{source}: row {odd} is a {type(rows[odd]).__name__}, not an object with "
                            f"{text_column!r} and {label_column!r}")
    from .instructions import is_instructions  # here: instructions imports this module

    for col in (text_column, label_column):
        if col not in rows[0]:
            records = is_instructions(set(rows[0]) - {label_column}, label_column=label_column)
            hint = (f"; these look like instruction records, read as a text table for their {label_column!r} column: "
                    "pass --label-column with a name they do not have to read them as records") if records else ""
            raise DlcpruneError(f"{source} has no column {col!r} (columns: {', '.join(rows[0])}); "
                                f"pass --text-column / --label-column{hint}")
    missing = next((i for i, r in enumerate(rows) if text_column not in r or label_column not in r), None)
    if missing is not None:
        raise DlcpruneError(f"{source}: row {missing} lacks {text_column!r} or {label_column!r}")
    labels = [r[label_column] for r in rows]
    unlabelled = next((i for i, v in enumerate(labels) if v is None or (isinstance(v, str) and not v.strip())), None)
    if unlabelled is not None:
        raise DlcpruneError(f"{source}: row {unlabelled} has no label in the column {label_column!r}; "
                            "give every row a label or drop the row")
    if all(isinstance(v, str) and re.fullmatch(r"\s*-?[0-9]+\s*", v) for v in labels):
        labels = [int(v) for v in labels]  # CSV cells are strings; "0"/"1" are integer labels
    return from_texts([r[text_column] for r in rows], labels, source=source)
