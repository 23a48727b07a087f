"""Scorers: one module per method family, registered by name. Scores are (N,), higher = harder."""
from ..registry import Registry
from .dlc import DlcResult, class_prototypes, prototype_losses, score_dlc

SCORERS = Registry("scorer")
SCORERS.register("dlc", summary="Distorting-based Learning Complexity: mean prototype loss over nested magnitude-masked encoders (training-free)")(score_dlc)

__all__ = ["SCORERS", "DlcResult", "class_prototypes", "prototype_losses", "score_dlc"]
