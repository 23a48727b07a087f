"""Training on a kept subset: the linear probe on frozen features."""
from .probe import LinearProbe, train_linear_probe

__all__ = ["LinearProbe", "train_linear_probe"]
