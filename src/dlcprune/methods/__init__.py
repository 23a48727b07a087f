"""Selection methods by name (``METHODS``): DLC with each policy, and the baselines the paper
compares with (geometry, uncertainty, training dynamics, coverage). See ``base`` for the protocol."""
from . import dlc, herding, kcenter, moderate, uncertainty, dynamics, auto  # noqa: F401,I001  (registration, in listing order)
from .base import METHODS, Method, ScoreMethod, SelectionInputs, make_method

__all__ = ["METHODS", "Method", "ScoreMethod", "SelectionInputs", "list_methods", "make_method"]


def list_methods() -> list[str]:
    """Every selection method ``select`` takes, by name, in listing order (``dlcprune list``); the
    instruction baselines (``longest``, ``perplexity``, ...) are ``instruct --policy`` choices, not here."""
    return METHODS.names()
