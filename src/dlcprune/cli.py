"""``dlcprune score | select | prune | bench | finetune | instruct | lora | report | list | demo``.

Bad input ends with ``error: <one line>`` on stderr and exit status 2, before any output is written.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from . import cli_llm, files
from .options import device, natural_int, positive_int, thread_count
from .errors import DlcpruneError

EXIT_BUG, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line too."""

    def error(self, message: str) -> None:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see `{self.prog} --help`)\n")


def fractions(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions like 0.1,0.5, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one fraction")
    return values


def keep_fractions(args: argparse.Namespace, *, optional: bool = False) -> list[float] | None:
    """``--keep`` as given, or ``--prune`` as its complement (prune 0.9 = keep 0.1); None when
    neither is given and that is allowed (``--target-drop`` advises the fraction)."""
    from .selection import check_keep

    if optional and args.keep is None and args.prune is None:
        return None
    if (args.keep is None) == (args.prune is None):
        raise DlcpruneError("give exactly one of --keep (fractions KEPT) or --prune (fractions removed)")
    if args.keep is not None:
        return [check_keep(k) for k in args.keep]
    for p in args.prune:
        if not 0.0 <= p < 1.0:
            raise DlcpruneError(f"--prune must be a fraction in [0, 1) (the share REMOVED), got {p}")
    return [check_keep(round(1.0 - p, 10)) for p in args.prune]


def add_score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="a name of `dlcprune list`, timm:<name> or hf:<name> (default: efficientnet_lite0 for images, "
                        "minilm for texts)")
    p.add_argument("--weights", default="pretrained", help="pretrained (default), random, or a weights file")
    p.add_argument("--data", required=True,
                   help="image folder (one sub-folder per class), .npz, .csv/.jsonl of texts, HF dataset folder, or a built-in")
    p.add_argument("--text-column", default="text", help="text datasets: the column holding the text")
    p.add_argument("--label-column", default="label", help="text datasets: the column holding the label")
    p.add_argument("--hf-split", default=None,
                   help="Hugging Face DatasetDict folders: the split to read (default train)")
    p.add_argument("--image-size", type=positive_int, default=None, help="resize every image to NxN (default: keep sizes)")
    p.add_argument("--levels", type=levels_arg, default=50,
                   help="masking levels K, level 0 unmasked (default 50); or auto: at most 50, only those the "
                        "ranking needs, none past the encoder's collapse")
    p.add_argument("--step", type=float, default=0.02, help="fraction of the remaining weights masked per level (0.02)")
    p.add_argument("--masking", choices=["magnitude", "random"], default="magnitude", help="how weights are masked: magnitude (default, the paper's) or random")
    p.add_argument("--seed", type=natural_int, default=0, help="seed of every random step (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="samples per forward pass (default 64)")
    p.add_argument("--workers", "--num-workers", dest="workers", type=natural_int, default=0,
                   help="DataLoader processes decoding the next batches while the encoder runs (default 0)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present)")


AUTO_MAX_LEVELS = 50


def add_recipe_args(p: argparse.ArgumentParser, *, default: str, batch_size: bool = True) -> None:
    """Full fine-tuning: a named recipe (dlcprune.training.RECIPES) and the fields one may override."""
    p.add_argument("--recipe", choices=["paper", "cpu"], default=default,
                   help=f"full fine-tuning recipe (default {default}): paper = SGD lr 1e-3 /10 at 50%%/75%%, 50 epochs, "
                        "batch 128, BatchNorm trained, crop+flip; cpu = 8 epochs, batch 32, BatchNorm frozen, head "
                        "started from the linear probe, lr 3e-3 encoder / 1e-3 head, warm-up + cosine, mild crops, no flip")
    p.add_argument("--epochs", type=positive_int, default=None, help="fine-tuning epochs (default: the recipe's)")
    p.add_argument("--lr", type=float, default=None, help="encoder learning rate (default: the recipe's)")
    p.add_argument("--head-lr", type=float, default=None, help="head learning rate (default: the recipe's)")
    if batch_size:
        p.add_argument("--batch-size", type=positive_int, default=None, help="samples per training step (default: the recipe's)")


def recipe_of(args: argparse.Namespace, *, batch_size: int | None = None):
    from .training import recipe

    return recipe(args.recipe, epochs=args.epochs, lr=args.lr, head_lr=args.head_lr, batch_size=batch_size)


def levels_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of levels or 'auto', got {text!r}") from None


def level_plan(levels: int | str) -> tuple[int, bool]:
    """(K, adaptive) for --levels N or auto."""
    return (AUTO_MAX_LEVELS, True) if levels == "auto" else (levels, False)


def add_select_args(p: argparse.ArgumentParser, *, seed: bool) -> None:
    p.add_argument("--policy", "--method", dest="policy", default="auto",
                   help="auto (default, recommended): per keep fraction, the candidate that beats random on a "
                        "validation split, else random, with a verdict; or any method of `dlcprune list` "
                        "(random, easy, hard, flexrand, flexrand-auto, herding, el2n, ...)")
    p.add_argument("--candidates", type=names_arg, default=None,
                   help="with auto: the methods it chooses among (default easy,flexrand,hard,herding,flexrand-herding,margin; "
                        "random is always the reference)")
    p.add_argument("--target-drop", type=float, default=None,
                   help="with auto: advise the smallest keep fraction whose validation accuracy stays within this many "
                        "points of the full pool (e.g. 1.0); without --keep, the grid 0.1..0.9 is tried and the advised "
                        "fraction written")
    p.add_argument("--dynamics", default=None,
                   help="training dynamics for forgetting/grand/el2n/aum/cle/clh/ccs-aum: 'head' (SGD on a linear "
                        "head over the saved features) or the dynamics.npz of `dlcprune finetune --record-dynamics`")
    p.add_argument("--split", type=split_arg, default=None,
                   help="FlexRand's gamma in (0, 1) (default 0.5); 'auto' is the older spelling of --policy flexrand-auto")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="auto: share of each class held out to choose and judge (default 0.2); the selection is then "
                        "drawn from the whole set")
    p.add_argument("--keep", type=fractions, default=None, help="fractions KEPT, e.g. 0.1,0.2,0.3")
    p.add_argument("--prune", type=fractions, default=None, help="fractions REMOVED (keep = 1 - prune)")
    p.add_argument("--export", choices=["imagefolder", "filelist", "csv", "jsonl", "hf"], default=None,
                   help="also write the kept samples into OUT/keep_<fraction>/: imagefolder (class sub-folders), "
                        "filelist (kept.txt), csv / jsonl (the original rows, byte-identical), hf (save_to_disk)")
    p.add_argument("--link", action="store_true", help="with --export imagefolder: symlinks instead of copies")
    if seed:
        p.add_argument("--seed", type=natural_int, default=0, help="seed of every random step (default 0)")


