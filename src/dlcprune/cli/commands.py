"""One function per command: it reads the parsed arguments, calls the library, prints what a
person reads and returns the ``--json`` summary. No logic of its own beyond that."""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from .. import files
from ..errors import DlcpruneError
from . import llm
from .parser import AUTO_MAX_LEVELS


def keep_fractions(args: argparse.Namespace, *, optional: bool = False) -> list[float] | None:
    """``--keep`` as given, or ``--prune`` as its complement (prune 0.9 = keep 0.1); None when
    neither is given and that is allowed (``--target-drop`` advises the fraction)."""
    from ..selection import check_keep

    if optional and args.keep is None and args.prune is None:
        return None
    if (args.keep is None) == (args.prune is None):
        advised = " (or, with --policy auto, --target-drop D to have it advised)" if hasattr(args, "target_drop") else ""
        raise DlcpruneError(f"give exactly one of --keep (fractions KEPT) or --prune (fractions removed){advised}")
    if args.keep is not None:
        keeps = [check_keep(k) for k in args.keep]
    else:
        for p in args.prune:
            if not 0.0 <= p < 1.0:
                raise DlcpruneError(f"--prune must be a fraction in [0, 1) (the share REMOVED), got {p}")
        keeps = [check_keep(round(1.0 - p, 10)) for p in args.prune]
    return keeps  # fractions sharing a keep_<fraction>/ folder: refused by check_request (exact repeats: kept once)


def recipe_of(args: argparse.Namespace, *, batch_size: int | None = None):
    """The fine-tuning recipe the options ask for; refused when they are given but nothing fine-tunes."""
    from ..training import recipe

    given = [flag for flag, value in (("--recipe", args.recipe), ("--epochs", args.epochs), ("--lr", args.lr),
                                      ("--head-lr", args.head_lr), ("--batch-size", batch_size)) if value is not None]
    if args.trainer != "full":
        if given:
            raise DlcpruneError(f"{', '.join(given)} set(s) full fine-tuning; add --trainer full (or leave them out)")
        return None
    return recipe(args.recipe or args.default_recipe, epochs=args.epochs, lr=args.lr, head_lr=args.head_lr,
                  batch_size=batch_size)


RECORD_OPTIONS = ("template", "max_length", "mask_scope", "bf16")


