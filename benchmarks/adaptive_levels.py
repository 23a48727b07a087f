"""--levels auto against the full path (K = 50, step 0.02), measured in one run per dataset.

    python benchmarks/adaptive_levels.py --data animal-mnist mnist --samples 3000 --image-size 64

For each dataset (class-stratified subset, seed 0; EfficientNet-Lite0 on the CPU): the full path
and the adaptive one are scored on the same images; printed: levels computed, time (the masked
levels plus the plain pass), Spearman between the two score vectors, and how much the kept sets
agree at keep 30% (|A & B| / |A|) for top-K easy, top-K hard and FlexRand gamma 0.5 (seed 0).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    from dlcprune import load_dataset, load_encoder, score_dlc, select
    from dlcprune.data import stratified_split
    from dlcprune.scoring.adaptive import spearman

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["animal-mnist", "mnist"])
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--keep", type=float, default=0.3)
    ap.add_argument("--levels", type=int, default=50, help="K of the full path (the paper's 50)")
    args = ap.parse_args()
    encoder = load_encoder("efficientnet_lite0", device="cpu", image_size=args.image_size)
    print("| data | path | levels computed | time (s) | Spearman vs full | kept-set agreement easy / hard / flexrand |")
    print("|---|---|---:|---:|---:|---|")
    for name in args.data:
        data = load_dataset(name)
        data = data.subset(stratified_split(data.labels, {"s": args.samples // data.num_classes}, seed=0)["s"])
        data.items(range(len(data)))  # decode once for both paths
        runs = {}
        for path, adaptive in (("full", False), ("auto", True)):
            t = time.perf_counter()
            r = score_dlc(encoder, data, levels=args.levels, step=0.02, adaptive=adaptive, progress=False)
            runs[path] = (r, time.perf_counter() - t)
        (full, full_s), (auto, auto_s) = runs["full"], runs["auto"]
        agree = []
        for policy in ("easy", "hard", "flexrand"):
            a, b = (select(r.scores, labels=data.labels, method=policy, keep=args.keep).indices() for r in (auto, full))
            agree.append(f"{len(np.intersect1d(a, b)) / len(b):.3f}")
        print(f"| {name} ({len(data):,}) | full | {args.levels} | {full_s:.0f} | 1 | 1 / 1 / 1 |")
        print(f"| {name} ({len(data):,}) | auto | {len(auto.parameters['levels_computed'])} "
              f"(collapse at level {auto.parameters['collapse_level']}) | {auto_s:.0f} "
              f"(**{full_s / auto_s:.1f}x less**) | **{spearman(auto.scores, full.scores):.4f}** | {' / '.join(agree)} |")


if __name__ == "__main__":
    main()
