"""Score small, train large: DLC scores from a small causal LM (--score-model) against those of the
model that will be fine-tuned (--model), on records of an instruction pool
(``benchmarks/make_instruction_pool.py``): Spearman between the two, each model's scoring time,
and LoRA on the target model with the proxy-selected, the self-selected and a random subset,
evaluated on the pool's held-out records (response NLL).

    python benchmarks/make_instruction_pool.py --pool 1000 --output /tmp/pool
    python benchmarks/proxy_scoring.py --pool /tmp/pool --records 200 --score-model smollm2 --model gemma3 \
        --levels 5 --step 0.1 --keep 0.3 --output /tmp/pool/proxy.json

Subsets: FlexRand (γ = 0.5) on each model's scores with the same seed, and random; one LoRA run each.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import dlcprune
    from dlcprune import files
    from dlcprune.data.instructions import load_instructions
    from dlcprune.models.causal import load_causal_lm
    from dlcprune.training.lora import finetune_lora, heldout_metrics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", required=True, help="the folder of make_instruction_pool.py")
    ap.add_argument("--records", type=int, default=200, help="the first N pool records (0: all)")
    ap.add_argument("--score-model", default="smollm2", help="the small model that scores")
    ap.add_argument("--model", default="gemma3", help="the model to fine-tune (and to score, for self-selection)")
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--step", type=float, default=0.1)
    ap.add_argument("--keep", type=float, default=0.3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--heldout-per-task", type=int, default=25)
    ap.add_argument("--output", help="write the figures as JSON here")
    args = ap.parse_args()
    if args.score_model == args.model:
        raise SystemExit("--score-model and --model must differ: the point is a proxy")
    folder = Path(args.pool)
    pool = load_instructions(folder / "pool.jsonl")
    pool = pool.subset(range(min(args.records or len(pool), len(pool))), source=f"{folder / 'pool.jsonl'} (first records)")
    tasks = json.loads((folder / "pool_meta.json").read_text())["tasks"]
    held = [line for t in tasks for line in (folder / f"heldout_{t}.jsonl").read_bytes().splitlines()[:args.heldout_per_task]]
    (folder / "heldout_all.jsonl").write_bytes(b"".join(line + b"\n" for line in held))
    heldout = load_instructions(folder / "heldout_all.jsonl")

    def dlc(name: str):
        lm = load_causal_lm(name, device="cpu")
        t = time.perf_counter()
        result = dlcprune.score(lm, pool, levels=args.levels, step=args.step, progress=False)
        return lm, result.scores, time.perf_counter() - t

    _, proxy_scores, proxy_s = dlc(args.score_model)
    target, self_scores, self_s = dlc(args.model)
    rank = lambda v: np.argsort(np.argsort(v))
    spearman = float(np.corrcoef(rank(proxy_scores), rank(self_scores))[0, 1])
    print(f"{len(pool)} records; DLC {args.levels} levels, step {args.step}: {args.score_model} {proxy_s:.0f} s, "
          f"{args.model} {self_s:.0f} s ({self_s / proxy_s:.2f}x); Spearman {spearman:.4f}", flush=True)

    subsets = {"proxy-selected": (proxy_scores, "flexrand"), "self-selected": (self_scores, "flexrand"),
               "random": (self_scores, "random")}
    base = heldout_metrics(target, heldout)
    runs = {"no fine-tuning": {**base, "kept": 0}}
    for label, (scores, method) in subsets.items():
        kept = dlcprune.select(scores, method=method, keep=args.keep, seed=0).kept[args.keep]
        r = finetune_lora(target, pool, indices=kept, epochs=args.epochs, lr=args.lr, seed=0, progress=False)
        runs[label] = {**heldout_metrics(r.model, heldout), "lora_s": r.seconds, "kept": int(len(kept))}
        print(label, runs[label], flush=True)
    print(f"\n| subset of {len(pool)} (keep {args.keep:g}) | kept | held-out response NLL | perplexity |")
    print("|---|---:|---:|---:|")
    for label, m in runs.items():
        print(f"| {label} | {m['kept']} | {m['response_nll']:.4f} | {m['perplexity']:.3f} |")
    if args.output:
        files.write_json(args.output, {"args": vars(args), "spearman": spearman, "score_s": {args.score_model: proxy_s,
                                       args.model: self_s}, "runs": runs})


if __name__ == "__main__":
    main()
