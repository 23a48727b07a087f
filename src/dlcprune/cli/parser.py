"""The command line's arguments: every command's parser, checked as it is parsed (argparse types),
so a bad value ends in one line before any work starts."""
from __future__ import annotations

import argparse

from ..options import (EXPORT_FORMATS, decimal_number, device, image_size, natural_int, number, positive_int,
                       thread_count, whole_number)
from . import llm

EXIT_BAD_INPUT = 2
IMAGE_SIZE_HELP = ("pretrained (default): the model's own input size, resize, centre crop and interpolation (timm's "
                   "data config); N: squash every image to NxN; keep: the files' sizes (they must all agree)")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line too."""

    def error(self, message: str) -> None:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see `{self.prog} --help`)\n")

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        """An unknown option points to the help of the command it was given to."""
        known, extras = self.parse_known_args(args, namespace)
        if extras:
            prog = f"{self.prog} {known.command}" if getattr(known, "command", None) else self.prog
            self.exit(EXIT_BAD_INPUT, f"error: unrecognized arguments: {' '.join(extras)} (see `{prog} --help`)\n")
        return known


def fractions(text: str) -> list[float]:
    """Comma-separated fractions, each once (an empty or repeated entry is most likely a typo)."""
    values = [decimal_number(v) for v in text.split(",")]
    if None in values:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions like 0.1,0.5, got {text!r}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{', '.join(f'{v:g}' for v in repeated)} given more than once in {text!r}")
    return values


def add_score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="a name of `dlcprune list`, timm:<name> or hf:<name> (default: efficientnet_lite0 for images, "
                        "minilm for texts, smollm2 for instruction records)")
    p.add_argument("--weights", default="pretrained", help="pretrained (default), random, or a weights file")
    p.add_argument("--data", required=True,
                   help="image folder (one sub-folder per class), .npz, .csv/.jsonl of texts, .jsonl/.json of instruction "
                        "records (Alpaca/ShareGPT/messages), HF dataset folder, or a built-in")
    p.add_argument("--text-column", default="text", help="text datasets: the column holding the text")
    p.add_argument("--label-column", default="label", help="text datasets: the column holding the label")
    p.add_argument("--hf-split", default=None,
                   help="Hugging Face DatasetDict folders: the split to read (default train)")
    p.add_argument("--image-size", type=image_size, default="pretrained", help=IMAGE_SIZE_HELP)
    p.add_argument("--levels", type=levels_arg, default=None,
                   help="masking levels K, level 0 unmasked (default 50; instruction records 5, each level a pass of "
                        "the LM); or auto (encoders): of at most 50, only those the ranking needs, none past the collapse")
    p.add_argument("--step", type=number, default=None,
                   help="fraction of the remaining weights masked per level (default 0.02; instruction records 0.1)")
    p.add_argument("--masking", choices=["magnitude", "random"], default="magnitude", help="how weights are masked: magnitude (default, the paper's) or random")
    p.add_argument("--seed", type=natural_int, default=0, help="seed of every random step (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="samples per forward pass (default 64; instruction records 8)")
    p.add_argument("--workers", "--num-workers", dest="workers", type=natural_int, default=0,
                   help="DataLoader processes decoding the next batches while the encoder runs (default 0)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    p.add_argument("--template", choices=["alpaca", "chat"], default=None,
                   help="instruction records: prompt format, alpaca (default) or the tokenizer's chat template")
    p.add_argument("--max-length", type=positive_int, default=None,
                   help="instruction records: tokens per record, prompt + response (default: 512, or the model's context)")
    p.add_argument("--mask-scope", choices=["global", "layer"], default=None,
                   help="instruction records: magnitude thresholds over all Linear weights (global, default) or per layer")
    p.add_argument("--bf16", action="store_const", const=True, default=None,
                   help="instruction records: the LM's passes in bf16 on the CPU too (1.6x faster with SmolLM2 where the "
                        "CPU has AVX-512 BF16, slower where it has not; losses within ~0.02 nats of float32)")
    p.add_argument("--compile", action="store_true",
                   help="image encoders: run the encoder through torch.compile (faster on long runs after a compile "
                        "of a minute or two; scores differ from the default in the last bits)")


AUTO_MAX_LEVELS = 50


def add_recipe_args(p: argparse.ArgumentParser, *, default: str, batch_size: bool = True) -> None:
    """Full fine-tuning: a named recipe (dlcprune.training.RECIPES) and the fields one may override."""
    p.set_defaults(default_recipe=default)
    p.add_argument("--recipe", choices=["cpu", "paper"], default=None,  # the keys of dlcprune.training.RECIPES
                   help=f"full fine-tuning recipe (default {default}): paper = SGD lr 1e-3 /10 at 50%%/75%%, 50 epochs, "
                        "batch 128, BatchNorm trained, crop+flip; cpu = 8 epochs, AdamW lr 1e-4 encoder / 1e-3 head, "
                        "batch 32, warm-up + cosine, BatchNorm frozen, head started from the linear probe, mild crops, no flip")
    p.add_argument("--epochs", type=positive_int, default=None, help="fine-tuning epochs (default: the recipe's)")
    p.add_argument("--lr", type=number, default=None, help="encoder learning rate (default: the recipe's)")
    p.add_argument("--head-lr", type=number, default=None, help="head learning rate (default: the recipe's)")
    if batch_size:
        p.add_argument("--batch-size", type=positive_int, default=None, help="samples per training step (default: the recipe's)")


def levels_arg(text: str) -> int | str:
    if text == "auto":
        return text
    if whole_number(text) is None:
        raise argparse.ArgumentTypeError(f"expected a whole number of levels or 'auto', got {text!r}")
    return whole_number(text)


def add_select_args(p: argparse.ArgumentParser, *, seed: bool) -> None:
    p.add_argument("--policy", "--method", dest="policy", default="auto",
                   help="auto (default, recommended): per keep fraction, the candidate that beats random on a "
                        "validation split, else random, with a verdict; or any method of `dlcprune list` "
                        "(random, easy, hard, flexrand, flexrand-auto, herding, el2n, ...)")
    p.add_argument("--candidates", type=names_arg, default=None,
                   help="with auto: the methods it chooses among (default easy,flexrand,hard,herding,flexrand-herding,margin; "
                        "random is always the reference)")
    p.add_argument("--target-drop", type=number, default=None,
                   help="with auto: advise the smallest keep fraction whose validation accuracy stays within this many "
                        "points of the full pool (e.g. 1.0); without --keep, the grid 0.1..0.9 is tried and the advised "
                        "fraction written")
    p.add_argument("--dynamics", default=None,
                   help="training dynamics for forgetting/grand/el2n/aum/cle/clh/ccs-aum: 'head' (SGD on a linear "
                        "head over the saved features) or the dynamics.npz of `dlcprune finetune --record-dynamics`")
    p.add_argument("--split", type=split_arg, default=None,
                   help="FlexRand's gamma in (0, 1) (default 0.5); 'auto' is the older spelling of --policy flexrand-auto")
    p.add_argument("--val-fraction", type=number, default=None,
                   help="auto: share of each class held out to choose and judge (default 0.2); the selection is then "
                        "drawn from the whole set")
    p.add_argument("--keep", type=fractions, default=None, help="fractions KEPT, e.g. 0.1,0.2,0.3")
    p.add_argument("--prune", type=fractions, default=None, help="fractions REMOVED (keep = 1 - prune)")
    p.add_argument("--export", choices=EXPORT_FORMATS, default=None,
                   help="also write the kept samples into OUT/keep_<fraction>/: imagefolder (class sub-folders), "
                        "filelist (kept.txt), csv / jsonl (the original rows, byte-identical), json (the kept "
                        "elements of a JSON array), hf (save_to_disk)")
    p.add_argument("--link", action="store_true", help="with --export imagefolder: symlinks instead of copies")
    if seed:
        p.add_argument("--seed", type=natural_int, default=0, help="seed of every random step (default 0)")


def split_arg(text: str) -> float | str:
    if text == "auto":
        return text
    if decimal_number(text) is None:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1) or 'auto', got {text!r}")
    return decimal_number(text)


def names_arg(text: str) -> list[str]:
    """Comma-separated method names, each once (like --keep's fractions)."""
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated method names like easy,flexrand,herding, got {text!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{', '.join(repeated)} given more than once in {text!r}")
    return names


def build_parser() -> Parser:
    parser = Parser(prog="dlcprune", description="Training-free downstream dataset pruning (DLC + FlexRand).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    common.add_argument("--json", action="store_true",
                        help="print one JSON summary (paths, counts, timings, verdicts) on stdout at the end")
    common.add_argument("--quiet", action="store_true", help="no progress bars (also not those of transformers / datasets)")
    common.add_argument("--threads", type=thread_count, default=None,
                        help="CPU threads for torch and BLAS (default: the physical cores, the same on every run; on a "
                             "machine busy at the start their waiting threads sleep instead of spinning); "
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
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder (never into or over an input)")

    p = sub.add_parser("prune", help="score, then select (selection in OUTPUT/selection)")
    add_score_args(p)
    add_select_args(p, seed=False)
    p.add_argument("--output", required=True, help="the folder to write (created; see the README for its files)")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder (never into or over an input)")

    _bench_args(sub.add_parser("bench", help="methods x keep fractions x seeds, linear probe or full fine-tuning (resumable)"))
    _finetune_args(sub.add_parser("finetune", help="train on kept indices (linear probe or full fine-tuning), evaluate on a test set"))
    _report_args(sub.add_parser("report", help="an HTML page about a scores or bench folder"))
    llm.add_parsers(sub, fractions=fractions)
    sub.add_parser("list", help="registered models, datasets, scorers and policies")
    _demo_args(sub.add_parser("demo", help="offline end-to-end run on Animal-MNIST with EfficientNet-Lite0"))
    return parser


def _bench_args(p: argparse.ArgumentParser) -> None:
    add_score_args(p)
    p.add_argument("--test-data", default=None, help="test set (image folder, .npz or built-in)")
    p.add_argument("--test-fraction", type=number, default=0.2,
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
    p.add_argument("--dynamics-epochs", type=positive_int, default=None,
                   help="epochs of the training run that records dynamics (default 20; with --trainer full the "
                        "full-pool run's, i.e. the recipe's)")
    p.add_argument("--keep", type=fractions, default=[round(0.1 * i, 1) for i in range(1, 10)], help="fractions KEPT (default 0.1,...,0.9)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per cell (default 3)")
    p.add_argument("--output", required=True, help="the folder to write (created; see the README for its files)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that holds no earlier bench (a bench folder resumes without it)")

    


def _finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="the encoder that was scored with (default: efficientnet_lite0 for images, minilm for texts)")
    p.add_argument("--weights", default="pretrained", help="pretrained (default), random, or a weights file")
    p.add_argument("--data", required=True, help="the training set that was scored (indices refer to its order)")
    p.add_argument("--test-data", required=True, help="the test set: same classes as --data")
    p.add_argument("--indices", default=None, help="keep_indices.npy from `dlcprune select` (default: all samples): distinct positions, "
                        "read in sorted order (dynamics.npz columns follow it)")
    p.add_argument("--trainer", choices=["probe", "full"], default="probe", help="probe: logistic regression on frozen features (default); full: fine-tune the whole encoder")
    p.add_argument("--record-dynamics", action="store_true",
                   help="with --trainer full: also write dynamics.npz (per-epoch records of every trained sample) "
                        "for `dlcprune select --policy el2n --dynamics FILE`")
    p.add_argument("--image-size", type=image_size, default="pretrained", help=IMAGE_SIZE_HELP)
    p.add_argument("--text-column", default="text", help="text datasets: the column holding the text (default text)")
    p.add_argument("--label-column", default="label", help="text datasets: the column holding the label (default label)")
    add_recipe_args(p, default="paper")
    p.add_argument("--seed", type=natural_int, default=0, help="seed of every random step (default 0)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:N or mps (default: cuda when present)")
    p.add_argument("--output", required=True, help="folder for metrics.json")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder (never into or over an input)")

    


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="the --output folder of `dlcprune score`, `select` or `bench`")
    p.add_argument("--output", default=None,
                   help="folder for report.html and its PNGs (default: FOLDER-report beside FOLDER; never inside it)")
    p.add_argument("--data", default=None, help="the scored dataset, to show the easiest and hardest examples")
    p.add_argument("--text-column", default="text", help="text datasets: the column holding the text (default text)")
    p.add_argument("--label-column", default="label", help="text datasets: the column holding the label (default label)")

    


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--levels", type=positive_int, default=20, help="masking levels K (default 20)")
    p.add_argument("--step", type=number, default=0.05, help="fraction of the remaining weights masked per level (default 0.05)")
    p.add_argument("--image-size", type=image_size, default=64,
                   help="image size in pixels (default 64: the demo runs in minutes on a CPU; pretrained: 224)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per cell (default 3)")
    p.add_argument("--train-per-class", type=positive_int, default=300, help="training images per class (default 300)")
    p.add_argument("--test-per-class", type=positive_int, default=200, help="test images per class (default 200)")
    p.add_argument("--output", default="dlcprune-demo",
                   help="bench folder for scores, results and verdicts (default dlcprune-demo; a rerun resumes it)")
