"""Selection methods by name (``METHODS``): DLC with each policy, and the baselines the paper
compares with (geometry, uncertainty, training dynamics, coverage). See ``base`` for the protocol."""
from . import dlc, herding, kcenter, moderate, uncertainty, dynamics  # noqa: F401,I001  (registration, in listing order)
from .base import METHODS, Method, ScoreMethod, SelectionInputs, make_method

__all__ = ["METHODS", "Method", "ScoreMethod", "SelectionInputs", "make_method"]
