"""Model adapters: load a pre-trained encoder, extract features, name the weights to mask."""
from .image import IMAGE_MODELS, ImageEncoder, efficientnet_lite0, from_module, load_encoder, timm_encoder

__all__ = ["IMAGE_MODELS", "ImageEncoder", "efficientnet_lite0", "from_module", "load_encoder", "timm_encoder"]
