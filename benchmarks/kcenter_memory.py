"""Peak memory of k-Center Greedy (and Herding) on N x D features: must stay linear in N.

    python benchmarks/kcenter_memory.py                 # 20,000 x 1,280, one class (the worst case), keep 10%

Prints the process's peak RSS before and after selection, the features' own size, and what an
N x N float32 distance matrix would take, all measured or computed in this one run.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from dlcprune.methods import SelectionInputs, make_method


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--keep", type=float, default=0.1)
    ap.add_argument("--classes", type=int, default=1, help="1 = one class: the whole set in one traversal")
    ap.add_argument("--methods", default="kcenter,herding")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    features = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    labels = np.arange(args.n) % args.classes
    inputs = SelectionInputs(labels=labels, features=features)
    before = peak_mib()
    print(f"{args.n:,} x {args.dim} float32 features: {features.nbytes / 2**20:.0f} MiB; "
          f"an N x N float32 distance matrix would be {args.n**2 * 4 / 2**20:,.0f} MiB")
    print(f"peak RSS after loading (python + numpy + torch + features): {before:.0f} MiB")
    for name in args.methods.split(","):
        t = time.perf_counter()
        kept = make_method(name).fit(inputs).select(keep=args.keep, seed=0)
        print(f"{name}: kept {len(kept):,} in {time.perf_counter() - t:.1f} s; peak RSS so far {peak_mib():.0f} MiB "
              f"(+{peak_mib() - before:.0f} MiB over the loaded process)")


if __name__ == "__main__":
    main()
