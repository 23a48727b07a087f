"""DLC: Distorting-based Learning Complexity (Jiang et al., ICLR 2025), for image and text encoders
(causal LMs on instruction records: :mod:`dlcprune.scoring.causal`, reached through ``score_dlc`` too).

1. z_i = h(x_i) with the unmasked encoder (the deterministic evaluation transform, no augmentation);
2. class prototypes mu_c = mean of z_i over class c, computed ONCE and kept fixed;
3. for k = 0..K-1: mask the encoder's weights to sparsity s_k = 1 - (1 - step)^k (nested global
   magnitude masks, see :mod:`dlcprune.masking`), re-extract z_i^(k) and take
   l_i^(k) = CrossEntropy(logits = [1 / ||z_i^(k) - mu_c||_2]_c, y_i);
4. DLC_i = mean_k l_i^(k). Higher = harder.
Level 0 is the unmasked encoder, as in the official ``score-wot.py``.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import files
from ..data import Dataset, ImageDataset, InstructionSet, TextDataset
from ..errors import DlcpruneError
from ..masking import NestedMasks
from ..models import Encoder, TextEncoder, check_model_for
from ..selection import is_real, is_whole
from .adaptive import AdaptiveLevels, interpolated_mean, planning_subsample
from .checkpoint import Checkpoint
from .level_loop import LevelLoop
from .passes import BLOCK_BYTES, check_kinds, extract_features
from .prototypes import class_prototypes, prototype_losses
from .shard import Shard

ENCODER_DEFAULTS = {"levels": 50, "step": 0.02, "batch_size": 64}
RECORD_DEFAULTS = {"levels": 5, "step": 0.1, "batch_size": 8}  # each level is a pass of the LM; its batches hold long records


@dataclass
class DlcResult:
    """scores: (N,) mean loss over levels, higher = harder, in sample order;
    level_losses: (K, N) float64 (memory-mapped from the checkpoint folder when there is one;
    with adaptive levels: the K' computed ones, in memory); features: (N, D) float32 unmasked
    features (memory-mapped from the checkpoint folder when there is one; None for a causal LM); sparsity: (K,) or (K',) per level. An instruction baseline's measure fills the same fields
    (scores = its measure, no levels: ``methods.instructions.select_instructions``)."""

    scores: np.ndarray | None
    level_losses: np.ndarray | None
    features: np.ndarray | None
    sparsity: np.ndarray | None
    parameters: dict
    timings: dict = field(default_factory=dict)


def check_dataset(dataset: Dataset, encoder: Encoder) -> None:
    """Reject data DLC cannot score, before any work is done."""
    if len(dataset) == 0:
        raise DlcpruneError(f"{dataset.source}: the dataset is empty")
    if isinstance(dataset, TextDataset) != isinstance(encoder, TextEncoder):
        kind = "text" if isinstance(dataset, TextDataset) else "image"
        raise DlcpruneError(f"{dataset.source} holds {kind}s but {encoder.name} is not a {kind} encoder; "
                            f"use --model {'minilm' if kind == 'text' else 'efficientnet_lite0'} or another {kind} model")
    counts = np.bincount(dataset.labels, minlength=dataset.num_classes)
    if (counts > 0).sum() < 2:
        raise DlcpruneError(f"{dataset.source} has one class: DLC's loss compares each sample's distance to every "
                            "class prototype, so with one class every score is 0; score data with at least 2 classes")
    for c in np.flatnonzero(counts < 2):
        raise DlcpruneError(
            f"class {dataset.class_names[c]!r} has {counts[c]} sample(s); DLC needs at least 2 per class "
            "(a one-sample prototype is the sample itself, at distance 0): add samples or remove the class")
    if isinstance(dataset, ImageDataset) and encoder.image_size is None:
        sizes = dataset.sizes()
        if len(sizes) > 1:
            (a, _), (b, _) = sorted(sizes.items(), key=lambda kv: -kv[1])[:2]
            raise DlcpruneError(
                f"images have {len(sizes)} different sizes (e.g. {dataset.first_with_size(a)} is {a[1]}x{a[0]}, "
                f"{dataset.first_with_size(b)} is {b[1]}x{b[0]}); pass --image-size pretrained (the model's input) or N to resize them all")


def score_dlc(encoder: Encoder, dataset: Dataset, *, levels: int | None = None, step: float | None = None,
              masking: str = "magnitude", seed: int = 0, batch_size: int | None = None, workers: int = 0, adaptive: bool = False,
              checkpoint_dir: str | Path | None = None, block_bytes: int = BLOCK_BYTES, mask_scope: str = "global",
              progress: bool = True) -> DlcResult | None:
    """DLC scores of every sample of ``dataset`` (higher = harder). See the module docstring.

    A causal LM with instruction records: the loss is the response-token NLL, the K levels the same
    sparsities (:func:`dlcprune.scoring.causal.score_instructions`; ``mask_scope`` "layer" masks each
    weight matrix to the same sparsity; ``workers`` and ``block_bytes`` do not apply; one process).

    Each sample is read, decoded and preprocessed twice whatever K: once for the unmasked
    features (the prototypes need all of them first), once for the level loop, which takes the
    samples in blocks of about ``block_bytes`` of preprocessed inputs and runs every level over a
    block before reading the next. Scores do not depend on ``block_bytes`` (the batches are the same).
    (With ``adaptive``, the planning subsample's samples are read once more per refinement round.)

    ``checkpoint_dir``: the features and the per-level losses stream there (neither N x D nor K x N
    is held in memory, but for adaptive levels' K' computed rows; the mean over levels is read back
    a chunk of samples at a time), each level's row as far as its finished blocks go, so a run
    killed midway and started again with the same arguments continues where each level stopped and
    ends with identical scores. The encoder's weights are restored bit-exactly on return, error or Ctrl-C.

    ``levels`` / ``step`` / ``batch_size``: default 50 / 0.02 / 64; for instruction records 5 / 0.1 / 8
    (each level is a pass of the LM over every record).
    ``workers``: DataLoader processes decoding the next batches while the encoder runs (0: none).
    ``adaptive``: ``levels`` is the most levels of the path and only those the ranking needs are
    computed (``--levels auto``, :mod:`dlcprune.scoring.adaptive`): the refinement rounds run on a
    class-stratified subsample (every rank plans alike), then one level loop runs the chosen levels
    over everything; where that subsample would exceed half the data, the rounds run on everything,
    one level loop each. The score is then the estimate of the full path's mean, ``level_losses``
    (K', N) holds the computed levels only, ``parameters["levels_computed"]`` says which and
    ``["planned_on"]`` on how many samples they were chosen (``collapse_level`` and ``refinement``
    are figures of those samples).

    Under ``torch.distributed`` (torchrun), each rank scores one block of samples; rank 0 joins
    the features and per-level losses in sample order, builds the prototypes from all samples and
    shares them, keeps the checkpoint and returns the result; the other ranks return None. There
    the checkpoint keeps the features and the levels of finished level loops (with adaptive levels:
    rounds), not single blocks or levels.

    Timings: ``level_s`` per level (mask switch, forward passes, losses), ``level_loop_read_s`` the
    level loop's reading and preprocessing, ``planning_s`` adaptive levels' rounds on the
    subsample, ``masking_loop_s`` all three together.
    """
    check_kinds(encoder, dataset)
    records = isinstance(dataset, InstructionSet)
    levels, step, batch_size = _checked_options(RECORD_DEFAULTS if records else ENCODER_DEFAULTS, levels=levels,
                                                step=step, batch_size=batch_size, workers=workers,
                                                block_bytes=block_bytes, seed=seed, adaptive=adaptive)
    check_model_for(encoder, dataset)
    if records:
        return _score_records(encoder, dataset, levels=levels, step=step, masking=masking, seed=seed,
                              batch_size=batch_size, adaptive=adaptive, mask_scope=mask_scope,
                              checkpoint_dir=checkpoint_dir, progress=progress)
    if mask_scope != "global":
        raise DlcpruneError(f"mask_scope {mask_scope!r} applies to causal LMs; an encoder's masks are global")
    check_dataset(dataset, encoder)
    return _score_encoder(encoder, dataset, levels=levels, step=step, masking=masking, seed=seed, batch_size=batch_size,
                          workers=workers, adaptive=adaptive, checkpoint_dir=checkpoint_dir, block_bytes=block_bytes,
                          progress=progress)


def _checked_options(defaults: dict, *, levels, step, batch_size, workers, block_bytes, seed,
                     adaptive) -> tuple[int, float, int]:
    """score_dlc's options checked, with ``defaults`` for those left None: (levels, step, batch_size)."""
    levels = defaults["levels"] if levels is None else levels
    step = defaults["step"] if step is None else step
    batch_size = defaults["batch_size"] if batch_size is None else batch_size
    for what, value, least in (("levels", levels, 1), ("batch_size", batch_size, 1), ("workers", workers, 0),
                               ("block_bytes", block_bytes, 1), ("seed", seed, 0)):
        if not is_whole(value) or value < least:
            raise DlcpruneError(f"{what} must be a whole number >= {least}, got {value!r}")
    if not (is_real(step) and 0.0 < step < 1.0):
        raise DlcpruneError(f"step must be a number in (0, 1), got {step!r}")
    if not isinstance(adaptive, (bool, np.bool_)):
        raise DlcpruneError(f"adaptive must be True or False, got {adaptive!r}")
    return levels, step, batch_size


def _score_encoder(encoder: Encoder, dataset: Dataset, *, levels: int, step: float, masking: str, seed: int,
                   batch_size: int, workers: int, adaptive: bool, checkpoint_dir, block_bytes: int,
                   progress: bool) -> DlcResult | None:
    """score_dlc for an encoder: the plain pass and prototypes, level 0, then the masked levels."""
    params = dict(levels=levels, step=step, masking=masking, seed=seed, batch_size=batch_size,
                  **({"adaptive": True} if adaptive else {}), **encoder.preprocessing())
    shard = _shard_of(len(dataset))
    progress = progress and shard.is_main
    ckpt = Checkpoint(checkpoint_dir if shard.is_main else None,
                      key=dict(params, **_encoder_key(encoder), **cpu_threads_key(encoder.device),
                               dataset=dataset.fingerprint()))
    labels = torch.from_numpy(dataset.labels)
    mine = dataset if shard.world == 1 else dataset.subset(np.arange(shard.start, shard.stop))
    timings = ckpt.timings

    z0 = _plain_features(encoder, mine, shard, ckpt, batch_size=batch_size, workers=workers, progress=progress)
    # From all samples on rank 0 (the same sums in the same order as one process), then shared.
    prototypes = shard.share(class_prototypes(z0, labels, dataset.num_classes) if shard.is_main else None)
    rows = ckpt.level_rows(levels, len(dataset)) if shard.is_main else None
    if shard.is_main and ckpt.done(0) < len(dataset):
        rows.write(0, 0, _unmasked_losses(z0, labels, prototypes))
        ckpt.record(0, len(dataset))
    computed = {0} if shard.is_main else set()  # levels whose row holds every sample (rank 0 only)

    t = time.perf_counter()
    masks = NestedMasks([w for _, w in encoder.maskable], levels=levels, step=step, method=masking, seed=seed)
    timings["thresholds_s"] = time.perf_counter() - t
    loop_options = dict(batch_size=batch_size, workers=workers, block_bytes=block_bytes, progress=progress)
    loop = LevelLoop(encoder, mine, prototypes, labels[shard.start:shard.stop], masks=masks, shard=shard, ckpt=ckpt,
                     rows=rows, **loop_options)

    def compute(wanted: list[int]) -> None:
        """The rows of the levels in ``wanted`` not computed yet (masks only grow: in increasing order).
        A level a killed run finished is taken only when it is wanted: with adaptive levels the
        plan must see exactly the levels a run from scratch would have, or a resumed run refines differently."""
        computed.update(k for k in wanted if shard.is_main and ckpt.done(k) == len(dataset))
        todo = shard.share([k for k in wanted if k not in computed])
        loop.run(todo)
        computed.update(todo if shard.is_main else ())

    if adaptive:
        def planning_loop(sub: np.ndarray) -> LevelLoop:  # the rounds on a subsample: nothing checkpointed
            kept = Checkpoint(None, key={})
            return LevelLoop(encoder, dataset.subset(sub), prototypes, labels[torch.from_numpy(sub)], masks=masks,
                             shard=Shard(len(sub), local=True), ckpt=kept, rows=kept.level_rows(levels, len(sub)),
                             label="planning levels", **loop_options)

        ks = _adaptive_levels(AdaptiveLevels(levels, dataset.num_classes), dataset, compute=compute, computed=computed,
                              rows=rows, shard=shard, planning_loop=planning_loop, seed=seed, params=params,
                              timings=timings)
    else:
        compute(list(range(1, levels)))
        ks = list(range(levels))
    if not shard.is_main:
        return None
    _sum_timings(timings, computed, processes=shard.world)
    return _encoder_result(rows, ks, adaptive=adaptive, levels=levels, features=z0, sparsity=masks.sparsity_[ks],
                           parameters=params, timings=timings)


def _shard_of(samples: int) -> Shard:
    """This process's share of ``samples``; refused when a process would get none (it would have
    nothing to share; every rank says so)."""
    shard = Shard(samples)
    if shard.world > samples:
        raise DlcpruneError(f"{samples} sample(s) for {shard.world} processes: every process needs one; run "
                            f"with --nproc_per_node {samples} or fewer")
    return shard


def _encoder_result(rows, ks: list[int], *, adaptive: bool, levels: int, **fields) -> DlcResult:
    """The result from the level rows ``ks`` the score is the mean of."""
    if adaptive:  # the K' computed rows, in memory
        level_losses = np.stack([rows.row(k) for k in ks])
        scores = interpolated_mean(dict(zip(ks, level_losses)), levels)
    else:  # every row: the file itself, mapped and averaged a chunk of samples at a time
        level_losses, scores = rows.array(), rows.mean()
    return DlcResult(scores=scores, level_losses=level_losses, **fields)


def _encoder_key(encoder: Encoder) -> dict:
    """What makes an encoder's features, for a checkpoint's key: a run resumes only with all of it unchanged."""
    fn = getattr(encoder, "feature_fn", None)
    code = getattr(fn, "__code__", None)
    return dict(model=encoder.name, weights_sha256=encoder.weights_sha256,
                maskable=[[name, list(w.shape)] for name, w in encoder.maskable],
                pixel_mean=list(getattr(encoder, "pixel_mean", ())), pixel_std=list(getattr(encoder, "pixel_std", ())),
                feature_fn=None if fn is None else [getattr(fn, "__qualname__", type(fn).__name__),
                                                    None if code is None else _code_digest(code)])


MAX_SPARSITY = 0.999  # past it nearly every weight is masked: a level measures nothing


def cpu_threads_key(device) -> dict:
    """For a checkpoint's key on the CPU, the thread count: float sums split across another number of
    threads differ in the last bits, so a run resumed with other threads would mix two results."""
    return {"cpu_threads": torch.get_num_threads()} if torch.device(device).type == "cpu" else {}


def _code_digest(code) -> str:
    """A digest of a function's bytecode, names and plain constants (nested code objects, whose
    repr holds an address, left out): the same source gives the same digest in every process."""
    plain = [c for c in code.co_consts if isinstance(c, (str, bytes, int, float, complex, bool, type(None)))]
    return hashlib.sha256(repr((code.co_code, code.co_names, plain)).encode()).hexdigest()[:16]


def _sum_timings(timings: dict, computed: set[int], *, processes: int) -> None:
    """The level loop's totals: every level run (also those past an adaptive collapse), its reading, the planning."""
    level_times = [v for k, v in timings.get("level_s", {}).items() if int(k) in computed]
    timings["masking_loop_s"] = float(sum(level_times)) + timings.get("level_loop_read_s", 0.0) \
        + timings.get("planning_s", 0.0)
    timings["mean_masked_level_s"] = float(np.mean(level_times)) if level_times else 0.0
    timings["processes"] = processes


def _plain_features(encoder: Encoder, mine: Dataset, shard: Shard, ckpt: Checkpoint, *, batch_size: int,
                    workers: int, progress: bool) -> np.ndarray | None:
    """(N, D) unmasked features, from the checkpoint when a killed run finished them; gathered on
    rank 0 (None on the other ranks) under torch.distributed."""
    z0 = ckpt.load_features()
    if shard.share(z0 is not None):
        return z0
    t = time.perf_counter()
    passed = dict(batch_size=batch_size, workers=workers, description="plain pass (unmasked)", progress=progress)
    if shard.world == 1:
        z0 = extract_features(encoder, mine, into=ckpt.features_path, **passed)
    else:
        z0 = shard.gather(torch.from_numpy(extract_features(encoder, mine, **passed)))
        z0 = z0.numpy() if z0 is not None else None
    ckpt.timings["plain_pass_s"] = time.perf_counter() - t
    ckpt.save_features(z0) if shard.world > 1 else ckpt.save_timings()
    return z0


def _adaptive_levels(plan: AdaptiveLevels, dataset: Dataset, *, compute, computed: set[int], rows, shard: Shard,
                     planning_loop, seed: int, params: dict, timings: dict) -> list[int]:
    """Run ``plan`` (``--levels auto``): its rounds on a class-stratified subsample, then the chosen
    levels on everything through ``compute``, or, where the subsample would exceed half the data,
    its rounds on everything. Returns the levels the score is the mean of (up to the collapse)."""
    sub = planning_subsample(dataset.labels, seed=seed)
    if len(sub) <= len(dataset) // 2:
        t = time.perf_counter()
        chosen = _plan_on(plan, planning_loop(sub))  # on every rank alike: none waits for another
        timings["planning_s"] = time.perf_counter() - t
        compute(shard.share(chosen))
    else:  # a subsample of more than half the data saves nothing
        wanted = plan.first_round()
        while wanted:
            compute(wanted)
            wanted = shard.share(plan.next_round({k: rows.row(k) for k in computed}) if shard.is_main else None)
    ks = plan.used(computed)  # past the collapse: left out of the score
    collapse = plan.collapse_level_ if plan.collapse_level_ is not None and plan.collapse_level_ < plan.levels else None
    params.update(levels_computed=ks, collapse_level=collapse, planned_on=len(sub),  # None: no collapse
                  refinement=[list(h) for h in plan.history_])
    return ks


def _score_records(lm, data: InstructionSet, *, levels: int, step: float, adaptive: bool, mask_scope: str,
                   **options) -> DlcResult:
    from .causal import level_sparsities, score_instructions

    if adaptive:
        raise DlcpruneError("levels auto (adaptive levels) is for encoders; give a causal LM a number of levels")
    if Shard(len(data)).world > 1:
        raise DlcpruneError("instruction records are scored in one process; run without torchrun")
    if len(data) < 1:
        raise DlcpruneError(f"{data.source}: the dataset is empty")
    result = score_instructions(lm, data, sparsities=level_sparsities(levels, step), scope=mask_scope, **options)
    result.parameters = dict(levels=levels, step=step, **result.parameters)
    return result


def _plan_on(plan: AdaptiveLevels, loop: LevelLoop) -> list[int]:
    """The masked levels ``plan`` chooses from its rounds over ``loop``'s samples only (level 0
    included, so that every rank can plan without the features; nothing is checkpointed)."""
    seen: dict[int, np.ndarray] = {}
    wanted = plan.first_round()
    while wanted:
        todo = [k for k in wanted if k not in seen]
        loop.run(todo)
        seen.update((k, loop.rows.row(k)) for k in todo)
        wanted = plan.next_round(seen)
    return [k for k in plan.used(seen) if k > 0]


def _unmasked_losses(z0: np.ndarray, labels: torch.Tensor, prototypes: torch.Tensor) -> np.ndarray:
    """Level 0's losses from the plain pass's features, a chunk of rows at a time: (N,) float64."""
    parts = [prototype_losses(torch.from_numpy(np.asarray(chunk)), labels[start:start + len(chunk)], prototypes)
             for start, chunk in files.row_chunks(z0)]
    return torch.cat(parts).numpy()
