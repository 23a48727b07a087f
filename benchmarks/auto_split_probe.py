"""DLC + FlexRand with automatic gamma vs fixed gamma, random, easy and hard, linear probe.

The demo's setting (Animal-MNIST, EfficientNet-Lite0 at 64 px, class-stratified 300 train / 200
test per class, seed 0). 20% of the training subset (stratified, seed 0) is held out as the
validation split: every policy selects from the same remaining 80% pool, and gamma is chosen on
the validation split only (never on the test split).
Usage: python benchmarks/auto_split_probe.py [--scores DIR]  (DIR: a `dlcprune demo --output` folder
to reuse its scores and features; otherwise the training subset is scored here)
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from dlcprune import load_encoder, make_policy, score_dlc
from dlcprune.outputs import read_features, read_scores
from dlcprune.scoring.dlc import extract_features
from dlcprune.selection import FlexRand
from dlcprune.training import train_linear_probe
from dlcprune.data import holdout_split
from dlcprune.demo import demo_split
from dlcprune.tuning import choose_split

KEEPS = [round(0.1 * i, 1) for i in range(1, 10)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scores", default=None)
    p.add_argument("--levels", type=int, default=20)
    p.add_argument("--step", type=float, default=0.05)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()

    train, test = demo_split()
    enc = load_encoder("efficientnet_lite0", image_size=64)
    if args.scores:
        s = read_scores(args.scores)
        assert np.array_equal(s.labels, train.labels)
        scores, z = s.scores, read_features(s.folder, len(s.scores))
    else:
        r = score_dlc(enc, train, levels=args.levels, step=args.step)
        scores, z = r.scores, r.features
    zt = extract_features(enc, test, batch_size=64, description="test features").numpy()
    y = train.labels
    pool, val = holdout_split(y, fraction=0.2, seed=0)
    sp, yp, zp = scores[pool], y[pool], z[pool]
    acc = lambda kept: train_linear_probe(zp[kept], yp[kept], num_classes=10).accuracy(zt, test.labels)

    t0 = time.perf_counter()
    chosen = {k: choose_split(sp, yp, zp, keep=k, val_features=z[val], val_labels=y[val], seed=0) for k in KEEPS}
    choice_s = time.perf_counter() - t0
    rows = {name: {} for name in ("random", "flexrand γ=0.5", "flexrand auto", "easy", "hard")}
    for k in KEEPS:
        seeds = range(args.seeds)
        rows["random"][k] = [acc(make_policy("random").select(sp, yp, keep=k, seed=s)) for s in seeds]
        rows["flexrand γ=0.5"][k] = [acc(FlexRand(0.5).select(sp, yp, keep=k, seed=s)) for s in seeds]
        rows["flexrand auto"][k] = [acc(FlexRand(chosen[k].split).select(sp, yp, keep=k, seed=s)) for s in seeds]
        rows["easy"][k] = [acc(make_policy("easy").select(sp, yp, keep=k))]
        rows["hard"][k] = [acc(make_policy("hard").select(sp, yp, keep=k))]
    full = acc(np.arange(len(pool)))

    names = list(rows)
    print("| keep | " + " | ".join(names) + " | γ chosen |")
    print("|---:|" + "---:|" * (len(names) + 1))
    for k in KEEPS:
        cells = [f"{100 * np.mean(rows[n][k]):.2f}" + (f" ± {100 * np.std(rows[n][k]):.2f}" if len(rows[n][k]) > 1 else "")
                 for n in names]
        print(f"| {k:.0%} | " + " | ".join(cells) + f" | {chosen[k].split:g} |")
    means = {n: 100 * np.mean([np.mean(v) for v in rows[n].values()]) for n in names}
    print("| **mean** | " + " | ".join(f"**{means[n]:.2f}**" for n in names) + " | |")
    print(f"full pool ({len(pool)} images): {100 * full:.2f}; flexrand auto - random = "
          f"{means['flexrand auto'] - means['random']:+.2f} points; choosing γ for the 9 fractions took "
          f"{choice_s:.1f} s ({len(KEEPS)} x grid of 5 x 3 trials of probe fits on the validation split)")


if __name__ == "__main__":
    main()
