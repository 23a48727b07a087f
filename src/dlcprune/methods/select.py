"""``select``: the one way from scores (and features, dynamics) to the samples to keep, used by the
command line, the bench and the demo.

>>> sel = select("scores/", method="auto", keep=[0.1, 0.3])   # a `dlcprune score` folder
>>> sel.indices(0.3)            # sorted int64 positions into the scored dataset
>>> sel.verdicts[0.3]["verdict"]  # e.g. "beats random by 1.20 points [+0.40, +2.05]"
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..artifacts import keep_folder_name
from ..errors import DlcpruneError
from ..selection import check_keep, check_scores, check_seed, class_codes, is_real
from .auto import DEFAULT_CANDIDATES, Auto, check_candidates
from .base import METHODS, SelectionInputs, make_method
from .dlc import DlcMethod

if TYPE_CHECKING:
    from ..artifacts import Scores
    from ..training.dynamics import Trajectory

KEEP_GRID = tuple(round(0.1 * i, 1) for i in range(1, 10))  # the protocol's keep fractions (10%..90%)


@dataclass
class Selection:
    """Which samples to keep, per keep fraction.

    kept[keep]: sorted int64 positions into the scored dataset (every sample may be kept, also the
    ones ``auto`` held out to judge); details[keep]: timings and, for auto, its decision;
    verdicts[keep]: auto's verdict against random (None for other methods); advice: the smallest
    keep fraction within ``target_drop`` points of the full pool (None unless asked for);
    labels: (N,) the classes selected within, numbered 0..C-1 (the given labels in sorted order).
    """

    method: str
    parameters: dict
    seed: int
    kept: dict[float, np.ndarray]
    labels: np.ndarray
    details: dict[float, dict] = field(default_factory=dict)
    verdicts: dict[float, dict] | None = None
    advice: dict | None = None
    model_seconds: float = 0.0

    def indices(self, keep: float | None = None) -> np.ndarray:
        """A copy of the kept positions for ``keep`` (may be omitted when there is one keep fraction)."""
        if keep is None:
            if len(self.kept) != 1:
                raise DlcpruneError(f"this selection has {len(self.kept)} keep fractions; name one of {list(self.kept)}")
            return next(iter(self.kept.values())).copy()
        found = [kept for k, kept in self.kept.items() if is_real(keep) and abs(k - keep) <= 1e-9]  # 0.1 * 3 is 0.3
        if found:
            return found[0].copy()
        raise DlcpruneError(f"no keep fraction {keep!r} in this selection; it has {list(self.kept)}")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k:g}: {len(v)}" for k, v in self.kept.items())
        return f"Selection(method={self.method!r}, samples={len(self.labels)}, kept={{{sizes}}})"

    def subset(self, dataset, keep: float | None = None):
        """The kept samples of ``dataset`` (the data that was scored, in the same order) as the same
        kind of object: torch ``Subset``, Hugging Face ``Dataset.select``, dlcprune dataset, list,
        the rows of an array or tensor, or a DataFrame's ``.iloc`` rows."""
        from ..export import subset

        if hasattr(dataset, "__len__") and len(dataset) != len(self.labels):
            raise DlcpruneError(f"the dataset has {len(dataset)} samples, the selection was made on {len(self.labels)}")
        return subset(dataset, self.indices(keep))


def select(scores: "str | Path | Scores | np.ndarray | None" = None, *, method: str = "auto",
           keep: float | list[float] | None = None, seed: int = 0, labels: np.ndarray | None = None,
           features: np.ndarray | None = None, split: float | None = None,
           candidates: list[str] | None = None, target_drop: float | None = None,
           dynamics: "str | Path | Trajectory | None" = None, val_fraction: float = 0.2) -> Selection:
    """Choose the samples to keep with the registered ``method`` (``dlcprune list``).

    scores: a `dlcprune score` folder (its scores, labels and features are read as needed), a
    ``Scores`` read back, or an (N,) array of DLC scores (higher = harder) with ``labels`` (N,; class
    ids of any kind: whole numbers in any range, bools or strings; None: data without classes,
    selected as one class) and,
    for methods that need them, ``features`` (N, D). keep: fraction(s) KEPT in (0, 1]; with
    ``target_drop`` alone, the protocol grid 0.1..0.9 is tried and only the advised fraction kept.
    split: FlexRand's gamma (method "flexrand"). candidates, target_drop (points of validation
    accuracy below the full pool), val_fraction: ``auto`` / ``flexrand-auto``. dynamics: "head"
    (SGD on a linear head over the features), a dynamics.npz path, or a ``Trajectory``.
    """
    keeps = _keeps(keep, target_drop)
    seed = check_seed(seed)
    chosen = _method(method, split=split, candidates=candidates, target_drop=target_drop, val_fraction=val_fraction,
                     seed=seed)
    inputs = _inputs(scores, labels=labels, features=features, uses=chosen.uses, dynamics=dynamics, method=method)
    t0 = time.perf_counter()
    chosen.fit(inputs)
    model_s = time.perf_counter() - t0 + (inputs.dynamics.seconds if inputs.dynamics is not None else 0.0)
    decide = isinstance(chosen, Auto)
    verdicts = {k: chosen.decide(k).as_dict() for k in keeps} if decide else None
    advice = advise(chosen, keeps, target_drop) if target_drop is not None else None
    if advice is not None and keep is None:
        keeps = [advice["keep"]] if advice["keep"] is not None else []
    kept, details = {}, {}
    for k in keeps:
        t = time.perf_counter()
        kept[k] = chosen.select(keep=k, seed=seed)
        details[k] = {"select_s": round(time.perf_counter() - t, 4), **({"decision": verdicts[k]} if decide else {})}
    parameters = {**chosen.params(), "model_s": round(model_s, 3)}
    if inputs.dynamics is not None:
        parameters.update(dynamics=inputs.dynamics.trainer, dynamics_parameters=inputs.dynamics.parameters)
    if decide:
        parameters.update(validation_held_out=int(len(chosen.validation_indices_)),
                          choice_s=round(chosen.setup_seconds_ + sum(d.seconds for d in chosen.decisions_.values()), 3))
    return Selection(method=method, parameters=parameters, seed=seed, kept=kept, labels=inputs.labels,
                     details=details, verdicts=verdicts, advice=advice, model_seconds=model_s)


