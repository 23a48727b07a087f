"""Which records does each instruction-selection method keep from a mixed, partly corrupted pool
(``benchmarks/make_instruction_pool.py``)? The share of corrupted records kept, and the tasks
kept, per method and keep fraction; each method's scoring time. No fine-tuning: this is the
bookkeeping half of the instruction benchmark (LoRA on the kept records: ``instruct_lora.py``).

    python benchmarks/make_instruction_pool.py --pool 1000 --output /tmp/pool
    python benchmarks/instruction_pool.py --pool /tmp/pool --levels 5 --step 0.1 --output /tmp/pool/kept.json

Methods: random and DLC + FlexRand (γ = 0.5) over --seeds seeds; DLC easy / hard, longest,
perplexity (lowest kept), IFD (highest kept), embed-kcenter once (deterministic).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import dlcprune
    from dlcprune.data.instructions import load_instructions
    from dlcprune.methods.instructions import BASELINES, measure_records
    from dlcprune.models.causal import load_causal_lm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", required=True, help="the folder of make_instruction_pool.py")
    ap.add_argument("--model", default="smollm2", help="the causal LM that scores (smollm2, or a model folder)")
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--step", type=float, default=0.1)
    ap.add_argument("--keep", default="0.05,0.1,0.3")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--output", help="write the figures as JSON here")
    args = ap.parse_args()
    folder = Path(args.pool)
    data = load_instructions(folder / "pool.jsonl")
    meta = json.loads((folder / "pool_meta.json").read_text())["records"]
    corrupted = np.array([m["corrupted"] is not None for m in meta])
    tasks = np.array([m["task"] for m in meta])
    keeps = [float(k) for k in args.keep.split(",")]
    lm = load_causal_lm(args.model, device="cpu")

    t = time.perf_counter()
    dlc = dlcprune.score(lm, data, levels=args.levels, step=args.step, batch_size=args.batch_size, progress=False)
    seconds = {"dlc": time.perf_counter() - t}
    measures = {}
    for name in BASELINES:
        m = measure_records(lm, data, name, batch_size=args.batch_size)
        measures[name], seconds[name] = m, m.seconds

    def kept(values, method, keep, seed, features=None):
        return dlcprune.select(values, labels=data.labels, features=features, method=method, keep=keep, seed=seed).kept[keep]

    runs = {"random": lambda k, s: kept(dlc.scores, "random", k, s),
            "dlc-flexrand": lambda k, s: kept(dlc.scores, "flexrand", k, s),
            "dlc-easy": lambda k, s: kept(dlc.scores, "easy", k, 0),
            "dlc-hard": lambda k, s: kept(dlc.scores, "hard", k, 0),
            **{name: (lambda k, s, m=m: kept(m.values, m.method, k, 0, m.features)) for name, m in measures.items()}}
    seeded = {"random", "dlc-flexrand"}
    rows = []
    for method, run in runs.items():
        for keep in keeps:
            shares = []
            for seed in range(args.seeds if method in seeded else 1):
                idx = run(keep, seed)
                shares.append(float(corrupted[idx].mean()))
                mix = {task: int((tasks[idx] == task).sum()) for task in dict.fromkeys(tasks)}
            rows.append({"method": method, "keep": keep, "kept": int(len(idx)), "corrupted_share": float(np.mean(shares)),
                         "corrupted_share_sd": float(np.std(shares)), "runs": len(shares), "tasks_last_run": mix})
    pool_share = float(corrupted.mean())
    print(f"pool: {len(data)} records, {corrupted.sum()} corrupted ({100 * pool_share:.1f}%); model {lm.name}; "
          f"DLC {args.levels} levels, step {args.step}")
    print("\n| method | " + " | ".join(f"keep {k:g}" for k in keeps) + " |")
    print("|---|" + "---:|" * len(keeps))
    for method in runs:
        cells = [r for r in rows if r["method"] == method]
        print(f"| {method} | " + " | ".join(
            f"{100 * r['corrupted_share']:.1f}%" + (f" ± {100 * r['corrupted_share_sd']:.1f}" if r["runs"] > 1 else "")
            for r in cells) + " |")
    print("\nshare of corrupted records among the kept (random: the pool's share in expectation)")
    print("scoring time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    if args.output:
        Path(args.output).write_text(json.dumps({"rows": rows, "seconds": seconds, "pool_corrupted_share": pool_share,
                                                 "levels": args.levels, "step": args.step, "model": lm.name}, indent=1))


if __name__ == "__main__":
    main()
