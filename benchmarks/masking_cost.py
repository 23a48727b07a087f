"""Cost of DLC's masked passes against a plain feature pass, measured in one run.

Speed: a masked-level pass (apply the level's mask in place + features + prototype losses) vs a
plain feature pass over the same images, interleaved and repeated; the median ratio is printed.
Memory: three fresh processes on the same data, each reporting its peak resident memory:
  plain    - load the encoder and the data, one plain feature pass (plain inference);
  dlc      - the full DLC scoring (K levels) with dlcprune;
  official - torch.nn.utils.prune.global_unstructured applied K-1 times (as the official code
             does; it keeps weight_orig + mask per parameter) and one feature pass.
Usage: python benchmarks/masking_cost.py [--samples 1000] [--levels 50] [--step 0.02] [--image-size 64]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch


def load(args):
    from dlcprune import load_dataset, load_encoder
    from dlcprune.data import stratified_split

    data = load_dataset("animal-mnist")
    per_class = args.samples // data.num_classes
    data = data.subset(stratified_split(data.labels, {"s": per_class}, seed=0)["s"])
    data.items(range(len(data)))  # decode once, as every mode does
    return data, load_encoder("efficientnet_lite0", device="cpu", image_size=args.image_size)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_mode(args) -> None:
    from dlcprune.scoring import extract_features

    data, enc = load(args)
    loaded = rss_mib()
    if args.mode == "plain":
        extract_features(enc, data, batch_size=args.batch_size, progress=False)
    elif args.mode == "dlc":
        from dlcprune import score_dlc

        score_dlc(enc, data, levels=args.levels, step=args.step, batch_size=args.batch_size, progress=False)
    else:
        from torch.nn.utils import prune

        enc.module.to(memory_format=torch.contiguous_format)  # prune's parameters_to_vector needs it
        params = [(m, "weight") for m in enc.module.modules() if isinstance(m, torch.nn.Conv2d)]
        for _ in range(args.levels - 1):
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=args.step)
        extract_features(enc, data, batch_size=args.batch_size, progress=False)
    print(json.dumps({"peak_mib": rss_mib(), "after_load_mib": loaded}))


def speed(args) -> dict:
    from dlcprune.masking import NestedMasks
    from dlcprune.scoring import class_prototypes, extract_features, prototype_losses

    data, enc = load(args)
    labels = torch.from_numpy(data.labels)
    plain = lambda: extract_features(enc, data, batch_size=args.batch_size, progress=False)
    z0 = plain()  # warm-up
    protos = class_prototypes(z0, labels, data.num_classes)
    masks = NestedMasks([w for _, w in enc.maskable], levels=args.levels, step=args.step)
    plain_s, masked_s, apply_s = [], [], []
    with masks.applied() as set_level:
        for rep, k in enumerate(np.linspace(1, args.levels - 1, args.repeats).round().astype(int)):
            t = time.perf_counter()
            set_level(int(k))
            apply_s.append(time.perf_counter() - t)
            prototype_losses(torch.from_numpy(plain()), labels, protos)  # what one masked level computes
            masked_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            plain()
            plain_s.append(time.perf_counter() - t)
    ratios = [m / p for m, p in zip(masked_s, plain_s)]
    return {"plain_pass_s": statistics.median(plain_s), "masked_pass_s": statistics.median(masked_s),
            "mask_apply_s": statistics.median(apply_s), "ratio_median": statistics.median(ratios),
            "ratios": [round(r, 3) for r in ratios]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--levels", type=int, default=50)
    p.add_argument("--step", type=float, default=0.02)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--mode", choices=["plain", "dlc", "official"], default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        return memory_mode(args)

    print(f"EfficientNet-Lite0 on {args.samples} Animal-MNIST images at {args.image_size} px, batch {args.batch_size}, "
          f"K={args.levels}, step={args.step}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    s = speed(args)
    print(f"speed: plain pass {s['plain_pass_s']:.2f} s, masked-level pass {s['masked_pass_s']:.2f} s "
          f"(of which applying the mask {s['mask_apply_s'] * 1000:.1f} ms); "
          f"masked / plain = {s['ratio_median']:.3f} (median of {args.repeats}: {s['ratios']})")
    mem = {}
    for mode in ("plain", "dlc", "official"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, *sys.argv[1:]], capture_output=True, text=True,
                             check=True).stdout
        mem[mode] = json.loads(out.strip().splitlines()[-1])
    base = mem["plain"]["after_load_mib"]
    for mode, m in mem.items():
        print(f"memory [{mode:8s}]: peak RSS {m['peak_mib']:.0f} MiB (after loading model+data {m['after_load_mib']:.0f} MiB)")
    print(f"peak memory dlc / plain = {mem['dlc']['peak_mib'] / mem['plain']['peak_mib']:.3f}; "
          f"above the loaded baseline: dlc {mem['dlc']['peak_mib'] - base:.0f} MiB vs plain "
          f"{mem['plain']['peak_mib'] - base:.0f} MiB; official-style global_unstructured / plain = "
          f"{mem['official']['peak_mib'] / mem['plain']['peak_mib']:.3f}")


if __name__ == "__main__":
    main()
