"""LoRA fine-tuning of a causal LM on kept instruction records (PEFT), and held-out evaluation.

Defaults: r 16, alpha 32, dropout 0.05 on the layers DLC masks (``CausalLM.maskable``: every
Linear or GPT-2 Conv1D of the decoder but the output head; q, k, v, o, gate, up, down in
Llama-like models), AdamW, cosine schedule with linear warm-up over the first 3% of the steps, loss = the
response tokens' cross-entropy only (the prompt is context, as in scoring). ``PRESETS["paper"]``
records the usual instruction-tuning settings for 7-9B models on a GPU (3 epochs, lr 2e-4, batch
128 by gradient accumulation over micro-batches); ``PRESETS["cpu"]``, the default, suits a small
model on a CPU. bf16 autocast on CUDA. Trains a copy: the model passed in is untouched.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DlcpruneError
from ..selection import check_positions, is_real, is_whole
from ..progress import bar
from ..data.instructions import InstructionSet
from ..models.causal import CausalLM, encode, pad_batch, response_losses, response_token_nll

PRESETS = {"cpu": dict(epochs=1, lr=1e-3, batch_size=8), "paper": dict(epochs=3, lr=2e-4, batch_size=128)}


@dataclass
class LoraResult:
    model: CausalLM
    train_loss: list[float]
    seconds: float
    parameters: dict = field(default_factory=dict)


def check_lr(lr: float) -> None:
    """A learning rate is a finite number > 0 (AdamW refuses a negative one; inf makes every weight NaN)."""
    if not (is_real(lr) and math.isfinite(lr) and lr > 0):
        raise DlcpruneError(f"lr must be a finite number > 0, got {f'{lr:g}' if is_real(lr) else repr(lr)}")


def _check_settings(*, lr: float, dropout: float, warmup: float, **counts: int) -> None:
    """LoRA's settings in one line each: whole counts >= 1, dropout in [0, 1), warmup a share in [0, 1]."""
    for name, value in counts.items():
        if not (is_whole(value) and value >= 1):
            raise DlcpruneError(f"{name} must be a whole number >= 1, got {value!r}")
    check_lr(lr)
    if not (is_real(dropout) and 0 <= dropout < 1):
        raise DlcpruneError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    if not (is_real(warmup) and 0 <= warmup <= 1):
        raise DlcpruneError(f"warmup is the share of the steps spent warming up, in [0, 1]; got {warmup!r}")


def finetune_lora(lm: CausalLM, data: InstructionSet, *, indices: np.ndarray | None = None, epochs: int = 1,
                  lr: float = 1e-3, batch_size: int = 8, micro_batch_size: int = 8, r: int = 16, alpha: int = 32,
                  dropout: float = 0.05, warmup: float = 0.03, template: str | None = None, max_length: int | None = None, seed: int = 0,
                  progress: bool = True) -> LoraResult:
    """LoRA on ``data[indices]`` (all when None); returns the adapted model (base weights unchanged).

    Each optimiser step sees ``batch_size`` records, run through the model ``micro_batch_size`` at
    a time with the gradients accumulated; the loss is the mean over the whole batch's response
    tokens, so the step does not depend on the micro-batch size (up to float rounding, and given the
    same dropout draws)."""
    from transformers import get_cosine_schedule_with_warmup

    _check_settings(epochs=epochs, batch_size=batch_size, micro_batch_size=micro_batch_size, r=r, alpha=alpha,
                    dropout=dropout, warmup=warmup, lr=lr)
    idx = np.arange(len(data)) if indices is None else check_positions(indices, len(data))
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model, targets = _with_adapter(lm, r=r, alpha=alpha, dropout=dropout)
    encoded = encode(lm, data, template=template, max_length=max_length)
    steps = epochs * math.ceil(len(idx) / batch_size)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=round(warmup * steps), num_training_steps=steps)
    losses = []
    model.train()
    with bar("LoRA fine-tuning", steps, enabled=progress) as advance:
        for epoch in range(1, epochs + 1):
            order, total = rng.permutation(idx), 0.0
            for start in range(0, len(order), batch_size):
                rows = [encoded[i] for i in order[start:start + batch_size]]
                opt.zero_grad()
                total += _accumulate_gradients(model, lm, rows, micro_batch_size, lr=lr, epoch=epoch) * len(rows)
                opt.step()
                sched.step()
                advance()
            losses.append(total / len(idx))
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad):
        raise DlcpruneError(f"LoRA training diverged (the adapter's weights are no longer finite); lower the "
                            f"learning rate (it is {lr:g})")
    model.eval()
    adapted = CausalLM(name=f"{lm.name}+lora", module=model, tokenizer=lm.tokenizer, maskable=[], device=lm.device)
    return LoraResult(model=adapted, train_loss=losses, seconds=time.perf_counter() - t0,
                      parameters=dict(epochs=epochs, lr=lr, batch_size=batch_size, micro_batch_size=micro_batch_size,
                                      r=r, alpha=alpha, dropout=dropout, warmup=warmup, targets=targets, seed=seed,
                                      kept=int(len(idx))))


def _with_adapter(lm: CausalLM, *, r: int, alpha: int, dropout: float) -> tuple[torch.nn.Module, list[str]]:
    """A copy of the model with LoRA on the layers DLC masks (by full name), and their sorted suffixes."""
    from peft import LoraConfig, get_peft_model
    from transformers.pytorch_utils import Conv1D

    transposed = any(isinstance(m, Conv1D) for m in lm.module.modules())  # GPT-2's x @ W, stored in x out
    layers = [name.removesuffix(".weight") for name, _ in lm.maskable]
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=layers,
                        fan_in_fan_out=transposed, task_type="CAUSAL_LM")
    return get_peft_model(copy.deepcopy(lm.module), config), sorted({name.split(".")[-1] for name in layers})


def _accumulate_gradients(model: torch.nn.Module, lm: CausalLM, rows: list, micro_batch_size: int, *,
                          lr: float, epoch: int) -> float:
    """Backward the batch's loss (mean over all its response tokens) a micro-batch at a time; returns it."""
    n_tokens = sum(len(tokens) - n_prompt for tokens, n_prompt in rows)
    pad = lm.tokenizer.pad_token_id or 0
    batch_loss = 0.0
    for micro in range(0, len(rows), micro_batch_size):
        ids, attn, response = pad_batch(rows[micro:micro + micro_batch_size], pad_id=pad)
        nll = response_token_nll(model, ids.to(lm.device), attn.to(lm.device), response.to(lm.device))
        loss = (nll.sum() / n_tokens).float()  # token-weighted over the whole batch
        if not torch.isfinite(loss):  # diverged: every later step and the adapter would be NaN
            raise DlcpruneError(f"LoRA training diverged (loss {loss.item()} in epoch {epoch}); "
                                f"lower the learning rate (it is {lr:g})")
        loss.backward()
        batch_loss += loss.item()
    return batch_loss


def heldout_metrics(lm: CausalLM, data: InstructionSet, *, template: str | None = None, max_length: int | None = None,
                    batch_size: int = 8) -> dict:
    """Mean response NLL per record and token-weighted perplexity on held-out records."""
    if not (is_whole(batch_size) and batch_size >= 1):
        raise DlcpruneError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    encoded = encode(lm, data, template=template, max_length=max_length)
    per_record = response_losses(lm, encoded, batch_size=batch_size)
    tokens = np.array([len(t) - n for t, n in encoded])
    return {"response_nll": float(per_record.mean()),
            "perplexity": float(np.exp((per_record * tokens).sum() / tokens.sum())), "records": len(data)}
