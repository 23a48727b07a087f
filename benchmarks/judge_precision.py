"""auto's judge with float32 fits (the default) against float64 fits, on one scores folder, in one run:
time, the choices, and how far the candidates' validation accuracies and the rule's bounds move.

The split is the bench's (20% of each class for validation, seed 0; the rest is the pool).
Usage: python benchmarks/judge_precision.py --scores SCORES_FOLDER [--keep 0.1,0.2,...,0.9]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def decisions(inputs, dtype: str, keeps: list[float]) -> tuple[float, dict]:
    from dlcprune.methods.auto import Auto
    from dlcprune.methods.judge import ProbeJudge

    t = time.perf_counter()
    auto = Auto().fit(inputs)
    if dtype != "float32":  # the same judge, fitting in another precision
        val_features, val_labels = inputs.validation
        auto.judge_ = ProbeJudge(inputs.features, inputs.labels, val_features, val_labels,
                                 num_classes=inputs.num_classes, dtype=dtype)
        auto.full_ = auto.judge_.correct()[None]
    out = {keep: auto.decide(keep) for keep in keeps}
    return time.perf_counter() - t, out


def main() -> None:
    from dlcprune import read_scores
    from dlcprune.data.splits import holdout_split
    from dlcprune.methods.base import SelectionInputs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", required=True)
    ap.add_argument("--keep", default=",".join(f"{k / 10:g}" for k in range(1, 10)))
    args = ap.parse_args()
    keeps = [float(k) for k in args.keep.split(",")]
    s = read_scores(args.scores)
    features = np.load(s.folder / "features.npy")
    pool, val = holdout_split(s.labels, fraction=0.2, seed=0)
    inputs = SelectionInputs(labels=s.labels[pool], features=features[pool], dlc_scores=s.scores[pool],
                             validation=(features[val], s.labels[val]))
    (t32, d32), (t64, d64) = decisions(inputs, "float32", keeps), decisions(inputs, "float64", keeps)
    acc = [abs(d32[k].validation_accuracy[c] - d64[k].validation_accuracy[c]) for k in keeps for c in d64[k].validation_accuracy]
    bounds = [abs(d32[k].best_gain_bound - d64[k].best_gain_bound) for k in keeps]
    print(f"{len(pool)} pool / {len(val)} validation samples, {len(keeps)} keep fractions")
    print("| keep | chosen float64 | chosen float32 | best float64 | best float32 | bound float64 | bound float32 |")
    print("|---|---|---|---|---|---:|---:|")
    for k in keeps:
        a, b = d64[k], d32[k]
        print(f"| {k:g} | {a.chosen} | {b.chosen} | {a.best} | {b.best} | {100 * a.best_gain_bound:+.2f} | "
              f"{100 * b.best_gain_bound:+.2f} |")
    same = sum(d32[k].chosen == d64[k].chosen for k in keeps)
    print(f"time: float64 {t64:.1f} s, float32 {t32:.1f} s ({t64 / t32:.2f}x); same choice at {same} of {len(keeps)}")
    print(f"validation accuracy moved by {100 * np.mean(acc):.3f} points on average, {100 * np.max(acc):.3f} at most; "
          f"the rule's bound by {100 * np.max(bounds):.3f} at most")


if __name__ == "__main__":
    main()
