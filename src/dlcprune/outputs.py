"""The files a run leaves behind, written atomically, and reading them back.

Scores folder: ``scores.csv`` (index,id,label,score; sample order; higher = harder),
``levels.npy`` (K, N) per-level losses, ``features.npy`` (N, D) unmasked features,
``manifest.json``. Selection folder: ``keep_<fraction>/keep_indices.npy`` and
``pruned_indices.npy`` (sorted int64) per keep fraction, and ``manifest.json``.
"""
from __future__ import annotations

import csv
import io as _io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io
from .data import Dataset
from .errors import DlcpruneError
from .models import Encoder
from .scoring import DlcResult
from .selection import class_counts

PARTIAL = ".partial"  # checkpoint folder of an unfinished scoring run, inside the output folder


def write_scores(out: Path, result: DlcResult, *, dataset: Dataset, encoder: Encoder,
                 total_s: float) -> dict:
    """Write the scores folder; returns the manifest."""
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "id", "label", "score"])
    for i, (sid, y, s) in enumerate(zip(dataset.ids, dataset.labels, result.scores)):
        w.writerow([i, sid, int(y), repr(float(s))])
    manifest = {
        "method": "dlc",
        "score_direction": "higher = harder",
        "parameters": result.parameters,
        "sparsity_per_level": [round(float(s), 6) for s in result.sparsity],
        "model": {"name": encoder.name, "weights": encoder.weights, "weights_sha256": encoder.weights_sha256,
                  "masked_tensors": len(encoder.maskable),
                  "masked_weights": int(sum(p.numel() for _, p in encoder.maskable))},
        "dataset": {"source": dataset.source, "fingerprint_sha256": dataset.fingerprint(), "samples": len(dataset),
                    "class_names": dataset.class_names,
                    "class_sizes": np.bincount(dataset.labels, minlength=dataset.num_classes).tolist()},
        "seed": result.parameters["seed"],
        "timings_s": dict(result.timings, total_s=total_s),
        "memory": io.peak_memory_mb(),
        "versions": io.versions(),
        "command": sys.argv,
        "created": io.now_iso(),
    }
    io.save_npy(out / "levels.npy", result.level_losses)
    io.save_npy(out / "features.npy", result.features)
    io.write_text(out / "scores.csv", buf.getvalue())
    io.write_json(out / "manifest.json", manifest)
    return manifest


@dataclass
class Scores:
    """A scores folder read back: (N,) arrays in sample order."""

    ids: list[str]
    labels: np.ndarray
    scores: np.ndarray
    manifest: dict
    folder: Path


def read_scores(folder: str | Path) -> Scores:
    folder = Path(folder)
    path = folder / "scores.csv"
    if not path.is_file():
        raise DlcpruneError(f"{path} not found; --scores takes the --output folder of `dlcprune score`")
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
    manifest_path = folder / "manifest.json"
    manifest = io.read_json(manifest_path) if manifest_path.is_file() else {}
    return Scores(ids=[r[1] for r in body], labels=labels, scores=scores, manifest=manifest, folder=folder)


def keep_folder_name(keep: float) -> str:
    return f"keep_{keep:g}"


def write_selection(out: Path, scores: Scores, *, policy: str, parameters: dict, seed: int,
                    kept: dict[float, np.ndarray], pool: np.ndarray | None = None,
                    details: dict[float, dict] | None = None) -> dict:
    """Write the selection folder for ``kept[keep]`` (sorted indices); returns the manifest.

    ``pool``: the indices selection drew from when a validation split was held out (the rest are
    written as ``validation_indices.npy`` and count as pruned); ``details``: per-keep extras.
    """
    n = len(scores.scores)
    pool = np.arange(n, dtype=np.int64) if pool is None else pool
    fractions = {}
    for keep, kept_idx in kept.items():
        pruned = np.setdiff1d(np.arange(n, dtype=np.int64), kept_idx)
        folder = out / keep_folder_name(keep)
        io.save_npy(folder / "keep_indices.npy", kept_idx)
        io.save_npy(folder / "pruned_indices.npy", pruned)
        per_class = np.bincount(scores.labels[kept_idx], minlength=int(scores.labels.max()) + 1)
        fractions[keep_folder_name(keep)] = {
            "keep": keep, "kept": int(len(kept_idx)), "pruned": int(len(pruned)),
            "kept_per_class": per_class.tolist(),
            "expected_per_class": list(class_counts(scores.labels[pool], keep).values()),
            **(details or {}).get(keep, {}),
        }
    if len(pool) < n:
        io.save_npy(out / "validation_indices.npy", np.setdiff1d(np.arange(n, dtype=np.int64), pool))
    manifest = {
        "policy": policy, "parameters": parameters, "seed": seed, "keeps": list(kept),
        "stratified_by": "label (class)", "samples": n, "selection_pool": int(len(pool)),
        "validation_held_out": int(n - len(pool)), "fractions": fractions,
        "scores": {"folder": str(scores.folder.resolve()), "method": scores.manifest.get("method"),
                   "model": scores.manifest.get("model"), "dataset": scores.manifest.get("dataset", {}).get("fingerprint_sha256")},
        "versions": io.versions(), "command": sys.argv, "created": io.now_iso(),
    }
    io.write_json(out / "manifest.json", manifest)
    return manifest


def read_features(folder: Path, n: int) -> np.ndarray:
    """The unmasked features (N, D) saved beside the scores."""
    path = Path(folder) / "features.npy"
    if not path.is_file():
        raise DlcpruneError(f"{path} not found; this selection needs the features that `dlcprune score` saves there")
    features = np.load(path)
    if features.ndim != 2 or len(features) != n:
        raise DlcpruneError(f"{path} has shape {features.shape}, expected ({n}, D)")
    return features
