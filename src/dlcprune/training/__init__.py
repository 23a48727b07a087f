"""Training on a kept subset: the linear probe on frozen features, and full fine-tuning."""
from .finetune import FinetuneResult, finetune
from .probe import LinearProbe, train_linear_probe

__all__ = ["FinetuneResult", "LinearProbe", "finetune", "train_linear_probe"]
