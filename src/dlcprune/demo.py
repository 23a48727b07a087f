"""The embedded offline default: DLC + FlexRand vs random on Animal-MNIST with EfficientNet-Lite0.

Everything it needs ships in pip packages, so it runs with no network: score a class-stratified
3,000-image training subset, select at keep 10%..90% over 3 seeds, train a logistic-regression
probe on the frozen unmasked features of each subset and report test accuracy on 2,000 held-out
images. Easy / hard top-K (deterministic) are shown for reference.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table

from . import io
from .data import load_dataset, stratified_split
from .models import load_encoder
from .outputs import write_scores
from .progress import bar, console, stdout
from .scoring import score_dlc
from .scoring.dlc import extract_features
from .selection import make_policy
from .training import train_linear_probe

KEEPS = [round(0.1 * i, 1) for i in range(1, 10)]
SPLIT_SEED = 0


@dataclass
class DemoResult:
    """accuracy[policy][keep] = list of test accuracies (one per seed); full = all-data accuracy."""

    accuracy: dict[str, dict[float, list[float]]]
    full: float
    timings: dict = field(default_factory=dict)

    def mean_over_keeps(self, policy: str) -> float:
        return float(np.mean([np.mean(v) for v in self.accuracy[policy].values()]))


def demo_split(*, train_per_class: int = 300, test_per_class: int = 200):
    """The demo's data: class-stratified train / test subsets of Animal-MNIST (seed 0)."""
    data = load_dataset("animal-mnist")
    parts = stratified_split(data.labels, {"train": train_per_class, "test": test_per_class}, seed=SPLIT_SEED)
    return tuple(data.subset(parts[p], source=f"animal-mnist {p} ({len(parts[p])} images)") for p in ("train", "test"))


def run_demo(*, levels: int = 20, step: float = 0.05, image_size: int = 64, seeds: int = 3,
             train_per_class: int = 300, test_per_class: int = 200, output: str | Path | None = None,
             progress: bool = True) -> DemoResult:
    """Run the demo and print its table; with ``output``, also write the scores and results.csv."""
    t0 = time.perf_counter()
    train, test = demo_split(train_per_class=train_per_class, test_per_class=test_per_class)
    console.print(f"[bold]dlcprune demo[/]: Animal-MNIST, EfficientNet-Lite0 (ImageNet weights) at {image_size} px; "
                  f"{len(train):,} train / {len(test):,} test images (class-stratified subset, seed {SPLIT_SEED}); "
                  f"DLC with {levels} levels, step {step} (the paper uses 50 levels, step 0.02, on full datasets); "
                  f"linear probe on frozen features; {seeds} seeds.")
    encoder = load_encoder("efficientnet_lite0", image_size=image_size)
    result = score_dlc(encoder, train, levels=levels, step=step, progress=progress)
    t_score = time.perf_counter() - t0
    test_z = extract_features(encoder, test, batch_size=64,
                              description="test features", progress=progress).numpy()
    probe = lambda idx: train_linear_probe(result.features[idx], train.labels[idx], num_classes=train.num_classes
                                           ).accuracy(test_z, test.labels)

    runs = [("flexrand", s) for s in range(seeds)] + [("random", s) for s in range(seeds)] + [("easy", 0), ("hard", 0)]
    accuracy: dict[str, dict[float, list[float]]] = {p: {k: [] for k in KEEPS} for p, _ in runs}
    with bar("linear probes", len(runs) * len(KEEPS) + 1, enabled=progress) as advance:
        full = probe(np.arange(len(train)))
        advance()
        for policy_name, seed in runs:
            policy = make_policy(policy_name)
            for keep in KEEPS:
                accuracy[policy_name][keep].append(probe(policy.select(result.scores, train.labels, keep=keep, seed=seed)))
                advance()
    demo = DemoResult(accuracy=accuracy, full=full,
                      timings={"scoring_s": t_score, **result.timings, "total_s": time.perf_counter() - t0})
    print_table(demo, seeds=seeds)
    if output is not None:
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        write_scores(out, result, dataset=train, encoder=encoder, total_s=t_score)
        rows = ["policy,keep,seed,test_accuracy"] + [
            f"{p},{k},{s if p in ('flexrand', 'random') else 0},{a!r}"
            for p, per_keep in accuracy.items() for k, accs in per_keep.items() for s, a in enumerate(accs)]
        io.write_text(out / "results.csv", "\n".join(rows + [f"full,1.0,0,{full!r}"]) + "\n")
        console.print(f"scores, features and results.csv written to {out}/")
    return demo


def print_table(demo: DemoResult, *, seeds: int) -> None:
    table = Table(title=f"Test accuracy (%) of a linear probe trained on the kept subset (mean ± std over {seeds} seeds)")
    table.add_column("keep", justify="right")
    for name in ("DLC + FlexRand γ=0.5", "random", "DLC top-K easy", "DLC top-K hard", "full data"):
        table.add_column(name, justify="right")
    fmt = lambda v: f"{100 * np.mean(v):.2f} ± {100 * np.std(v):.2f}" if len(v) > 1 else f"{100 * v[0]:.2f}"
    for keep in KEEPS:
        table.add_row(f"{keep:.0%}", *(fmt(demo.accuracy[p][keep]) for p in ("flexrand", "random", "easy", "hard")),
                      f"{100 * demo.full:.2f}")
    table.add_row("mean", *(f"{100 * demo.mean_over_keeps(p):.2f}" for p in ("flexrand", "random", "easy", "hard")),
                  f"{100 * demo.full:.2f}", style="bold")
    stdout.print(table)
    gap = 100 * (demo.mean_over_keeps("flexrand") - demo.mean_over_keeps("random"))
    stdout.print(f"DLC + FlexRand vs random, mean over the 9 keep fractions: {gap:+.2f} points. "
                  f"Scoring took {demo.timings['scoring_s']:.0f} s (plain pass {demo.timings['plain_pass_s']:.1f} s, "
                  f"masked levels {demo.timings['masking_loop_s']:.1f} s); whole demo {demo.timings['total_s']:.0f} s.")
