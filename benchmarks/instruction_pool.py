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
    from dlcprune.models.causal import load_causal_lm
    from instruction_lora_table import selections  # the same selections as the LoRA table's

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
    plan, measure_s = selections(dlc.scores, data, lm, keeps, args.seeds, batch_size=args.batch_size)
    seconds.update(measure_s)
    rows, methods = [], list(dict.fromkeys(m for m, _, _ in plan))
    for method in methods:
        for keep in keeps:
            runs = [idx for (m, k, _), idx in plan.items() if m == method and k == keep]
            shares = [float(corrupted[idx].mean()) for idx in runs]
            mix = {task: int((tasks[runs[-1]] == task).sum()) for task in dict.fromkeys(tasks)}
            rows.append({"method": method, "keep": keep, "kept": int(len(runs[-1])), "corrupted_share": float(np.mean(shares)),
                         "corrupted_share_sd": float(np.std(shares)), "runs": len(shares), "tasks_last_run": mix})
    pool_share = float(corrupted.mean())
    print(f"pool: {len(data)} records, {corrupted.sum()} corrupted ({100 * pool_share:.1f}%); model {lm.name}; "
          f"DLC {args.levels} levels, step {args.step}")
    print("\n| method | " + " | ".join(f"keep {k:g}" for k in keeps) + " |")
    print("|---|" + "---:|" * len(keeps))
    for method in methods:
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