def check_features(features, n: int) -> np.ndarray:
    """(N, D) finite features of numbers, one row per sample (their dtype kept)."""
    from .. import files

    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    arr = np.asarray(features)
    if arr.dtype.kind not in "iuf":
        raise DlcpruneError(f"features must be an (N, D) array of numbers; got {arr.dtype} values")
    if arr.ndim != 2 or len(arr) != n:
        raise DlcpruneError(f"features must be one row per sample, (N={n}, D); got shape {arr.shape}")
    bad = sum(int((~np.isfinite(chunk)).any(axis=1).sum()) for _, chunk in files.row_chunks(arr))
    if bad:
        raise DlcpruneError(f"the features of {bad} sample(s) hold NaN or inf; extract the features again")
    return arr


def _needing_dynamics(chosen, method: str) -> str:
    """The name to put in the message: the method, or auto's first candidate that reads training dynamics."""
    if not isinstance(chosen, Auto):
        return method
    return next(n for n in chosen.candidates if n != "flexrand" and "dynamics" in make_method(n).uses)


def needs_features(method: str) -> bool:
    """Whether ``method`` reads the samples' features or training dynamics (auto: its probe):
    scores of instruction records keep neither, so such a method cannot select them."""
    return _reads_features(_method(method, split=None, candidates=None, target_drop=None, val_fraction=0.2, seed=0).uses)


def _reads_features(uses: tuple[str, ...]) -> bool:
    return "features" in uses or "dynamics" in uses


def check_request(*, method: str, keep=None, split=None, candidates=None, target_drop=None,
                  val_fraction: float = 0.2, dynamics=None, **_) -> None:
    """The checks ``select`` makes on its options, without any data: lets a command fail before slow work."""
    _keeps(keep, target_drop)
    chosen = _method(method, split=split, candidates=candidates, target_drop=target_drop, val_fraction=val_fraction,
                     seed=0)
    if dynamics is None and "dynamics" in chosen.uses:  # the same message as select's, before any scoring
        SelectionInputs(labels=np.zeros(1, dtype=np.int64)).require("dynamics", _needing_dynamics(chosen, method))


def advise(method: Auto, keeps: list[float], target_drop: float) -> dict:
    """The smallest of ``keeps`` whose chosen selection's validation accuracy stays within
    ``target_drop`` points of the full pool's: the lower end of the 95% interval of (chosen - full
    pool) is at least -target_drop. ``keep`` is None when no fraction does."""
    ok = [k for k in sorted(keeps) if 100 * method.decide(k).below_full.low >= -target_drop]
    best = ok[0] if ok else None
    points = f"{target_drop:g} point{'' if target_drop == 1 else 's'}"
    line = (f"keep {best:g}: the smallest fraction whose validation accuracy stays within {points} "
            f"of the full pool (95% interval)" if best is not None else
            f"no keep fraction of {sorted(keeps)} stays within {points} of the full pool; keep everything")
    return {"target_drop_points": target_drop, "keep": best, "advice": line,
            "below_full_pool_points": {f"{k:g}": method.decide(k).below_full.points() for k in sorted(keeps)}}


