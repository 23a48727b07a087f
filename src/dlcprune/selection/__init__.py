"""Selection policies (pure numpy): random, easy, hard, FlexRand, CCS."""
from .policies import (CCS, POLICIES, Easy, FlexRand, Hard, Policy, Random, check_keep, class_counts, make_policy,
                       stratify)

__all__ = ["CCS", "POLICIES", "Easy", "FlexRand", "Hard", "Policy", "Random", "check_keep", "class_counts",
           "make_policy", "stratify"]
