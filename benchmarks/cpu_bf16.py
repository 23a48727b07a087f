"""DLC scoring of instruction records in float32 and with bf16 autocast on the CPU (``--bf16``), in one run.

    python benchmarks/cpu_bf16.py --data /tmp/pool400/pool.jsonl --records 100 --levels 5

Both score the same records with the same K levels (step 0.1); printed: each one's time, the
speed-up, the Spearman correlation of the two DLC scores, the largest and mean difference of the
per-level losses, and how many of the records kept at 30% (easiest, and FlexRand at gamma 0.5)
the two share. bf16 pays only where the CPU has AVX-512 BF16 or AMX (see ``lscpu`` flags).
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from scipy.stats import spearmanr


def main() -> None:
    from dlcprune import score_dlc, select
    from dlcprune.data.instructions import load_instructions
    from dlcprune.models.causal import load_causal_lm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a JSONL of instruction records (e.g. the pool)")
    ap.add_argument("--records", type=int, default=100, help="the first N records")
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--model", default="smollm2")
    args = ap.parse_args()
    data = load_instructions(args.data)
    data = data.subset(np.arange(min(args.records, len(data))))
    lm = load_causal_lm(args.model)
    results, seconds = {}, {}
    for name, model in (("float32", lm), ("bf16", dataclasses.replace(lm, cpu_bf16=True))):
        score_dlc(model, data.subset(np.arange(min(8, len(data)))), levels=1, progress=False)  # warm-up
        t = time.perf_counter()
        results[name] = score_dlc(model, data, levels=args.levels, step=0.1, progress=False)
        seconds[name] = time.perf_counter() - t
    a, b = results["float32"], results["bf16"]
    diff = np.abs(np.asarray(a.level_losses) - np.asarray(b.level_losses))
    print(f"{len(data)} records, {args.levels} levels, {args.model}")
    print("| arithmetic | time (s) |\n|---|---:|")
    for name in results:
        print(f"| {name} | {seconds[name]:.1f} |")
    print(f"speed-up {seconds['float32'] / seconds['bf16']:.2f}x; Spearman {spearmanr(a.scores, b.scores)[0]:.4f}; "
          f"loss difference max {diff.max():.4f}, mean {diff.mean():.4f} nats")
    for method in ("easy", "flexrand"):
        kept = [set(select(r.scores, method=method, keep=0.3, seed=0).indices(0.3).tolist()) for r in (a, b)]
        print(f"kept at 30% ({method}): {len(kept[0] & kept[1])} of {len(kept[0])} shared")


if __name__ == "__main__":
    main()
