"""``dlcprune instruct`` (DLC on instruction records, kept records out as JSONL) and
``dlcprune lora`` (LoRA fine-tuning on them, the adapter saved, evaluated offline)."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .. import files
from ..options import decimal_number, device, natural_int, number, positive_int, whole_number
from ..errors import DlcpruneError


def add_parsers(sub, *, fractions) -> None:
    p = sub.add_parser("instruct", help="DLC on instruction data with a causal LM; writes the kept records as JSONL")
    p.add_argument("--data", required=True, help="Alpaca, ShareGPT or chat-messages records: .jsonl, .json, or a save_to_disk folder")
    _model_args(p)
    p.add_argument("--levels", type=_levels, default=None,
                   help="masking levels K, level 0 unmasked, as for `dlcprune score` (sparsity 1 - (1 - step)^k); "
                        "default: --sparsities 0,0.1,0.2,0.3,0.4 (a list here is read as --sparsities, the older spelling)")
    p.add_argument("--step", type=number, default=None, help="with --levels: fraction of the remaining weights masked per level (default 0.1)")
    p.add_argument("--sparsities", type=fractions, default=None,
                   help="the sparsity of each level, strictly increasing (default 0,0.1,0.2,0.3,0.4)")
    p.add_argument("--mask-scope", choices=["global", "layer"], default=None, help="magnitude thresholds over all Linear weights (global, default) or per layer")
    p.add_argument("--batch-size", type=positive_int, default=8, help="records per forward pass (default 8)")
    p.add_argument("--bf16", action="store_true",
                   help="the LM's passes in bf16 on the CPU too (1.6x faster with SmolLM2 where the CPU has AVX-512 BF16, "
                        "slower where it has not; losses within ~0.02 nats of float32)")
    p.add_argument("--policy", choices=["random", "easy", "hard", "flexrand", "longest", "perplexity", "ifd", "embed-kcenter"],
                   default="flexrand",
                   help="DLC scores with random, easy, hard or flexrand (default); or a baseline without masking: "
                        "longest (response tokens), perplexity (lowest kept), ifd (instruction-following difficulty, "
                        "highest kept), embed-kcenter (k-center on mean-pooled hidden states)")
    p.add_argument("--split", type=number, default=None, help="FlexRand's gamma (default 0.5)")
    p.add_argument("--keep", type=fractions, default=[0.5], help="fractions of records KEPT, comma-separated (default 0.5)")
    _run_args(p)

    p = sub.add_parser("lora", help="LoRA fine-tuning (PEFT) on instruction records; saves the adapter, "
                                    "evaluates on held-out records")
    p.add_argument("--data", required=True,
                   help="the records to train on, e.g. OUT/selection/keep_0.5/kept.jsonl of `dlcprune instruct`")
    _model_args(p)
    p.add_argument("--preset", choices=["cpu", "paper"], default="cpu",
                   help="epochs/lr/batch size: cpu (1, 1e-3, 8) or paper (3, 2e-4, 128); the options below override")
    p.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the preset's)")
    p.add_argument("--lr", type=number, default=None, help="learning rate (default: the preset's)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="records per optimiser step")
    p.add_argument("--micro-batch-size", type=positive_int, default=8,
                   help="records per forward pass; gradients are accumulated up to --batch-size (default 8)")
    p.add_argument("--heldout", default=None, help="held-out records: response NLL and perplexity in metrics.json")
    p.add_argument("--lm-eval", default=None, metavar="TASKS",
                   help="'local' (a multiple-choice task over --heldout, whose responses must be a small label "
                        "set) or lm-eval task names, comma-separated (those need their data or network)")
    _run_args(p)


def _levels(text: str) -> int | list[float]:
    """A whole number of levels, or (the older spelling) a comma-separated list of sparsities."""
    if whole_number(text) is not None:
        return whole_number(text)
    values = [decimal_number(v) for v in text.split(",") if v.strip()]
    if None in values:
        raise argparse.ArgumentTypeError(f"expected a number of levels or sparsities like 0,0.2, got {text!r}")
    return values


def sparsities(args: argparse.Namespace) -> list[float]:
    """The sparsity of every level: --sparsities, --levels K [--step S] (as `dlcprune score`), or the default."""
    from ..scoring.causal import DEFAULT_SPARSITIES, check_sparsities, level_sparsities

    if args.sparsities is not None and args.levels is not None:
        raise DlcpruneError("give --sparsities or --levels, not both")
    listed = args.levels if isinstance(args.levels, list) else args.sparsities
    if listed is not None:
        if args.step is not None:
            raise DlcpruneError("--step goes with --levels K, not with a list of sparsities")
        return check_sparsities(listed)  # before the model loads
    if args.levels is None:
        if args.step is not None:
            raise DlcpruneError("--step needs --levels K")
        return list(DEFAULT_SPARSITIES)
    return level_sparsities(args.levels, 0.1 if args.step is None else args.step)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2", help="smollm2 (offline default), hf:<folder or hub name>, or a folder")
    p.add_argument("--template", choices=["alpaca", "chat"], default="alpaca", help="prompt format: alpaca (default) or the tokenizer's chat template")
    p.add_argument("--max-length", type=positive_int, default=None,
                   help="tokens per record, prompt + response (default: 512, or the model's context if shorter)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hf-split", default=None,
                   help="a Hugging Face DatasetDict folder as --data: the split to read (default train)")
    p.add_argument("--seed", type=natural_int, default=0, help="seed of every random step (default 0)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:N or mps (default: cuda when present)")
    p.add_argument("--output", required=True, help="the folder to write (created; see the README for its files)")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder (never into or over an input)")


def model_folder(spec: str | None):
    """:func:`dlcprune.models.model_folder`, imported when a command runs (torch loads after --threads is set)."""
    from ..models import model_folder as folder

    return folder(spec)


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")  # of PEFT's save_pretrained, what `lora` keeps


def cmd_instruct(args: argparse.Namespace) -> dict:
    """Score instruction records (no classes: selection is global) and write the kept ones: the scores
    folder in OUT, the selection in OUT/selection (as `dlcprune prune`), the kept records of each keep
    fraction byte-identical in OUT/selection/keep_<fraction>/kept.jsonl."""
    from ..artifacts import is_selection, keep_folder_name, read_scores, write_scores, write_selection
    from ..data.instructions import load_instructions
    from ..methods.instructions import BASELINES, select_instructions
    from ..models.causal import load_causal_lm
    from ..methods.select import check_request

    baseline = args.policy in BASELINES
    if baseline and (args.levels, args.sparsities, args.step, args.mask_scope) != (None, None, None, None):
        raise DlcpruneError(f"--levels/--sparsities/--step/--mask-scope set DLC's masking; --policy {args.policy} "
                            "masks nothing")
    if args.bf16 and args.policy in ("longest", "embed-kcenter"):
        raise DlcpruneError(f"--bf16 speeds up response losses; --policy {args.policy} computes none")
    if baseline and args.split is not None:
        raise DlcpruneError(f"--split is FlexRand's gamma; --policy {args.policy} takes none")
    levels = sparsities(args)
    check_request(method="random" if baseline else args.policy, keep=args.keep, split=args.split)  # before slow work
    out = files.check_output_dir(args.output, force=args.force, inputs=(args.data, model_folder(args.model)))
    data = load_instructions(args.data, split=args.hf_split)
    lm = load_causal_lm(args.model, device=args.device, cpu_bf16=args.bf16)
    result, selection = select_instructions(
        lm, data, policy=args.policy, keep=args.keep, seed=args.seed, split=args.split, scope=args.mask_scope or "global",
        template=args.template, max_length=args.max_length, batch_size=args.batch_size, progress=not args.quiet,
        sparsities=levels)
    with files.output_dir(out, keep=lambda err: False):
        if is_selection(out / "selection"):  # --force over an earlier run's
            shutil.rmtree(out / "selection")
        spec = {"data": str(Path(args.data).resolve()), **({"hf_split": args.hf_split} if args.hf_split else {})}
        write_scores(out, result, dataset=data, encoder=lm, total_s=result.timings["total_s"],
                     data_spec=spec, method="dlc" if not baseline else args.policy)
        scored = read_scores(out) if (out / "scores.csv").is_file() else None  # embed-kcenter writes no scores
        write_selection(out / "selection", selection, scores=scored)  # the manifest names its scores folder
        for keep, kept in selection.kept.items():
            data.write_jsonl(out / "selection" / keep_folder_name(keep) / "kept.jsonl", kept)
    for keep, kept in selection.kept.items():
        print(f"kept {len(kept):,} of {len(data):,} records ({args.policy}, keep {keep:g}) -> "
              f"{out / 'selection' / keep_folder_name(keep) / 'kept.jsonl'}")
    return {"command": "instruct", "output": str(out), "records": len(data),
            "kept": {f"{k:g}": int(len(v)) for k, v in selection.kept.items()}}


def cmd_lora(args: argparse.Namespace) -> dict:
    """Fine-tune LoRA adapters on the records; write the PEFT adapter and metrics.json."""
    from ..data.instructions import load_instructions
    from ..models.causal import load_causal_lm
    from ..training.lm_eval import check_tasks, lm_eval_scores, write_choice_task
    from ..training.lora import PRESETS, check_lr, finetune_lora, heldout_metrics

    settings = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in PRESETS[args.preset].items()}
    tasks = [t.strip() for t in (args.lm_eval or "").split(",") if t.strip()]
    if args.lm_eval is not None and not tasks:
        raise DlcpruneError(f"--lm-eval {args.lm_eval!r} names no task: give local or lm-eval task names")
    if "local" in tasks and args.heldout is None:
        raise DlcpruneError("--lm-eval local builds its task from the held-out records: add --heldout FILE")
    check_lr(settings["lr"])  # before the slow loads
    out = files.check_output_dir(args.output, force=args.force,
                                 inputs=(args.data, args.heldout, model_folder(args.model)))
    data = load_instructions(args.data, split=args.hf_split)
    heldout = load_instructions(args.heldout) if args.heldout else None
    lm = load_causal_lm(args.model, device=args.device)
    fmt = dict(template=args.template, max_length=args.max_length)
    with tempfile.TemporaryDirectory() as task_dir:
        # the local task is written first: a held-out set it cannot be built from fails before training
        names = [write_choice_task(heldout, task_dir, template=args.template, tokenizer=lm.tokenizer)
                 if t == "local" else t for t in tasks]
        if names:
            check_tasks(task_dir, names)
        r = finetune_lora(lm, data, micro_batch_size=args.micro_batch_size, seed=args.seed, progress=not args.quiet,
                          **settings, **fmt)
        metrics = {"train_loss": r.train_loss, "lora_s": r.seconds, "parameters": {**r.parameters, **fmt},
                   "model": lm.name, "data": {"source": data.source, "records": len(data)}}
        with files.output_dir(out, keep=lambda err: False, replaces=(*ADAPTER_FILES, "metrics.json")):
            with tempfile.TemporaryDirectory(dir=out) as saved:  # PEFT also writes a model card: only the adapter moves
                r.model.module.save_pretrained(saved)
                for name in ADAPTER_FILES:
                    os.replace(Path(saved) / name, out / name)
            if heldout is not None:
                metrics["heldout"] = {"source": heldout.source, **heldout_metrics(r.model, heldout, **fmt)}
            if tasks:
                metrics["lm_eval"] = {t: lm_eval_scores(r.model, task_dir, name, progress=not args.quiet)
                                     for t, name in zip(tasks, names)}
            files.write_json(out / "metrics.json", {**metrics, "versions": files.versions(), "command": sys.argv,
                                                 "created": files.now_iso()})
    summary = f"trained on {len(data):,} records in {r.seconds:.0f} s"
    if heldout is not None:
        summary += f"; held-out perplexity {metrics['heldout']['perplexity']:.3f}"
    for t, m in metrics.get("lm_eval", {}).items():
        summary += f"; lm-eval {t} acc {m.get('acc', float('nan')):.4f}"
    print(f"{summary} -> {out}")
    return {"command": "lora", "output": str(out), "seconds": round(r.seconds, 3),
            **{k: metrics[k] for k in ("heldout", "lm_eval") if k in metrics}}
