"""Decode once: DLC scoring of a folder of photo-sized JPEGs at 224 px, the level loop reading each
image once for all levels (dlcprune's order) against reading it again at every level (the order
before), both in one run, with identical scores checked.

    python benchmarks/decode_once.py --images 600 --levels 10 --source-size 400
    python benchmarks/decode_once.py --images 400 --levels 10 --source-size 512 \
        --encoder timm:mobilenetv3_small_050 --weights random   # a forward pass cheap next to decoding

The second form stands in for a GPU, where the forward pass is cheap next to decoding on the CPU:
a small timm model, randomly initialised (no weights ship for it), so only its times mean anything.

The JPEGs are Animal-MNIST images (class-stratified, seed 0) upscaled to ``--source-size`` px and
stored at quality 90 in a temporary folder; the decoded-image cache is off
(DLCPRUNE_DECODED_CACHE_BYTES=0), so nothing is kept between levels in the per-level order.
The per-level order is rebuilt from dlcprune's public pieces: the plain pass, the prototypes,
then for each level its mask and a fresh feature pass over the folder.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_jpegs(folder: Path, *, images: int, size: int) -> None:
    from PIL import Image

    from dlcprune import load_dataset
    from dlcprune.data import stratified_split

    data = load_dataset("animal-mnist")
    idx = stratified_split(data.labels, {"s": max(1, images // data.num_classes)}, seed=0)["s"]
    for i in idx:
        grey = data.items([i])[0][..., 0]
        rgb = np.stack([grey, 255 - grey, grey // 2 + 64], axis=-1)  # three distinct channels, like a photo
        path = folder / data.class_names[data.labels[i]] / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).resize((size, size), Image.BICUBIC).save(path, quality=90)


def per_level_order(encoder, data, *, levels: int, step: float, batch_size: int) -> np.ndarray:
    """The order before: every masked level reads and decodes the whole folder again."""
    from dlcprune import NestedMasks, extract_features
    from dlcprune.scoring import class_prototypes, prototype_losses

    labels = torch.from_numpy(data.labels)
    z0 = torch.from_numpy(extract_features(encoder, data, batch_size=batch_size, progress=False))
    mu = class_prototypes(z0, labels, data.num_classes)
    losses = [prototype_losses(z0, labels, mu).numpy()]
    masks = NestedMasks([w for _, w in encoder.maskable], levels=levels, step=step)
    with masks.applied() as set_level:
        for k in range(1, levels):
            set_level(k)
            z = torch.from_numpy(extract_features(encoder, data, batch_size=batch_size, progress=False))
            losses.append(prototype_losses(z, labels, mu).numpy())
    return np.mean(losses, 0)


def main() -> None:
    from dlcprune import load_dataset, load_encoder, score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--levels", type=int, default=10)
    ap.add_argument("--step", type=float, default=0.05)
    ap.add_argument("--source-size", type=int, default=400, help="side of the stored JPEGs")
    ap.add_argument("--image-size", type=int, default=224, help="side the encoder sees")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--encoder", default="efficientnet_lite0", help="a name load_encoder takes")
    ap.add_argument("--weights", default="pretrained", help="pretrained, or random for a timm stand-in")
    args = ap.parse_args()
    os.environ["DLCPRUNE_DECODED_CACHE_BYTES"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp), images=args.images, size=args.source_size)
        data = load_dataset(tmp)
        encoder = load_encoder(args.encoder, weights=args.weights, device="cpu", image_size=args.image_size)
        batch = encoder.preprocess(data.items(range(min(args.batch_size, len(data)))))
        encoder.encode(batch)  # warm-up
        t = time.perf_counter()
        encoder.encode(batch)
        forward_ms = 1e3 * (time.perf_counter() - t) / len(batch)
        t = time.perf_counter()
        for s in range(0, len(data), args.batch_size):
            encoder.preprocess(data.items(range(s, min(s + args.batch_size, len(data)))))
        decode_s = time.perf_counter() - t
        run = dict(levels=args.levels, step=args.step, batch_size=args.batch_size)
        t = time.perf_counter()
        before = per_level_order(encoder, data, **run)
        before_s = time.perf_counter() - t
        t = time.perf_counter()
        after = score(encoder, data, progress=False, **run).scores
        after_s = time.perf_counter() - t
    print(f"{len(data)} JPEGs of {args.source_size} px scored at {args.image_size} px by {args.encoder} "
          f"({args.weights}), K = {args.levels}, {torch.get_num_threads()} threads")
    print(f"one read + decode + resize of every image: {decode_s:.1f} s ({1e3 * decode_s / len(data):.1f} ms/image); "
          f"forward pass: {forward_ms:.1f} ms/image")
    print(f"per-level order (reads per image: {args.levels + 1}): {before_s:.1f} s")
    print(f"decode once (reads per image: 2):                 {after_s:.1f} s")
    print(f"speed-up: {before_s / after_s:.2f}x; scores identical: {np.array_equal(before, after)}")


if __name__ == "__main__":
    main()
