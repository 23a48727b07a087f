"""Automatic FlexRand split: the validation split, and gamma on a case whose answer is known."""
import json

import numpy as np
import pytest

from dlcprune import DlcpruneError
from dlcprune.cli import main
from dlcprune.data import holdout_split
from dlcprune.tuning import choose_split, default_grid


def test_default_grid():
    assert default_grid(0.2) == [0.1, 0.45, 0.5, 0.55, 0.9]
    assert default_grid(1.0) == [0.45, 0.5, 0.55]


def test_validation_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat([0, 1, 2], [10, 20, 5])
    pool, val = holdout_split(labels, fraction=0.2, seed=3)
    assert np.bincount(labels[val]).tolist() == [2, 4, 1]
    assert sorted(np.concatenate([pool, val]).tolist()) == list(range(35))
    assert np.array_equal(val, holdout_split(labels, fraction=0.2, seed=3)[1])


def test_validation_split_that_empties_a_class_is_refused():
    with pytest.raises(DlcpruneError, match="class 1 has 2 sample.*no held-out samples"):
        holdout_split(np.array([0] * 10 + [1] * 2), fraction=0.2)


def test_gamma_auto_finds_the_only_good_split():
    """Per class, the hardest 60% are mislabelled copies of the other class. Keeping 20%:
    gamma = b/2 = 0.1 takes the clean easiest 10% plus 10% from a pool that is 2/3 noise (1/3 noise
    in all: the probe still learns the truth). Every other gamma of the grid keeps a majority of
    mislabelled samples and learns the classes backwards."""
    rng = np.random.default_rng(0)
    n = 100  # per class
    centres = np.array([[4.0, 0.0], [-4.0, 0.0]])
    features, labels, scores = [], [], []
    for c in (0, 1):
        clean, noisy = 40, 60
        features.append(centres[c] + rng.normal(0, 0.5, (clean, 2)))
        features.append(centres[1 - c] + rng.normal(0, 0.5, (noisy, 2)))  # looks like the other class
        labels += [c] * n
        scores += list(rng.uniform(0, 1, clean)) + list(rng.uniform(2, 3, noisy))
    features, labels, scores = np.concatenate(features), np.array(labels), np.array(scores)
    val_labels = np.repeat([0, 1], 20)
    val_features = centres[val_labels] + rng.normal(0, 0.5, (40, 2))
    choice = choose_split(scores, labels, features, keep=0.2, val_features=val_features, val_labels=val_labels,
                          seed=0, trials=2)
    assert choice.split == 0.1
    assert choice.validation_accuracy[0.1] >= 0.9
    assert all(acc < 0.5 for g, acc in choice.validation_accuracy.items() if g != 0.1)
    assert choice.seconds > 0


def test_cli_split_auto_holds_out_validation(tmp_path):
    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "d", {"a": 10, "b": 10}, size=32)
    assert main(["score", "--data", str(data), "--levels", "2", "--step", "0.1", "--output", str(tmp_path / "s"), "--quiet"]) == 0
    assert main(["select", "--scores", str(tmp_path / "s"), "--policy", "flexrand", "--split", "auto",
                 "--keep", "0.5", "--output", str(tmp_path / "sel")]) == 0
    val = np.load(tmp_path / "sel" / "validation_indices.npy")
    kept = np.load(tmp_path / "sel" / "keep_0.5" / "keep_indices.npy")
    assert len(val) == 4 and len(kept) == 8 and not set(val) & set(kept)
    m = json.loads((tmp_path / "sel" / "manifest.json").read_text())
    assert m["parameters"]["split"] == "auto" and m["validation_held_out"] == 4
    assert m["fractions"]["keep_0.5"]["split"] in default_grid(0.5)
    assert main(["select", "--scores", str(tmp_path / "s"), "--policy", "random", "--split", "auto",
                 "--keep", "0.5", "--output", str(tmp_path / "bad")]) == 2

