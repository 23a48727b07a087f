"""The limit: plain-inference throughput of the scoring model under the configurations this CPU
allows, against DLC's masked-level pass, in one run.

    python benchmarks/inference_limit.py --images 1000 --image-size 64

EfficientNet-Lite0 (ImageNet weights) on Animal-MNIST images (class-stratified, seed 0), already
decoded and preprocessed (both sides then time the model alone). Configurations: memory format
(NCHW / channels_last), no_grad / inference_mode, threads (1 .. all cores), batch size, TorchScript
(trace + freeze + optimize_for_inference) and torch.compile when they work here. Each is timed as
the best of ``--repeats`` passes over all images. The masked pass is dlcprune's level loop
(``score``'s ``mean_masked_level_s``: switching the level's mask, the forward pass and the prototype
losses; best of ``--repeats`` runs), eager (the default) and with ``compile=True`` (``--compile``).
"""
from __future__ import annotations

import argparse
import copy
import os
import time

import torch


def timed(forward, batches, repeats: int) -> float:
    """Best time of ``repeats`` passes over the batches (one warm-up pass first)."""
    for x in batches[:2]:
        forward(x)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for x in batches:
            forward(x)
        best = min(best, time.perf_counter() - t)
    return best


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--levels", type=int, default=4, help="levels of the DLC run that times the masked pass")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-compile", action="store_true", help="leave out torch.compile (slow to build)")
    return ap.parse_args()


class Timings:
    """Feature passes over the same preprocessed images, timed; ``rows``: (configuration, ms/image)."""

    def __init__(self, encoder, images: list, repeats: int):
        self.encoder, self.images, self.repeats = encoder, images, repeats
        self.threads = torch.get_num_threads()
        self.rows: list[tuple[str, float]] = []

    def batches(self, size: int, channels_last: bool) -> list[torch.Tensor]:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        return [self.encoder.preprocess(self.images[s:s + size]).contiguous(memory_format=layout)
                for s in range(0, len(self.images), size)]

    def measure(self, name: str, forward, *, size: int = 64, channels_last: bool = True, threads: int | None = None):
        torch.set_num_threads(threads or self.threads)
        try:
            seconds = timed(forward, self.batches(size, channels_last), self.repeats)
        except Exception as err:  # a runtime this machine cannot build is reported, not fatal
            print(f"{name}: failed ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
            return
        finally:
            torch.set_num_threads(self.threads)
        ms = 1000 * seconds / len(self.images)
        self.rows.append((name, ms))
        print(f"{name:<58} {ms:7.3f} ms/image", flush=True)


class Features(torch.nn.Module):
    """EfficientNet-Lite0's pooled features as one module (what TorchScript and torch.compile take)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m.extract_features(x).mean((2, 3))


def eager(timings: Timings, module) -> None:
    """Memory format, no_grad / inference_mode, threads and batch size, in eager mode."""
    nchw = copy.deepcopy(module).to(memory_format=torch.contiguous_format)
    no_grad = lambda m: under(torch.no_grad, Features(m))
    inference = lambda m: under(torch.inference_mode, Features(m))
    timings.measure("eager NCHW, no_grad, batch 64", no_grad(nchw), channels_last=False)
    timings.measure("eager NCHW, inference_mode, batch 64", inference(nchw), channels_last=False)
    timings.measure(OURS, inference(module))
    for threads in sorted({1, os.cpu_count() or 1}):
        timings.measure(f"eager channels_last, inference_mode, batch 64, {threads} thread(s)", inference(module),
                        threads=threads)
    for size in (16, 32, 128, 256):
        timings.measure(f"eager channels_last, inference_mode, batch {size}", inference(module), size=size)


def compiled(timings: Timings, module, *, with_compile: bool) -> None:
    """TorchScript (trace + freeze + optimize_for_inference) and torch.compile, where they build."""
    try:
        with torch.inference_mode(False), torch.no_grad():
            example = timings.batches(64, True)[0].clone()
            traced = torch.jit.trace(Features(copy.deepcopy(module)).eval(), example)
            scripted = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        timings.measure("TorchScript trace + freeze + optimize_for_inference", under(torch.no_grad, scripted))
    except Exception as err:
        print(f"TorchScript: failed ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
    if with_compile:
        timings.measure("torch.compile (inductor)", under(torch.no_grad, torch.compile(Features(copy.deepcopy(module)).eval())))


OURS = "eager channels_last, inference_mode, batch 64 (dlcprune)"


def main() -> None:
    from dlcprune import load_dataset, load_encoder, score
    from dlcprune.data import stratified_split

    args = parse_args()
    data = load_dataset("animal-mnist")
    data = data.subset(stratified_split(data.labels, {"s": args.images // data.num_classes}, seed=0)["s"])
    encoder = load_encoder("efficientnet_lite0", device="cpu", image_size=args.image_size)
    timings = Timings(encoder, data.items(range(len(data))), args.repeats)
    eager(timings, encoder.module)
    compiled(timings, encoder.module, with_compile=not args.skip_compile)

    fastest_name, fastest = min(timings.rows, key=lambda r: r[1])
    ours = dict(timings.rows)[OURS]
    print(f"fastest plain inference: {fastest_name} ({fastest:.3f} ms/image); dlcprune's plain configuration "
          f"{ours:.3f} ms/image")
    for compile in ([False] if args.skip_compile else [False, True]):
        # dlcprune's masked-level pass: best over runs of ``score`` of its mean level time
        scorer = load_encoder("efficientnet_lite0", device="cpu", image_size=args.image_size, compile=compile)
        runs = [score(scorer, data, levels=args.levels, step=0.05, progress=False) for _ in range(args.repeats)]
        ms = 1000 * min(r.timings["mean_masked_level_s"] for r in runs) / len(data)
        name = "score --compile" if compile else "score (default, eager)"
        print(f"{'DLC masked-level pass, ' + name + ' (mask switch + forward + losses)':<58} {ms:7.3f} ms/image; "
              f"throughput / fastest plain {fastest / ms:.2f}, / dlcprune's plain {ours / ms:.2f}")


def under(mode, forward):
    """``forward`` run inside ``mode()`` (torch.no_grad or torch.inference_mode)."""
    def run(x):
        with mode():
            return forward(x)
    return run


if __name__ == "__main__":
    main()
