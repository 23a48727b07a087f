"""dlcprune: make a downstream training set smaller before fine-tuning, without training anything
to decide what to drop (DLC + FlexRand, Jiang et al., ICLR 2025), and say how the kept subset
compares with a random one.

Data flows one way: data -> model adapter -> scorer -> selection method -> trainer -> report.
The names below are imported on first use, so ``import dlcprune`` (and ``dlcprune --help``) stays
fast and ``dlcprune.selection`` works without torch.
"""
from __future__ import annotations

import importlib

from .errors import DlcpruneError

__version__ = "0.1.0"

_LAZY = {  # public name -> (module, attribute)
    "load_dataset": ("data", "load_dataset"), "from_arrays": ("data", "from_arrays"),
    "ImageDataset": ("data", "ImageDataset"), "list_datasets": ("data", "list_datasets"),
    "load_model": ("models", "load_encoder"), "load_encoder": ("models", "load_encoder"),
    "from_module": ("models", "from_module"), "ImageEncoder": ("models", "ImageEncoder"),
    "list_models": ("models", "list_models"),
    "score": ("scoring", "score_dlc"), "score_dlc": ("scoring", "score_dlc"), "DlcResult": ("scoring", "DlcResult"),
    "extract_features": ("scoring", "extract_features"),
    "NestedMasks": ("masking", "NestedMasks"), "level_counts": ("masking", "level_counts"),
    "select": ("methods.select", "select"), "Selection": ("methods.select", "Selection"),
    "list_methods": ("methods", "list_methods"), "FlexRand": ("selection", "FlexRand"),
    "read_scores": ("artifacts", "read_scores"), "set_threads": ("threads", "set_threads"), "train_linear_probe": ("training", "train_linear_probe"),
}
__all__ = ["DlcpruneError", *sorted(_LAZY)]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'dlcprune' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
