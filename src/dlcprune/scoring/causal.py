"""DLC for causal LMs: the mean over masking levels of each record's response loss (higher = harder).

Levels are explicit sparsities (default 0, 0.1, 0.2, 0.3, 0.4), each strictly sparser than the
one before; the Linear weights of the decoder are masked by magnitude, either over all of them at
once (``scope="global"``) or layer by layer (``scope="layer"``: each weight matrix loses the same
fraction). Masks are nested and applied in place (:mod:`dlcprune.masking`): no copy of the model
is made, only the values the last level zeroes are kept, and the weights are restored bit-exactly.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import DlcpruneError
from ..masking import NestedMasks
from ..progress import bar
from ..data.instructions import InstructionSet
from ..models.causal import CausalLM, encode, response_losses

DEFAULT_SPARSITIES = (0.0, 0.1, 0.2, 0.3, 0.4)


@dataclass
class LmDlcResult:
    """scores (N,), higher = harder; level_losses (K, N); sparsity (K,) measured after masking."""

    scores: np.ndarray
    level_losses: np.ndarray
    sparsity: np.ndarray
    parameters: dict
    timings: dict = field(default_factory=dict)


def score_instructions(lm: CausalLM, data: InstructionSet, *, sparsities=DEFAULT_SPARSITIES, scope: str = "global",
                       template: str = "alpaca", max_length: int | None = None, batch_size: int = 8,
                       progress: bool = True) -> LmDlcResult:
    s = [float(v) for v in sparsities]
    if not s or s[0] < 0 or s[-1] >= 1 or any(b <= a for a, b in zip(s, s[1:])):
        raise DlcpruneError(f"levels must be sparsities increasing strictly within [0, 1), got {s}")
    if scope not in ("global", "layer"):
        raise DlcpruneError(f"mask_scope must be global or layer, got {scope!r}")
    encoded = encode(lm, data, template=template, max_length=max_length)
    weights = [w for _, w in lm.maskable]
    groups = [weights] if scope == "global" else [[w] for w in weights]
    masks = [NestedMasks(g, sparsities=s) for g in groups]
    losses, measured, timings = [], [], {"level_s": []}
    with contextlib.ExitStack() as stack, bar("masked levels", len(s) * len(data), enabled=progress) as advance:
        setters = [stack.enter_context(m.applied()) for m in masks]
        for k in range(len(s)):
            t = time.perf_counter()
            for set_level in setters:
                set_level(k)
            measured.append(sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights))
            losses.append(response_losses(lm, encoded, batch_size=batch_size))
            timings["level_s"].append(time.perf_counter() - t)
            advance(len(data))
    level_losses = np.stack(losses)
    params = dict(sparsities=s, scope=scope, template=template, max_length=max_length, batch_size=batch_size,
                  masked_tensors=len(weights), masked_weights=sum(w.numel() for w in weights))
    timings["total_s"] = float(sum(timings["level_s"]))
    return LmDlcResult(scores=level_losses.mean(0), level_losses=level_losses, sparsity=np.array(measured),
                       parameters=params, timings=timings)
