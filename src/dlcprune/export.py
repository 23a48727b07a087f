"""From indices to data: the kept samples written in the form they came in.

- ``imagefolder``: the kept image files under the same class sub-folders (copies, or symlinks with
  ``link=True``); ``filelist``: their absolute paths, one per line, in sample order;
- ``csv`` / ``jsonl``: the header (csv) and the kept rows of the original file, byte-identical, in
  their original order (blank lines are not rows, as when the file was read); ``json``: the kept
  elements of a JSON array file, in their original order, as a JSON array (``kept.json``);
- ``hf``: the Hugging Face ``save_to_disk`` folder filtered with ``Dataset.select``.

``check_fingerprint`` refuses indices that were made on another dataset, and ``subset`` hands the
kept part of an object a user already holds back as that kind of object.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from . import files
from .errors import DlcpruneError
from .options import EXPORT_FORMATS



def check_fingerprint(dataset, expected: str | None, *, what: str) -> None:
    """Refuse ``dataset`` when ``expected`` (a manifest's dataset fingerprint) names another one."""
    if expected and dataset.fingerprint() != expected:
        raise DlcpruneError(f"{what} were made on another dataset (fingerprint {expected[:12]}..., this one "
                            f"{dataset.fingerprint()[:12]}...); use the data that was scored")


def check_export(data: str | Path, format: str) -> None:
    """Refuse, from the path alone, a ``format`` that the data at ``data`` cannot be exported in
    (before any slow work: ``prune --export`` checks it before scoring)."""
    if format not in EXPORT_FORMATS:
        raise DlcpruneError(f"unknown export format {format!r}; use one of {', '.join(EXPORT_FORMATS)}")
    path = Path(data)
    if format in ("imagefolder", "filelist"):
        if not path.is_dir():
            raise DlcpruneError(f"export {format} needs an image folder, not {data}")
    elif format == "hf":
        from .data.text import is_hf_folder

        if not is_hf_folder(path):
            hint = "; for an image folder use imagefolder or filelist" if path.is_dir() else ""
            raise DlcpruneError(f"export hf filters a Hugging Face save_to_disk folder, and {data} is not one{hint}")
    elif (kind := files.file_kind(path)[1:]) != format:
        own = kind if kind in EXPORT_FORMATS else None
        raise DlcpruneError(f"export {format} writes rows of a .{format} file, and {data} is not one"
                            + (f"; use --export {own}" if own else ""))


def export_subset(data: str | Path, indices: np.ndarray, out: Path, *, format: str, link: bool = False,
                  hf_split: str | None = None) -> Path:
    """Write the samples ``indices`` (positions in dlcprune's order) of the dataset at ``data`` to
    ``out`` in ``format``; returns the file or folder written."""
    check_export(data, format)
    path = Path(data)
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    if format in ("imagefolder", "filelist"):
        from .data import load_image_folder

        dataset = load_image_folder(path)
        if format == "filelist":
            odd = next((dataset.ids[i] for i in indices if "\n" in dataset.ids[i] or "\r" in dataset.ids[i]), None)
            if odd is not None:  # one path per line: such a name would read as two
                raise DlcpruneError(f"{odd!r} has a line break in its name, which a file list cannot hold; rename "
                                    "it or use --export imagefolder")
            target = out / "kept.txt"
            files.write_text(target, "".join(f"{(path / dataset.ids[i]).resolve()}\n" for i in indices))
            return target
        target = out / "kept"
        shutil.rmtree(target, ignore_errors=True)  # a --force rerun: only this selection's files
        for i in indices:
            source, dest = (path / dataset.ids[i]).resolve(), target / dataset.ids[i]
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source, dest) if link else shutil.copy2(source, dest)
        return target
    if format == "hf":
        from datasets import load_from_disk

        from .data.text import pick_split

        ds, _ = pick_split(load_from_disk(str(path)), hf_split, path)
        target = out / "kept"
        shutil.rmtree(target, ignore_errors=True)
        ds.select(indices.tolist()).save_to_disk(str(target))
        return target
    from .data.text import read_json_array

    rows = {"csv": csv_rows, "jsonl": jsonl_rows, "json": read_json_array}[format](path)
    header, body = (rows[0], rows[1:]) if format == "csv" else ("", rows)
    if len(indices) and indices[-1] >= len(body):
        raise DlcpruneError(f"{data} has {len(body)} rows; index {indices[-1]} is not one of them")
    target = out / f"kept.{format}"
    if format == "json":  # a JSON array in, a JSON array out (its elements re-serialised, not its bytes)
        files.write_text(target, json.dumps([body[i] for i in indices], ensure_ascii=False, indent=2) + "\n")
        return target
    kept = [body[i] if body[i].endswith(("\n", "\r")) else body[i] + "\n" for i in indices]
    files.write_bytes(target, (header + "".join(kept)).encode("utf-8"))
    return target