def build_parser() -> Parser:
    parser = Parser(prog="dlcprune", description="Training-free downstream dataset pruning (DLC + FlexRand).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    common.add_argument("--json", action="store_true",
                        help="print one JSON summary (paths, counts, timings, verdicts) on stdout at the end")
    common.add_argument("--quiet", action="store_true", help="no progress bars (also not those of transformers / datasets)")
    common.add_argument("--threads", type=thread_count, default=None,
                        help="CPU threads for torch and BLAS (default: the physical cores, the same on every run); "
                             "auto: those other processes leave idle now (faster on a busy machine, last-bit "
                             "differences between runs)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_parser = sub.add_parser
    sub.add_parser = lambda *a, **kw: add_parser(*a, parents=[common], **kw)  # every command takes --threads

    p = sub.add_parser("score", help="DLC score of every sample (higher = harder)")
    add_score_args(p)
    p.add_argument("--output", required=True, help="folder for scores.csv, levels.npy, features.npy, manifest.json")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder")

    p = sub.add_parser("select", help="choose the samples to keep from a scores folder")
    p.add_argument("--scores", required=True, help="the --output folder of `dlcprune score`")
    p.add_argument("--data", dest="export_data", default=None,
                   help="with --export: the scored data (default: the path the scores folder records)")
    add_select_args(p, seed=True)
    p.add_argument("--output", required=True, help="the folder to write (created; see the README for its files)")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder (never into an input folder)")

    p = sub.add_parser("prune", help="score, then select (selection in OUTPUT/selection)")
    add_score_args(p)
    add_select_args(p, seed=False)
    p.add_argument("--output", required=True, help="the folder to write (created; see the README for its files)")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder (never into an input folder)")

    p = sub.add_parser("bench", help="methods x keep fractions x seeds, linear probe or full fine-tuning (resumable)")
    add_score_args(p)
    p.add_argument("--test-data", default=None, help="test set (image folder, .npz or built-in)")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="without --test-data: share of each class of --data held out as the test set (seed 0)")
    p.add_argument("--methods", default="random,easy,hard,flexrand,flexrand-auto",
                   help="comma-separated: DLC policies (easy, hard, flexrand, flexrand-auto, ccs), random, and "
                        "baselines (see `dlcprune list`)")
    p.add_argument("--trainer", choices=["probe", "full"], default="probe",
                   help="what is trained on each kept subset: probe = logistic regression on frozen features "
                        "(default); full = fine-tune the whole encoder (images; the paper's protocol, --recipe)")
    add_recipe_args(p, default="cpu", batch_size=False)
    p.add_argument("--train-per-class", type=positive_int, default=None,
                   help="use a class-stratified subset of --data with this many samples per class (seed 0)")
    p.add_argument("--test-per-class", type=positive_int, default=None,
                   help="use a class-stratified subset of the test set with this many samples per class (seed 0)")
    p.add_argument("--dynamics", choices=["head", "full"], default=None,
                   help="training dynamics for forgetting/grand/el2n/aum/cle/clh: SGD on a linear head over the "
                        "features (default with --trainer probe) or full fine-tuning of the encoder (default with "
                        "--trainer full: the full-pool run of the protocol, seed 0)")
    p.add_argument("--dynamics-epochs", type=positive_int, default=20, help="epochs of the training run that records dynamics (default 20)")
    p.add_argument("--keep", type=fractions, default=[round(0.1 * i, 1) for i in range(1, 10)], help="fractions KEPT (default 0.1,...,0.9)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per cell (default 3)")
    p.add_argument("--output", required=True, help="the folder to write (created; see the README for its files)")

    p = sub.add_parser("finetune", help="train on kept indices (linear probe or full fine-tuning), evaluate on a test set")
    p.add_argument("--model", default=None,
                   help="the encoder that was scored with (default: efficientnet_lite0 for images, minilm for texts)")
    p.add_argument("--weights", default="pretrained", help="pretrained (default), random, or a weights file")
    p.add_argument("--data", required=True, help="the training set that was scored (indices refer to its order)")
    p.add_argument("--test-data", required=True, help="the test set: same classes as --data")
    p.add_argument("--indices", default=None, help="keep_indices.npy from `dlcprune select` (default: all samples)")
    p.add_argument("--trainer", choices=["probe", "full"], default="probe", help="probe: logistic regression on frozen features (default); full: fine-tune the whole encoder")
    p.add_argument("--record-dynamics", action="store_true",
                   help="with --trainer full: also write dynamics.npz (per-epoch records of every trained sample) "
                        "for `dlcprune select --policy el2n --dynamics FILE`")
    p.add_argument("--image-size", type=positive_int, default=None, help="resize every image to NxN (default: keep sizes)")
    p.add_argument("--text-column", default="text", help="text datasets: the column holding the text (default text)")
    p.add_argument("--label-column", default="label", help="text datasets: the column holding the label (default label)")
    add_recipe_args(p, default="paper")
    p.add_argument("--seed", type=natural_int, default=0, help="seed of every random step (default 0)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:N or mps (default: cuda when present)")
    p.add_argument("--output", required=True, help="folder for metrics.json")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder (never into an input folder)")

    p = sub.add_parser("report", help="an HTML page about a scores or bench folder")
    p.add_argument("folder", help="the --output folder of `dlcprune score`, `select` or `bench`")
    p.add_argument("--output", default=None,
                   help="folder for report.html and its PNGs (default: FOLDER-report beside FOLDER; never inside it)")
    p.add_argument("--data", default=None, help="the scored dataset, to show the easiest and hardest examples")
    p.add_argument("--text-column", default="text", help="text datasets: the column holding the text (default text)")
    p.add_argument("--label-column", default="label", help="text datasets: the column holding the label (default label)")

    cli_llm.add_parsers(sub, fractions=fractions)

    sub.add_parser("list", help="registered models, datasets, scorers and policies")

    p = sub.add_parser("demo", help="offline end-to-end run on Animal-MNIST with EfficientNet-Lite0")
    p.add_argument("--levels", type=positive_int, default=20, help="masking levels K (default 20)")
    p.add_argument("--step", type=float, default=0.05, help="fraction of the remaining weights masked per level (default 0.05)")
    p.add_argument("--image-size", type=positive_int, default=64, help="image size in pixels (default 64)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per cell (default 3)")
    p.add_argument("--train-per-class", type=positive_int, default=300, help="training images per class (default 300)")
    p.add_argument("--test-per-class", type=positive_int, default=200, help="test images per class (default 200)")
    p.add_argument("--output", default="dlcprune-demo",
                   help="bench folder for scores, results and verdicts (default dlcprune-demo; a rerun resumes it)")
    return parser


