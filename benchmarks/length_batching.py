"""Batching instruction records by length: the response-loss pass (one DLC level, or the perplexity
baseline) with length-sorted batches, as dlcprune does, against batches in record order.

    python benchmarks/length_batching.py --data /tmp/pool400/pool.jsonl --records 200

Both orders pad each batch to its longest record; printed: tokens computed (real + padding), time
of each order (best of ``--repeats``), the speed-up, and the largest difference between the two
orders' per-record losses (padding is masked, so only float rounding may differ).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    from dlcprune.data.instructions import load_instructions
    from dlcprune.models.causal import encode, load_causal_lm, response_losses

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a JSONL of instruction records (e.g. the pool)")
    ap.add_argument("--records", type=int, default=200, help="the first N records")
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    data = load_instructions(args.data)
    data = data.subset(np.arange(min(args.records, len(data))))
    lm = load_causal_lm(args.model, device="cpu")
    encoded = encode(lm, data)
    b = args.batch_size

    def in_record_order() -> np.ndarray:  # each call sorts within its own batch only: record-order batches
        return np.concatenate([response_losses(lm, encoded[i:i + b], batch_size=b) for i in range(0, len(encoded), b)])

    def padded_tokens(order: list[int]) -> int:
        return sum(len(order[i:i + b]) * max(len(encoded[j][0]) for j in order[i:i + b]) for i in range(0, len(order), b))

    response_losses(lm, encoded[:b], batch_size=b)  # warm-up: the first pass pays for allocations
    timed = {}
    for name, fn in (("record order", in_record_order), ("length-sorted", lambda: response_losses(lm, encoded, batch_size=b))):
        best = np.inf
        for _ in range(args.repeats):
            t = time.perf_counter()
            losses = fn()
            best = min(best, time.perf_counter() - t)
        timed[name] = (best, losses)
    real = sum(len(t) for t, _ in encoded)
    by_length = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    print(f"{len(encoded)} records, {real} real tokens, batch {b}, model {lm.name}")
    print("| batches | tokens computed | time (s) |\n|---|---:|---:|")
    print(f"| record order | {padded_tokens(list(range(len(encoded))))} | {timed['record order'][0]:.1f} |")
    print(f"| length-sorted | {padded_tokens(by_length)} | {timed['length-sorted'][0]:.1f} |")
    print(f"speed-up {timed['record order'][0] / timed['length-sorted'][0]:.2f}x; largest loss difference "
          f"{np.abs(timed['record order'][1] - timed['length-sorted'][1]).max():.2e}")


if __name__ == "__main__":
    main()
