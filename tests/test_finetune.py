"""Full fine-tuning: the loss goes down and a separable toy set is learnt; the encoder is untouched."""
import copy

import numpy as np
import torch

from dlcprune import from_arrays, from_module
from dlcprune.training import finetune
from tests.conftest import tiny_cnn


def toy(n_per_class: int, seed: int):
    """Two classes a CNN separates easily: dark vs bright images."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per_class)
    images = np.clip(rng.normal(np.where(labels == 0, 40, 210)[:, None, None, None], 15, (2 * n_per_class, 16, 16, 3)), 0, 255)
    return from_arrays(images.astype(np.uint8), labels)


def test_finetune_learns_a_separable_set_and_leaves_the_encoder_alone():
    model = tiny_cnn(0)
    encoder = from_module(model, lambda m, x: m.features(x))
    before = copy.deepcopy(model.state_dict())
    train, test = toy(24, 0), toy(10, 1)
    result = finetune(encoder, train, test, epochs=8, lr=0.05, batch_size=16, progress=False)
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.accuracy == 1.0 and result.per_class_accuracy == [1.0, 1.0]
    assert all(torch.equal(t, before[k]) for k, t in model.state_dict().items())
    again = finetune(encoder, train, test, epochs=8, lr=0.05, batch_size=16, progress=False)
    assert again.train_loss == result.train_loss  # seeded


def test_finetune_on_kept_indices_only():
    encoder = from_module(tiny_cnn(1), lambda m, x: m.features(x))
    train, test = toy(10, 0), toy(4, 1)
    result = finetune(encoder, train, test, indices=np.array([0, 1, 10, 11]), epochs=1, progress=False)
    assert result.parameters["kept"] == 4 and len(result.train_loss) == 1


def test_cli_finetune_probe_and_full(tmp_path):
    from dlcprune.cli import main
    from tests.conftest import write_image_folder

    train = write_image_folder(tmp_path / "train", {"a": 6, "b": 6}, size=32, seed=0)
    test = write_image_folder(tmp_path / "test", {"a": 3, "b": 3}, size=32, seed=1)
    np.save(tmp_path / "keep.npy", np.array([0, 1, 2, 6, 7, 8]))
    for trainer in ("probe", "full"):
        out = tmp_path / trainer
        assert main(["finetune", "--data", str(train), "--test-data", str(test), "--indices", str(tmp_path / "keep.npy"),
                     "--trainer", trainer, "--epochs", "1", "--batch-size", "4", "--output", str(out), "--quiet"]) == 0
        import json

        m = json.loads((out / "metrics.json").read_text())
        assert m["trainer"] == trainer and 0.0 <= m["accuracy"] <= 1.0 and len(m["per_class_accuracy"]) == 2
        assert m["parameters"]["kept"] == 6
    np.save(tmp_path / "bad.npy", np.array([0, 99]))
    assert main(["finetune", "--data", str(train), "--test-data", str(test), "--indices", str(tmp_path / "bad.npy"),
                 "--output", str(tmp_path / "x"), "--quiet"]) == 2
    assert not (tmp_path / "x").exists()