def fill_score_defaults(args: argparse.Namespace, dataset) -> bool:
    """Set --levels/--step/--batch-size not given to the defaults of the data's kind; refuse the
    options of instruction records for other data. True for instruction records."""
    from ..data import InstructionSet
    from ..methods.select import needs_features
    from ..scoring.dlc import ENCODER_DEFAULTS, RECORD_DEFAULTS

    records = isinstance(dataset, InstructionSet)
    for name, value in (RECORD_DEFAULTS if records else ENCODER_DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    given = [f"--{name.replace('_', '-')}" for name in RECORD_OPTIONS if getattr(args, name, None) is not None]
    if given and not records:
        raise DlcpruneError(f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to instruction records; "
                            f"{dataset.source} holds none")
    if records:  # before the LM loads and its levels run
        encoder_only = [flag for flag, used in (("--weights", args.weights != "pretrained"),
                        ("--image-size", args.image_size != "pretrained"), ("--compile", args.compile),
                        ("--levels auto", args.levels == "auto")) if used]
        if encoder_only:
            raise DlcpruneError(f"{', '.join(encoder_only)} {'apply' if len(encoder_only) > 1 else 'applies'} to image "
                                "and text encoders, not to a causal LM "
                                "on instruction records")
        if getattr(args, "policy", None) and needs_features(selection_request(args)["method"]):  # prune
            raise DlcpruneError(f"--policy {args.policy} needs features or classes, which instruction records have "
                                "not: use --policy flexrand, easy, hard or random")
    return records


def level_plan(levels: int | str) -> tuple[int, bool]:
    """(K, adaptive) for --levels N or auto."""
    return (AUTO_MAX_LEVELS, True) if levels == "auto" else (levels, False)


def cmd_score(args: argparse.Namespace) -> dict:
    """Also under torchrun: every rank scores a block of the samples, rank 0 writes the folder."""
    from ..data import load_dataset
    from ..models import check_model_for, default_model, load_encoder
    from ..artifacts import PARTIAL, SCORE_FILES, write_scores
    from ..scoring import score_dlc
    from ..scoring.shard import init_from_environment, is_main_process, on_main

    t0 = time.perf_counter()
    init_from_environment(args.device)
    # an interrupted run of this job: its checkpoint, maybe some of its outputs, maybe its (stale) lock
    only_partial = lambda p: PARTIAL in (names := {f.name for f in p.iterdir()}) and names <= {PARTIAL, files.LOCK, *SCORE_FILES}
    out = on_main(lambda: files.check_output_dir(args.output, force=args.force, resumable=only_partial,
                                                       inputs=(args.data, llm.model_folder(args.model))))
    dataset = load_dataset(args.data, text_column=args.text_column, label_column=args.label_column,
                           hf_split=args.hf_split)
    records = fill_score_defaults(args, dataset)
    request = selection_request(args) if getattr(args, "policy", None) else {}
    if request.get("method") in ("auto", "flexrand-auto") and not records:
        from ..data import holdout_split  # prune: a validation split the classes cannot give fails before the scoring

        holdout_split(dataset.labels, fraction=request["val_fraction"])
    levels, adaptive = level_plan(args.levels)
    if levels < 1 or not 0.0 < args.step < 1.0:
        raise DlcpruneError(f"need --levels >= 1 and 0 < --step < 1, got {levels} and {args.step:g}")
    from ..scoring.dlc import MAX_SPARSITY

    if not adaptive and 1 - (1 - args.step) ** (levels - 1) > MAX_SPARSITY:
        raise DlcpruneError(f"--levels {levels} with --step {args.step:g} reach a sparsity of "
                            f"{1 - (1 - args.step) ** (levels - 1):.6f}: past {MAX_SPARSITY:.1%} nearly every weight is "
                            "masked and further levels add nothing; use fewer levels or a smaller step")
    model = args.model or default_model(dataset)
    check_model_for(model, dataset)  # before a slow load
    encoder = load_encoder(model, weights=args.weights, device=args.device, image_size=args.image_size,
                           compile=args.compile, causal=records, template=args.template or "alpaca",
                           max_length=args.max_length, cpu_bf16=bool(args.bf16))
    score = lambda: score_dlc(encoder, dataset, levels=levels, step=args.step, masking=args.masking,
                              seed=args.seed, adaptive=adaptive, workers=args.workers, batch_size=args.batch_size,
                              mask_scope=args.mask_scope or "global", checkpoint_dir=out / PARTIAL,
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
    processes = result.timings.get("processes", 1)
    computed = len(result.parameters.get("levels_computed", range(levels)))
    print(f"scored {len(dataset):,} samples with DLC ({computed} of {levels} levels"
          f"{f', {processes} processes' if processes > 1 else ''}) -> {out / 'scores.csv'}")
    return {"command": "score", "output": str(out), "samples": len(dataset), "levels_computed": computed,
            "model": encoder.name, "seconds": round(time.perf_counter() - t0, 3)}


def selection_request(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``dlcprune.select`` that the select options ask for (checked before
    any slow work). ``--split auto`` is the older spelling of ``--policy flexrand-auto``."""
    from ..methods.select import check_request

    method, split = args.policy, args.split
    if split == "auto":
        if method != "flexrand":
            raise DlcpruneError("--split auto chooses FlexRand's gamma; use it with --policy flexrand (or --policy auto)")
        method, split = "flexrand-auto", None
    keep = keep_fractions(args, optional=args.target_drop is not None)
    if args.val_fraction is not None and method not in ("auto", "flexrand-auto"):
        raise DlcpruneError(f"--val-fraction applies to the auto methods (auto, flexrand-auto), not {method!r}")
    if args.link and args.export != "imagefolder":
        raise DlcpruneError("--link applies to --export imagefolder (symlinks instead of copies); add it or drop --link")
    if getattr(args, "export_data", None) is not None and not args.export:
        raise DlcpruneError("--data applies with --export (the scored data to copy the kept samples from); "
                            "add --export or drop --data")
    request = dict(method=method, keep=keep, split=split, candidates=args.candidates, target_drop=args.target_drop,
                   val_fraction=0.2 if args.val_fraction is None else args.val_fraction, dynamics=args.dynamics)
    check_request(**request)  # the same checks select() makes, now
    return request


def cmd_select(args: argparse.Namespace, *, scores_dir: Path | None = None) -> dict:
    from ..artifacts import read_scores, write_selection
    from ..methods.select import select

    request = selection_request(args)
    scores = read_scores(scores_dir or args.scores)
    recorded = (scores.manifest.get("data") or {}).get("data")  # the scored data, which an export reads
    out = files.check_output_dir(scores_dir / "selection" if scores_dir else args.output, force=args.force,
                                 inputs=(recorded,) if scores_dir else (args.scores, args.export_data, recorded))
    selection = select(scores, seed=args.seed, **request)
    with files.output_dir(out, keep=lambda err: False):
        manifest = write_selection(out, selection, scores=scores)
        if args.export:
            from ..export import export_selection

            written = export_selection(out, selection, scores, format=args.export, link=args.link,
                                       data=getattr(args, "export_data", None))
    summary = ", ".join(f"{v['keep']:g}: {v['kept']}" for v in manifest["fractions"].values())
    print(f"{selection.method} selection of {manifest['samples']:,} samples " +
          (f"(kept per fraction {summary}) -> {out}" if summary else f"-> {out}: no keep fraction qualified, none written"))
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
    from ..scoring.shard import is_main_process

    selection_request(args)  # fail on bad selection arguments before the slow scoring
    if args.export:
        from ..export import check_export

        check_export(args.data, args.export)  # and on an export the data cannot give
    out = Path(args.output)
    before = set(out.iterdir()) if out.is_dir() else None
    scored = cmd_score(args)
    try:
        chosen = cmd_select(args, scores_dir=Path(scored["output"])) if is_main_process() else None
    except DlcpruneError:  # a selection the data cannot give (e.g. a keep no class reaches): leave nothing behind
        files.remove_new(out, before)
        raise
    scored["scoring_seconds"] = scored.pop("seconds")  # "seconds" is the whole command's
    return {**scored, "command": "prune", "selection": chosen}


def cmd_bench(args: argparse.Namespace) -> dict:
    from ..bench import BenchConfig, bench_data, is_bench_folder, run_bench
    from ..data import load_dataset
    from ..models import default_model, load_encoder
    from ..selection import check_keep

    trainer_recipe = recipe_of(args)
    out = files.check_output_dir(args.output, force=args.force, resumable=is_bench_folder,
                                 inputs=(args.data, args.test_data, llm.model_folder(args.model)))
    dynamics = args.dynamics or ("full" if args.trainer == "full" else "head")
    if args.dynamics_epochs is not None and args.trainer == "full" and dynamics == "full":
        raise DlcpruneError("--dynamics-epochs: with --trainer full the dynamics come from the full-pool run, "
                            "which trains for --epochs")
    columns = dict(text_column=args.text_column, label_column=args.label_column, hf_split=args.hf_split)
    data = load_dataset(args.data, **columns)
    if fill_score_defaults(args, data):
        raise DlcpruneError(f"{data.source} holds instruction records: bench trains classifiers on classes, which "
                            "they have none of; compare selections of them with `dlcprune instruct` and `dlcprune lora`")
    config = BenchConfig(methods=[m.strip() for m in args.methods.split(",") if m.strip()],
                         keeps=[check_keep(k) for k in args.keep], seeds=args.seeds, levels=args.levels,
                         step=args.step, batch_size=args.batch_size,
                         dynamics=dynamics, dynamics_epochs=args.dynamics_epochs or 20, trainer=args.trainer,
                         recipe=trainer_recipe)
    # --hf-split reads the same split of a --test-data DatasetDict folder; other test data have no splits
    test_columns = columns if args.test_data and (Path(args.test_data) / "dataset_dict.json").is_file() \
        else dict(columns, hf_split=None)
    test_data = load_dataset(args.test_data, **test_columns) if args.test_data else None
    train, test, positions = bench_data(data, test_data, test_fraction=args.test_fraction,
                                        train_per_class=args.train_per_class, test_per_class=args.test_per_class)
    encoder = load_encoder(args.model or default_model(train), weights=args.weights,
                           device=args.device, image_size=args.image_size, compile=args.compile)
    with files.output_dir(out, keep=lambda err: not isinstance(err, DlcpruneError) or (out / "results.csv").exists()):
        if positions is not None:  # positions of the training part in --data, for `dlcprune report --data`
            files.save_npy(out / "train_indices.npy", positions)
        rows = run_bench(encoder, train, test, config=config, output=out, progress=not args.quiet)
    return {"command": "bench", "output": str(out), "cells": len(rows)}


def cmd_finetune(args: argparse.Namespace) -> dict:
    from ..data import InstructionSet, load_dataset
    from ..export import check_fingerprint
    from ..models import default_model, load_encoder
    from ..training.evaluate import read_indices, train_and_test

    out = files.check_output_dir(args.output, force=args.force,
                                 inputs=(args.data, args.test_data, llm.model_folder(args.model)))
    columns = dict(text_column=args.text_column, label_column=args.label_column)
    train, test = load_dataset(args.data, **columns), load_dataset(args.test_data, **columns)
    if isinstance(train, InstructionSet):
        raise DlcpruneError(f"{train.source} holds instruction records: fine-tune a causal LM on them with "
                            "`dlcprune lora`")
    idx = None
    if args.indices:
        idx = read_indices(args.indices, size=len(train))
        check_fingerprint(train, selection_fingerprint(Path(args.indices)), what="--indices")
    encoder = load_encoder(args.model or default_model(train), weights=args.weights,
                           device=args.device, image_size=args.image_size)
    metrics, dynamics = train_and_test(encoder, train, test, indices=idx, trainer=args.trainer,
                                       recipe=recipe_of(args, batch_size=args.batch_size), seed=args.seed,
                                       record_dynamics=args.record_dynamics, progress=not args.quiet)
    metrics.update(model=encoder.name, train=train.source, test=test.source, class_names=train.class_names,
                   indices=str(Path(args.indices).resolve()) if args.indices else None,
                   preprocessing=encoder.preprocessing(), versions=files.versions())
    with files.output_dir(out, keep=lambda err: False, replaces=("dynamics.npz", "metrics.json")):
        if dynamics is not None:
            dynamics.save(out / "dynamics.npz")
        files.write_json(out / "metrics.json", metrics)
    kept = metrics["parameters"]["kept"]
    print(f"{args.trainer}: test accuracy {100 * metrics['accuracy']:.2f}% on {len(test):,} samples "
          f"(trained on {kept:,}) -> {out / 'metrics.json'}")
    return {"command": "finetune", "output": str(out), "trainer": args.trainer, "accuracy": metrics["accuracy"],
            "trained_on": kept, "seconds": round(metrics["seconds"], 3)}


def selection_fingerprint(indices_file: Path) -> str | None:
    """The dataset fingerprint recorded by the selection folder an indices file sits in, if any
    (OUT/keep_<fraction>/keep_indices.npy beside OUT/manifest.json; another file there is not ours)."""
    from ..artifacts import is_selection

    folder = indices_file.resolve().parent.parent
    if not indices_file.resolve().parent.name.startswith("keep_") or not is_selection(folder):
        return None
    manifest = files.read_json(folder / "manifest.json")
    scores = manifest.get("scores") if isinstance(manifest, dict) else None
    return scores.get("dataset") if isinstance(scores, dict) else None


def cmd_report(args: argparse.Namespace) -> dict:
    from ..data import load_dataset
    from ..report import build_report

    data = load_dataset(args.data, text_column=args.text_column, label_column=args.label_column) if args.data else None
    page = build_report(args.folder, data=data, output=args.output)
    print(f"report written to {page}")
    return {"command": "report", "output": str(page)}


def cmd_list(args: argparse.Namespace) -> dict:
    from rich.table import Table

    from ..data import DATASETS
    from ..methods import METHODS
    from ..methods.instructions import BASELINES
    from ..models import MODELS
    from ..progress import stdout

    table = Table(title="dlcprune: what the commands accept (--model, --data, --policy / --methods)")
    for column in ("kind", "name", "what it is"):
        table.add_column(column, overflow="fold")  # a long package name breaks across lines, never cut to "…"
    for kind, registry in (("model", MODELS), ("dataset", DATASETS), ("method", METHODS)):
        for entry in registry:
            name = entry.name + ("<name>" if entry.name.endswith(":") else "")
            table.add_row(f"{kind} ({entry.kind})" if entry.kind else kind, name, entry.summary)
    rule = {"hard": "keeps the highest", "easy": "keeps the lowest", "kcenter": "keeps k-center greedy's picks"}
    for name, (measure, method) in BASELINES.items():  # measures of the unmasked LM, no DLC scores needed
        table.add_row("method (instruction records)", name, f"{measure}; {rule.get(method, method)} (instruct --policy {name})")
    if not args.json:
        stdout.print(table)
    return {"command": "list", "models": MODELS.names(), "datasets": DATASETS.names(), "methods": METHODS.names(),
            "instruction_methods": list(BASELINES)}


def cmd_demo(args: argparse.Namespace) -> dict:
    from ..demo import run_demo

    accuracy = run_demo(levels=args.levels, step=args.step, image_size=args.image_size, seeds=args.seeds,
             train_per_class=args.train_per_class, test_per_class=args.test_per_class,
             output=args.output, progress=not args.quiet)
    return {"command": "demo", "output": str(args.output),
            "test_accuracy": {m: {f"{k:g}": v for k, v in per.items()} for m, per in accuracy.items()}}


COMMANDS = {"score": cmd_score, "select": cmd_select, "prune": cmd_prune, "bench": cmd_bench, "finetune": cmd_finetune,
            "instruct": llm.cmd_instruct, "lora": llm.cmd_lora, "report": cmd_report,
            "list": cmd_list, "demo": cmd_demo}
