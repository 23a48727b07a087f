"""Selection policies (pure numpy, importable without torch): random, easy, hard, FlexRand, CCS."""
from .policies import (CCS, Easy, FlexRand, Hard, Policy, Random, check_keep, check_labels, check_positions,
                       check_scores, check_seed, class_codes, class_counts, is_real, is_whole, stratify)

__all__ = ["CCS", "Easy", "FlexRand", "Hard", "Policy", "Random", "check_keep", "check_labels", "check_positions",
           "check_scores", "check_seed", "class_codes", "class_counts", "is_real", "is_whole", "stratify"]
