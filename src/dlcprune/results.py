"""A bench folder's results: ``results.csv`` (one row per cell) read and written, the accuracy
table and the gap-to-random plot. Used by the runner (``bench``) and the report."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from . import files

FULL = "full pool"  # results.csv row: the probe trained on the whole selection pool (keep 1.0)
COLUMNS = ["method", "keep", "seed", "accuracy", "kept", "choice", "model_s", "select_s", "train_s"]


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = [dict(r, keep=float(r["keep"]), seed=int(r["seed"]), accuracy=float(r["accuracy"])) for r in csv.DictReader(f)]
    for r in rows:  # results.csv of dlcprune 0.1 called the choice column "split" (flexrand-auto's gamma)
        if "split" in r:
            r.setdefault("choice", r.pop("split"))
    return rows


def write_rows(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    files.write_text(path, buf.getvalue())


def summarise(rows: list[dict]) -> dict[str, dict[float, list[float]]]:
    """accuracy[method][keep] = accuracies over seeds."""
    out: dict[str, dict[float, list[float]]] = {}
    for r in rows:
        out.setdefault(r["method"], {}).setdefault(float(r["keep"]), []).append(float(r["accuracy"]))
    return out


def gaps_to_random(rows: list[dict]) -> dict[str, float]:
    """Per method, the mean over the keep fractions it shares with random of (its mean accuracy −
    random's), in points; empty without random."""
    acc = summarise(rows)
    if "random" not in acc:
        return {}
    out = {}
    for method, per in acc.items():
        keeps = [k for k in per if k in acc["random"]]
        if method not in ("random", FULL) and keeps:
            out[method] = float(np.mean([100 * (np.mean(per[k]) - np.mean(acc["random"][k])) for k in keeps]))
    return out


def markdown_table(rows: list[dict]) -> str:
    """Test accuracy (%) per method and keep fraction, mean ± std over seeds, the mean over
    fractions, and the mean model and selection seconds per cell."""
    acc = summarise(rows)
    keeps = sorted({k for per in acc.values() for k in per})
    lines = ["| method | " + " | ".join(f"{k:.0%}" for k in keeps) + " | mean | model s | select s |",
             "|---|" + "---:|" * (len(keeps) + 3)]
    for method, per in acc.items():
        cells = [f"{100 * np.mean(per[k]):.2f}" + (f" ± {100 * np.std(per[k]):.2f}" if len(per[k]) > 1 else "")
                 if k in per else "" for k in keeps]
        mean = 100 * np.mean([np.mean(v) for v in per.values()])
        times = [_mean_of(rows, method, col) for col in ("model_s", "select_s")]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | **{mean:.2f}** | " + " | ".join(times) + " |")
    return "\n".join(lines) + "\n"


def _mean_of(rows: list[dict], method: str, column: str) -> str:
    values = [float(r[column]) for r in rows if r["method"] == method and r.get(column) not in (None, "")]
    return f"{np.mean(values):.1f}" if values else ""


def plot_gap_to_random(rows: list[dict], path: Path) -> None:
    """Accuracy minus random's (same keep and seed) against the keep fraction, mean ± std bands."""
    plt = _pyplot()
    acc = summarise(rows)
    if "random" not in acc:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.axhline(0.0, color="grey", lw=1, label="random")
    for method, per in acc.items():
        if method in ("random", FULL):
            continue
        keeps = sorted(k for k in per if k in acc["random"])
        gap = [100 * (np.asarray(per[k]) - np.mean(acc["random"][k])) for k in keeps]
        mean, std = np.array([g.mean() for g in gap]), np.array([g.std() for g in gap])
        ax.plot([100 * k for k in keeps], mean, marker="o", label=method)
        ax.fill_between([100 * k for k in keeps], mean - std, mean + std, alpha=0.2)
    _finish(fig, ax, path, xlabel="keep (% of the selection pool)", ylabel="test accuracy − random (points)", fontsize=8)


def time_to_accuracy(rows: list[dict], *, tolerance: float = 0.01, feature_s_per_sample: float = 0.0) -> dict:
    """What each (method, keep) cost end to end and reached, against fine-tuning on the full pool.

    seconds = model_s (scoring / features / the run that recorded dynamics) + the largest select_s
    over seeds (the seed that paid for a choice on validation) + the mean train_s, plus, for the
    rows that read nothing before training (model_s 0: random, the full pool), a feature pass over
    their kept samples at ``feature_s_per_sample`` (a probe-started head needs those features);
    accuracy = the mean over seeds. ``headline``: the cheapest cell within ``tolerance`` of the full
    pool's mean accuracy, as a share of the full run's time (or that none gets there, and the closest).
    """
    acc = summarise(rows)
    if FULL not in acc:
        raise ValueError("time_to_accuracy needs the full-pool rows")
    of = lambda method, keep, col: [float(r[col]) for r in rows if r["method"] == method and float(r["keep"]) == keep]

    def features(method: str, keep: float) -> float:
        if not feature_s_per_sample or max(of(method, keep, "model_s")) > 0:
            return 0.0
        return feature_s_per_sample * float(np.mean(of(method, keep, "kept")))

    full_acc = float(np.mean(acc[FULL][1.0]))
    full_s = float(np.mean(of(FULL, 1.0, "train_s"))) + features(FULL, 1.0)
    cells = []
    for method, per in acc.items():
        for keep in sorted(per):
            if method == FULL:
                continue
            seconds = (np.mean(of(method, keep, "model_s")) + max(of(method, keep, "select_s"))
                       + np.mean(of(method, keep, "train_s")) + features(method, keep))
            cells.append({"method": method, "keep": keep, "accuracy": float(np.mean(per[keep])),
                          "seconds": round(float(seconds), 2), "time_share": round(float(seconds / full_s), 4)})
    bar = full_acc - tolerance - 1e-9  # exactly one point below counts as within one point
    reached = sorted((c for c in cells if c["accuracy"] >= bar), key=lambda c: c["seconds"])
    points = f"{100 * tolerance:g} point"
    if reached:
        c = reached[0]
        headline = (f"{c['method']} at keep {c['keep']:.0%} reaches full-data accuracy − {points} "
                    f"({100 * c['accuracy']:.2f}% vs {100 * full_acc:.2f}%) in {100 * c['time_share']:.0f}% of the full "
                    f"run's time ({c['seconds']:.0f} s with scoring and selection vs {full_s:.0f} s)")
    elif cells:
        c = max(cells, key=lambda c: (c["accuracy"], -c["seconds"]))
        headline = (f"no pruned subset reaches full-data accuracy − {points} ({100 * full_acc:.2f}%): pruning does not "
                    f"pay here; the closest, {c['method']} at keep {c['keep']:.0%}, reaches {100 * c['accuracy']:.2f}% "
                    f"({100 * (c['accuracy'] - full_acc):+.2f} points) in {100 * c['time_share']:.0f}% of the time")
    else:
        headline = "no pruned cells yet"
    per_method = {}
    for method in dict.fromkeys(c["method"] for c in cells):
        mine = [c for c in reached if c["method"] == method]
        per_method[method] = mine[0] if mine else None
    return {"full": {"accuracy": full_acc, "seconds": round(full_s, 2)}, "tolerance": tolerance,
            "feature_s_per_sample": feature_s_per_sample, "cells": cells,
            "cheapest_reaching": per_method, "headline": headline}


def plot_time_to_accuracy(summary: dict, path: Path) -> None:
    """Test accuracy against total wall time (scoring + selection + training), a line per method
    over its keep fractions; the full run as a star, full − tolerance as a dashed line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method in dict.fromkeys(c["method"] for c in summary["cells"]):
        mine = sorted((c for c in summary["cells"] if c["method"] == method), key=lambda c: c["keep"])
        ax.plot([c["seconds"] for c in mine], [100 * c["accuracy"] for c in mine], marker="o", label=method)
    full = summary["full"]
    ax.plot([full["seconds"]], [100 * full["accuracy"]], marker="*", markersize=14, color="black", ls="", label="full pool")
    ax.axhline(100 * (full["accuracy"] - summary["tolerance"]), color="grey", ls="--", lw=1,
               label=f"full − {100 * summary['tolerance']:g} point")
    _finish(fig, ax, path, xlabel="wall time: scoring + selection + fine-tuning (s)", ylabel="test accuracy (%)", fontsize=7)


def plot_learning_curve(curves: dict, path: Path) -> None:
    """Test accuracy after each fine-tuning epoch on the full pool, beside the linear probe's."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    epochs = range(1, len(curves["fine-tuning"]) + 1)
    ax.plot(epochs, [100 * a for a in curves["fine-tuning"]], marker="o", label="full fine-tuning")
    ax.axhline(100 * curves["probe"], color="tab:orange", ls="--", label="linear probe (frozen features)")
    _finish(fig, ax, path, xlabel="epoch", ylabel="test accuracy (%)", fontsize=8)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, ax, path: Path, *, xlabel: str, ylabel: str, fontsize: int) -> None:
    """Labels, legend and grid, then the figure as a PNG at ``path`` (written atomically)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=fontsize)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    _pyplot().close(fig)
    files.write_bytes(path, buf.getvalue())
