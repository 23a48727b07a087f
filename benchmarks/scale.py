"""Scale: peak memory and time per sample of DLC scoring from N to 1.28 M samples (ImageNet-1k's
size), each size in a fresh process, with the checkpoint folder on disk as `dlcprune score` uses it.

    python benchmarks/scale.py --sizes 5000,20000,80000,320000,1280000 --levels 5

The data are generated 8x8 RGB images (a bank of 4,096 random images, sample i showing image
i * 7919 mod 4096; class i mod 10) and the encoder a tiny stand-in (3x3 conv, 32 channels, mean
pool, a linear map to --dim features, 1,280 by default: EfficientNet-Lite0's width, so the features
weigh what ImageNet's would: 6.5 GB at 1.28 M). It makes the run fit this machine's time while the
memory that grows with N (features, losses, labels, ids) is the real one.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

WORKER = r"""
import hashlib, json, resource, sys, time
import numpy as np, torch
from torch import nn
from dlcprune import ImageDataset, from_module, score

n, levels, dim, folder = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bank = np.random.default_rng(0).integers(0, 256, (4096, 8, 8, 3), dtype=np.uint8)

class Generated:
    def read(self, i): return bank[(i * 7919) % 4096]
    def size(self, i): return (8, 8)
    def digest(self, i): return hashlib.sha256(i.to_bytes(8, "little")).digest()

data = ImageDataset(ids=[str(i) for i in range(n)], labels=np.arange(n) % 10, class_names=[str(c) for c in range(10)],
                    source=f"generated {n}", reader=Generated())
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, dim))
encoder = from_module(model, lambda m, x: m(x), name="stand-in", device=torch.device("cpu"))
t = time.perf_counter()
result = score(encoder, data, levels=levels, step=0.2, batch_size=1024, checkpoint_dir=folder, progress=False)
seconds = time.perf_counter() - t

print(json.dumps({"n": n, "seconds": seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "features_gb": result.features.nbytes / 1e9,
                  "plain_pass_s": result.timings["plain_pass_s"], "level_loop_s": result.timings["masking_loop_s"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5000,20000,80000,320000,1280000")
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--dim", type=int, default=1280)
    args = ap.parse_args()
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as folder:
            out = subprocess.run([sys.executable, "-c", WORKER, str(n), str(args.levels), str(args.dim), folder],
                                 capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr[-3000:])
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"N = {n:>9,}: {r['seconds']:8.1f} s, {1e6 * r['seconds'] / (n * (args.levels + 1)):6.2f} us per sample "
              f"per pass, peak RSS {r['peak_rss_mib']:7.0f} MiB, features {r['features_gb']:.2f} GB on disk "
              f"(plain pass {r['plain_pass_s']:.1f} s, level loop {r['level_loop_s']:.1f} s, the rest "
              f"{r['seconds'] - r['plain_pass_s'] - r['level_loop_s']:.1f} s)", flush=True)
    first = rows[0]["seconds"] / rows[0]["n"]
    print("time per sample vs the smallest N: " + ", ".join(f"{r['seconds'] / r['n'] / first:.2f}" for r in rows))
    print(f"peak RSS at the largest N: {rows[-1]['peak_rss_mib'] / 1024:.2f} GiB")


if __name__ == "__main__":
    main()
