"""The files a run leaves behind, written atomically, and reading them back.

Scores folder: ``scores.csv`` (index,id,label,score; sample order; higher = harder),
``levels.npy`` (K, N) per-level losses, ``features.npy`` (N, D) unmasked features (not for a
causal LM on instruction records), ``manifest.json``. Selection folder: ``keep_<fraction>/keep_indices.npy`` and
``pruned_indices.npy`` (sorted int64) per keep fraction, and ``manifest.json``.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from typing import TYPE_CHECKING

from . import files
from .errors import DlcpruneError
from .selection import class_counts
from .threads import runtime

if TYPE_CHECKING:
    from .data import Dataset
    from .methods.select import Selection
    from .models import Encoder
    from .scoring import DlcResult

PARTIAL = ".partial"  # checkpoint folder of an unfinished scoring run, inside the output folder
SCORE_FILES = ("levels.npy", "features.npy", "scores.csv", "manifest.json")  # what write_scores writes


def write_scores(out: Path, result: DlcResult, *, dataset: Dataset, encoder: Encoder,
                 total_s: float, data_spec: dict | None = None, method: str = "dlc") -> dict:
    """Write the scores folder; returns the manifest. ``data_spec``: how the data was named
    ({"data": path or built-in, "text_column", "label_column"}), for exports and checks later.
    ``method``: "dlc", or an instruction baseline whose measure ``result.scores`` holds (None: it
    has none, only features; then no scores.csv); files whose array is None are not written."""
    kind = dataset_kind(dataset)
    manifest = {
        "method": method,
        **({"loss": "response-token NLL (causal LM)" if kind == "instruction records" else
            "cross-entropy over inverse prototype distances"} if method == "dlc" else {}),
        "score_direction": "higher = harder" if method == "dlc" else "the baseline's measure (see parameters)",
        "parameters": result.parameters,
        **({"sparsity_per_level": [round(float(s), 6) for s in result.sparsity]} if result.sparsity is not None else {}),
        "model": {"name": encoder.name, "weights": encoder.weights, "weights_sha256": encoder.weights_sha256,
                  "masked_tensors": len(encoder.maskable),
                  "masked_weights": int(sum(p.numel() for _, p in encoder.maskable))},
        "dataset": {"source": dataset.source, "kind": kind, "fingerprint_sha256": dataset.fingerprint(),
                    "samples": len(dataset),
                    "class_names": dataset.class_names,
                    "class_sizes": np.bincount(dataset.labels, minlength=dataset.num_classes).tolist()},
        **({"data": data_spec} if data_spec else {}),
        "seed": result.parameters.get("seed"),
        "timings_s": dict(result.timings, total_s=total_s),
        "memory": files.peak_memory_mb(),
        "runtime": runtime(),
        "versions": files.versions(),
        "command": sys.argv,
        "created": files.now_iso(),
    }
    for folder in (out, out / "selection"):  # --force over a selection (prune's, or select's own folder):
        if is_selection(folder):             # its indices would point into other scores
            remove_selection(folder)
            (folder / "verdict.json").unlink(missing_ok=True)
    if is_selection(out / "selection"):
        (out / "selection" / "manifest.json").unlink()
        with contextlib.suppress(OSError):
            (out / "selection").rmdir()  # unless something else is in it
    for name, array in (("levels.npy", result.level_losses), ("features.npy", result.features)):
        if array is not None:
            files.save_npy(out / name, array)
        else:  # --force over another run: nothing of it may stay beside this one
            (out / name).unlink(missing_ok=True)
    (out / "scores.csv").unlink(missing_ok=True)
    if result.scores is not None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["index", "id", "label", "score"])
        for i, (sid, y, s) in enumerate(zip(dataset.ids, dataset.labels, result.scores)):
            w.writerow([i, sid, int(y), repr(float(s))])
        files.write_text(out / "scores.csv", buf.getvalue())
    files.write_json(out / "manifest.json", manifest)
    return manifest


def dataset_kind(dataset: Dataset) -> str:
    from .data import InstructionSet, TextDataset

    return "instruction records" if isinstance(dataset, InstructionSet) else "texts" \
        if isinstance(dataset, TextDataset) else "images"


@dataclass
class Scores:
    """A scores folder read back: (N,) arrays in sample order."""

    ids: list[str]
    labels: np.ndarray
    scores: np.ndarray
    manifest: dict
    folder: Path


def read_scores(folder: str | Path) -> Scores:
    """The scores folder that `dlcprune score` (or ``write_scores``) wrote: (N,) scores in sample
    order, higher = harder; (N,) labels 0..C-1; sample ids; its manifest. Checked against the
    manifest (rows, classes, class sizes). ``folder`` may also name its scores.csv."""
    if not isinstance(folder, (str, Path)):
        raise DlcpruneError(f"a scores folder is a path (str or Path), got a {type(folder).__name__}")
    folder = Path(folder)
    if folder.name == "scores.csv" and folder.is_file():
        folder = folder.parent
    path = folder / "scores.csv"
    if not path.is_file():
        raise DlcpruneError(f"{path} not found; expected a scores folder: the --output folder of `dlcprune score`")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != ["index", "id", "label", "score"]:
        raise DlcpruneError(f"{path}: expected the header index,id,label,score")
    body = rows[1:]
    if not body:
        raise DlcpruneError(f"{path} holds no samples")
    try:
        index = np.array([int(r[0]) for r in body])
        labels = np.array([int(r[2]) for r in body], dtype=np.int64)
        scores = np.array([float(r[3]) for r in body])
    except (ValueError, IndexError) as err:
        raise DlcpruneError(f"{path}: malformed row ({err})") from None
    if not np.array_equal(index, np.arange(len(body))):
        raise DlcpruneError(f"{path}: the index column must be 0..N-1 in order")
    if labels.min() < 0:
        raise DlcpruneError(f"{path}: labels must be class numbers >= 0, found {int(labels.min())}")
    manifest_path = folder / "manifest.json"
    manifest = files.read_json(manifest_path) if manifest_path.is_file() else {}  # none: a scores.csv from elsewhere
    if not isinstance(manifest, dict):
        raise DlcpruneError(f"{manifest_path} holds no manifest (a JSON object); was it edited? Re-run `dlcprune score`")
    check_against_manifest(path, labels, manifest)
    return Scores(ids=[r[1] for r in body], labels=labels, scores=scores, manifest=manifest, folder=folder)


def check_against_manifest(path: Path, labels: np.ndarray, manifest: dict) -> None:
    """scores.csv must still describe the data its manifest names: as many rows as samples, labels
    among its classes, and as many per class (a truncated or edited file fails here, in one line)."""
    dataset = manifest.get("dataset")
    if not isinstance(dataset, dict):
        return
    redo = "; was it edited or cut short? Re-run `dlcprune score`"
    if isinstance(dataset.get("samples"), int) and dataset["samples"] != len(labels):
        raise DlcpruneError(f"{path} has {len(labels)} rows but its manifest.json records {dataset['samples']} samples{redo}")
    names = dataset.get("class_names")
    if isinstance(names, list) and names and labels.max() >= len(names):
        raise DlcpruneError(f"{path}: label {int(labels.max())} is beyond the {len(names)} classes in its manifest.json{redo}")
    sizes = dataset.get("class_sizes")
    if isinstance(sizes, list) and np.bincount(labels, minlength=len(sizes)).tolist() != sizes:
        raise DlcpruneError(f"{path}: its samples per class differ from the class sizes in its manifest.json{redo}")


def is_selection(folder: Path) -> bool:
    """Whether ``folder`` holds a selection that ``write_selection`` wrote (its manifest says so)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "fractions" in manifest


