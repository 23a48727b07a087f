"""The instruction-selection baselines LLM practitioners compare with, each a per-record measure
of the unmasked causal LM (no masking, no training) and a rule for which records to keep:

- ``longest`` ("Long Is More", Zhao et al. 2024): the number of response tokens; keeps the longest.
- ``perplexity``: exp(mean response NLL given the prompt); keeps the lowest (the quality-filter use).
- ``ifd`` (Instruction-Following Difficulty, Li et al. 2024, Cherry LLM / Superfiltering): response
  loss given the prompt / response loss without it; keeps the highest, and ranks a record whose
  IFD >= 1 (the prompt does not help predict its response: likely misaligned) after every other.
- ``embed-kcenter``: k-center greedy on the mean-pooled last hidden states of prompt + response
  (coverage of the embedding space, as RDS-style selection).
Instruction data has no classes, so every rule is applied over all records.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..data.instructions import InstructionSet
from ..errors import DlcpruneError
from ..models.base import autocast_record
from ..models.causal import CausalLM, encode, pad_batch, response_losses
from ..scoring.causal import DEFAULT_SPARSITIES, score_instructions
from ..scoring.dlc import DlcResult
from .select import Selection, select

# name -> (what the measure is, the dlcprune.select method applied to it: "hard" keeps the highest)
BASELINES = {
    "longest": ("response tokens", "hard"),
    "perplexity": ("response perplexity given the prompt (unmasked model)", "easy"),
    "ifd": ("instruction-following difficulty; a record with IFD >= 1 is written as -IFD (ranked last)", "hard"),
    "embed-kcenter": ("mean-pooled last hidden states, k-center greedy", "kcenter"),
}


@dataclass
class BaselineMeasure:
    """values (N,) the measure per record (``features`` (N, D) for embed-kcenter); method: the
    dlcprune.select method applied to it; seconds: the measure's time."""

    name: str
    values: np.ndarray | None
    features: np.ndarray | None
    method: str
    seconds: float


def measure_records(lm: CausalLM, data: InstructionSet, name: str, *, template: str | None = None,
                    max_length: int | None = None, batch_size: int = 8) -> BaselineMeasure:
    """The baseline ``name``'s measure of every record, in record order."""
    if name not in BASELINES:
        raise DlcpruneError(f"unknown instruction baseline {name!r}; the baselines are {', '.join(BASELINES)}")
    t0 = time.perf_counter()
    encoded = encode(lm, data, template=template, max_length=max_length)
    values, features = None, None
    if name == "longest":
        values = np.array([len(tokens) - n_prompt for tokens, n_prompt in encoded], dtype=np.float64)
    elif name == "perplexity":
        values = np.exp(response_losses(lm, encoded, batch_size=batch_size))
    elif name == "ifd":
        ifd = response_losses(lm, encoded, batch_size=batch_size) / response_losses(
            lm, _response_alone(lm, encoded), batch_size=batch_size).clip(1e-12)
        values = np.where(ifd < 1, ifd, -ifd)  # "hard" keeps the highest: IFD >= 1 goes below every valid one
    else:  # embed-kcenter
        features = mean_hidden_states(lm, encoded, batch_size=batch_size)
    return BaselineMeasure(name=name, values=values, features=features, method=BASELINES[name][1],
                           seconds=time.perf_counter() - t0)


def _response_alone(lm: CausalLM, encoded: list[tuple[list[int], int]]) -> list[tuple[list[int], int]]:
    """Each record's response after the start token only (no prompt), for the unconditioned loss: BOS,
    else the tokenizer's CLS or EOS token; with none of them the first response token is the context."""
    tok = lm.tokenizer
    bos = next((t for t in (tok.bos_token_id, getattr(tok, "cls_token_id", None), tok.eos_token_id) if t is not None), None)
    out = []
    for tokens, n_prompt in encoded:
        response = tokens[n_prompt:]
        out.append(([bos] + response, 1) if bos is not None else (response, 1))
    return out


