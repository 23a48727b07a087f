"""LoRA on what each instruction-selection method keeps from the mixed, corrupted pool
(``make_instruction_pool.py``): held-out response NLL per task, lm-eval accuracy on the two
sentiment tasks, and the share of corrupted records kept, per method and keep fraction.

    python benchmarks/make_instruction_pool.py --pool 400 --heldout 25 --corrupt 0.2 --output /tmp/pool400
    dlcprune score --data /tmp/pool400/pool.jsonl --output /tmp/pool400/dlc --levels 5 --step 0.1
    python benchmarks/instruction_lora_table.py --pool /tmp/pool400 --scores /tmp/pool400/dlc \
        --output /tmp/pool400/lora.json

Every run trains for about the same number of record passes (``--passes``; epochs =
round(passes / kept), at least 1), so a small subset is seen several times and the keep fractions
compare selections, not amounts of compute. Random and DLC + FlexRand (γ = 0.5) run ``--seeds``
seeds; DLC easy / hard, longest, perplexity, IFD and embed-kcenter are deterministic and run once
(LoRA seed 0). Seeds are outermost, so an interrupted run still compares like with like; the JSON
is rewritten after every run and a rerun skips the runs it holds.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SEEDED = ("random", "dlc-flexrand")
PLANNED = ("pool", "scores", "keep", "seeds", "passes", "lr", "model")  # what a rerun must share with the record
SENTIMENT = ("sentiment-short", "sentiment-long")


def selections(scores, data, lm, keeps: list[float], seeds: int, *, batch_size: int = 8) -> tuple[dict, dict]:
    """{(method, keep, seed): kept indices} and each baseline measure's seconds."""
    import dlcprune
    from dlcprune.methods.instructions import BASELINES, measure_records

    def pick(values, method, keep, seed, features=None):
        return dlcprune.select(values, labels=data.labels, features=features, method=method, keep=keep,
                               seed=seed).kept[keep]

    plan, seconds = {}, {}
    for keep in keeps:
        for seed in range(seeds):
            plan["random", keep, seed] = pick(scores, "random", keep, seed)
            plan["dlc-flexrand", keep, seed] = pick(scores, "flexrand", keep, seed)
        plan["dlc-easy", keep, 0] = pick(scores, "easy", keep, 0)
        plan["dlc-hard", keep, 0] = pick(scores, "hard", keep, 0)
    for name in BASELINES:
        m = measure_records(lm, data, name, batch_size=batch_size)
        seconds[name] = m.seconds
        for keep in keeps:
            plan[name, keep, 0] = pick(m.values, m.method, keep, 0, m.features)
    return plan, seconds


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", required=True, help="the folder of make_instruction_pool.py")
    ap.add_argument("--scores", required=True, help="the --output folder of `dlcprune score` on pool.jsonl")
    ap.add_argument("--keep", default="0.05,0.1,0.3")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--passes", type=int, default=120, help="record passes per run (epochs = passes / kept)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--methods", help="comma-separated subset of the methods (default: all)")
    ap.add_argument("--full", action="store_true", help="also one run on the whole pool (1 epoch), last")
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--output", required=True, help="the JSON of every run; a rerun resumes from it")
    return ap.parse_args()


def main() -> None:
    from dlcprune.errors import DlcpruneError

    args = parse_args()
    try:
        run(args)
    except DlcpruneError as err:  # bad input (e.g. a held-out set lm-eval cannot use): one line, not a traceback
        raise SystemExit(f"error: {err}") from None


def method_names() -> list[str]:
    """Every method the plan holds, in its order."""
    from dlcprune.methods.instructions import BASELINES

    return [*SEEDED, "dlc-easy", "dlc-hard", *BASELINES]


def run(args: argparse.Namespace) -> None:
    from dlcprune import files, read_scores
    from dlcprune.data.instructions import load_instructions
    from dlcprune.models.causal import load_causal_lm
    from dlcprune.training.lm_eval import write_choice_task

    wanted = args.methods.split(",") if args.methods else method_names()
    if unknown := sorted(set(wanted) - set(method_names())):  # before any slow work
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(method_names())}")
    folder, out = Path(args.pool), Path(args.output)
    data = load_instructions(folder / "pool.jsonl")
    meta = json.loads((folder / "pool_meta.json").read_text())["records"]
    tasks = list(dict.fromkeys(m["task"] for m in meta))
    heldout = {t: load_instructions(folder / f"heldout_{t}.jsonl") for t in tasks}
    keeps = [float(k) for k in args.keep.split(",")]
    state = json.loads(out.read_text()) if out.exists() else {"args": vars(args), "runs": []}
    if changed := [k for k in PLANNED if state["args"][k] != vars(args)[k]]:
        # the runs on record were planned with other settings: they must not mix with these
        raise SystemExit(f"{out} holds runs with other {', '.join(changed)}; use another --output")
    scores_folder = read_scores(args.scores)
    if len(scores_folder.scores) != len(data):
        raise SystemExit(f"{args.scores} scores {len(scores_folder.scores)} records, the pool has {len(data)}")
    with tempfile.TemporaryDirectory(prefix="dlcprune-tasks-") as task_dir:
        # the choice tasks first: a held-out set lm-eval cannot use fails before the model loads
        choice_tasks = {t: write_choice_task(heldout[t], task_dir, name=f"heldout_{t.replace('-', '_')}")
                        for t in SENTIMENT if t in heldout}
        lm = load_causal_lm(args.model, device="cpu")
        if "plan" not in state:
            plan, measure_s = selections(scores_folder.scores, data, lm, keeps, args.seeds)
            state["plan"] = [{"method": m, "keep": k, "seed": s, "kept": [int(i) for i in idx]}
                             for (m, k, s), idx in plan.items()]
            dlc_s = json.loads((Path(args.scores) / "manifest.json").read_text())["timings_s"]["total_s"]
            state["scoring_s"] = {"dlc": dlc_s, **measure_s}
            files.write_json(out, state)
        evaluate = evaluator(heldout, Path(task_dir), choice_tasks)
        train_all(args, state, out, lm, data, meta, evaluate, wanted)
    print_table(state, tasks, keeps)