def jsonl_rows(path: Path) -> list[str]:
    """The non-blank lines with their endings, as ``load_text_table`` counts records (split at "\\n" only:
    JSON may hold U+2028 and the like unescaped)."""
    parts = path.read_bytes().decode("utf-8").split("\n")
    lines = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return [line for line in lines if line.strip()]


def csv_rows(path: Path) -> list[str]:
    """The raw text of each CSV row (header first; quoted newlines kept inside their row; blank
    lines skipped, as ``csv.DictReader`` does)."""
    lines = list(io.StringIO(path.read_bytes().decode("utf-8"), newline=""))
    reader, rows, start = csv.reader(iter(lines)), [], 0
    for row in reader:
        if row:
            rows.append("".join(lines[start:reader.line_num]))
        start = reader.line_num
    return rows


def subset(obj: Any, indices: np.ndarray) -> Any:
    """The kept part of what a user holds: a torch ``Dataset`` -> ``torch.utils.data.Subset``, a
    Hugging Face ``Dataset`` -> ``Dataset.select``, a dlcprune dataset -> its ``subset``, a list or
    tuple (e.g. of paths) -> a list, a numpy array or torch tensor -> its kept rows, a pandas
    DataFrame or Series -> ``.iloc`` of the kept rows."""
    idx = np.sort(np.asarray(indices, dtype=np.int64)).tolist()
    if hasattr(obj, "select") and hasattr(obj, "column_names"):
        return obj.select(idx)
    if hasattr(obj, "subset") and hasattr(obj, "fingerprint"):
        return obj.subset(idx)
    if isinstance(obj, (list, tuple)):
        return [obj[i] for i in idx]
    if hasattr(obj, "iloc"):  # pandas: obj[i] would look a column up
        return obj.iloc[idx]
    if isinstance(obj, np.ndarray) or (hasattr(obj, "index_select") and hasattr(obj, "shape")):
        return obj[idx]
    if isinstance(obj, (str, bytes, dict)):
        raise DlcpruneError(f"cannot take a subset of a {type(obj).__name__}: pass a torch or Hugging Face dataset, "
                            "a dlcprune dataset, a list, an array or a DataFrame")
    if hasattr(obj, "__getitem__") and hasattr(obj, "__len__"):
        from torch.utils.data import Subset

        return Subset(obj, idx)
    raise DlcpruneError(f"cannot take a subset of a {type(obj).__name__}: pass a torch or Hugging Face dataset, "
                        "a dlcprune dataset, a list, an array or a DataFrame")


def export_selection(out: Path, selection, scores, *, format: str, link: bool = False, data: str | None = None) -> list[Path]:
    """Export every keep fraction of ``selection`` into ``out/keep_<fraction>/``, from ``data`` (default:
    the dataset the scores folder records), after checking it is the dataset that was scored."""
    from .artifacts import keep_folder_name
    from .data import load_dataset

    spec = dict(scores.manifest.get("data") or {})
    if data is not None:
        spec["data"] = data
    if not spec.get("data"):
        raise DlcpruneError("the scores folder does not say where its data is; pass --data")
    if scores.manifest.get("dataset", {}).get("kind") == "instruction records":  # as they were scored
        from .data.instructions import load_instructions

        dataset = load_instructions(spec["data"], split=spec.get("hf_split"))
    else:
        dataset = load_dataset(spec["data"], text_column=spec.get("text_column", "text"),
                               label_column=spec.get("label_column", "label"), hf_split=spec.get("hf_split"))
    check_fingerprint(dataset, scores.manifest.get("dataset", {}).get("fingerprint_sha256"), what="the scores")
    return [export_subset(spec["data"], kept, out / keep_folder_name(keep), format=format, link=link,
                          hf_split=spec.get("hf_split"))
            for keep, kept in selection.kept.items()]
