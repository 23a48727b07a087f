"""Scoring and a probe fit on an idle and on a busy machine, ratios in one run, under three settings:
torch's own (the physical cores, threads spin while they wait), dlcprune's default (the physical
cores; passive OpenMP waiting when the machine is busy at the start) and ``--threads auto`` (the
cores other processes leave idle). Also whether the scores are the same bytes idle and busy.

The competing load is a CPU-bound Python loop in another process, started and stopped by this script.
Usage: python benchmarks/busy_machine.py [--samples 300] [--levels 3] [--competitors 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORKER = r"""
import hashlib, json, os, sys, time
setting = sys.argv[1]
if setting != "torch":
    from dlcprune import set_threads
    set_threads("auto" if setting == "auto" else None)
import numpy as np, torch
from dlcprune import load_dataset, load_encoder, score, train_linear_probe
from dlcprune.data import stratified_split
n, levels = int(sys.argv[2]), int(sys.argv[3])
data = load_dataset("animal-mnist")
data = data.subset(stratified_split(data.labels, {"s": n // 10}, seed=0)["s"])
data.items(range(len(data)))
enc = load_encoder("efficientnet_lite0", device="cpu", image_size=64)
t = time.perf_counter(); r = score(enc, data, levels=levels, step=0.05, progress=False); s = time.perf_counter() - t
x = np.repeat(r.features, 4, axis=0) + np.random.default_rng(0).normal(0, 0.1, (4 * len(data), r.features.shape[1]))
t = time.perf_counter(); train_linear_probe(x, np.repeat(data.labels, 4), num_classes=10, max_iter=50); p = time.perf_counter() - t
print(json.dumps({"ms_per_image_pass": 1000 * s / (len(data) * levels), "probe_s": p, "threads": torch.get_num_threads(),
                  "wait": os.environ.get("OMP_WAIT_POLICY", "active").lower(),
                  "scores_sha": hashlib.sha256(np.ascontiguousarray(r.scores).tobytes()).hexdigest()}))
"""


SETTINGS = {"torch": "torch's own", "default": "dlcprune default", "auto": "--threads auto"}


def run(setting: str, args, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, setting, str(args.samples), str(args.levels)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--competitors", type=int, default=1)
    ap.add_argument("--limit-s", type=float, default=600, help="the competing processes stop after this at the latest")
    args = ap.parse_args()
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")}
    results = {}
    for load in ("idle", "busy"):
        loop = f"import time\nend = time.time() + {args.limit_s}\nwhile time.time() < end: pass"
        competitors = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(args.competitors if load == "busy" else 0)]
        try:
            time.sleep(1.0 if competitors else 0.0)
            for setting in SETTINGS:
                results[load, setting] = run(setting, args, base)
        finally:
            for c in competitors:
                c.kill()
                c.wait()
    print(f"{os.cpu_count()} CPUs; {args.samples} images at 64 px, {args.levels} levels; busy = {args.competitors} "
          "CPU-bound process(es)")
    print("| setting | threads, waiting idle / busy | scoring ms/image/pass idle | busy | busy / idle | "
          "probe fit s idle | busy | busy / idle | scores idle = busy |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for setting, label in SETTINGS.items():
        i, b = results["idle", setting], results["busy", setting]
        print(f"| {label} | {i['threads']} {i['wait']} / {b['threads']} {b['wait']} | {i['ms_per_image_pass']:.2f} | "
              f"{b['ms_per_image_pass']:.2f} | {b['ms_per_image_pass'] / i['ms_per_image_pass']:.2f} | {i['probe_s']:.2f} | "
              f"{b['probe_s']:.2f} | {b['probe_s'] / i['probe_s']:.2f} | {i['scores_sha'] == b['scores_sha']} |")


if __name__ == "__main__":
    main()
