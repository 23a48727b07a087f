"""The benchmark runner: methods x keep fractions x seeds on one dataset and encoder.

Protocol (as the paper, with a linear probe as the trainer): 20% of the training set (stratified,
seeded) is the validation split, held out from selection and training and used only to choose
FlexRand's gamma for ``flexrand-auto``; every method selects from the same remaining pool; a
logistic-regression probe is trained on the frozen unmasked features of the kept samples and
scored on the test set. Each finished cell is saved at once, so a killed run resumes where it
stopped; a results folder made with other settings is refused.
"""
from __future__ import annotations

import csv
import io as _io
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import io
from .data import Dataset, holdout_split
from .errors import DlcpruneError
from .models import Encoder
from .outputs import write_scores
from .progress import bar, console
from .scoring import score_dlc
from .scoring.dlc import extract_features
from .selection import FlexRand, make_policy
from .training import train_linear_probe
from .tuning import choose_split

METHODS = ["random", "easy", "hard", "flexrand", "flexrand-auto"]
KEEPS = [round(0.1 * i, 1) for i in range(1, 10)]
COLUMNS = ["method", "keep", "seed", "accuracy", "kept", "split", "select_s", "train_s"]


@dataclass
class BenchConfig:
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    keeps: list[float] = field(default_factory=lambda: list(KEEPS))
    seeds: int = 3
    levels: int = 50
    step: float = 0.02
    val_fraction: float = 0.2
    batch_size: int = 64


def run_bench(encoder: Encoder, train: Dataset, test: Dataset, *, config: BenchConfig,
              output: Path, progress: bool = True) -> list[dict]:
    """Run (or resume) every cell; returns the result rows. Writes ``output/results.csv``,
    ``results.md`` and ``gap_to_random.png`` (plus the scores in ``output/scores``)."""
    for m in config.methods:
        if m not in METHODS:
            raise DlcpruneError(f"unknown method {m!r}; the benchmark knows {', '.join(METHODS)}")
    cells_only = {"methods", "keeps", "seeds"}  # adding cells to a finished run is fine
    identity = {**{k: v for k, v in asdict(config).items() if k not in cells_only}, "model": encoder.name,
                "weights_sha256": encoder.weights_sha256, **encoder.preprocessing(),
                "train": train.fingerprint(), "test": test.fingerprint()}
    _check_identity(output, identity)

    t = time.perf_counter()
    result = score_dlc(encoder, train, levels=config.levels, step=config.step, batch_size=config.batch_size,
                       checkpoint_dir=output / "scores" / ".partial", progress=progress)
    score_s = time.perf_counter() - t
    write_scores(output / "scores", result, dataset=train, encoder=encoder, total_s=score_s)
    test_z = _cached(output / "test_features.npy", lambda: extract_features(
        encoder, test, batch_size=config.batch_size, description="test features", progress=progress).numpy())
    pool, val = holdout_split(train.labels, fraction=config.val_fraction, seed=0)
    s, y, z = result.scores[pool], train.labels[pool], result.features[pool]

    rows = read_rows(output / "results.csv")
    done = {(r["method"], float(r["keep"]), int(r["seed"])) for r in rows}
    cells = [(m, k, seed) for m in config.methods for k in config.keeps for seed in range(config.seeds)
             if (m, k, seed) not in done and not (m in ("easy", "hard") and seed > 0)]
    gammas: dict[float, tuple[float, float]] = {}
    with bar("benchmark cells", len(cells), enabled=progress) as advance:
        for method, keep, seed in cells:
            t = time.perf_counter()
            split = ""
            if method == "flexrand-auto":
                if keep not in gammas:  # one choice per keep fraction, its time charged to seed 0
                    c = choose_split(s, y, z, keep=keep, val_features=result.features[val],
                                     val_labels=train.labels[val], seed=0)
                    gammas[keep] = (c.split, c.seconds)
                split = gammas[keep][0]
                kept = FlexRand(split).select(s, y, keep=keep, seed=seed)
            else:
                kept = make_policy(method).select(s, y, keep=keep, seed=seed)
            select_s = time.perf_counter() - t
            t = time.perf_counter()
            acc = train_linear_probe(z[kept], y[kept], num_classes=train.num_classes).accuracy(test_z, test.labels)
            rows.append({"method": method, "keep": keep, "seed": seed, "accuracy": acc, "kept": len(kept),
                         "split": split, "select_s": round(select_s, 4), "train_s": round(time.perf_counter() - t, 4)})
            _write_rows(output / "results.csv", rows)
            advance()
    io.write_json(output / "timings.json", {"dlc_score_s_this_run": score_s, **result.timings})
    io.write_text(output / "results.md", markdown_table(rows))
    plot_gap_to_random(rows, output / "gap_to_random.png")
    console.print(f"benchmark results in {output}/ (results.csv, results.md, gap_to_random.png)")
    return rows


def _check_identity(output: Path, identity: dict) -> None:
    path = output / "bench.json"
    if path.exists():
        old = io.read_json(path)
        for key in sorted(set(old) | set(identity)):
            if old.get(key) != identity.get(key):
                raise DlcpruneError(f"{output} holds a benchmark with {key} = {old.get(key)!r}, not {identity.get(key)!r}; "
                                    "use another --output to keep results apart")
    else:
        io.write_json(path, identity)


def _cached(path: Path, compute) -> np.ndarray:
    if path.exists():
        return np.load(path)
    value = compute()
    io.save_npy(path, value)
    return value


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [dict(r, keep=float(r["keep"]), seed=int(r["seed"]), accuracy=float(r["accuracy"])) for r in csv.DictReader(f)]


def _write_rows(path: Path, rows: list[dict]) -> None:
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    io.write_text(path, buf.getvalue())


def summarise(rows: list[dict]) -> dict[str, dict[float, list[float]]]:
    """accuracy[method][keep] = accuracies over seeds."""
    out: dict[str, dict[float, list[float]]] = {}
    for r in rows:
        out.setdefault(r["method"], {}).setdefault(float(r["keep"]), []).append(float(r["accuracy"]))
    return out


def markdown_table(rows: list[dict]) -> str:
    """Test accuracy (%) per method and keep fraction, mean ± std over seeds, and the mean over fractions."""
    acc = summarise(rows)
    keeps = sorted({k for per in acc.values() for k in per})
    lines = ["| method | " + " | ".join(f"{k:.0%}" for k in keeps) + " | mean |",
             "|---|" + "---:|" * (len(keeps) + 1)]
    for method, per in acc.items():
        cells = [f"{100 * np.mean(per[k]):.2f}" + (f" ± {100 * np.std(per[k]):.2f}" if len(per[k]) > 1 else "")
                 if k in per else "" for k in keeps]
        mean = 100 * np.mean([np.mean(v) for v in per.values()])
        lines.append(f"| {method} | " + " | ".join(cells) + f" | **{mean:.2f}** |")
    return "\n".join(lines) + "\n"


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
        if method == "random":
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
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    io.write_bytes(path, buf.getvalue())
