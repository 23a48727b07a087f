"""Scoring throughput, measured in one run: time for N, 2N and 4N samples (should grow linearly),
and 1 vs 2 processes under torchrun on the same data (gloo on the CPU).

    python benchmarks/throughput.py --samples 500 --levels 5

Animal-MNIST (class-stratified subsets, seed 0), EfficientNet-Lite0 at 64 px, CPU. The process
comparison writes the subset to an .npz and runs the real command twice (``dlcprune score`` and
``torchrun --nproc_per_node=2 -m dlcprune score``), each with the machine's threads split evenly.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import torch

    from dlcprune import load_dataset, load_encoder, score_dlc
    from dlcprune.data import stratified_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args()
    full = load_dataset("animal-mnist")
    encoder = load_encoder("efficientnet_lite0", device="cpu", image_size=args.image_size)
    cores = os.cpu_count() or 1
    print(f"{cores} CPU cores, torch threads {torch.get_num_threads()}, K = {args.levels} levels, {args.image_size} px")
    base = None
    for factor in (1, 2, 4):
        n = args.samples * factor
        data = full.subset(stratified_split(full.labels, {"s": n // full.num_classes}, seed=0)["s"])
        data.items(range(len(data)))  # decode first: time the scoring, not the PNG decoding
        t = time.perf_counter()
        score_dlc(encoder, data, levels=args.levels, step=0.05, progress=False)
        s = time.perf_counter() - t
        base = base or s / n
        print(f"N = {len(data):>5,}: {s:6.1f} s, {1000 * s / len(data):.2f} ms per sample per run "
              f"(x{s / len(data) / base:.2f} of the smallest N's per-sample time)")

    n = args.samples * 2
    data = full.subset(stratified_split(full.labels, {"s": n // full.num_classes}, seed=0)["s"])
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "subset.npz"
        np.savez(npz, images=np.stack(data.items(range(len(data)))), labels=data.labels)
        common = ["-m", "dlcprune", "score", "--data", str(npz), "--image-size", str(args.image_size),
                  "--levels", str(args.levels), "--step", "0.05", "--device", "cpu", "--quiet"]
        times = {}
        for procs in (1, 2):
            env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // procs)))
            launcher = [sys.executable] if procs == 1 else [sys.executable, "-m", "torch.distributed.run",
                                                           f"--nproc_per_node={procs}", "--master_addr=127.0.0.1",
                                                           "--master_port=29533"]
            t = time.perf_counter()
            res = subprocess.run([*launcher, *common, "--output", str(Path(tmp) / f"p{procs}")], env=env,
                                 capture_output=True, text=True)
            times[procs] = time.perf_counter() - t
            if res.returncode:
                sys.exit(res.stderr)
        print(f"{len(data):,} samples, whole command: 1 process {times[1]:.1f} s, 2 processes {times[2]:.1f} s "
              f"(speed-up {times[1] / times[2]:.2f}x on {cores} cores; threads split {cores // 2} per process)")


if __name__ == "__main__":
    main()