@torch.inference_mode()
def mean_hidden_states(lm: CausalLM, encoded: list[tuple[list[int], int]], *, batch_size: int = 8) -> np.ndarray:
    """(N, D) float32: the last hidden state averaged over each record's real tokens, in record order."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out: list[np.ndarray | None] = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        ids, attn, _ = pad_batch([encoded[i] for i in rows], pad_id=lm.tokenizer.pad_token_id or 0)
        hidden = _last_hidden(lm.module, ids.to(lm.device), attn.to(lm.device)).float()
        mask = attn.to(hidden.device)[..., None].float()
        pooled = ((hidden * mask).sum(1) / mask.sum(1)).cpu().numpy()
        for r, i in enumerate(rows):
            out[i] = pooled[r]
    return np.stack(out)


def _last_hidden(module: torch.nn.Module, ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """(B, T, D) last hidden states: from the decoder alone where the model exposes it (no vocabulary
    projection), else from the full model's hidden states."""
    decoder = module.get_decoder() if hasattr(module, "get_decoder") else None
    if decoder is not None:
        return decoder(input_ids=ids, attention_mask=attn).last_hidden_state
    return module(input_ids=ids, attention_mask=attn, output_hidden_states=True).hidden_states[-1]


# --------------------------------------------------------------------------- one call: records -> selection

POLICIES = ("random", "easy", "hard", "flexrand", *BASELINES)


def select_instructions(lm: CausalLM, data: InstructionSet, *, policy: str = "flexrand", keep: float | list[float],
                        seed: int = 0, split: float | None = None, sparsities=DEFAULT_SPARSITIES,
                        scope: str = "global", template: str | None = None, max_length: int | None = None,
                        batch_size: int = 8, progress: bool = True) -> tuple[DlcResult, Selection]:
    """(what the scores folder holds, the selection) for ``policy``: random / easy / hard / flexrand
    over DLC scores (masking levels ``sparsities``), or a baseline of ``BASELINES`` (no masking; the
    result's ``scores`` are its measure, None for embed-kcenter, whose ``features`` it uses).
    ``template`` / ``max_length``: default the model's own."""
    t0 = time.perf_counter()
    fmt = dict(template=template, max_length=max_length, batch_size=batch_size)
    if policy not in POLICIES:
        raise DlcpruneError(f"unknown policy {policy!r} for instruction records; choose one of {', '.join(POLICIES)}")
    if policy in BASELINES:
        masking = [name for name, value, default in (("split", split, None), ("sparsities", list(sparsities),
                   list(DEFAULT_SPARSITIES)), ("scope", scope, "global")) if value != default]
        if masking:  # DLC's options: a baseline masks nothing and draws nothing
            raise DlcpruneError(f"{', '.join(masking)} set(s) DLC's masking or FlexRand's gamma; the baseline "
                                f"{policy!r} uses neither: leave {'it' if len(masking) == 1 else 'them'} out")
        m = measure_records(lm, data, policy, **fmt)
        result = DlcResult(scores=m.values, level_losses=None, features=m.features, sparsity=None,
                           parameters=dict(fmt, measure=BASELINES[policy][0],
                                             **(autocast_record(lm.device, on_cpu=lm.cpu_bf16)  # response losses only
                                                if policy in ("perplexity", "ifd") else {})),
                           timings={"measure_s": m.seconds})
        chosen = select(m.values, labels=data.labels, features=m.features, method=m.method, keep=keep, seed=seed)
        selection = dataclasses.replace(chosen, method=policy,  # the manifest names the baseline, and its rule
                                        parameters={**chosen.parameters, "measure": BASELINES[policy][0],
                                                    "rule": f"{m.method} on the measure"})
    else:
        result = score_instructions(lm, data, sparsities=sparsities, scope=scope, progress=progress, **fmt)
        selection = select(result.scores, method=policy, split=split, keep=keep, seed=seed)
    result.timings["total_s"] = time.perf_counter() - t0
    return result, selection
