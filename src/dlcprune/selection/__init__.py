"""Selection policies (pure numpy): random, easy, hard, FlexRand."""
from .policies import POLICIES, Easy, FlexRand, Hard, Policy, Random, check_keep, class_counts, make_policy

__all__ = ["POLICIES", "Easy", "FlexRand", "Hard", "Policy", "Random", "check_keep", "class_counts", "make_policy"]
