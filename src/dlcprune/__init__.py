"""dlcprune: make a downstream training set smaller before fine-tuning, without training anything
to decide what to drop (DLC + FlexRand, Jiang et al., ICLR 2025).

Data flows one way: data -> model adapter -> scorer -> policy -> trainer -> report.
"""
from .data import ImageDataset, from_arrays, load_dataset
from .errors import DlcpruneError
from .masking import NestedMasks, level_counts
from .models import ImageEncoder, from_module, load_encoder
from .scoring import DlcResult, score_dlc
from .selection import POLICIES, FlexRand, make_policy
from .training import train_linear_probe

__version__ = "0.1.0"
__all__ = ["DlcResult", "DlcpruneError", "FlexRand", "ImageDataset", "ImageEncoder", "NestedMasks", "POLICIES",
           "from_arrays", "from_module", "level_counts", "load_dataset", "load_encoder", "make_policy",
           "score_dlc", "train_linear_probe"]