def evaluator(heldout: dict, task_dir: Path, choice_tasks: dict):
    """model -> held-out response NLL per task and lm-eval accuracy per sentiment task (and their means)."""
    from dlcprune.training.lm_eval import lm_eval_scores
    from dlcprune.training.lora import heldout_metrics

    def evaluate(model) -> dict:
        t = time.perf_counter()
        nll = {task: heldout_metrics(model, records)["response_nll"] for task, records in heldout.items()}
        acc = {task: lm_eval_scores(model, task_dir, name)["acc"] for task, name in choice_tasks.items()}
        return {"nll": nll, "mean_nll": float(np.mean(list(nll.values()))), "acc": acc,
                "mean_acc": float(np.mean(list(acc.values()))), "eval_s": time.perf_counter() - t}
    return evaluate


def train_all(args, state: dict, out: Path, lm, data, meta: list, evaluate, wanted: list[str]) -> None:
    """The base model's evaluation, then one LoRA run per planned selection not yet on record (seeds
    outermost); ``out`` is rewritten after each."""
    from dlcprune import files
    from dlcprune.training.lora import finetune_lora

    corrupted = np.array([m["corrupted"] is not None for m in meta])
    task_of = np.array([m["task"] for m in meta])
    done = {(r["method"], r["keep"], r["seed"]) for r in state["runs"]}
    if ("none", 0.0, 0) not in done:
        state["runs"].append({"method": "none", "keep": 0.0, "seed": 0, **evaluate(lm)})
        files.write_json(out, state)
    todo = sorted((p for p in state["plan"] if p["method"] in wanted), key=lambda p: (p["seed"], p["keep"]))
    if args.full:
        todo.append({"method": "full", "keep": 1.0, "seed": 0, "kept": list(range(len(data)))})
    for p in todo:
        if (p["method"], p["keep"], p["seed"]) in done:
            continue
        idx = np.array(p["kept"])
        epochs = 1 if p["method"] == "full" else max(1, round(args.passes / len(idx)))
        r = finetune_lora(lm, data, indices=idx, epochs=epochs, lr=args.lr, seed=p["seed"], progress=False)
        run = {"method": p["method"], "keep": p["keep"], "seed": p["seed"], "kept": len(idx), "epochs": epochs,
               "lora_s": r.seconds, "corrupted_share": float(corrupted[idx].mean()),
               "tasks": {t: int((task_of[idx] == t).sum()) for t in dict.fromkeys(task_of)}, **evaluate(r.model)}
        state["runs"].append(run)
        files.write_json(out, state)  # atomic: a reader never sees half a file
        print(f"{run['method']} keep {run['keep']} seed {run['seed']}: NLL {run['mean_nll']:.4f} acc "
              f"{run['mean_acc']:.3f} corrupted {run['corrupted_share']:.2f} ({r.seconds:.0f} s)", flush=True)


def print_table(state: dict, tasks: list[str], keeps: list[float]) -> None:
    """Markdown: mean held-out NLL (over the tasks) ± sd over seeds per method and keep, then
    sentiment accuracy and corrupted share; a cell is bold where it beats random's mean by more
    than twice random's sample sd over seeds (a rough "beyond the seed spread", said under the table)."""
    runs = [r for r in state["runs"] if r["method"] not in ("none", "full")]
    methods = list(dict.fromkeys(r["method"] for r in runs))

    def cell(method, keep, key, lower_better=True):
        vals = [r[key] for r in runs if r["method"] == method and r["keep"] == keep]
        base = [r[key] for r in runs if r["method"] == "random" and r["keep"] == keep]
        if not vals:
            return "–"
        mean, text = float(np.mean(vals)), f"{np.mean(vals):.3f}" + (f" ± {np.std(vals, ddof=1):.3f}" if len(vals) > 1 else "")
        if method != "random" and len(base) > 1:
            gain = (np.mean(base) - mean) if lower_better else (mean - np.mean(base))
            if gain > 2 * np.std(base, ddof=1):
                text = f"**{text}**"
        return text

    for key, title, lower in (("mean_nll", "held-out response NLL (mean over tasks; lower is better)", True),
                              ("mean_acc", "lm-eval accuracy, sentiment tasks (higher is better)", False),
                              ("corrupted_share", "share of corrupted records kept", True)):
        print(f"\n{title}\n\n| method | " + " | ".join(f"keep {k:g}" for k in keeps) + " |")
        print("|---|" + "---:|" * len(keeps))
        for m in methods:
            print(f"| {m} | " + " | ".join(cell(m, k, key, lower) for k in keeps) + " |")
        print("\n(± the sample sd over seeds; bold: better than random's mean by more than 2 x random's sd)")
    for r in state["runs"]:
        if r["method"] in ("none", "full"):
            print(f"{r['method']}: NLL {r['mean_nll']:.3f} acc {r['mean_acc']:.3f} " +
                  " ".join(f"{t} {v:.3f}" for t, v in r["nll"].items()))
    largest = [r["lora_s"] for r in runs if r["keep"] == max(keeps)]
    if largest:
        print("\nscoring s (DLC: its manifest's total; the baselines: measured here): " +
              ", ".join(f"{k} {v:.0f}" for k, v in state["scoring_s"].items()) +
              f"; one LoRA run on keep {max(keeps):g}: {np.mean(largest):.0f} s")


if __name__ == "__main__":
    main()
