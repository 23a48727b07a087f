"""How few masking levels can DLC on a causal LM compute, and what does each subset cost against one
LoRA run on the kept 30%? (issue: Instruction data, "DLC scoring <= one LoRA run on the kept 30%").

    python benchmarks/make_instruction_pool.py --pool 400 --heldout 25 --corrupt 0.2 --output /tmp/pool400
    python benchmarks/level_subsets.py --pool /tmp/pool400/pool.jsonl

In one process: the 5 default levels (sparsity 1 - 0.9^k, bf16 on the CPU), each timed; then one LoRA
run (the defaults of ``dlcprune lora``) on the 30% that DLC + FlexRand keeps. For subsets of the levels
that always hold level 0, the score is the interpolated mean over the 5 levels of the computed ones
(as ``--levels auto`` estimates it): its Spearman with the full score, how many of the 30% easiest and
of FlexRand's 30% it shares with the full score's, and its scoring time / the LoRA time.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

import numpy as np


def main() -> None:
    from dlcprune import score_dlc, select
    from dlcprune.data.instructions import load_instructions
    from dlcprune.models.causal import load_causal_lm
    from dlcprune.scoring.adaptive import interpolated_mean, spearman
    from dlcprune.training.lora import finetune_lora

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", required=True)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--keep", type=float, default=0.3)
    args = ap.parse_args()
    data = load_instructions(args.pool)
    lm = dataclasses.replace(load_causal_lm(args.model), cpu_bf16=True)
    score_dlc(lm, data.subset(np.arange(8)), levels=1, progress=False)  # warm-up
    full = score_dlc(lm, data, levels=5, step=0.1, progress=False)
    level_s = [full.timings["level_s"][str(k)] for k in range(5)]
    kept = select(full.scores, method="flexrand", keep=args.keep, seed=0).indices(args.keep)
    t = time.perf_counter()
    finetune_lora(lm, data, indices=kept, progress=False)
    lora_s = time.perf_counter() - t
    losses = np.asarray(full.level_losses)
    print(f"{len(data)} records, {args.model}, bf16; level times (s) {', '.join(f'{s:.1f}' for s in level_s)}; "
          f"one LoRA run on the kept {args.keep:.0%} ({len(kept)} records): {lora_s:.1f} s")
    print("| levels computed | Spearman vs all 5 | easiest 30% shared | FlexRand 30% shared | scoring / LoRA |")
    print("|---|---:|---:|---:|---:|")
    reference = {m: set(select(full.scores, method=m, keep=args.keep, seed=0).indices(args.keep).tolist())
                 for m in ("easy", "flexrand")}
    for size in range(2, 6):
        for rest in itertools.combinations(range(1, 5), size - 1):
            ks = (0, *rest)
            estimate = interpolated_mean({k: losses[k] for k in ks}, 5)
            shared = [len(set(select(estimate, method=m, keep=args.keep, seed=0).indices(args.keep).tolist())
                          & reference[m]) / len(reference[m]) for m in ("easy", "flexrand")]
            cost = sum(level_s[k] for k in ks) / lora_s
            print(f"| {', '.join(map(str, ks))} | {spearman(estimate, full.scores):.4f} | {shared[0]:.3f} | "
                  f"{shared[1]:.3f} | {cost:.2f}x |")


if __name__ == "__main__":
    main()
