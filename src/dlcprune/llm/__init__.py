"""Instruction data for causal LMs: records in and out, the model adapter, and DLC on response losses."""
from .causal import CausalLM, encode, from_causal_module, load_causal_lm, response_losses
from .instructions import InstructionSet, load_instructions
from .score import DEFAULT_SPARSITIES, LmDlcResult, score_instructions

__all__ = ["DEFAULT_SPARSITIES", "CausalLM", "InstructionSet", "LmDlcResult", "encode", "from_causal_module",
           "load_causal_lm", "load_instructions", "response_losses", "score_instructions"]
