"""Full fine-tuning: the loss goes down and a separable toy set is learnt; the encoder is untouched;
the CPU recipe starts from the probe with BatchNorm frozen; a killed run resumes to the same result."""
import copy
import importlib

import numpy as np
import torch

from dlcprune import from_arrays, from_module
from dlcprune.training import DynamicsRecorder, finetune, recipe, train_linear_probe
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
    result = finetune(encoder, train, test, recipe=recipe("paper", epochs=8, lr=0.05, batch_size=16), progress=False)
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.accuracy == 1.0 and result.per_class_accuracy == [1.0, 1.0]
    assert all(torch.equal(t, before[k]) for k, t in model.state_dict().items())
    again = finetune(encoder, train, test, recipe=recipe("paper", epochs=8, lr=0.05, batch_size=16), progress=False)
    assert again.train_loss == result.train_loss  # seeded


def test_finetune_on_kept_indices_only():
    encoder = from_module(tiny_cnn(1), lambda m, x: m.features(x))
    train, test = toy(10, 0), toy(4, 1)
    result = finetune(encoder, train, test, indices=np.array([0, 1, 10, 11]), recipe=recipe("paper", epochs=1),
                      progress=False)
    assert result.parameters["kept"] == 4 and len(result.train_loss) == 1


def test_cli_finetune_probe_and_full(tmp_path, capsys):
    from dlcprune.cli import main
    from tests.conftest import write_image_folder

    train = write_image_folder(tmp_path / "train", {"a": 6, "b": 6}, size=32, seed=0)
    test = write_image_folder(tmp_path / "test", {"a": 3, "b": 3}, size=32, seed=1)
    np.save(tmp_path / "keep.npy", np.array([0, 1, 2, 6, 7, 8]))
    for trainer, options in (("probe", []), ("full", ["--epochs", "1", "--batch-size", "4"])):
        out = tmp_path / trainer
        assert main(["finetune", "--data", str(train), "--test-data", str(test), "--indices", str(tmp_path / "keep.npy"),
                     "--trainer", trainer, *options, "--output", str(out), "--quiet"]) == 0
        import json

        m = json.loads((out / "metrics.json").read_text())
        assert m["trainer"] == trainer and 0.0 <= m["accuracy"] <= 1.0 and len(m["per_class_accuracy"]) == 2
        assert m["parameters"]["kept"] == 6
    assert main(["finetune", "--data", str(train), "--test-data", str(test), "--epochs", "3",
                 "--output", str(tmp_path / "y"), "--quiet"]) == 2  # nothing fine-tunes: the option would be ignored
    assert "--epochs set(s) full fine-tuning; add --trainer full" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.array([0, 99]))
    assert main(["finetune", "--data", str(train), "--test-data", str(test), "--indices", str(tmp_path / "bad.npy"),
                 "--output", str(tmp_path / "x"), "--quiet"]) == 2
    assert not (tmp_path / "x").exists()


class BatchNormCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                        torch.nn.Conv2d(8, 6, 3, stride=2, padding=1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))


def bn_encoder(seed: int = 0):
    torch.manual_seed(seed)
    return from_module(BatchNormCNN().eval(), lambda m, x: m.features(x))


def test_cpu_recipe_starts_from_the_linear_probe():
    """With both learning rates 0, the fine-tuned model predicts exactly what the probe on the
    trained samples' features predicts: its standardisation is folded into the head."""
    from dlcprune import extract_features

    encoder = bn_encoder(0)
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 12)
    images = rng.integers(0, 256, (36, 16, 16, 3)).astype(np.uint8)
    images[labels == 1, :8] //= 3  # classes a probe on random features half separates
    train, test = from_arrays(images[::2], labels[::2]), from_arrays(images[1::2], labels[1::2])
    z = extract_features(encoder, train, batch_size=8, progress=False)
    zt = extract_features(encoder, test, batch_size=8, progress=False)
    probe = train_linear_probe(z, train.labels, num_classes=3)
    still = recipe("cpu", epochs=1, lr=0.0, head_lr=0.0, batch_size=6)
    result = finetune(encoder, train, test, recipe=still, progress=False)
    expected = probe.predict(zt) == test.labels
    assert result.accuracy == float(expected.mean()) > 1 / 3
    assert result.per_class_accuracy == [float(expected[test.labels == c].mean()) for c in range(3)]
    given = finetune(encoder, train, test, recipe=still, features=z, progress=False)  # the bench passes its features
    assert given.accuracy == result.accuracy


def test_frozen_batchnorm_keeps_its_running_statistics(monkeypatch):
    ft = importlib.import_module("dlcprune.training.finetune")  # the module, not the function it exports

    seen = {}
    real = ft._predict

    def spy(model, work, data, batch_size):
        bn = model.trunk.body[1]
        seen.setdefault("stats", []).append((bn.running_mean.clone(), bn.num_batches_tracked.item()))
        return real(model, work, data, batch_size)

    monkeypatch.setattr(ft, "_predict", spy)
    encoder = bn_encoder(1)
    bn = encoder.module.body[1]
    train, test = toy(6, 0), toy(2, 1)
    finetune(encoder, train, test, recipe=recipe("cpu", epochs=2, batch_size=4), progress=False)
    (mean, tracked), = seen["stats"]
    assert torch.equal(mean, bn.running_mean) and tracked == 0  # frozen: never updated
    seen.clear()
    finetune(encoder, train, test, recipe=recipe("paper", epochs=2, batch_size=4), progress=False)
    (mean, tracked), = seen["stats"]
    assert tracked == 2 * 3 and not torch.equal(mean, bn.running_mean)  # the paper's: trained


def test_a_run_killed_between_epochs_resumes_to_the_same_model(tmp_path, monkeypatch):
    ft = importlib.import_module("dlcprune.training.finetune")  # the module, not the function it exports

    encoder = from_module(tiny_cnn(2), lambda m, x: m.features(x))
    train, test = toy(8, 0), toy(4, 1)
    plan = recipe("cpu", epochs=3, batch_size=6, lr=0.05, head_lr=0.05)
    kept = np.array([0, 1, 2, 3, 8, 9, 10, 11])

    def run(checkpoint=None):
        recorder = DynamicsRecorder(train.labels[kept], plan.epochs)
        r = finetune(encoder, train, test, indices=kept, recipe=plan, seed=3, recorder=recorder, curve=True,
                     checkpoint=checkpoint, progress=False)
        return r, recorder.trajectory(seconds=0.0, trainer="t", parameters={})

    clean, clean_dyn = run()
    real, saves = ft._save_checkpoint, []

    def dies_on_the_second_save(*args, **kwargs):
        saves.append(1)
        if len(saves) == 2:
            raise KeyboardInterrupt  # killed after epoch 2, with epoch 1's checkpoint on disk
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "_save_checkpoint", dies_on_the_second_save)
    path = tmp_path / "cell.pt"
    try:
        run(path)
    except KeyboardInterrupt:
        pass
    assert path.exists()
    resumed, resumed_dyn = run(path)
    assert len(saves) == 3  # the resumed run saved once more (after epoch 2), not from the start
    assert resumed.train_loss == clean.train_loss and resumed.curve == clean.curve and len(clean.curve) == 3
    assert resumed.accuracy == clean.accuracy
    assert np.array_equal(resumed_dyn.loss, clean_dyn.loss) and np.array_equal(resumed_dyn.margin, clean_dyn.margin)
    assert not path.exists()  # removed once the run ended
    path.write_bytes(b"not a checkpoint")  # a broken or foreign checkpoint means starting over, not a crash
    again, _ = run(path)
    assert again.train_loss == clean.train_loss
