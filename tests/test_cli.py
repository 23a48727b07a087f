"""The real `dlcprune` command on small image folders the tests write, and the bad-input list."""
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlcprune import DlcpruneError
from dlcprune.cli import main
from tests.conftest import write_image_folder


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dlcprune", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """`dlcprune score` once on 64x64 RGB PNGs with the real default encoder."""
    tmp = tmp_path_factory.mktemp("cli")
    data = write_image_folder(tmp / "data", {"cat": 6, "dog": 7, "fox": 5}, size=64)
    out = tmp / "out"
    res = run("score", "--model", "efficientnet_lite0", "--data", str(data), "--image-size", "64",
              "--levels", "4", "--step", "0.05", "--output", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    return data, out


def test_score_writes_the_documented_files(scored):
    data, out = scored
    assert sorted(p.name for p in out.iterdir()) == ["features.npy", "levels.npy", "manifest.json", "scores.csv"]
    rows = list(csv.DictReader(open(out / "scores.csv")))
    assert list(rows[0]) == ["index", "id", "label", "score"]
    assert [r["id"] for r in rows[:2]] == ["cat/img_000.png", "cat/img_001.png"]
    assert [int(r["label"]) for r in rows] == [0] * 6 + [1] * 7 + [2] * 5
    levels = np.load(out / "levels.npy")
    assert levels.shape == (4, 18)
    np.testing.assert_allclose([float(r["score"]) for r in rows], levels.mean(0), rtol=1e-15)
    assert np.load(out / "features.npy").shape == (18, 1280)
    m = json.loads((out / "manifest.json").read_text())
    assert m["method"] == "dlc" and m["parameters"]["levels"] == 4 and m["seed"] == 0
    assert m["model"]["name"] == "efficientnet_lite0" and len(m["model"]["weights_sha256"]) == 64
    assert len(m["dataset"]["fingerprint_sha256"]) == 64 and m["dataset"]["class_sizes"] == [6, 7, 5]
    assert m["sparsity_per_level"][:2] == [0.0, 0.05]
    assert {"plain_pass_s", "masking_loop_s"} <= set(m["timings_s"]) and m["memory"]["rss_peak_mib"] > 0
    assert {"torch", "numpy", "python"} <= set(m["versions"])


def test_select_twice_is_identical_with_exact_class_counts(scored, tmp_path):
    _, out = scored
    for name in ("a", "b"):
        res = run("select", "--scores", str(out), "--policy", "flexrand", "--split", "0.5", "--keep", "0.3,0.5",
                  "--seed", "0", "--output", str(tmp_path / name))
        assert res.returncode == 0, res.stderr
    for keep in ("keep_0.3", "keep_0.5"):
        for f in ("keep_indices.npy", "pruned_indices.npy"):
            assert (tmp_path / "a" / keep / f).read_bytes() == (tmp_path / "b" / keep / f).read_bytes()
    kept, pruned = np.load(tmp_path / "a" / "keep_0.3" / "keep_indices.npy"), np.load(tmp_path / "a" / "keep_0.3" / "pruned_indices.npy")
    assert kept.dtype == np.int64 and np.all(np.diff(kept) > 0) and np.all(np.diff(pruned) > 0)
    assert sorted(np.concatenate([kept, pruned]).tolist()) == list(range(18))
    labels = np.array([0] * 6 + [1] * 7 + [2] * 5)
    assert np.bincount(labels[kept]).tolist() == [round(6 * 0.3), round(7 * 0.3), round(5 * 0.3)]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["method"] == "flexrand" and manifest["parameters"]["split"] == 0.5
    assert manifest["fractions"]["keep_0.3"]["kept_per_class"] == [2, 2, 2]


def test_prune_is_the_complement_of_keep(scored, tmp_path):
    _, out = scored
    assert main(["select", "--scores", str(out), "--policy", "easy", "--prune", "0.75", "--output", str(tmp_path / "p")]) == 0
    assert main(["select", "--scores", str(out), "--policy", "easy", "--keep", "0.25", "--output", str(tmp_path / "k")]) == 0
    assert np.array_equal(np.load(tmp_path / "p/keep_0.25/keep_indices.npy"), np.load(tmp_path / "k/keep_0.25/keep_indices.npy"))


def test_prune_command_scores_then_selects(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 4, "b": 4}, size=32)
    res = run("prune", "--data", str(data), "--levels", "2", "--step", "0.1", "--policy", "random",
              "--keep", "0.5", "--output", str(tmp_path / "out"), "--quiet")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "scores.csv").is_file()
    assert len(np.load(tmp_path / "out" / "selection" / "keep_0.5" / "keep_indices.npy")) == 4


def test_prune_whose_selection_fails_leaves_nothing_and_can_be_rerun(tmp_path, monkeypatch, capsys):
    import dlcprune.methods.select as selecting

    data = write_image_folder(tmp_path / "data", {"a": 4, "b": 4}, size=32)
    args = ["prune", "--data", str(data), "--levels", "2", "--step", "0.1", "--policy", "random", "--keep", "0.5",
            "--output", str(tmp_path / "out"), "--quiet"]

    def fails(*a, **k):  # a selection the data cannot give, found only once the scores exist
        raise DlcpruneError("the selection failed")

    with monkeypatch.context() as patch:
        patch.setattr(selecting, "select", fails)
        assert main(args) == 2 and "the selection failed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(args) == 0


def test_prune_auto_whose_validation_split_a_class_cannot_give_fails_before_scoring(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 6, "b": 2}, size=32)
    res = run("prune", "--data", str(data), "--policy", "auto", "--keep", "0.5", "--output", str(tmp_path / "out"))
    assert res.returncode == 2 and not (tmp_path / "out").exists() and "scored" not in res.stdout
    assert res.stderr == ("error: class 1 has 2 sample(s): a 20% held-out split would leave it with no held-out "
                          "samples; add samples to it, remove the class or choose another --val-fraction\n")


def test_prune_of_a_method_that_needs_dynamics_fails_before_scoring(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 4, "b": 4}, size=32)
    for policy in (["--policy", "el2n"], ["--policy", "auto", "--candidates", "herding,forgetting"]):
        res = run("prune", "--data", str(data), *policy, "--keep", "0.5", "--output", str(tmp_path / "out"))
        assert res.returncode == 2 and not (tmp_path / "out").exists()
        assert res.stderr.startswith(f"error: method '{policy[1] if len(policy) == 2 else 'forgetting'}' needs training "
                                     "dynamics") and "scored" not in res.stdout + res.stderr, res.stderr


def test_select_force_leaves_nothing_of_the_selection_it_replaces(scored, tmp_path):
    _, out = scored
    sel = tmp_path / "sel"
    assert main(["select", "--scores", str(out), "--policy", "auto", "--keep", "0.3,0.5", "--output", str(sel)]) == 0
    assert (sel / "verdict.json").exists() and (sel / "keep_0.5").is_dir()
    assert main(["select", "--scores", str(out), "--policy", "flexrand", "--keep", "0.3", "--output", str(sel),
                 "--force"]) == 0
    assert sorted(p.name for p in sel.iterdir()) == ["keep_0.3", "manifest.json"]


def test_score_or_prune_force_leaves_no_selection_of_other_scores(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 4, "b": 4}, size=32)
    small = ["--levels", "2", "--step", "0.1", "--quiet"]
    assert main(["prune", "--data", str(data), *small, "--policy", "auto", "--keep", "0.25,0.5",
                 "--output", str(tmp_path / "p")]) == 0
    assert main(["prune", "--data", str(data), *small, "--policy", "random", "--keep", "0.75", "--force",
                 "--output", str(tmp_path / "p")]) == 0
    assert sorted(p.name for p in (tmp_path / "p" / "selection").iterdir()) == ["keep_0.75", "manifest.json"]
    assert main(["score", "--data", str(data), *small, "--force", "--output", str(tmp_path / "p")]) == 0
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["features.npy", "levels.npy", "manifest.json",
                                                                  "scores.csv"]
    assert main(["select", "--scores", str(tmp_path / "p"), "--policy", "auto", "--keep", "0.5",
                 "--output", str(tmp_path / "s")]) == 0
    assert main(["score", "--data", str(data), *small, "--force", "--output", str(tmp_path / "s")]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["features.npy", "levels.npy", "manifest.json",
                                                                  "scores.csv"]


def test_list_shows_every_registry():
    res = subprocess.run([sys.executable, "-m", "dlcprune", "list"], capture_output=True, text=True,
                         env={**__import__("os").environ, "COLUMNS": "250"})
    assert res.returncode == 0
    rows = {tuple(c.strip() for c in line.strip("│┃ ").split("│")[:2]) for line in res.stdout.splitlines() if "│" in line}
    kinds = {name: kind for kind, name in rows}
    for name, kind in [("efficientnet_lite0", "model (image encoder)"), ("minilm", "model (text encoder)"),
                       ("smollm2", "model (causal LM)"), ("timm:<name>", "model (image encoder)"),
                       ("hf:<name>", "model (text encoder)"), ("animal-mnist", "dataset"), ("rotten-tomatoes", "dataset"),
                       ("random", "method"), ("flexrand", "method"), ("flexrand-auto", "method"), ("auto", "method"),
                       ("flexrand-herding", "method"), ("el2n", "method"),
                       ("ifd", "method (instruction records)"), ("longest", "method (instruction records)"),
                       ("perplexity", "method (instruction records)"), ("embed-kcenter", "method (instruction records)")]:
        assert kinds.get(name) == kind, (name, kinds.get(name))


def test_interrupted_score_resumes_in_the_same_folder(tmp_path, monkeypatch, capsys):
    """Ctrl-C midway leaves only the checkpoint (exit 130); the same command then finishes the job."""
    from dlcprune.scoring import level_loop

    data = write_image_folder(tmp_path / "data", {"a": 3, "b": 3}, size=32)
    args = lambda out: ["score", "--data", str(data), "--levels", "4", "--step", "0.1", "--output", str(out), "--quiet"]
    assert main(args(tmp_path / "fresh")) == 0

    real, calls = level_loop.level_losses, []

    def interrupted_at_level_3(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(level_loop, "level_losses", interrupted_at_level_3)
    assert main(args(tmp_path / "out")) == 130
    assert "Run the same command again to resume" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".partial"]
    monkeypatch.setattr(level_loop, "level_losses", real)
    assert main(args(tmp_path / "out")) == 0
    assert not (tmp_path / "out" / ".partial").exists()
    assert (tmp_path / "out" / "scores.csv").read_text() == (tmp_path / "fresh" / "scores.csv").read_text()


# ----------------------------------------------------------------------------- bad input


def bad(capsys, args, pattern, output=None):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert re.search(pattern, err), err
    if output is not None:
        assert not Path(output).exists() or not any(Path(output).iterdir()), "no partial output"


def score_args(data, out, *extra):
    return ["score", "--data", str(data), "--levels", "2", "--step", "0.1", "--output", str(out), "--quiet", *extra]


def test_bad_empty_dataset(tmp_path, capsys):
    (tmp_path / "d" / "cls").mkdir(parents=True)
    bad(capsys, score_args(tmp_path / "d", tmp_path / "o"), "no images found", tmp_path / "o")


def test_bad_class_with_one_sample(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", {"a": 3, "b": 1}, size=16)
    bad(capsys, score_args(data, tmp_path / "o"), "class 'b' has 1 sample.*at least 2", tmp_path / "o")


def test_bad_corrupt_image_named_and_nothing_written(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", {"a": 3, "b": 3}, size=16)
    path = data / "b" / "img_002.png"
    path.write_bytes(path.read_bytes()[:50])
    bad(capsys, score_args(data, tmp_path / "o", "--image-size", "16"), r"cannot read image .*b/img_002.png", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_bad_mixed_sizes(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", {"a": 3, "b": 3}, size=16)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(data / "a" / "small.png")
    bad(capsys, score_args(data, tmp_path / "o", "--image-size", "keep"), "different sizes.*--image-size", tmp_path / "o")
    assert main(score_args(data, tmp_path / "o2", "--model", "timm:resnet18", "--weights", "random")) == 0  # default: the model's input
    manifest = json.loads((tmp_path / "o2" / "manifest.json").read_text())
    assert {k: manifest["parameters"][k] for k in ("image_size", "crop_pct", "interpolation")} == {
        "image_size": 224, "crop_pct": 0.95, "interpolation": "bicubic"}  # timm's data config for resnet18


def test_bad_npz_length_mismatch(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", images=np.zeros((5, 8, 8), np.uint8), labels=np.zeros(4, int))
    bad(capsys, score_args(tmp_path / "d.npz", tmp_path / "o"), "5 images but labels of shape \\(4,\\)", tmp_path / "o")


def test_bad_unknown_model(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", {"a": 2, "b": 2}, size=16)
    bad(capsys, score_args(data, tmp_path / "o", "--model", "efficientnet-lite0"), "did you mean: efficientnet_lite0")


def test_bad_nonempty_output_needs_force(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", {"a": 2, "b": 2}, size=32)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("user file")
    bad(capsys, score_args(data, tmp_path / "o"), "exists and is not empty.*--force")
    assert main(score_args(data, tmp_path / "o", "--force")) == 0
    assert (tmp_path / "o" / "mine.txt").read_text() == "user file"


def test_bad_unwritable_output(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", {"a": 2, "b": 2}, size=16)
    (tmp_path / "file").write_text("x")
    bad(capsys, score_args(data, tmp_path / "file" / "out"), "cannot write to output folder")


@pytest.mark.parametrize("keep,pattern", [("0", "keep must be a fraction in \\(0, 1\\]"), ("1.5", "keep must be"),
                                          ("-0.2", "keep must be"), ("abc", "comma-separated fractions")])
def test_bad_keep(scored, tmp_path, capsys, keep, pattern):
    _, out = scored
    bad(capsys, ["select", "--scores", str(out), "--keep", keep, "--output", str(tmp_path / "s")], pattern, tmp_path / "s")


@pytest.mark.parametrize("split", ["0", "1", "1.3"])
def test_bad_split(scored, tmp_path, capsys, split):
    _, out = scored
    bad(capsys, ["select", "--scores", str(out), "--policy", "flexrand", "--split", split, "--keep", "0.5",
                 "--output", str(tmp_path / "s")], "strictly between 0 and 1", tmp_path / "s")


def test_bad_scores_folder(tmp_path, capsys):
    bad(capsys, ["select", "--scores", str(tmp_path), "--keep", "0.5", "--output", str(tmp_path / "s")],
        "scores.csv not found", tmp_path / "s")


def test_bad_image_size_for_the_architecture(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", {"a": 2, "b": 2}, size=16)
    bad(capsys, score_args(data, tmp_path / "o", "--image-size", "keep"), "efficientnet_lite0 failed on 16x16 images.*--image-size", tmp_path / "o")
    bad(capsys, score_args(data, tmp_path / "o", "--image-size", "4"), "--image-size: expected pretrained, keep or a number of pixels >= 8, got '4'", tmp_path / "o")


def test_bad_level_arguments(tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", {"a": 2, "b": 2}, size=16)
    bad(capsys, ["score", "--data", str(data), "--step", "1.5", "--output", str(tmp_path / "o")], "0 < --step < 1")
    bad(capsys, ["score", "--data", str(data), "--levels", "x", "--output", str(tmp_path / "o")], "expected a whole number of levels or 'auto', got 'x'")


def test_select_with_baseline_methods(scored, tmp_path, capsys):
    data, out = scored
    assert main(["select", "--scores", str(out), "--policy", "kcenter", "--keep", "0.5", "--output", str(tmp_path / "k")]) == 0
    manifest = json.loads((tmp_path / "k" / "manifest.json").read_text())
    assert manifest["method"] == "kcenter" and manifest["fractions"]["keep_0.5"]["kept_per_class"] == [3, 4, 2]
    assert manifest["parameters"]["model_s"] >= 0 and "select_s" in manifest["fractions"]["keep_0.5"]
    # a training-dynamics method needs dynamics: one line saying how to get them, nothing written
    bad(capsys, ["select", "--scores", str(out), "--policy", "el2n", "--keep", "0.5", "--output", str(tmp_path / "e")],
        r"method 'el2n' needs training dynamics, and none were recorded: pass --dynamics head", tmp_path / "e")
    assert main(["select", "--scores", str(out), "--policy", "el2n", "--dynamics", "head", "--keep", "0.5",
                 "--output", str(tmp_path / "e")]) == 0
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert manifest["parameters"]["dynamics"].startswith("linear head") and manifest["parameters"]["policy"] == "hard"
    bad(capsys, ["select", "--scores", str(out), "--policy", "herding", "--dynamics", "head", "--keep", "0.5",
                 "--output", str(tmp_path / "h")], r"--dynamics apply to training-dynamics methods \(forgetting, el2n, ...\), not 'herding'")
    bad(capsys, ["select", "--scores", str(out), "--policy", "kcentre", "--keep", "0.5", "--output", str(tmp_path / "x")],
        r"unknown method 'kcentre'; did you mean: kcenter")


def test_finetune_records_dynamics_that_select_reads(scored, tmp_path):
    data, out = scored
    ft = tmp_path / "ft"
    assert main(["finetune", "--data", str(data), "--test-data", str(data), "--image-size", "64", "--trainer", "full",
                 "--epochs", "2", "--batch-size", "8", "--record-dynamics", "--output", str(ft), "--quiet"]) == 0
    assert np.load(ft / "dynamics.npz")["loss"].shape == (2, 18)
    assert main(["select", "--scores", str(out), "--policy", "forgetting", "--dynamics", str(ft / "dynamics.npz"),
                 "--keep", "0.5", "--output", str(tmp_path / "f")]) == 0
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert manifest["parameters"]["dynamics"] == "full fine-tuning" and manifest["fractions"]["keep_0.5"]["kept"] == 9


def test_text_data_gets_the_text_model_and_logs_show_progress_lines(tmp_path):
    """Without --model a CSV of texts is scored with minilm; with stderr redirected (nohup, SLURM),
    progress comes as log lines with counts, rate and ETA, and --quiet silences them."""
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"review number {i} was {'good' if i % 2 else 'bad'},{i % 2}\n" for i in range(12)))
    res = run("score", "--data", str(path), "--levels", "2", "--step", "0.1", "--output", str(tmp_path / "s"))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["model"]["name"] == "minilm"
    lines = [l for l in res.stderr.splitlines() if l.startswith("masked levels: ")]
    assert lines and lines[-1].startswith("masked levels: 12/12 (100%)") and "ETA" in lines[-1]
    quiet = run("score", "--data", str(path), "--levels", "2", "--step", "0.1", "--output", str(tmp_path / "q"), "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_json_summary_is_the_only_stdout(scored, tmp_path):
    _, out = scored
    res = run("select", "--scores", str(out), "--policy", "random", "--keep", "0.5", "--output", str(tmp_path / "j"),
              "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["command"] == "select" and summary["kept"] == {"0.5": 9} and summary["output"] == str(tmp_path / "j")
    assert "random selection of 18 samples" in res.stderr
    assert isinstance(summary["seconds"], float) and summary["seconds"] >= 0  # how long the command took
    data, _ = scored
    pruned = json.loads(run("prune", "--data", str(data), "--image-size", "32", "--levels", "2", "--step", "0.1",
                            "--policy", "random", "--keep", "0.5", "--output", str(tmp_path / "p"), "--json").stdout)
    assert 0 < pruned["scoring_seconds"] <= pruned["seconds"]  # the scoring, and the whole command
    listed = json.loads(run("list", "--json").stdout)
    assert "auto" in listed["methods"] and "smollm2" in listed["models"] and "animal-mnist" in listed["datasets"]
    assert listed["instruction_methods"] == ["longest", "perplexity", "ifd", "embed-kcenter"]


def test_score_force_keeps_the_users_files_that_only_share_a_selections_names(tmp_path):
    """verdict.json / selection/manifest.json are removed only where a selection manifest says they are ours."""
    data = write_image_folder(tmp_path / "data", {"a": 4, "b": 4}, size=32)
    out = tmp_path / "mine"
    (out / "selection").mkdir(parents=True)
    for path in (out / "verdict.json", out / "selection" / "verdict.json", out / "selection" / "manifest.json"):
        path.write_text('{"mine": true}')
    assert main(["score", "--data", str(data), "--levels", "2", "--step", "0.1", "--quiet", "--force",
                 "--output", str(out)]) == 0
    assert sorted(p.name for p in (out / "selection").iterdir()) == ["manifest.json", "verdict.json"]
    assert (out / "verdict.json").read_text() == '{"mine": true}'


def test_numbers_on_the_command_line_are_plain_ascii_with_spaces_allowed():
    from dlcprune.options import decimal_number, whole_number

    assert [whole_number(t) for t in (" 1", "12 ", "007", "+3", "1_0", "\u00b2", "\uff11", "-1", "1.0", "")] == \
        [1, 12, 7, 3, None, None, None, None, None, None]
    assert [decimal_number(t) for t in (" 0.3", ".5", "1.", "1e-2", "-0.1", "0.5_0", "\uff10.5", "nan", "inf", ".")] == \
        [0.3, 0.5, 1.0, 0.01, -0.1, None, None, None, None, None]
