"""DLC scoring: one score per sample, higher = harder (``score_dlc``); levels, checkpoints, shards."""
from .dlc import DlcResult, score_dlc
from .prototypes import class_prototypes, prototype_losses
from .passes import extract_features

__all__ = ["DlcResult", "class_prototypes", "extract_features", "prototype_losses", "score_dlc"]