def cmd_score(args: argparse.Namespace) -> dict:
    """Also under torchrun: every rank scores a block of the samples, rank 0 writes the folder."""
    from .data import load_dataset
    from .models import default_model, load_encoder
    from .artifacts import PARTIAL, SCORE_FILES, write_scores
    from .scoring import score_dlc
    from .scoring.shard import init_from_environment, is_main_process, on_main

    t0 = time.perf_counter()
    levels, adaptive = level_plan(args.levels)
    if levels < 1 or not 0.0 < args.step < 1.0 or args.batch_size < 1:
        raise DlcpruneError("need --levels >= 1, 0 < --step < 1 and --batch-size >= 1")
    if not adaptive and 1 - (1 - args.step) ** (levels - 1) > 0.999:
        raise DlcpruneError(f"--levels {levels} with --step {args.step:g} reach a sparsity of "
                            f"{1 - (1 - args.step) ** (levels - 1):.6f}: past 99.9% nearly every weight is masked and "
                            "further levels add nothing; use fewer levels or a smaller step")
    if args.image_size is not None and args.image_size < 8:
        raise DlcpruneError(f"--image-size must be at least 8 pixels, got {args.image_size}")
    init_from_environment(args.device)
    # an interrupted run of this job: its checkpoint, maybe some of its outputs, maybe its (stale) lock
    only_partial = lambda p: PARTIAL in (names := {f.name for f in p.iterdir()}) and names <= {PARTIAL, files.LOCK, *SCORE_FILES}
    out = on_main(lambda: files.check_output_dir(args.output, force=args.force, resumable=only_partial,
                                                       inputs=(args.data,)))
    dataset = load_dataset(args.data, text_column=args.text_column, label_column=args.label_column,
                           hf_split=args.hf_split)
    encoder = load_encoder(args.model or default_model(dataset), weights=args.weights,
                           device=args.device, image_size=args.image_size)
    score = lambda: score_dlc(encoder, dataset, levels=levels, step=args.step, masking=args.masking,
                              seed=args.seed, adaptive=adaptive, workers=args.workers, batch_size=args.batch_size, checkpoint_dir=out / PARTIAL,
                              progress=not args.quiet)
    if not is_main_process():
        score()
        return {"command": "score", "output": str(out)}
    # Bad input leaves nothing behind; an interrupted or crashed run keeps its checkpoint to resume.
    with files.output_dir(out, keep=lambda err: not isinstance(err, DlcpruneError)):
        result = score()
        spec = str(Path(args.data).resolve()) if Path(args.data).exists() else args.data
        write_scores(out, result, dataset=dataset, encoder=encoder, total_s=time.perf_counter() - t0,
                     data_spec={"data": spec, "text_column": args.text_column, "label_column": args.label_column,
                                "hf_split": args.hf_split})
    shutil.rmtree(out / PARTIAL, ignore_errors=True)
    processes = result.timings["processes"]
    computed = len(result.parameters.get("levels_computed", range(levels)))
    print(f"scored {len(dataset):,} samples with DLC ({computed} of {levels} levels"
          f"{f', {processes} processes' if processes > 1 else ''}) -> {out / 'scores.csv'}")
    return {"command": "score", "output": str(out), "samples": len(dataset), "levels_computed": computed,
            "model": encoder.name, "seconds": round(time.perf_counter() - t0, 3)}


