"""`dlcprune bench`: cells, table, plot, resume, refusal to mix settings."""
import json

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
