"""Linear probe on separable data; the demo end to end on a small slice."""
import json

import numpy as np

from dlcprune.demo import run_demo
from dlcprune.methods.select import KEEP_GRID
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


def test_demo_is_a_bench_preset_that_report_reads(tmp_path, capsys):
    from dlcprune.cli import main

    out = tmp_path / "demo"
    result = run_demo(levels=3, step=0.1, image_size=32, seeds=2, train_per_class=10, test_per_class=4,
                      output=out, progress=False)
    assert set(result) == {"random", "auto", "full pool"}
    assert all(len(result["auto"][k]) == 2 and len(result["random"][k]) == 2 for k in KEEP_GRID)
    printed = capsys.readouterr().out
    assert "auto vs random on the test split, mean over the 9 keep fractions:" in printed
    assert "advice (--target-drop 1): " in printed and "auto's verdict on the validation split" in printed
    assert printed.count("  keep ") == 9
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0] == "method,keep,seed,accuracy,kept,choice,model_s,select_s,train_s"
    assert len(rows) == 1 + 1 + 9 * 2 * 2  # header, full pool, 2 methods x 9 fractions x 2 seeds
    verdicts = json.loads((out / "verdicts.json").read_text())["auto"]
    assert sorted(verdicts) == [f"{k:g}" for k in KEEP_GRID]
    assert main(["report", str(out)]) == 0 and (out.parent / "demo-report" / "report.html").exists()


def test_the_demo_names_the_method_auto_chose_beside_its_verdict():
    from dlcprune.demo import verdict_text

    chosen = {"chosen": "flexrand-herding", "rule_lower_bound_points": 0.944,
              "verdict": "level with random (+4.78 points [-0.20, +9.56])"}
    assert verdict_text(chosen) == ("flexrand-herding chosen (the rule's lower bound +0.94 validation points) - "
                                    "level with random (+4.78 points [-0.20, +9.56])")
    kept_random = {"chosen": "random", "rule_lower_bound_points": -1.94, "verdict": "level with random: ..."}
    assert verdict_text(kept_random) == "level with random: ..."