def _keeps(keep: float | list[float] | None, target_drop: float | None) -> list[float]:
    if target_drop is not None and not (isinstance(target_drop, (int, float)) and 0 <= target_drop < 100):
        raise DlcpruneError(f"target_drop is in points of accuracy below the full pool, 0 <= target_drop < 100; "
                            f"got {target_drop}")
    if keep is None:
        if target_drop is None:
            raise DlcpruneError("give keep (the fractions KEPT) or target_drop (to have the keep fraction advised)")
        return list(KEEP_GRID)
    if isinstance(keep, (str, bytes)):
        raise DlcpruneError(f"keep must be a fraction or a list of fractions (the share KEPT), got the string {keep!r}")
    keeps = [keep] if np.ndim(keep) == 0 else np.asarray(keep).tolist() if isinstance(keep, np.ndarray) else list(keep)
    if not keeps:
        raise DlcpruneError("keep needs at least one fraction")
    keeps = list(dict.fromkeys(check_keep(k.item() if isinstance(k, np.ndarray) else k) for k in keeps))
    folders = [keep_folder_name(k) for k in keeps]
    clash = next((f for f in folders if folders.count(f) > 1), None)
    if clash:  # each fraction is written to keep_<fraction with 6 significant digits>/
        raise DlcpruneError(f"the kept fractions {' and '.join(f'{k!r}' for k, f in zip(keeps, folders) if f == clash)} "
                            f"would both be written to {clash}/; give fractions that differ in their first 6 digits")
    return keeps


def _method(name: str, *, split, candidates, target_drop, val_fraction, seed):
    if name not in METHODS:
        from ..registry import unknown_name_message

        raise DlcpruneError(unknown_name_message("method", name, METHODS.names()))
    if split is not None and name != "flexrand":
        raise DlcpruneError(f"split (FlexRand's gamma) applies to the flexrand method, not {name!r}")
    auto = name in ("auto", "flexrand-auto")
    if not auto and (candidates is not None or target_drop is not None):
        given = " and ".join(n for n, v in (("candidates", candidates), ("target_drop", target_drop)) if v is not None)
        raise DlcpruneError(f"{given} {'apply' if ' and ' in given else 'applies'} to the auto methods "
                            f"(auto, flexrand-auto), not {name!r}")
    if isinstance(candidates, str):
        raise DlcpruneError(f"candidates is a list of method names; got the string {candidates!r} "
                            f"(pass [{candidates!r}] or {candidates.split(',')!r})")
    if not (is_real(val_fraction) and 0.0 < val_fraction < 1.0):
        raise DlcpruneError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    if name == "flexrand" and split is not None:
        from ..selection import FlexRand

        return DlcMethod(FlexRand(split), "flexrand")
    if name == "auto":
        return Auto(check_candidates(candidates) if candidates is not None else DEFAULT_CANDIDATES,
                    val_fraction=val_fraction, seed=seed)
    method = make_method(name)
    if auto:
        method.val_fraction, method.seed = val_fraction, seed
    return method


def _inputs(scores, *, labels, features, uses, dynamics, method) -> SelectionInputs:
    """SelectionInputs from a scores folder, a Scores object or arrays; reads only what ``uses`` needs."""
    from ..artifacts import Scores, read_features, read_scores

    folder = None
    if isinstance(scores, (str, Path)):
        scores = read_scores(scores)
    if isinstance(scores, Scores):
        if scores.manifest.get("dataset", {}).get("kind") == "instruction records" and _reads_features(uses):
            needs = "classes and features (a linear probe judges it)" if method in ("auto", "flexrand-auto") else \
                "the samples' features"
            raise DlcpruneError(f"{method!r} needs {needs}; scores of instruction records have none: choose the "
                                "method (--policy) flexrand, easy, hard or random")
        if labels is not None:
            raise DlcpruneError("labels come from the scores folder; pass labels= only with an array of scores")
        folder, labels, scores = scores.folder, scores.labels, scores.scores
    if labels is None and scores is None:
        raise DlcpruneError("labels are needed (one per sample); pass labels= or a scores folder")
    if scores is not None:
        scores = check_scores(scores)
    # no classes: one; a folder's labels are its classes (read_scores checked them); else the
    # classes given numbered 0..C-1 in sorted order (labels 0..C-1 stay as they are)
    if labels is None:
        labels = np.zeros(len(scores), dtype=np.int64)
    elif folder is None:
        labels = class_codes(labels, samples=None if scores is None else len(scores))
    n = len(labels)
    need_features = "features" in uses or dynamics == "head"
    if features is not None:
        features = check_features(features, n)
    elif need_features and folder is not None:
        features = read_features(folder, n)  # checked as it is read
    inputs = SelectionInputs(labels=labels, features=features, dlc_scores=scores)
    if dynamics is not None and "dynamics" not in uses:
        raise DlcpruneError(f"dynamics apply to training-dynamics methods (forgetting, el2n, ...), not {method!r}")
    if isinstance(dynamics, str) and dynamics == "head":
        from ..training import record_head_dynamics

        inputs.require("features", "dynamics 'head'")
        inputs.dynamics = record_head_dynamics(inputs.features, labels, num_classes=inputs.num_classes)
    elif isinstance(dynamics, (str, Path)):
        from ..training.dynamics import Trajectory

        inputs.dynamics = Trajectory.load(dynamics)
    else:
        inputs.dynamics = dynamics
    return inputs
