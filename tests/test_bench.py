"""`dlcprune bench`: cells, table, plot, resume, refusal to mix settings."""
import html
import json

import numpy as np

from dlcprune import results

from dlcprune.cli import main


def test_bench_runs_resumes_and_refuses_other_settings(tmp_path, capsys):
    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "d", {"a": 10, "b": 10, "c": 10}, size=32)
    args = ["bench", "--data", str(data), "--levels", "2", "--step", "0.1", "--keep", "0.4,0.8", "--seeds", "2",
            "--methods", "random,easy,auto", "--output", str(tmp_path / "b"), "--quiet"]
    assert main(args) == 0
    out = tmp_path / "b"
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0] == "method,keep,seed,accuracy,kept,choice,model_s,select_s,train_s"
    assert len(rows) - 1 == 1 + 2 * 2 + 2 * 1 + 2 * 2  # full pool; easy is deterministic: one seed
    table = (out / "results.md").read_text()
    assert "| random |" in table and "| auto |" in table and "40%" in table and "| full pool |" in table
    verdicts = json.loads((out / "verdicts.json").read_text())["auto"]
    assert sorted(verdicts) == ["0.4", "0.8"]
    assert all(r.split(",")[5] == verdicts[r.split(",")[1]]["chosen"] for r in rows[1:] if r.startswith("auto,"))
    assert json.loads((out / "timings.json").read_text())["choice_s"]["auto"] > 0
    assert (out / "gap_to_random.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # resume: a finished cell is not recomputed, a new method is added
    before = (out / "results.csv").read_text()
    assert main(args[:-4] + ["random,easy,auto,hard", "--output", str(out), "--quiet"]) == 0
    after = (out / "results.csv").read_text()
    assert after.startswith(before) and after.count("\nhard,") == 2
    # another configuration in the same folder is refused, naming the parameter
    assert main([a if a != "0.1" else "0.2" for a in args]) == 2
    assert "step = 0.1, not 0.2" in capsys.readouterr().err


def test_bench_runs_baselines_with_their_times(tmp_path, capsys):
    import csv

    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "d", {"a": 10, "b": 10, "c": 10}, size=32)
    out = tmp_path / "b"
    assert main(["bench", "--data", str(data), "--levels", "2", "--step", "0.1", "--keep", "0.5", "--seeds", "2",
                 "--methods", "random,herding,kcenter,margin,el2n,ccs", "--dynamics-epochs", "3",
                 "--output", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    seeds = {m: sorted(int(r["seed"]) for r in rows if r["method"] == m) for m in {r["method"] for r in rows}}
    assert seeds == {"random": [0, 1], "herding": [0], "kcenter": [0, 1], "margin": [0], "el2n": [0], "ccs": [0, 1],
                     "full pool": [0]}
    model_s = {r["method"]: float(r["model_s"]) for r in rows}
    assert model_s["random"] == 0.0 and model_s["el2n"] > 0 and model_s["ccs"] >= model_s["kcenter"] > 0
    assert "| el2n |" in (out / "results.md").read_text() and "model s" in (out / "results.md").read_text()
    assert (out / "dynamics.npz").exists()
    assert "training-based score time / DLC score time =" in capsys.readouterr().err
    assert main(["bench", "--data", str(data), "--methods", "random,kcentre", "--output", str(tmp_path / "x"),
                 "--quiet"]) == 2
    assert "unknown method 'kcentre'; did you mean: kcenter" in capsys.readouterr().err


FULL_ARGS = ["--levels", "2", "--step", "0.1", "--image-size", "32", "--keep", "0.5", "--seeds", "2", "--trainer", "full", "--epochs", "3",
             "--methods", "random,herding,forgetting", "--quiet"]


def test_bench_full_fine_tuning_protocol(tmp_path, capsys):
    """Every method runs every seed (the seed seeds the training too), the full pool once per seed, its
    seed-0 run records the dynamics (charged to forgetting) and the learning curve; time-to-accuracy."""
    import csv

    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "d", {"a": 8, "b": 8, "c": 8}, size=32)
    out = tmp_path / "b"
    assert main(["bench", "--data", str(data), *FULL_ARGS, "--output", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    seeds = {m: sorted(int(r["seed"]) for r in rows if r["method"] == m) for m in {r["method"] for r in rows}}
    assert seeds == {"full pool": [0, 1], "random": [0, 1], "herding": [0, 1], "forgetting": [0, 1]}
    full0 = next(r for r in rows if r["method"] == "full pool" and r["seed"] == "0")
    dynamics = np.load(out / "dynamics.npz")
    assert dynamics["loss"].shape == (3, int(full0["kept"]))  # 3 epochs x the pool
    assert json.loads(str(dynamics["meta"]))["trainer"] == "full fine-tuning (the seed-0 full-pool fine-tuning run)"
    forgetting = [r for r in rows if r["method"] == "forgetting"]
    assert all(abs(float(r["model_s"]) - float(full0["train_s"])) < 1e-2 for r in forgetting)
    curves = json.loads((out / "curves.json").read_text())
    assert len(curves["fine-tuning"]) == 3 and curves["fine-tuning"][-1] == float(full0["accuracy"])
    summary = json.loads((out / "time_to_accuracy.json").read_text())
    assert {(c["method"], c["keep"]) for c in summary["cells"]} == {("random", 0.5), ("herding", 0.5), ("forgetting", 0.5)}
    full_s = np.mean([float(r["train_s"]) for r in rows if r["method"] == "full pool"])
    assert summary["feature_s_per_sample"] > 0  # the cpu recipe's probe-started head reads features
    assert summary["full"]["seconds"] == round(full_s + summary["feature_s_per_sample"] * int(full0["kept"]), 2)
    for name in ("learning_curve.png", "time_to_accuracy.png", "gap_to_random.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    err = capsys.readouterr().err
    assert "time to accuracy: " in err and summary["headline"].split(" (")[0] in err.replace("\n", " ")
    gaps = results.gaps_to_random(results.read_rows(out / "results.csv"))
    assert f"herding {gaps['herding']:+.2f} points" in err.replace("\n", " ")  # the headline against random
    assert not list((out / "checkpoints").iterdir())  # every cell finished: no checkpoint left
    assert main(["report", str(out), "--output", str(tmp_path / "r"), "--quiet"]) == 0
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Full fine-tuning: time to accuracy" in page and html.escape(summary["headline"]) in page
    assert page.count("<td>50%</td>") >= 3  # a row per method at keep 50%
    # the recipe is part of the benchmark's identity
    four_epochs = [a if a != "3" else "4" for a in FULL_ARGS]
    assert main(["bench", "--data", str(data), *four_epochs, "--output", str(out)]) == 2
    assert "recipe" in capsys.readouterr().err


KILLER = """
import importlib, os, signal, sys
ft, calls = importlib.import_module("dlcprune.training.finetune"), []
real = ft._save_checkpoint
def killing(*a, **k):
    calls.append(1)
    if len(calls) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
ft._save_checkpoint = killing
from dlcprune.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_bench_full_killed_in_a_cell_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    import csv
    import importlib
    import signal
    import subprocess
    import sys

    from tests.conftest import write_image_folder

    ft = importlib.import_module("dlcprune.training.finetune")
    real, saves = ft._save_checkpoint, []
    monkeypatch.setattr(ft, "_save_checkpoint", lambda *a, **k: (saves.append(1), real(*a, **k)))
    data = write_image_folder(tmp_path / "d", {"a": 8, "b": 8, "c": 8}, size=32)
    args = lambda out: ["bench", "--data", str(data), *FULL_ARGS, "--threads", "1", "--output", str(out)]
    accuracies = lambda out: {(r["method"], r["seed"]): r["accuracy"] for r in csv.DictReader(open(out / "results.csv"))}
    assert main(args(tmp_path / "clean")) == 0
    clean_saves = len(saves)
    assert clean_saves == 2 * 8  # 8 cells of 3 epochs: a checkpoint after epochs 1 and 2 of each
    # killed before its 2nd / 8th save: in the full pool's seed 0 (which records the dynamics) / in random's
    # seed 1, each time with the previous epoch's checkpoint on disk
    for when in (2, 8):
        out = tmp_path / f"killed{when}"
        killed = subprocess.run([sys.executable, "-c", KILLER, str(when), *args(out)], capture_output=True, text=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        assert list((out / "checkpoints").iterdir())  # killed inside a cell
        saves.clear()
        assert main(args(out)) == 0
        assert len(saves) == clean_saves - when + 1  # resumed after epoch 1 of the killed cell, not from scratch
        assert accuracies(out) == accuracies(tmp_path / "clean")
        for key in ("loss", "margin"):
            assert np.array_equal(np.load(out / "dynamics.npz")[key], np.load(tmp_path / "clean" / "dynamics.npz")[key])
