"""Full fine-tuning on the CPU, end to end: DLC + FlexRand vs random subsets vs all data.

The demo's setting (Animal-MNIST, class-stratified 300 train / 200 test per class, seed 0,
EfficientNet-Lite0 at 64 px, DLC 20 levels step 0.05), the paper's recipe (SGD momentum 0.9,
wd 1e-5, batch 128, lr step-decayed at 50% / 75%) but only a few epochs, so it fits a 2-core CPU.
Usage: python benchmarks/finetune_cpu.py [--scores DIR] [--keep 0.3] [--epochs 4] [--lr 0.01]
"""
from __future__ import annotations

import argparse

import numpy as np

from dlcprune import load_encoder, read_scores, score_dlc, select
from dlcprune.demo import demo_split
from dlcprune.training import finetune


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scores", default=None, help="a `dlcprune demo --output` folder to reuse")
    p.add_argument("--keep", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--split", type=float, default=0.5)
    p.add_argument("--train-per-class", type=int, default=300)
    p.add_argument("--test-per-class", type=int, default=200)
    args = p.parse_args()
    train, test = demo_split(train_per_class=args.train_per_class, test_per_class=args.test_per_class)
    enc = load_encoder("efficientnet_lite0", image_size=64)
    scores = read_scores(args.scores).scores if args.scores else score_dlc(enc, train, levels=20, step=0.05).scores
    pick = lambda method, **kw: select(scores, labels=train.labels, method=method, keep=args.keep, **kw).indices()
    runs = {"random": pick("random"), f"DLC + FlexRand γ={args.split:g}": pick("flexrand", split=args.split),
            "full data": np.arange(len(train))}
    print("| subset | kept | test accuracy (%) | train loss per epoch | seconds |\n|---|---:|---:|---|---:|")
    for name, idx in runs.items():
        r = finetune(enc, train, test, indices=idx, epochs=args.epochs, lr=args.lr, seed=0)
        print(f"| {name} | {len(idx)} | {100 * r.accuracy:.2f} | {', '.join(f'{l:.3f}' for l in r.train_loss)} | {r.seconds:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
