"""The embedded offline default, a preset of the bench runner: ``auto`` against random on
Animal-MNIST with EfficientNet-Lite0, with its verdict and advice.

Everything it needs ships in pip packages, so it runs with no network: a class-stratified
3,000-image training subset is scored with DLC; 20% of it is the validation split on which ``auto``
chooses, per keep fraction 10%..90%, among DLC policies and herding, or keeps random; a
logistic-regression probe is trained on the frozen features of each kept subset and tested on
2,000 held-out images. The folder it writes is a bench folder (``dlcprune report`` reads it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from . import files
from .bench import BenchConfig, is_bench_folder, run_bench
from .results import FULL, summarise
from .data import load_dataset, stratified_split
from .progress import console, stdout

SPLIT_SEED = 0
METHODS = ["random", "auto"]
TARGET_DROP = 1.0  # points of validation accuracy below the full pool, for the advice


def demo_split(*, train_per_class: int = 300, test_per_class: int = 200):
    """The demo's data: class-stratified train / test subsets of Animal-MNIST (seed 0)."""
    data = load_dataset("animal-mnist")
    parts = stratified_split(data.labels, {"train": train_per_class, "test": test_per_class}, seed=SPLIT_SEED)
    return tuple(data.subset(parts[p], source=f"animal-mnist {p} ({len(parts[p])} images)") for p in ("train", "test"))


def run_demo(*, levels: int = 20, step: float = 0.05, image_size: int | str | None = 64, seeds: int = 3,
             train_per_class: int = 300, test_per_class: int = 200, output: str | Path = "dlcprune-demo",
             progress: bool = True) -> dict[str, dict[float, list[float]]]:
    """Run (or resume) the demo in ``output`` and print its table, verdicts and advice; returns
    accuracy[method][keep] = test accuracies over seeds."""
    from .models import load_encoder

    out = files.check_output_dir(output, force=None, resumable=is_bench_folder)  # never over a user's folder
    train, test = demo_split(train_per_class=train_per_class, test_per_class=test_per_class)
    encoder = load_encoder("efficientnet_lite0", image_size=image_size)
    size = f"{encoder.image_size} px" if encoder.image_size else "the files' sizes"
    console.print(f"[bold]dlcprune demo[/]: Animal-MNIST, EfficientNet-Lite0 (ImageNet weights) at {size}; "
                  f"{len(train):,} train / {len(test):,} test images (class-stratified subset, seed {SPLIT_SEED}); "
                  f"DLC with {levels} levels, step {step} (the paper uses 50 levels, step 0.02, on full datasets). "
                  f"auto chooses on a 20% validation split with a linear probe on frozen features; {seeds} seeds.")
    config = BenchConfig(methods=METHODS, seeds=seeds, levels=levels, step=step)
    with files.output_dir(out, keep=lambda err: (out / "results.csv").exists()):
        rows = run_bench(encoder, train, test, config=config, output=out, progress=progress)
    accuracy = summarise(rows)
    verdicts = files.read_json(out / "verdicts.json")["auto"]
    print_demo(accuracy, verdicts, timings=files.read_json(out / "timings.json"), seeds=seeds)
    return accuracy


def print_demo(accuracy: dict[str, dict[float, list[float]]], verdicts: dict[str, dict], *, timings: dict,
               seeds: int) -> None:
    keeps = sorted(accuracy["auto"])
    table = Table(title=f"Test accuracy (%) of a linear probe trained on the kept subset (mean ± std over {seeds} seeds)")
    for name in ("keep", "auto", "auto's choice", "random", "full pool"):
        table.add_column(name, justify="right")
    fmt = lambda v: f"{100 * np.mean(v):.2f} ± {100 * np.std(v):.2f}" if len(v) > 1 else f"{100 * v[0]:.2f}"
    for keep in keeps:
        v = verdicts[f"{keep:g}"]
        table.add_row(f"{keep:.0%}", fmt(accuracy["auto"][keep]), v["chosen"], fmt(accuracy["random"][keep]),
                      f"{100 * accuracy[FULL][1.0][0]:.2f}")
    mean = lambda m: 100 * float(np.mean([np.mean(accuracy[m][k]) for k in keeps]))
    table.add_row("mean", f"{mean('auto'):.2f}", "", f"{mean('random'):.2f}", "", style="bold")
    stdout.print(table)
    print("auto's verdict on the validation split (linear probe on frozen features; 95% intervals):")
    for keep in keeps:
        print(f"  keep {keep:.0%}: {verdict_text(verdicts[f'{keep:g}'])}")
    full = 100 * accuracy[FULL][1.0][0]
    print(f"auto vs random on the test split, mean over the {len(keeps)} keep fractions: "
                 f"{mean('auto') - mean('random'):+.2f} points (full pool: {full:.2f}%).")
    ok = [k for k in keeps if verdicts[f"{k:g}"]["vs_full_pool_points"][1] >= -TARGET_DROP]
    print(f"advice (--target-drop {TARGET_DROP:g}): " + (
        f"keep {ok[0]:g}: the smallest fraction whose validation accuracy stays within {TARGET_DROP:g} point of "
        f"the full pool (95% interval); test accuracy there {100 * np.mean(accuracy['auto'][ok[0]]):.2f}%."
        if ok else "no keep fraction stays within 1 point of the full pool; keep everything."))
    choice = timings.get("choice_s", {}).get("auto")
    print(f"DLC scoring took {timings['dlc_score_s']:.0f} s"
                 + (f"; auto's choice and verdict {choice:.0f} s ({choice / timings['dlc_score_s']:.2f}x)." if choice else "."))


def verdict_text(verdict: dict) -> str:
    """A keep fraction's verdict, led by the chosen method and the rule's bound that chose it when that
    is not random (the rule's one-sided 90% bound can clear zero while the 95% interval does not)."""
    if verdict["chosen"] == "random":
        return verdict["verdict"]
    return (f"{verdict['chosen']} chosen (the rule's lower bound {verdict['rule_lower_bound_points']:+.2f} "
            f"validation points) - {verdict['verdict']}")
