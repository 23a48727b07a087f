"""One call from instruction records to a selection: DLC on response losses with a policy, or a
baseline measure with its rule (:mod:`dlcprune.llm.baselines`)."""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..methods.select import Selection, select
from .baselines import BASELINES, measure_records
from .causal import CausalLM
from .instructions import InstructionSet
from .score import DEFAULT_SPARSITIES, score_instructions

POLICIES = ("random", "easy", "hard", "flexrand", *BASELINES)


def select_instructions(lm: CausalLM, data: InstructionSet, *, policy: str = "flexrand", keep: float | list[float],
                        seed: int = 0, split: float | None = None, sparsities=DEFAULT_SPARSITIES,
                        scope: str = "global", template: str = "alpaca", max_length: int | None = None,
                        batch_size: int = 8, progress: bool = True) -> tuple[dict, Selection]:
    """(what the scores folder holds, the selection) for ``policy``: random / easy / hard / flexrand
    over DLC scores (masking levels ``sparsities``), or a baseline of ``BASELINES`` (no masking).
    The first item is the keyword arguments of ``artifacts.write_instruction_scores``."""
    t0 = time.perf_counter()
    fmt = dict(template=template, max_length=max_length, batch_size=batch_size)
    if policy in BASELINES:
        m = measure_records(lm, data, policy, **fmt)
        written = dict(method=policy, parameters=fmt, scores=m.values, features=m.features,
                       timings={"measure_s": m.seconds})
        chosen = select(m.values, labels=np.zeros(len(data), dtype=np.int64), features=m.features, method=m.method,
                        keep=keep, seed=seed)
        selection = dataclasses.replace(chosen, method=policy,  # the manifest names the baseline, and its rule
                                        parameters={**chosen.parameters, "measure": BASELINES[policy][0],
                                                    "rule": f"{m.method} on the measure"})
    else:
        result = score_instructions(lm, data, sparsities=sparsities, scope=scope, progress=progress, **fmt)
        written = dict(method="dlc (causal LM, response-token loss)", parameters=result.parameters,
                       scores=result.scores, level_losses=result.level_losses, sparsity=result.sparsity,
                       timings=result.timings)
        selection = select(result.scores, method=policy, split=split, keep=keep, seed=seed)
    written["timings"] = dict(written["timings"], total_s=time.perf_counter() - t0)
    return written, selection
