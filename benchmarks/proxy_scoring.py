"""Score small, train large: DLC scores from a small causal LM (--score-model) against those of the
model that will be fine-tuned (--model), on records of an instruction pool
(``benchmarks/make_instruction_pool.py``): Spearman between the two, each model's scoring time,
and LoRA on the target model with the proxy-selected, the self-selected and a random subset,
evaluated on the pool's held-out records: response NLL (the first --heldout-per-task of each task) and
lm-eval multiple-choice accuracy on the sentiment tasks (the first --choice-heldout of each).

    python benchmarks/make_instruction_pool.py --pool 1000 --output /tmp/pool
    python benchmarks/proxy_scoring.py --pool /tmp/pool --records 200 --score-model smollm2 --model gemma3 \
        --levels 5 --step 0.1 --keep 0.3 --output /tmp/pool/proxy.json

A cheaper proxy: ``--score-levels 3 --score-step 0.2`` scores with the small model at sparsities
0, 0.2, 0.4 only (levels 0, 2, 4 of the target's 0.1 grid).

Subsets: FlexRand (γ = 0.5) on each model's scores, and random; per seed in ``--seeds`` the same
draw seed for the three and the same LoRA seed, so the spread over seeds covers both.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", required=True, help="the folder of make_instruction_pool.py")
    ap.add_argument("--records", type=int, default=200, help="the first N pool records (0: all)")
    ap.add_argument("--score-model", default="smollm2", help="the small model that scores")
    ap.add_argument("--model", default="gemma3", help="the model to fine-tune (and to score, for self-selection)")
    ap.add_argument("--levels", type=int, default=5, help="masking levels of the target model's scoring")
    ap.add_argument("--step", type=float, default=0.1)
    ap.add_argument("--score-levels", type=int, help="masking levels of the proxy (default: --levels)")
    ap.add_argument("--score-step", type=float, help="sparsity step of the proxy (default: --step)")
    ap.add_argument("--seeds", type=int, default=1, help="draw + LoRA seeds 0..N-1")
    ap.add_argument("--keep", type=float, default=0.3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--heldout-per-task", type=int, default=25, help="held-out records per task for the NLL")
    ap.add_argument("--choice-heldout", type=int, default=50, help="held-out records per sentiment task for accuracy")
    ap.add_argument("--output", help="write the figures as JSON here")
    return ap.parse_args()


def main() -> None:
    import dlcprune
    from dlcprune import files
    from dlcprune.data.instructions import load_instructions
    from dlcprune.models.causal import load_causal_lm
    from dlcprune.training.lm_eval import lm_eval_scores, write_choice_task
    from dlcprune.training.lora import finetune_lora, heldout_metrics
    from instruction_lora_table import SENTIMENT  # the pool's tasks with a fixed set of responses

    args = parse_args()
    if args.score_model == args.model:
        raise SystemExit("--score-model and --model must differ: the point is a proxy")
    folder = Path(args.pool)
    pool = load_instructions(folder / "pool.jsonl")
    pool = pool.subset(range(min(args.records or len(pool), len(pool))), source=f"{folder / 'pool.jsonl'} (first records)")
    tasks = json.loads((folder / "pool_meta.json").read_text())["tasks"]
    held = [line for t in tasks for line in (folder / f"heldout_{t}.jsonl").read_bytes().splitlines()[:args.heldout_per_task]]
    (folder / "heldout_all.jsonl").write_bytes(b"".join(line + b"\n" for line in held))
    heldout = load_instructions(folder / "heldout_all.jsonl")
    tasks_tmp = tempfile.TemporaryDirectory(prefix="dlcprune-tasks-")  # removed at exit, by its finalizer
    task_dir = Path(tasks_tmp.name)
    choice_sets = {t: load_instructions(folder / f"heldout_{t}.jsonl") for t in SENTIMENT if t in tasks}
    choice_tasks = [write_choice_task(h.subset(range(min(args.choice_heldout, len(h)))), task_dir,
                                      name=f"heldout_{t.replace('-', '_')}") for t, h in choice_sets.items()]

    def evaluate(model) -> dict:
        acc = {name: lm_eval_scores(model, task_dir, name, progress=False)["acc"] for name in choice_tasks}
        return {**heldout_metrics(model, heldout), "acc": acc, "mean_acc": float(np.mean(list(acc.values())))}

    def dlc(name: str, levels: int, step: float):
        lm = load_causal_lm(name, device="cpu")
        t = time.perf_counter()
        result = dlcprune.score(lm, pool, levels=levels, step=step, progress=False)
        return lm, result.scores, time.perf_counter() - t

    proxy_levels = args.score_levels or args.levels
    proxy_step = args.step if args.score_step is None else args.score_step
    _, proxy_scores, proxy_s = dlc(args.score_model, proxy_levels, proxy_step)
    target, self_scores, self_s = dlc(args.model, args.levels, args.step)
    rank = lambda v: np.argsort(np.argsort(v))
    spearman = float(np.corrcoef(rank(proxy_scores), rank(self_scores))[0, 1])
    print(f"{len(pool)} records; {args.score_model} (DLC {proxy_levels} levels, step {proxy_step:g}) {proxy_s:.0f} s, "
          f"{args.model} (DLC {args.levels} levels, step {args.step:g}) {self_s:.0f} s ({self_s / proxy_s:.2f}x); "
          f"Spearman {spearman:.4f}", flush=True)

    subsets = {"proxy-selected": (proxy_scores, "flexrand"), "self-selected": (self_scores, "flexrand"),
               "random": (self_scores, "random")}
    base = evaluate(target)
    runs = {"no fine-tuning": [{**base, "kept": 0}]}
    for seed in range(args.seeds):
        for label, (scores, method) in subsets.items():
            kept = dlcprune.select(scores, method=method, keep=args.keep, seed=seed).kept[args.keep]
            r = finetune_lora(target, pool, indices=kept, epochs=args.epochs, lr=args.lr, seed=seed, progress=False)
            run = {**evaluate(r.model), "lora_s": r.seconds, "kept": int(len(kept)), "seed": seed}
            runs.setdefault(label, []).append(run)
            print(label, run, flush=True)
    print_table(runs, records=len(pool), keep=args.keep)
    if args.output:
        files.write_json(args.output, {"args": vars(args), "spearman": spearman, "score_s": {args.score_model: proxy_s,
                                       args.model: self_s}, "runs": runs})


def print_table(runs: dict, *, records: int, keep: float) -> None:
    """The markdown table: mean ± sd over seeds of every subset's held-out figures."""
    print(f"\n| subset of {records} (keep {keep:g}) | kept | held-out response NLL | perplexity | sentiment accuracy (%) |")
    print("|---|---:|---:|---:|---:|")
    spread = lambda v: f"{np.mean(v):.4f}" + (f" ± {np.std(v, ddof=1):.4f}" if len(v) > 1 else "")
    for label, seeded in runs.items():
        nll, ppl = [m["response_nll"] for m in seeded], [m["perplexity"] for m in seeded]
        acc = [100 * m["mean_acc"] for m in seeded]
        print(f"| {label} | {seeded[0]['kept']} | {spread(nll)} | {spread(ppl)} | {spread(acc)} |")


if __name__ == "__main__":
    main()
