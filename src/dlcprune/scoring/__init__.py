"""DLC scoring: one score per sample, higher = harder (``score_dlc``); levels, checkpoints, shards."""
from .dlc import DlcResult, class_prototypes, extract_features, prototype_losses, score_dlc

__all__ = ["DlcResult", "class_prototypes", "extract_features", "prototype_losses", "score_dlc"]
