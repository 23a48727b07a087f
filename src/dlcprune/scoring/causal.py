"""DLC for causal LMs: the mean over masking levels of each record's response loss (higher = harder).

The per-sample loss is the mean token NLL of the response given the prompt
(:func:`dlcprune.models.causal.response_losses`). Levels are sparsities, each strictly sparser
than the one before: from ``dlcprune.score`` / ``dlcprune score`` the same K levels as for an
encoder (s_k = 1 - (1 - step)^k), or an explicit list (``dlcprune instruct``'s default 0, 0.1, ...,
0.4). The Linear weights of the decoder are masked by magnitude (or at random), over all of them
at once (``scope="global"``) or layer by layer (``scope="layer"``: each weight matrix loses the same
fraction). Masks are nested and applied in place (:mod:`dlcprune.masking`): no copy of the model
is made, and the weights are restored bit-exactly. Finished levels are checkpointed.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.instructions import InstructionSet
from ..errors import DlcpruneError
from ..masking import NestedMasks
from ..models.base import autocast_record
from ..models.causal import CausalLM, encode, response_losses
from ..progress import bar
from .checkpoint import Checkpoint
from .dlc import MAX_SPARSITY, DlcResult, cpu_threads_key

DEFAULT_SPARSITIES = (0.0, 0.1, 0.2, 0.3, 0.4)


def check_sparsities(sparsities: Sequence[float]) -> list[float]:
    """The sparsity of each level as floats: increasing strictly from >= 0 to at most MAX_SPARSITY."""
    s = [float(v) for v in sparsities]
    if not s or s[0] < 0 or s[-1] >= 1 or any(b <= a for a, b in zip(s, s[1:])):
        raise DlcpruneError(f"sparsities (one per level) must increase strictly within [0, 1), got {s}")
    if s[-1] > MAX_SPARSITY:
        raise DlcpruneError(f"sparsities reach {s[-1]:g}: past {MAX_SPARSITY:g} nearly every weight is masked and the "
                            f"level measures nothing; end the list at {MAX_SPARSITY:g} or below")
    return s


def level_sparsities(levels: int, step: float) -> list[float]:
    """The sparsity of each of K levels, s_k = 1 - (1 - step)^k, as for an encoder."""
    if levels < 1 or not 0 < step < 1:
        raise DlcpruneError(f"need levels >= 1 and 0 < step < 1, got {levels} and {step}")
    if 1 - (1 - step) ** (levels - 1) > MAX_SPARSITY:
        raise DlcpruneError(f"levels {levels} with step {step:g} pass a sparsity of 99.9%: nearly every weight "
                            "would be masked; use fewer levels or a smaller step")
    return [1 - (1 - step) ** k for k in range(levels)]


def score_instructions(lm: CausalLM, data: InstructionSet, *, sparsities: Sequence[float] = DEFAULT_SPARSITIES,
                       masking: str = "magnitude", seed: int = 0, scope: str = "global", template: str | None = None,
                       max_length: int | None = None, batch_size: int = 8,
                       checkpoint_dir: str | Path | None = None, progress: bool = True) -> DlcResult:
    """DLC scores (N,) of the records, higher = harder; ``level_losses`` (K, N); ``sparsity`` (K,)
    measured after masking; ``features`` None. ``template`` / ``max_length``: how records become
    tokens (default: the model's own, ``lm.template`` / ``lm.max_length``)."""
    s = check_sparsities(sparsities)
    if scope not in ("global", "layer"):
        raise DlcpruneError(f"mask_scope must be global or layer, got {scope!r}")
    template = template or lm.template
    max_length = max_length if max_length is not None else lm.max_length
    encoded = encode(lm, data, template=template, max_length=max_length)
    weights = [w for _, w in lm.maskable]
    params = dict(sparsities=s, masking=masking, seed=seed, scope=scope, template=template, max_length=max_length,
                  batch_size=batch_size, masked_tensors=len(weights), masked_weights=sum(w.numel() for w in weights),
                  **autocast_record(lm.device, on_cpu=lm.cpu_bf16))
    ckpt = Checkpoint(checkpoint_dir, key=dict(params, model=lm.name, weights_sha256=lm.weights_sha256,
                                               **cpu_threads_key(lm.device), dataset=data.fingerprint()))
    groups = [weights] if scope == "global" else [[w] for w in weights]
    # random masks per layer: each group its own stream (a group's first tensor always has index 0)
    masks = [NestedMasks(g, sparsities=s, method=masking, seed=seed if len(groups) == 1 else seed * 1_000_003 + j)
             for j, g in enumerate(groups)]
    rows, measured, timings = ckpt.level_rows(len(s), len(data)), [], ckpt.timings.setdefault("level_s", {})
    with contextlib.ExitStack() as stack, bar("masked levels", len(s) * len(data), enabled=progress) as advance:
        setters = [stack.enter_context(m.applied()) for m in masks]
        for k in range(len(s)):
            t = time.perf_counter()
            for set_level in setters:
                set_level(k)
            measured.append(sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights))
            if ckpt.done(k) < len(data):  # else a killed run finished it: the same arguments, data and weights
                rows.write(k, 0, response_losses(lm, encoded, batch_size=batch_size))
                timings[str(k)] = time.perf_counter() - t
                ckpt.record(k, len(data))
            advance(len(data))
    level_times = list(timings.values())
    return DlcResult(scores=rows.mean(), level_losses=rows.array(), features=None, sparsity=np.array(measured),
                     parameters=params, timings={"level_s": timings, "masking_loop_s": float(sum(level_times))})
