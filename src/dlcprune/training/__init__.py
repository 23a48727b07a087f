"""Training on a kept subset (linear probe, full fine-tuning) and recording training dynamics."""
from .dynamics import DynamicsRecorder, Trajectory, record_head_dynamics
from .finetune import RECIPES, FinetuneResult, Recipe, finetune, recipe
from .probe import LinearProbe, train_linear_probe

__all__ = ["RECIPES", "DynamicsRecorder", "FinetuneResult", "Recipe", "recipe", "LinearProbe", "Trajectory", "finetune", "record_head_dynamics",
           "train_linear_probe"]
