"""Training on a kept subset (linear probe, full fine-tuning) and recording training dynamics."""
from .dynamics import DynamicsRecorder, Trajectory, record_head_dynamics
from .finetune import FinetuneResult, finetune
from .probe import LinearProbe, train_linear_probe

__all__ = ["DynamicsRecorder", "FinetuneResult", "LinearProbe", "Trajectory", "finetune", "record_head_dynamics",
           "train_linear_probe"]
