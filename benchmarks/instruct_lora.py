"""Instruction pruning end to end with SmolLM2-135M-Instruct on the CPU: LoRA on DLC-FlexRand
vs random halves vs the full set, evaluated on held-out records (response NLL, perplexity, and an
lm-eval multiple-choice accuracy over a local task).

    python benchmarks/make_instructions.py --train 400 --test 200 --output /tmp/instr
    dlcprune instruct --data /tmp/instr/train.jsonl --keep 0.5 --output /tmp/instr/dlc
    python benchmarks/instruct_lora.py --data /tmp/instr --scores /tmp/instr/dlc --seeds 3 --epochs 2

Prints a markdown table (mean ± std over seeds) and the DLC scoring time against the LoRA time.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from dlcprune import files
    from dlcprune.data.instructions import load_instructions
    from dlcprune.models.causal import load_causal_lm
    from dlcprune.training.lm_eval import lm_eval_scores, write_choice_task
    from dlcprune.training.lora import finetune_lora, heldout_metrics
    from dlcprune import read_scores, select

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with train.jsonl and test.jsonl")
    ap.add_argument("--scores", required=True, help="the --output folder of `dlcprune instruct` on train.jsonl")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--full-seeds", type=int, default=1, help="seeds of the full-data run (the costliest; run last)")
    ap.add_argument("--keep", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--output", help="write every run's metrics to this JSON file as they finish")
    ap.add_argument("--model", default="smollm2", help="the causal LM (smollm2, or a model folder)")
    args = ap.parse_args()
    train, test = load_instructions(Path(args.data) / "train.jsonl"), load_instructions(Path(args.data) / "test.jsonl")
    scores = read_scores(args.scores).scores  # DLC of the train records, higher = harder
    manifest = json.loads((Path(args.scores) / "manifest.json").read_text())
    lm = load_causal_lm(args.model, device="cpu")
    tasks_tmp = tempfile.TemporaryDirectory(prefix="dlcprune-tasks-")  # removed at exit, by its finalizer
    task_dir = Path(tasks_tmp.name)
    task = write_choice_task(test, task_dir)

    def evaluate(model) -> dict:
        return {**heldout_metrics(model, test), **{k: v for k, v in lm_eval_scores(model, task_dir, task).items()
                                                   if k in ("acc", "acc_norm")}}

    rows, runs, lora_s = {"no fine-tuning": [evaluate(lm)]}, [], {}
    print("no fine-tuning", rows["no fine-tuning"][0], flush=True)
    labels = {"flexrand": "DLC + FlexRand (γ=0.5)", "random": "random", None: "full data"}
    # seeds outermost and the costly extra full-data seeds last: an interrupted run still compares like with like
    plan = [(seed, policy) for seed in range(args.seeds) for policy in ("flexrand", "random", None)
            if policy or seed == 0] + [(seed, None) for seed in range(1, args.full_seeds)]
    for seed, policy in plan:
        kept = None if policy is None else select(scores, method=policy, keep=args.keep, seed=seed).indices()
        r = finetune_lora(lm, train, indices=kept, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                          seed=seed, progress=False)
        t = time.perf_counter()
        metrics = {**evaluate(r.model), "lora_s": r.seconds, "eval_s": time.perf_counter() - t}
        lora_s.setdefault(policy is None, []).append(r.seconds)
        rows.setdefault(labels[policy], []).append(metrics)
        runs.append({"subset": labels[policy], "seed": seed, "train_loss": r.train_loss, **metrics})
        print(labels[policy], seed, metrics, flush=True)
        if args.output:
            files.write_json(args.output, {"args": vars(args), "runs": runs})  # atomic: a reader never sees half a file
    print(f"\n{len(train)} training records, {len(test)} held-out; keep {args.keep}; LoRA {args.epochs} epoch(s), "
          f"lr {args.lr}, batch {args.batch_size}")
    print("| subset | runs | held-out response NLL | perplexity | lm-eval acc | lm-eval acc_norm |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, group in rows.items():
        cell = lambda m: f"{np.mean([r[m] for r in group]):.4f}" + (f" ± {np.std([r[m] for r in group]):.4f}" if len(group) > 1 else "")
        print(f"| {key} | {len(group)} | {cell('response_nll')} | {cell('perplexity')} | {cell('acc')} | {cell('acc_norm')} |")
    dlc_s = manifest["timings_s"]["total_s"]
    print(f"DLC scoring {dlc_s:.0f} s ({len(manifest['parameters']['sparsities'])} levels) vs one LoRA run on the "
          f"kept half {np.mean(lora_s[False]):.0f} s and on the full set {np.mean(lora_s[True]):.0f} s")


if __name__ == "__main__":
    main()