def split_arg(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1) or 'auto', got {text!r}") from None


def names_arg(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated method names, e.g. easy,flexrand,herding")
    return names


def selection_request(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``dlcprune.select`` that the select options ask for (checked before
    any slow work). ``--split auto`` is the older spelling of ``--policy flexrand-auto``."""
    from .methods.select import check_request

    method, split = args.policy, args.split
    if split == "auto":
        if method != "flexrand":
            raise DlcpruneError("--split auto chooses FlexRand's gamma; use it with --policy flexrand (or --policy auto)")
        method, split = "flexrand-auto", None
    keep = keep_fractions(args, optional=args.target_drop is not None)
    request = dict(method=method, keep=keep, split=split, candidates=args.candidates, target_drop=args.target_drop,
                   val_fraction=args.val_fraction, dynamics=args.dynamics)
    check_request(**request)  # the same checks select() makes, now
    return request


def flag_names(message: str) -> str:
    """A library message names parameters; on the command line, say the flags."""
    import re

    message = re.sub(r"^(keep|dynamics|levels|step|epochs|weights|device|dynamics_epochs|mask_scope|image_size)\b",
                     lambda m: "--" + m.group(1).replace("_", "-"), message)
    for param, flag in (("max_length", "--max-length"), ("target_drop", "--target-drop"), ("val_fraction", "--val-fraction"),
                        ("candidates", "--candidates"), ("split (FlexRand's gamma)", "--split")):
        message = re.sub(rf"(?<![-\w]){re.escape(param)}(?!\w)", flag, message)
    return message


def cmd_select(args: argparse.Namespace, *, scores_dir: Path | None = None) -> dict:
    from .artifacts import read_scores, write_selection
    from .methods.select import select

    request = selection_request(args)
    scores = read_scores(scores_dir or args.scores)
    recorded = (scores.manifest.get("data") or {}).get("data")  # the scored data, which an export reads
    out = files.check_output_dir(scores_dir / "selection" if scores_dir else args.output, force=args.force,
                                 inputs=(recorded,) if scores_dir else (args.scores, args.export_data, recorded))
    selection = select(scores, seed=args.seed, **request)
    with files.output_dir(out, keep=lambda err: False):
        manifest = write_selection(out, selection, scores=scores)
        if args.export:
            from .export import export_selection

            written = export_selection(out, selection, scores, format=args.export, link=args.link,
                                       data=getattr(args, "export_data", None))
    summary = ", ".join(f"{v['keep']:g}: {v['kept']}" for v in manifest["fractions"].values())
    print(f"{selection.method} selection of {manifest['samples']:,} samples (kept per fraction {summary}) -> {out}")
    print_verdicts(selection)
    if args.export:
        print(f"kept samples exported ({args.export}): " + ", ".join(str(p) for p in written))
    return {"command": "select", "output": str(out), "method": selection.method,
            "kept": {f"{k:g}": int(len(v)) for k, v in selection.kept.items()},
            "verdicts": {f"{k:g}": v for k, v in (selection.verdicts or {}).items()} or None,
            "advice": selection.advice, "exported": [str(p) for p in written] if args.export else None}


def print_verdicts(selection) -> None:
    """auto's verdict per keep fraction, and the advice, as plain lines."""
    if selection.verdicts:
        print("verdict (validation split, linear probe on frozen features):")
        for keep, v in selection.verdicts.items():
            acc = v["validation_accuracy_points"]
            print(f"  keep {keep:g}: {v['chosen']} - {v['verdict']}; accuracy {acc['chosen'][0]:.2f} "
                  f"(random {acc['random'][0]:.2f}, full pool {acc['full pool'][0]:.2f})")
    if selection.advice is not None:
        print(f"advice: {selection.advice['advice']}")


def cmd_prune(args: argparse.Namespace) -> dict:
    from .scoring.shard import is_main_process

    selection_request(args)  # fail on bad selection arguments before the slow scoring
    scored = cmd_score(args)
    chosen = cmd_select(args, scores_dir=Path(scored["output"])) if is_main_process() else None
    return {**scored, "command": "prune", "selection": chosen}


def cmd_bench(args: argparse.Namespace) -> dict:
    from .bench import BenchConfig, bench_data, run_bench
    from .data import load_dataset
    from .models import default_model, load_encoder
    from .selection import check_keep

    trainer_recipe = recipe_of(args) if args.trainer == "full" else None
    config = BenchConfig(methods=[m.strip() for m in args.methods.split(",") if m.strip()],
                         keeps=[check_keep(k) for k in args.keep], seeds=args.seeds, levels=args.levels,
                         step=args.step, batch_size=args.batch_size,
                         dynamics=args.dynamics or ("full" if args.trainer == "full" else "head"),
                         dynamics_epochs=args.dynamics_epochs, trainer=args.trainer, recipe=trainer_recipe)
    columns = dict(text_column=args.text_column, label_column=args.label_column, hf_split=args.hf_split)
    data = load_dataset(args.data, **columns)
    test_data = load_dataset(args.test_data, **columns) if args.test_data else None
    train, test, positions = bench_data(data, test_data, test_fraction=args.test_fraction,
                                        train_per_class=args.train_per_class, test_per_class=args.test_per_class)
    encoder = load_encoder(args.model or default_model(train), weights=args.weights,
                           device=args.device, image_size=args.image_size)
    out = files.check_output_dir(args.output, force=True, inputs=(args.data, args.test_data))  # a bench folder resumes
    with files.output_dir(out, keep=lambda err: not isinstance(err, DlcpruneError) or (out / "results.csv").exists()):
        if positions is not None:  # positions of the training part in --data, for `dlcprune report --data`
            files.save_npy(out / "train_indices.npy", positions)
        rows = run_bench(encoder, train, test, config=config, output=out, progress=not args.quiet)
    return {"command": "bench", "output": str(out), "cells": len(rows)}


def cmd_finetune(args: argparse.Namespace) -> dict:
    import numpy as np

    from .data import load_dataset
    from .models import default_model, load_encoder
    from .scoring.dlc import check_dataset, extract_features
    from .training import DynamicsRecorder, finetune, train_linear_probe

    out = files.check_output_dir(args.output, force=args.force, inputs=(args.data, args.test_data))
    columns = dict(text_column=args.text_column, label_column=args.label_column)
    train, test = load_dataset(args.data, **columns), load_dataset(args.test_data, **columns)
    if test.class_names != train.class_names:
        raise DlcpruneError("--test-data must have the same classes as --data")
    idx = np.arange(len(train))
    if args.indices:
        try:
            idx = np.load(args.indices)
        except (OSError, ValueError) as err:
            raise DlcpruneError(f"cannot read --indices {args.indices}: {err}") from None
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or len(idx) == 0 or idx.min() < 0 or idx.max() >= len(train):
            raise DlcpruneError(f"--indices must be a non-empty 1-d array of positions in 0..{len(train) - 1}")
        from .export import check_fingerprint

        check_fingerprint(train, selection_fingerprint(Path(args.indices)), what="--indices")
    encoder = load_encoder(args.model or default_model(train), weights=args.weights,
                           device=args.device, image_size=args.image_size)
    check_dataset(train, encoder)
    t0 = time.perf_counter()
    if args.record_dynamics and args.trainer != "full":
        raise DlcpruneError("--record-dynamics records a full fine-tuning run; add --trainer full")
    recorder = DynamicsRecorder(train.labels[idx], recipe_of(args, batch_size=args.batch_size).epochs) if args.record_dynamics else None
    if args.trainer == "full":
        r = finetune(encoder, train, test, indices=idx, recipe=recipe_of(args, batch_size=args.batch_size), seed=args.seed, recorder=recorder,
                     progress=not args.quiet)
        metrics = {"accuracy": r.accuracy, "per_class_accuracy": r.per_class_accuracy, "train_loss": r.train_loss,
                   "parameters": r.parameters}
    else:
        sub = train.subset(idx)
        z = extract_features(encoder, sub, batch_size=64, description="train features", progress=not args.quiet)
        zt = extract_features(encoder, test, batch_size=64, description="test features", progress=not args.quiet)
        probe = train_linear_probe(z.numpy(), sub.labels, num_classes=train.num_classes)
        pred = probe.predict(zt.numpy())
        metrics = {"accuracy": float((pred == test.labels).mean()),
                   "per_class_accuracy": [float((pred[test.labels == c] == c).mean()) for c in range(test.num_classes)],
                   "parameters": {"kept": int(len(idx)), "l2": 1e-3}}
    metrics.update(trainer=args.trainer, seconds=time.perf_counter() - t0, model=encoder.name,
                   train=train.source, test=test.source, class_names=train.class_names, versions=files.versions())
    with files.output_dir(out, keep=lambda err: False):
        if recorder is not None:
            recorder.trajectory(seconds=metrics["seconds"], trainer="full fine-tuning",
                                parameters=metrics["parameters"]).save(out / "dynamics.npz")
        files.write_json(out / "metrics.json", metrics)
    print(f"{args.trainer}: test accuracy {100 * metrics['accuracy']:.2f}% on {len(test):,} samples "
          f"(trained on {len(idx):,}) -> {out / 'metrics.json'}")
    return {"command": "finetune", "output": str(out), "trainer": args.trainer, "accuracy": metrics["accuracy"],
            "trained_on": int(len(idx)), "seconds": round(metrics["seconds"], 3)}


def selection_fingerprint(indices_file: Path) -> str | None:
    """The dataset fingerprint recorded by the selection folder an indices file sits in, if any."""
    manifest = indices_file.resolve().parent.parent / "manifest.json"
    if not manifest.is_file():
        return None
    scores = files.read_json(manifest).get("scores") or {}
    return scores.get("dataset")


def cmd_report(args: argparse.Namespace) -> dict:
    from .data import load_dataset
    from .report import build_report

    data = load_dataset(args.data, text_column=args.text_column, label_column=args.label_column) if args.data else None
    page = build_report(args.folder, data=data, output=args.output)
    print(f"report written to {page}")
    return {"command": "report", "output": str(page)}


def cmd_list(args: argparse.Namespace) -> dict:
    from rich.table import Table

    from .data import DATASETS
    from .methods import METHODS
    from .models import MODELS
    from .progress import stdout

    table = Table(title="dlcprune: what the commands accept (--model, --data, --policy / --methods)")
    for column in ("kind", "name", "what it is"):
        table.add_column(column)
    for kind, registry in (("model", MODELS), ("dataset", DATASETS), ("method", METHODS)):
        for entry in registry:
            name = entry.name + ("<name>" if entry.name.endswith(":") else "")
            table.add_row(f"{kind} ({entry.kind})" if entry.kind else kind, name, entry.summary)
    if not args.json:
        stdout.print(table)
    return {"command": "list", "models": MODELS.names(), "datasets": DATASETS.names(), "methods": METHODS.names()}


def cmd_demo(args: argparse.Namespace) -> dict:
    from .demo import run_demo

    accuracy = run_demo(levels=args.levels, step=args.step, image_size=args.image_size, seeds=args.seeds,
             train_per_class=args.train_per_class, test_per_class=args.test_per_class,
             output=args.output, progress=not args.quiet)
    return {"command": "demo", "output": str(args.output),
            "test_accuracy": {m: {f"{k:g}": v for k, v in per.items()} for m, per in accuracy.items()}}


COMMANDS = {"score": cmd_score, "select": cmd_select, "prune": cmd_prune, "bench": cmd_bench, "finetune": cmd_finetune,
            "instruct": cli_llm.cmd_instruct, "lora": cli_llm.cmd_lora, "report": cmd_report,
            "list": cmd_list, "demo": cmd_demo}


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler or `kill`), handled like Ctrl-C: weights restored, checkpoints kept."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done; 2 bad input or a fault the user can fix (one ``error:``
    line: bad files or options, missing hardware, a full disk, permissions); 130 Ctrl-C; 143
    SIGTERM; 1 a bug (one line; ``--debug`` shows the traceback)."""
    import signal

    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    args = None
    try:
        args = build_parser().parse_args(argv)
        from .threads import set_threads

        set_threads(args.threads)  # before torch is imported, so its thread pool starts at this size
        logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                            stream=sys.stderr)
        if args.quiet:
            quiet_third_parties()
        if args.json:  # the summary alone on stdout; what a person reads goes to stderr
            with contextlib.redirect_stdout(sys.stderr):
                summary = COMMANDS[args.command](args)
            print(json.dumps(summary, default=str))
        else:
            COMMANDS[args.command](args)
    except SystemExit as done:  # --help, or a usage error already printed as one line
        return int(done.code or 0)
    except DlcpruneError as err:  # library messages name parameters; here they become flags
        print(f"error: {flag_names(str(err))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as stop:
        what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        print(f"{what}; nothing half-written was left and finished work is kept. Run the same command again to resume.",
              file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    except OSError as err:  # the machine, not the input: a full disk, a permission, a vanished file
        if getattr(args, "debug", False):
            raise
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as err:  # a bug: one line unless --debug
        if getattr(args, "debug", False):
            raise
        print(f"error: internal error ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
              "run the same command with --debug for the traceback, and please report it", file=sys.stderr)
        return EXIT_BUG
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        dist = sys.modules.get("torch.distributed")  # only a run that imported torch can have a process group
        if dist is not None and dist.is_available() and dist.is_initialized():  # launched by torchrun
            dist.destroy_process_group()
    return 0


def quiet_third_parties() -> None:
    """Silence the progress bars and notices of transformers, datasets, huggingface_hub and tqdm."""
    import os

    os.environ.update(TQDM_DISABLE="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                      TRANSFORMERS_VERBOSITY="error", TRANSFORMERS_NO_ADVISORY_WARNINGS="1")
    for module, call in (("transformers.utils.logging", "disable_progress_bar"),
                         ("datasets.utils.logging", "disable_progress_bar")):
        if module in sys.modules:  # already imported: environment variables came too late
            getattr(sys.modules[module], call)()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def os_error_line(err: OSError) -> str:
    """One line for an operating-system error, with what to do about it."""
    import errno

    where = f" ({err.filename})" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return (f"no space left on the device{where}; nothing half-written was kept: free some space and run the "
                "same command again (a scoring run resumes from its finished levels)")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied{where}: make it readable / writable, or choose another path"
    return f"{err.strerror or err}{where}"
