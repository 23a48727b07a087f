"""Argument types shared by the commands: checked when the command line is parsed, so a bad value
ends in one line before any work starts."""
from __future__ import annotations

import argparse
import os
import re

EXPORT_FORMATS = ("imagefolder", "filelist", "csv", "jsonl", "json", "hf")  # select / prune --export (dlcprune.export)


def whole_number(text: str) -> int | None:
    """The ASCII digits of ``text`` (spaces around allowed) as an int, else None: Python's int()
    also takes "1_0" and non-ASCII digits, which on a command line are typos, not numbers."""
    text = text.strip()
    return int(text) if re.fullmatch(r"[+]?[0-9]+", text) else None


def decimal_number(text: str) -> float | None:
    """A plain decimal like 0.3, .3, -1 or 1e-2 (spaces around allowed) as a float, else None."""
    text = text.strip()
    return float(text) if re.fullmatch(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", text) else None


def number(text: str) -> float:
    """A plain decimal number (rates, steps, fractions, points): see decimal_number."""
    value = decimal_number(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a number like 0.5 or 1e-3, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (batch sizes, epochs, seeds to run, threads, levels of context)."""
    value = whole_number(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def image_size(text: str) -> int | str | None:
    """--image-size: pretrained (the model's own input), keep (the files' sizes, None) or N >= 8 pixels."""
    if text in ("pretrained", "keep"):
        return None if text == "keep" else text
    value = whole_number(text)
    if value is None or value < 8:
        raise argparse.ArgumentTypeError(f"expected pretrained, keep or a number of pixels >= 8, got {text!r}")
    return value


def natural_int(text: str) -> int:
    """A whole number >= 0 (seeds, worker processes)."""
    value = whole_number(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def device(text: str) -> str:
    """cpu, cuda, cuda:N or mps (whether it exists is checked when the model is loaded)."""
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def thread_count(text: str) -> int | str:
    """auto (the cores other processes leave idle now) or 1..the machine's CPU threads: more
    threads than CPUs only take turns on them, slower than one each."""
    if text == "auto":
        return text
    cpus, value = os.cpu_count() or 1, whole_number(text)
    if value is None or not 1 <= value <= cpus:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number from 1 to {cpus} (this machine's CPU "
                                         f"threads), got {text!r}")
    return value
