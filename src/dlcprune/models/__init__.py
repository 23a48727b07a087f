"""Model adapters: load a pre-trained encoder, extract features, name the weights to mask."""
from __future__ import annotations

import torch

from ..errors import DlcpruneError
from ..registry import unknown_name_message
from .base import MODELS
from .image import ImageEncoder, efficientnet_lite0, from_module, timm_encoder
from .text import TextEncoder, hf_text_encoder, minilm

Encoder = ImageEncoder | TextEncoder

__all__ = ["MODELS", "Encoder", "ImageEncoder", "TextEncoder", "efficientnet_lite0", "from_module",
           "hf_text_encoder", "load_encoder", "minilm", "timm_encoder"]


def load_encoder(spec: str, *, weights: str = "pretrained", device: str | None = None,
                 image_size: int | None = None) -> Encoder:
    """A registered name (``dlcprune list``), ``timm:<model>`` or ``hf:<folder or hub name>``.

    ``image_size`` (image encoders): resize every image to that square size (None: keep sizes).
    """
    dev = torch.device(device) if device else None
    if spec.startswith("timm:"):
        return timm_encoder(spec[len("timm:"):], weights=weights, device=dev, image_size=image_size)
    if spec.startswith("hf:"):
        return hf_text_encoder(spec[len("hf:"):], weights=weights, device=dev)
    if spec not in MODELS:
        raise DlcpruneError(unknown_name_message("model", spec, MODELS.names())
                            + " (or timm:<name> / hf:<name> for any timm or Hugging Face model)")
    return MODELS.get(spec)(weights=weights, device=dev, image_size=image_size)
