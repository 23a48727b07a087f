"""Linear probe on separable data; the demo end to end on a small slice."""
import numpy as np

from dlcprune.demo import KEEPS, run_demo
from dlcprune.training import train_linear_probe


def test_probe_separates_separable_classes():
    rng = np.random.default_rng(0)
    centres = np.array([[5, 0, 0], [0, 5, 0], [0, 0, 5], [-5, -5, -5]], dtype=float)
    labels = np.repeat(np.arange(4), 30)
    x = centres[labels] + rng.normal(0, 0.5, (120, 3))
    probe = train_linear_probe(x[::2], labels[::2], num_classes=4)
    assert probe.accuracy(x[::2], labels[::2]) == 1.0
    assert probe.accuracy(x[1::2], labels[1::2]) == 1.0
    again = train_linear_probe(x[::2], labels[::2], num_classes=4)
    assert np.array_equal(probe.weight_.numpy(), again.weight_.numpy())


def test_probe_loss_goes_down_with_iterations():
    rng = np.random.default_rng(1)
    x, labels = rng.normal(size=(200, 10)), rng.integers(0, 3, 200)
    x[:, 0] += labels * 1.5
    short = train_linear_probe(x, labels, num_classes=3, max_iter=1)
    long = train_linear_probe(x, labels, num_classes=3, max_iter=100)
    assert long.accuracy(x, labels) > short.accuracy(x, labels)


def test_demo_runs_end_to_end_on_a_small_slice(tmp_path, capsys):
    result = run_demo(levels=3, step=0.1, image_size=32, seeds=2, train_per_class=8, test_per_class=4,
                      output=tmp_path / "demo", progress=False)
    assert set(result.accuracy) == {"flexrand", "random", "easy", "hard"}
    assert all(len(result.accuracy["flexrand"][k]) == 2 and len(result.accuracy["easy"][k]) == 1 for k in KEEPS)
    assert 0.0 <= result.full <= 1.0
    printed = capsys.readouterr().out
    assert "DLC + FlexRand" in printed and "mean" in printed and "90%" in printed
    rows = (tmp_path / "demo" / "results.csv").read_text().splitlines()
    assert rows[0] == "policy,keep,seed,test_accuracy" and len(rows) == 1 + 9 * (2 + 2 + 1 + 1) + 1
    assert (tmp_path / "demo" / "scores.csv").is_file()
