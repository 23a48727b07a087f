"""Training-based scores vs DLC: time of the fine-tuning run that records the training dynamics
(Forgetting, GraNd, EL2N, AUM, CLE/CLH need it) against DLC scoring, on the same images, in one run.

    python benchmarks/dynamics_cost.py --samples 1000 --epochs 10 --levels 20 --step 0.05

Animal-MNIST (class-stratified subset, seed 0), EfficientNet-Lite0 at 64 px on the CPU. The
fine-tuning is the paper's recipe (``dlcprune.training.finetune``, batch 128) with the dynamics
recorder attached; DLC is ``score_dlc`` with K levels. Prints both times, their ratio, and the
cost of one fine-tuning epoch in plain feature passes, so the ratio for any other number of
epochs follows (the paper fine-tunes for 50 to 200 epochs).
"""
from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    from dlcprune import load_dataset, load_encoder, score_dlc
    from dlcprune.data import stratified_split
    from dlcprune import extract_features
    from dlcprune.training import DynamicsRecorder, finetune, recipe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--step", type=float, default=0.05)
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args()
    data = load_dataset("animal-mnist")
    data = data.subset(stratified_split(data.labels, {"s": args.samples // data.num_classes}, seed=0)["s"])
    data.items(range(len(data)))  # decode once, for both sides
    encoder = load_encoder("efficientnet_lite0", device="cpu", image_size=args.image_size)
    print(f"{len(data):,} images, {args.image_size} px, torch threads {torch.get_num_threads()}")

    t = time.perf_counter()
    extract_features(encoder, data, batch_size=64, progress=False)
    plain = time.perf_counter() - t
    t = time.perf_counter()
    result = score_dlc(encoder, data, levels=args.levels, step=args.step, batch_size=64, progress=False)
    dlc = time.perf_counter() - t
    recorder = DynamicsRecorder(data.labels, args.epochs)
    t = time.perf_counter()
    ft = finetune(encoder, data, data.subset(range(1)), recipe=recipe("paper", epochs=args.epochs, lr=0.01),
                  recorder=recorder, progress=False)
    train = time.perf_counter() - t
    epoch = train / args.epochs
    print(f"plain feature pass: {plain:.1f} s")
    print(f"DLC, {args.levels} levels: {dlc:.1f} s (plain pass {result.timings['plain_pass_s']:.1f} s, "
          f"masked levels {result.timings['masking_loop_s']:.1f} s)")
    print(f"fine-tuning with dynamics, {args.epochs} epochs: {train:.1f} s ({epoch:.1f} s per epoch = "
          f"{epoch / plain:.1f} plain passes: forward + backward + augmentation); final train loss {ft.train_loss[-1]:.3f}")
    print(f"training-based score time / DLC score time = {train / dlc:.2f} at {args.epochs} epochs; "
          f"at 50 epochs {50 * epoch / dlc:.1f}, at 200 epochs {200 * epoch / dlc:.1f} (per-epoch cost as measured here)")


if __name__ == "__main__":
    main()