def remove_selection(folder: Path, *, keeping: set[str] = frozenset()) -> None:
    """Remove the keep_<fraction>/ folders that ``write_selection`` wrote into ``folder``, but those
    named in ``keeping``; nothing else in it is touched."""
    for stale in folder.glob("keep_*") if folder.is_dir() else ():
        if stale.is_dir() and stale.name not in keeping and (stale / "keep_indices.npy").exists():
            shutil.rmtree(stale)


def keep_folder_name(keep: float) -> str:
    return f"keep_{keep:g}"


def write_selection(out: Path, selection: "Selection", *, scores: Scores | None = None) -> dict:
    """Write the selection folder: ``keep_<fraction>/keep_indices.npy`` and ``pruned_indices.npy``
    (sorted int64) per keep fraction, ``manifest.json``, and ``verdict.json`` when the method
    judged itself against random (auto). Returns the manifest."""
    labels = selection.labels
    n, num_classes = len(labels), int(labels.max()) + 1
    # --force over another selection: nothing of it may stay beside this one
    remove_selection(out, keeping={keep_folder_name(keep) for keep in selection.kept})
    if selection.verdicts is None:
        (out / "verdict.json").unlink(missing_ok=True)
    fractions = {}
    for keep, kept_idx in selection.kept.items():
        pruned = np.setdiff1d(np.arange(n, dtype=np.int64), kept_idx)
        folder = out / keep_folder_name(keep)
        files.save_npy(folder / "keep_indices.npy", kept_idx)
        files.save_npy(folder / "pruned_indices.npy", pruned)
        fractions[keep_folder_name(keep)] = {
            "keep": keep, "kept": int(len(kept_idx)), "pruned": int(len(pruned)),
            "kept_per_class": np.bincount(labels[kept_idx], minlength=num_classes).tolist(),
            "expected_per_class": list(class_counts(labels, keep).values()),
            **selection.details.get(keep, {}),
        }
    manifest = {
        "method": selection.method, "parameters": selection.parameters, "seed": selection.seed,
        "keeps": list(selection.kept), "stratified_by": "label (class)", "samples": n, "fractions": fractions,
        "runtime": runtime(),
        **({"advice": selection.advice} if selection.advice is not None else {}),
        "versions": files.versions(), "command": sys.argv, "created": files.now_iso(),
    }
    if scores is not None:
        manifest["scores"] = {"folder": str(scores.folder.resolve()), "method": scores.manifest.get("method"),
                              "model": scores.manifest.get("model"),
                              "dataset": scores.manifest.get("dataset", {}).get("fingerprint_sha256")}
    if selection.verdicts is not None:
        files.write_json(out / "verdict.json", {
            "method": selection.method, "judge": JUDGE, "verdicts": list(selection.verdicts.values()),
            **({"advice": selection.advice} if selection.advice is not None else {})})
    files.write_json(out / "manifest.json", manifest)
    return manifest


