"""What auto's choice, verdict and advice cost against the DLC scoring they build on, in one run.

The demo's data (Animal-MNIST, class-stratified 300 train per class, EfficientNet-Lite0 at 64 px):
score it with DLC (K levels), then `select(method="auto", target_drop=1.0)` over the 9 keep fractions
(the choice on a 20% validation split, the verdict and the advice), and print the ratio.
Usage: python benchmarks/auto_cost.py [--per-class 300] [--levels 20] [--step 0.05]
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    from dlcprune import load_encoder, score, select
    from dlcprune.demo import demo_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--step", type=float, default=0.05)
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args()
    train, _ = demo_split(train_per_class=args.per_class, test_per_class=1)
    encoder = load_encoder("efficientnet_lite0", device="cpu", image_size=args.image_size)
    train.items(range(len(train)))  # decode once: time the scoring, not the PNG decoding
    t = time.perf_counter()
    result = score(encoder, train, levels=args.levels, step=args.step, progress=False)
    score_s = time.perf_counter() - t
    t = time.perf_counter()
    sel = select(result.scores, labels=train.labels, features=result.features, method="auto", target_drop=1.0)
    choice_s = time.perf_counter() - t
    fits = sum(v["probe_fits"] for v in sel.verdicts.values())
    print(f"{len(train):,} images, K = {args.levels}: DLC scoring {score_s:.1f} s; auto over {len(sel.verdicts)} keep "
          f"fractions (choice + verdict + advice, {fits} probe fits) {choice_s:.1f} s")
    print(f"choice cost / DLC scoring cost = {choice_s / score_s:.3f}")
    print(f"advice: {sel.advice['advice']}")


if __name__ == "__main__":
    main()
