"""What every model adapter shares: the registry, weight hashing, picking the weights to mask."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import DlcpruneError
from ..registry import Registry

MODELS: Registry[Callable] = Registry("model")


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 over every tensor of the state dict (name, dtype, shape, bytes), in key order."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def module_weights(module: nn.Module, kind: type[nn.Module], *, exclude: nn.Module | None = None
                   ) -> list[tuple[str, nn.Parameter]]:
    """(name, weight) of every ``kind`` layer, skipping the parameters of ``exclude``."""
    skip = {id(p) for p in exclude.parameters()} if isinstance(exclude, nn.Module) else set()
    return [(f"{n}.weight", m.weight) for n, m in module.named_modules()
            if isinstance(m, kind) and id(m.weight) not in skip]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def existing_file(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DlcpruneError(f"weights {path!r}: expected 'pretrained', 'random' or a weights file")
    return p


def gpu_autocast(device: torch.device, *, on_cpu: bool = False):
    """bf16 autocast for forward passes on CUDA (about twice the throughput on recent GPUs); on the
    CPU only with ``on_cpu`` (opt-in: faster only where the CPU has AVX-512 BF16 or AMX), else a
    no-op, where scores stay float32 and bit-reproducible."""
    kind = torch.device(device).type
    if kind == "cpu" and on_cpu:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=kind == "cuda")


def autocast_record(device: torch.device, *, on_cpu: bool = False) -> dict:
    """What the manifest and checkpoint key record about the arithmetic (nothing for float32)."""
    return {"autocast": "bf16"} if torch.device(device).type == "cuda" or on_cpu else {}


def check_device(spec: str | None) -> None:
    """Refuse a device this machine does not have, in one line."""
    if spec is None or spec == "cpu":
        return
    if spec.startswith("cuda"):
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if not torch.cuda.is_available():
            raise DlcpruneError(f"device {spec}: no CUDA GPU is visible on this machine; use the cpu")
        if index >= torch.cuda.device_count():
            raise DlcpruneError(f"device {spec}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif spec == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DlcpruneError("device mps: Apple's Metal backend is not available here; use the cpu")
