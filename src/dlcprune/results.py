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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    ax.set_xlabel("keep (% of the selection pool)")
    ax.set_ylabel("test accuracy − random (points)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    files.write_bytes(path, buf.getvalue())
