"""Does the linear probe's ranking of selection methods hold under full fine-tuning?

Reads two bench folders made on the same data, methods and keep fractions, one with
``--trainer probe`` and one with ``--trainer full``, and prints per method the mean accuracy gap to
random over the shared keep fractions under each trainer, both rankings and their Spearman
correlation (1 = the probe ranks the methods exactly as fine-tuning does).
Usage: python benchmarks/probe_vs_finetune.py --probe DIR --full DIR
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dlcprune.results import FULL, gaps_to_random, read_rows, summarise


def gaps(folder: Path, keeps: list[float]) -> dict[str, float]:
    """Mean over ``keeps`` of (method - random) accuracy in points, per method that has them all."""
    rows = [r for r in read_rows(folder / "results.csv") if float(r["keep"]) in keeps or r["method"] == FULL]
    acc = summarise(rows)
    return {m: g for m, g in gaps_to_random(rows).items() if all(k in acc[m] for k in keeps)}


def ranks(values: list[float]) -> np.ndarray:
    """Ranks 1..n (1 = largest), ties averaged."""
    v = np.asarray(values)
    order = (-v).argsort(kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(1, len(v) + 1)
    for x in np.unique(v):
        r[v == x] = r[v == x].mean()
    return r


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--probe", required=True, type=Path)
    p.add_argument("--full", required=True, type=Path)
    args = p.parse_args()
    keep_sets = [set(summarise(read_rows(f / "results.csv"))["random"]) for f in (args.probe, args.full)]
    keeps = sorted(keep_sets[0] & keep_sets[1])
    probe, full = gaps(args.probe, keeps), gaps(args.full, keeps)
    methods = [m for m in full if m in probe]
    rp, rf = ranks([probe[m] for m in methods]), ranks([full[m] for m in methods])
    print(f"keep fractions: {', '.join(f'{k:.0%}' for k in keeps)}; gap to random in points, mean over them")
    print("| method | probe gap | probe rank | fine-tuning gap | fine-tuning rank |\n|---|---:|---:|---:|---:|")
    for m, a, b in sorted(zip(methods, rp, rf), key=lambda t: t[2]):
        print(f"| {m} | {probe[m]:+.2f} | {a:g} | {full[m]:+.2f} | {b:g} |")
    rho = np.corrcoef(rp, rf)[0, 1] if len(methods) > 2 else float("nan")
    same_sign = sum(np.sign(probe[m]) == np.sign(full[m]) for m in methods)
    print(f"Spearman(probe ranking, fine-tuning ranking) = {rho:.3f} over {len(methods)} methods; "
          f"the sign of the gap to random agrees for {same_sign} of {len(methods)}")


if __name__ == "__main__":
    main()
