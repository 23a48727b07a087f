"""Argument types shared by the commands: checked when the command line is parsed, so a bad value
ends in one line before any work starts."""
from __future__ import annotations

import argparse
import os
import re


def positive_int(text: str) -> int:
    """A whole number >= 1 (batch sizes, epochs, seeds to run, threads, levels of context)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def image_size(text: str) -> int | str | None:
    """--image-size: pretrained (the model's own input), keep (the files' sizes, None) or N >= 8 pixels."""
    if text in ("pretrained", "keep"):
        return None if text == "keep" else text
    if not text.isdigit() or int(text) < 8:
        raise argparse.ArgumentTypeError(f"expected pretrained, keep or a number of pixels >= 8, got {text!r}")
    return int(text)


def natural_int(text: str) -> int:
    """A whole number >= 0 (seeds, worker processes)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
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
    cpus = os.cpu_count() or 1
    if not text.isdigit() or not 1 <= int(text) <= cpus:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number from 1 to {cpus} (this machine's CPU "
                                         f"threads), got {text!r}")
    return int(text)