JUDGE = ("linear probe (logistic regression) on the frozen pre-trained features, trained on each subset of the "
         "selection pool and scored on a held-out validation split; intervals: 95% paired bootstrap over "
         "validation samples and seeded draws")


def read_features(folder: Path, n: int) -> np.ndarray:
    """The unmasked features (N, D) saved beside the scores."""
    path = Path(folder) / "features.npy"
    if not path.is_file():
        raise DlcpruneError(f"{path} not found; this selection needs the features that `dlcprune score` saves there")
    redo = "; re-run `dlcprune score` to write it again"
    try:
        features = np.load(path)
    except (ValueError, OSError, EOFError) as err:  # cut short, not an .npy, or pickled objects
        raise DlcpruneError(f"{path} cannot be read as a float array ({err}){redo}") from None
    if features.ndim != 2 or len(features) != n:
        raise DlcpruneError(f"{path} has shape {features.shape}, expected ({n}, D)")
    if not np.issubdtype(features.dtype, np.floating):
        raise DlcpruneError(f"{path} holds {features.dtype} values, not floats{redo}")
    bad = sum(int((~np.isfinite(chunk)).any(axis=1).sum()) for _, chunk in files.row_chunks(features))
    if bad:
        raise DlcpruneError(f"{path}: the features of {bad} sample(s) hold NaN or inf{redo}")
    return features
