"""Fault injection: every failure a user can cause ends in one `error:` line (or the interrupt line),
the documented exit status, no traceback, nothing half-written, and the input bytes unchanged.

Each case makes its inputs in a fresh folder, runs the real command line, and checks all of that.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlcprune.cli import main
from tests.conftest import save_tiny_llama, write_image_folder

ROOT = Path(__file__).resolve().parents[1]


def digest(paths) -> dict:
    """sha256 of every file under the given paths (inputs must not change)."""
    out = {}
    for p in paths:
        p = Path(p)
        for f in sorted([p] if p.is_file() else p.rglob("*")):
            if f.is_file() and not f.is_symlink():
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def images(tmp, per_class=None, **kw):
    return write_image_folder(tmp / "data", per_class or {"a": 3, "b": 3}, size=32, **kw)


def scored(tmp):
    data = images(tmp)
    assert main(["score", "--data", str(data), "--levels", "2", "--step", "0.1", "--output", str(tmp / "s"),
                 "--quiet"]) == 0
    return tmp / "s"


def npz(tmp, images_, labels):
    path = tmp / "d.npz"
    np.savez(path, images=images_, labels=labels)
    return path


def tiny_lm_folder(tmp):
    return save_tiny_llama(tmp / "lm", context=64)


def alpaca(tmp, lines=None):
    path = tmp / "records.jsonl"
    rows = lines or [json.dumps({"instruction": "Say", "input": f"item {i}", "output": "yes" if i % 2 else "no"})
                     for i in range(6)]
    path.write_bytes(("\n".join(rows) + "\n").encode() if isinstance(rows[0], str) else b"\n".join(rows) + b"\n")
    return path


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])


# (name, setup(tmp) -> (args, inputs, output), expected status, message pattern)
CASES = []


def case(name, status=2, pattern=""):
    def add(setup):
        CASES.append(pytest.param(setup, status, pattern, id=name))
        return setup
    return add


@case("empty-folder", pattern="no images found")
def _(tmp):
    (tmp / "data").mkdir()
    return ["score", "--data", str(tmp / "data")], [tmp / "data"], tmp / "o"


@case("missing-path", pattern="no such dataset or path")
def _(tmp):
    return ["score", "--data", str(tmp / "nope")], [], tmp / "o"


@case("one-class", pattern="has one class")
def _(tmp):
    data = images(tmp, {"a": 4})
    return ["score", "--data", str(data)], [data], tmp / "o"


@case("class-with-one-sample", pattern="class 'b' has 1 sample")
def _(tmp):
    data = images(tmp, {"a": 3, "b": 1})
    return ["score", "--data", str(data)], [data], tmp / "o"


@case("corrupt-image", pattern=r"cannot read image .*img_001.png")
def _(tmp):
    data = images(tmp)
    (data / "a" / "img_001.png").write_bytes(b"not a png at all")
    return ["score", "--data", str(data)], [data], tmp / "o"


@case("truncated-image", pattern=r"cannot read image .*img_002.png")
def _(tmp):
    data = images(tmp)
    truncate(data / "b" / "img_002.png")
    return ["score", "--data", str(data), "--image-size", "32"], [data], tmp / "o"


@case("truncated-image-in-a-worker", pattern=r"cannot read image .*img_002.png")
def _(tmp):
    data = images(tmp)
    truncate(data / "b" / "img_002.png")
    return ["score", "--data", str(data), "--image-size", "32", "--workers", "2"], [data], tmp / "o"


@case("broken-link", pattern=r"cannot read image .*img_000.png")
def _(tmp):
    data = images(tmp)
    (data / "a" / "img_000.png").unlink()
    (data / "a" / "img_000.png").symlink_to(tmp / "gone.png")
    return ["score", "--data", str(data)], [data], tmp / "o"


@case("decompression-bomb", pattern="more pixels than the safety limit.*DLCPRUNE_MAX_IMAGE_PIXELS")
def _(tmp):
    from PIL import Image as PILImage

    data = images(tmp)
    PILImage.fromarray(np.zeros((400, 400, 3), np.uint8)).save(data / "a" / "img_000.png")
    PILImage.MAX_IMAGE_PIXELS = 1000  # restored by the fixture
    return ["score", "--data", str(data), "--image-size", "32"], [data], tmp / "o"


@case("mixed-sizes", pattern="different sizes.*--image-size")
def _(tmp):
    data = images(tmp)
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(data / "a" / "img_000.png")
    return ["score", "--data", str(data), "--image-size", "keep"], [data], tmp / "o"


@case("truncated-npz", pattern=r"d.npz")
def _(tmp):
    path = npz(tmp, np.zeros((4, 8, 8), np.uint8), np.array([0, 0, 1, 1]))
    truncate(path)
    return ["score", "--data", str(path)], [path], tmp / "o"


@case("npz-of-empty-images", pattern=r"(empty|0x0|zero)")
def _(tmp):
    path = npz(tmp, np.zeros((4, 0, 0, 3), np.uint8), np.array([0, 0, 1, 1]))
    return ["score", "--data", str(path)], [path], tmp / "o"


@case("npz-labels-mismatch", pattern=r"4 images but labels of shape \(3,\)")
def _(tmp):
    path = npz(tmp, np.zeros((4, 8, 8), np.uint8), np.array([0, 0, 1]))
    return ["score", "--data", str(path)], [path], tmp / "o"


@case("junk-weights", pattern="weights")
def _(tmp):
    data = images(tmp)
    (tmp / "w.safetensors").write_bytes(b"junk")
    return ["score", "--data", str(data), "--model", "timm:resnet18", "--weights", str(tmp / "w.safetensors")], \
        [data, tmp / "w.safetensors"], tmp / "o"


@case("cuda-without-gpu", pattern="--device cuda: no CUDA GPU")
def _(tmp):
    data = images(tmp)
    return ["score", "--data", str(data), "--device", "cuda"], [data], tmp / "o"


@case("device-foo", pattern="expected cpu, cuda, cuda:N or mps, got 'foo'")
def _(tmp):
    return ["score", "--data", str(tmp), "--device", "foo"], [], tmp / "o"


@case("batch-size-0", pattern="--batch-size: expected a whole number >= 1")
def _(tmp):
    return ["score", "--data", str(tmp), "--batch-size", "0"], [], tmp / "o"


@case("too-many-levels", pattern="reach a sparsity of .*past 99.9%")
def _(tmp):
    data = images(tmp)
    return ["score", "--data", str(data), "--levels", "1000"], [data], tmp / "o"


@case("levels-not-a-number", pattern="expected a whole number of levels or 'auto'")
def _(tmp):
    return ["score", "--data", str(tmp), "--levels", "many"], [], tmp / "o"


@case("unknown-model", pattern="did you mean: efficientnet_lite0")
def _(tmp):
    data = images(tmp)
    return ["score", "--data", str(data), "--model", "efficientnet-lite0"], [data], tmp / "o"


@case("causal-lm-for-images", pattern="'smollm2' is a causal language model")
def _(tmp):
    data = images(tmp)
    return ["score", "--data", str(data), "--model", "smollm2"], [data], tmp / "o"


@case("output-is-a-file", pattern="exists and is not a folder")
def _(tmp):
    data = images(tmp)
    (tmp / "o").write_text("mine")
    return ["score", "--data", str(data)], [data, tmp / "o"], tmp / "o"


@case("output-inside-the-data", pattern="is inside the input folder")
def _(tmp):
    data = images(tmp)
    return ["score", "--data", str(data)], [data], data / "scores"


@case("output-is-the-data-with-force", pattern="is inside the input folder")
def _(tmp):
    data = images(tmp)
    return ["score", "--data", str(data), "--force"], [data], data


@case("output-not-empty", pattern="exists and is not empty.*--force")
def _(tmp):
    data = images(tmp)
    (tmp / "o").mkdir()
    (tmp / "o" / "keep.txt").write_text("mine")
    return ["score", "--data", str(data)], [data, tmp / "o"], tmp / "o"


@case("output-locked-by-a-live-run", pattern=r"another dlcprune run \(process \d+\) is writing")
def _(tmp):
    data = images(tmp)
    (tmp / "o").mkdir()
    (tmp / "o" / ".dlcprune.lock").write_text(str(os.getppid()))  # pytest's parent: alive
    return ["score", "--data", str(data)], [data, tmp / "o"], tmp / "o"


@case("select-missing-scores", pattern="scores.csv not found")
def _(tmp):
    return ["select", "--scores", str(tmp / "nope"), "--keep", "0.5"], [], tmp / "o"


@case("select-keep-zero", pattern="--keep must be a fraction in")
def _(tmp):
    s = scored(tmp)
    return ["select", "--scores", str(s), "--keep", "0"], [s], tmp / "o"


@case("select-keep-above-one", pattern="--keep must be a fraction in")
def _(tmp):
    s = scored(tmp)
    return ["select", "--scores", str(s), "--keep", "1.5"], [s], tmp / "o"


@case("select-keep-repeated", pattern=r"--keep: 0.5 given more than once in '0.5,0.3,0.5'")
def _(tmp):
    return ["select", "--scores", str(tmp), "--keep", "0.5,0.3,0.5"], [], tmp / "o"


@case("select-keep-empty-entry", pattern=r"--keep: expected comma-separated fractions like 0.1,0.5, got '0.1,,0.3'")
def _(tmp):
    return ["select", "--scores", str(tmp), "--keep", "0.1,,0.3"], [], tmp / "o"


@case("select-keep-with-an-underscore", pattern=r"--keep: expected comma-separated fractions like 0.1,0.5, got '0.5_0'")
def _(tmp):
    return ["select", "--scores", str(tmp), "--keep", "0.5_0"], [], tmp / "o"


@case("select-keep-non-ascii-digits", pattern=r"--keep: expected comma-separated fractions")
def _(tmp):
    return ["select", "--scores", str(tmp), "--keep", "\uff10.\uff15"], [], tmp / "o"  # full-width 0.5


@case("threads-superscript", pattern=r"--threads: expected auto or a whole number from 1 to")
def _(tmp):
    return ["select", "--scores", str(tmp), "--keep", "0.5", "--threads", "\u00b2"], [], tmp / "o"


@case("select-val-fraction-without-auto", pattern=r"--val-fraction applies to the auto methods \(auto, flexrand-auto\), not 'easy'")
def _(tmp):
    return ["select", "--scores", str(tmp), "--policy", "easy", "--keep", "0.5", "--val-fraction", "0.3"], [], tmp / "o"


@case("select-link-without-imagefolder", pattern=r"--link applies to --export imagefolder")
def _(tmp):
    return ["select", "--scores", str(tmp), "--keep", "0.5", "--export", "csv", "--link"], [], tmp / "o"


@case("select-data-without-export", pattern=r"--data applies with --export")
def _(tmp):
    return ["select", "--scores", str(tmp), "--keep", "0.5", "--data", str(tmp)], [], tmp / "o"


@case("report-of-data-changed-since-scoring",
      pattern=r"data, the data this scores folder records, no longer matches its scores.csv \(different size, labels or sample ids\)")
def _(tmp):
    s = scored(tmp)  # images a/ and b/, 3 each; one file moved each way: same sizes, same labels, other samples
    (tmp / "data" / "a" / "img_000.png").rename(tmp / "data" / "b" / "img_003.png")
    (tmp / "data" / "b" / "img_000.png").rename(tmp / "data" / "a" / "img_003.png")
    return ["report", str(s)], [s, tmp / "data"], tmp / "o"


@case("select-scores-truncated", pattern=r"scores.csv has 4 rows but its manifest.json records 6 samples; was it edited")
def _(tmp):
    s = scored(tmp)
    lines = (s / "scores.csv").read_text().splitlines(keepends=True)
    (s / "scores.csv").write_text("".join(lines[:5]))
    return ["select", "--scores", str(s), "--policy", "random", "--keep", "0.5"], [s], tmp / "o"


@case("select-scores-label-beyond-classes", pattern=r"label 7 is beyond the 2 classes in its manifest.json")
def _(tmp):
    s = scored(tmp)
    text = (s / "scores.csv").read_text().splitlines(keepends=True)
    index, sid, _, score = text[1].split(",")
    (s / "scores.csv").write_text("".join([text[0], f"{index},{sid},7,{score}", *text[2:]]))
    return ["select", "--scores", str(s), "--policy", "random", "--keep", "0.5"], [s], tmp / "o"


@case("select-scores-class-sizes-edited", pattern=r"samples per class differ from the class sizes in its manifest")
def _(tmp):
    s = scored(tmp)
    text = (s / "scores.csv").read_text().splitlines(keepends=True)
    index, sid, label, score = text[1].split(",")
    (s / "scores.csv").write_text("".join([text[0], f"{index},{sid},{1 - int(label)},{score}", *text[2:]]))
    return ["select", "--scores", str(s), "--policy", "random", "--keep", "0.5"], [s], tmp / "o"


@case("select-manifest-not-json", pattern=r"manifest.json is not valid JSON .*; was it edited or cut short")
def _(tmp):
    s = scored(tmp)
    truncate(s / "manifest.json")
    return ["select", "--scores", str(s), "--policy", "random", "--keep", "0.5"], [s], tmp / "o"


@case("select-into-the-scores-folder", pattern="is inside the input folder")
def _(tmp):
    s = scored(tmp)
    return ["select", "--scores", str(s), "--policy", "random", "--keep", "0.5", "--force"], [s], s


@case("select-seed-negative", pattern="--seed: expected a whole number >= 0")
def _(tmp):
    return ["select", "--scores", str(tmp), "--keep", "0.5", "--seed", "-1"], [], tmp / "o"


@case("select-unknown-policy", pattern="unknown method 'flexrnd'; did you mean: flexrand")
def _(tmp):
    s = scored(tmp)
    return ["select", "--scores", str(s), "--policy", "flexrnd", "--keep", "0.5"], [s], tmp / "o"


@case("select-split-out-of-range", pattern="--split .*strictly between 0 and 1")
def _(tmp):
    s = scored(tmp)
    return ["select", "--scores", str(s), "--policy", "flexrand", "--split", "1.2", "--keep", "0.5"], [s], tmp / "o"


@case("select-bad-target-drop", pattern="--target-drop is in points")
def _(tmp):
    s = scored(tmp)
    return ["select", "--scores", str(s), "--target-drop", "-2"], [s], tmp / "o"


@case("select-bad-candidates", pattern="unknown candidate method 'herdin'")
def _(tmp):
    s = scored(tmp)
    return ["select", "--scores", str(s), "--candidates", "herdin", "--keep", "0.5"], [s], tmp / "o"


@case("select-manifest-not-an-object", pattern=r"manifest.json holds no manifest \(a JSON object\)")
def _(tmp):
    s = scored(tmp)
    (s / "manifest.json").write_text("[]")
    return ["select", "--scores", str(s), "--policy", "random", "--keep", "0.5"], [s], tmp / "o"


@case("report-manifest-null", pattern=r"manifest.json holds no manifest \(a JSON object\)")
def _(tmp):
    s = scored(tmp)
    (s / "manifest.json").write_text("null")
    return ["report", str(s)], [s], tmp / "o"


@case("select-features-cut-short", pattern=r"features.npy cannot be read as a float array .*re-run `dlcprune score`")
def _(tmp):
    s = scored(tmp)
    truncate(s / "features.npy")
    return ["select", "--scores", str(s), "--policy", "herding", "--keep", "0.5"], [s], tmp / "o"


@case("select-features-of-objects", pattern=r"features.npy cannot be read as a float array")
def _(tmp):
    s = scored(tmp)
    np.save(s / "features.npy", np.array([[object()]] * 6, dtype=object), allow_pickle=True)
    return ["select", "--scores", str(s), "--policy", "herding", "--keep", "0.5"], [s], tmp / "o"


@pytest.mark.parametrize("policy", ["herding", "auto"])
def test_nan_features_are_refused_by_every_method_that_reads_them(tmp_path, capsys, policy):
    s = scored(tmp_path)
    features = np.load(s / "features.npy")
    features[3, 1] = np.nan
    np.save(s / "features.npy", features)
    capsys.readouterr()
    assert main(["select", "--scores", str(s), "--policy", policy, "--keep", "0.5", "--output", str(tmp_path / "o"),
                 "--quiet"]) == 2
    assert capsys.readouterr().err == (f"error: {s / 'features.npy'}: the features of 1 sample(s) hold NaN or inf; "
                                       "re-run `dlcprune score` to write it again\n")
    assert not (tmp_path / "o").exists()


@case("select-malformed-scores", pattern="malformed row")
def _(tmp):
    s = scored(tmp)
    (s / "scores.csv").write_text("index,id,label,score\n0,a,0,zero\n")
    return ["select", "--scores", str(s), "--policy", "random", "--keep", "0.5"], [s], tmp / "o"


@case("csv-not-utf8", pattern=r"line 3, byte \d+: not UTF-8")
def _(tmp):
    path = tmp / "t.csv"
    path.write_bytes(b"text,label\ngood film,1\nbad \xff film,0\n")
    return ["score", "--model", "minilm", "--data", str(path)], [path], tmp / "o"


@case("compile-a-text-encoder", pattern="compile applies to image encoders; 'minilm' is a text encoder")
def _(tmp):
    path = tmp / "t.csv"
    path.write_text("text,label\ngood film,1\nbad film,0\nfine film,1\nawful film,0\n")
    return ["score", "--model", "minilm", "--compile", "--data", str(path)], [path], tmp / "o"


@case("jsonl-not-utf8", pattern=r"line 2, byte \d+: not UTF-8")
def _(tmp):
    path = alpaca(tmp, [b'{"instruction": "a", "output": "b"}', b'{"instruction": "\xff", "output": "b"}'])
    return ["instruct", "--data", str(path), "--model", str(tmp / "lm")], [path], tmp / "o"


@case("instruct-empty-response", pattern=r"2 record\(s\) have an empty response \(line 2, line 3\): nothing to score")
def _(tmp):
    path = alpaca(tmp, [json.dumps({"instruction": "a", "output": o}) for o in ("b", "", "  \n", "c")])
    return ["instruct", "--data", str(path), "--model", str(tmp / "lm")], [path], tmp / "o"


@case("instruct-on-an-image-folder", pattern=r"is a folder but no Hugging Face save_to_disk folder; instruction records")
def _(tmp):
    data = images(tmp)
    return ["instruct", "--data", str(data), "--model", str(tmp / "lm")], [data], tmp / "o"


@case("report-of-a-folder-that-holds-no-scores", pattern=r"scores.csv not found; expected a scores folder")
def _(tmp):
    data = images(tmp)
    return ["report", str(data)], [data], tmp / "o"


@case("instruct-max-length-1", pattern="--max-length 1: it must leave room")
def _(tmp):
    path, lm = alpaca(tmp), tiny_lm_folder(tmp)
    return ["instruct", "--data", str(path), "--model", str(lm), "--max-length", "1"], [path, lm], tmp / "o"


@case("instruct-max-length-beyond-context", pattern=r"fit the model's context \(64 tokens")
def _(tmp):
    path, lm = alpaca(tmp), tiny_lm_folder(tmp)
    return ["instruct", "--data", str(path), "--model", str(lm), "--max-length", "4096"], [path, lm], tmp / "o"


@case("instruct-empty-model-folder", pattern="cannot load causal LM .*holds no config.json; a causal LM folder is")
def _(tmp):
    path = alpaca(tmp)
    (tmp / "empty").mkdir()
    return ["instruct", "--data", str(path), "--model", str(tmp / "empty")], [path], tmp / "o"


@case("instruct-model-folder-without-a-tokenizer", pattern=r"cannot load causal LM .*: .*[^:\s]$")  # not cut off
def _(tmp):
    path = alpaca(tmp)
    folder = tiny_lm_folder(tmp)
    for f in folder.iterdir():
        if "token" in f.name:
            f.unlink()
    return ["instruct", "--data", str(path), "--model", str(folder)], [path, folder], tmp / "o"


@case("instruct-batch-size-0", pattern="--batch-size: expected a whole number >= 1")
def _(tmp):
    return ["instruct", "--data", str(tmp), "--batch-size", "0"], [], tmp / "o"


@case("finetune-batch-size-0", pattern="--batch-size: expected a whole number >= 1")
def _(tmp):
    return ["finetune", "--data", str(tmp), "--test-data", str(tmp), "--batch-size", "0"], [], tmp / "o"


@case("finetune-indices-from-another-dataset", pattern="--indices were made on another dataset")
def _(tmp):
    s = scored(tmp)
    assert main(["select", "--scores", str(s), "--policy", "random", "--keep", "0.5", "--output",
                 str(tmp / "sel")]) == 0
    other = write_image_folder(tmp / "other", {"a": 3, "b": 3}, size=32, seed=5)
    return ["finetune", "--data", str(other), "--test-data", str(other), "--indices",
            str(tmp / "sel" / "keep_0.5" / "keep_indices.npy")], [other, tmp / "sel"], tmp / "o"


@case("bench-into-a-folder-of-the-user", pattern=r"exists and is not empty; choose another --output or pass --force")
def _(tmp):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "results.csv").write_text("my results\n")
    return ["bench", "--data", "animal-mnist"], [tmp / "mine"], tmp / "mine"


@case("demo-into-a-folder-of-the-user", pattern=r"exists and is not empty; choose another --output$")
def _(tmp):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("mine\n")
    return ["demo"], [tmp / "mine"], tmp / "mine"


@case("lora-into-the-model-folder", pattern="is inside the input folder .*lm; dlcprune never writes")
def _(tmp):
    path, lm = alpaca(tmp), tiny_lm_folder(tmp)
    (lm / "README.md").write_text("# my model card\n")  # PEFT would prepend its metadata to it
    return ["lora", "--data", str(path), "--model", str(lm), "--device", "cpu", "--force"], [path, lm], lm


@case("instruct-into-the-model-folder", pattern="is inside the input folder .*lm; dlcprune never writes")
def _(tmp):
    path, lm = alpaca(tmp), tiny_lm_folder(tmp)
    return ["instruct", "--data", str(path), "--model", f"hf:{lm}", "--device", "cpu", "--force"], [path, lm], lm / "o"


@case("score-into-a-text-model-folder", pattern="is inside the input folder .*lm; dlcprune never writes")
def _(tmp):
    path, lm = alpaca(tmp), tiny_lm_folder(tmp)
    return ["score", "--data", str(path), "--model", f"hf:{lm}", "--force"], [path, lm], lm / "scores"


@case("lora-negative-learning-rate", pattern=r"--lr must be a finite number > 0, got -1$")
def _(tmp):
    path = alpaca(tmp)
    return ["lora", "--data", str(path), "--model", str(tmp / "lm"), "--lr", "-1"], [path], tmp / "o"


@case("lora-infinite-learning-rate", pattern=r"--lr must be a finite number > 0, got inf$")
def _(tmp):
    path = alpaca(tmp)
    return ["lora", "--data", str(path), "--model", str(tmp / "lm"), "--lr", "1e999"], [path], tmp / "o"


@case("lora-diverging", pattern=r"LoRA training diverged .*lower the learning rate \(it is 1e\+30\)$")
def _(tmp):
    path, lm = alpaca(tmp), tiny_lm_folder(tmp)
    return ["lora", "--data", str(path), "--model", str(lm), "--device", "cpu", "--lr", "1e30", "--epochs", "3",
            "--batch-size", "2"], [path, lm], tmp / "o"


@case("lora-lm-eval-of-no-task", pattern=r"--lm-eval ',' names no task")
def _(tmp):
    path = alpaca(tmp)
    return ["lora", "--data", str(path), "--model", str(tmp / "lm"), "--lm-eval", ","], [path], tmp / "o"


@case("instruct-hf-split-of-a-file", pattern=r"records.jsonl is a file: leave out --hf-split")
def _(tmp):
    path, lm = alpaca(tmp), tiny_lm_folder(tmp)
    return ["instruct", "--data", str(path), "--model", str(lm), "--device", "cpu", "--hf-split", "test"], [path], tmp / "o"


@case("score-hf-split-of-an-image-folder", pattern=r"picks a split of a Hugging Face save_to_disk folder; .*data is not one")
def _(tmp):
    data = images(tmp)
    return ["score", "--data", str(data), "--hf-split", "test"], [data], tmp / "o"


@case("instruct-keeps-sharing-a-folder", pattern=r"the kept fractions 0.1 and 0.1000001 would both be written to keep_0.1/")
def _(tmp):
    path, lm = alpaca(tmp), tiny_lm_folder(tmp)
    return ["instruct", "--data", str(path), "--model", str(lm), "--keep", "0.1,0.1000001"], [path], tmp / "o"


@case("instruct-response-of-no-token", pattern=r"1 record\(s\) \(line 2\) have a response that .* turns into no token")
def _(tmp):
    path = alpaca(tmp, [json.dumps({"instruction": "Say", "output": "yes"}),
                        json.dumps({"instruction": "Say", "output": "\u0007\u200b"})])
    lm = tiny_lm_folder(tmp)
    return ["instruct", "--data", str(path), "--model", str(lm), "--device", "cpu", "--levels", "2"], [path], tmp / "o"


@case("finetune-indices-as-a-mask", pattern=r"repeats 4 of its 6 positions \(it looks like a 0/1 mask: save np.flatnonzero")
def _(tmp):
    data = images(tmp)
    np.save(tmp / "mask.npy", (np.arange(6) % 2).astype(np.uint8))
    return ["finetune", "--data", str(data), "--test-data", str(data), "--indices", str(tmp / "mask.npy")], [data], tmp / "o"


@case("finetune-indices-as-a-boolean-mask", pattern=r"mask.npy: indices are positions, and these are a boolean mask: pass np.flatnonzero")
def _(tmp):
    data = images(tmp)
    np.save(tmp / "mask.npy", np.arange(6) % 2 == 0)
    return ["finetune", "--data", str(data), "--test-data", str(data), "--indices", str(tmp / "mask.npy")], [data], tmp / "o"


@case("select-keeps-sharing-a-folder", pattern=r"the kept fractions 0.1 and 0.1000001 would both be written to keep_0.1/")
def _(tmp):
    s = scored(tmp)
    return ["select", "--scores", str(s), "--policy", "random", "--prune", "0.9,0.8999999"], [s], tmp / "o"


@case("bench-a-method-named-twice", pattern=r"--methods names random more than once; name each method once")
def _(tmp):
    data = images(tmp)
    return ["bench", "--data", str(data), "--methods", "random,herding,random", "--levels", "2"], [data], tmp / "o"


@case("finetune-a-batch-of-one-for-batchnorm", pattern=r"a batch of 1 sample\(s\) at \(32, 32\) px leaves the encoder's BatchNorm")
def _(tmp):
    data = images(tmp, {"a": 3, "b": 2})
    return ["finetune", "--data", str(data), "--test-data", str(data), "--trainer", "full", "--recipe", "paper",
            "--epochs", "1", "--batch-size", "4", "--image-size", "32"], [data], tmp / "o"


@case("prune-export-the-data-cannot-give", pattern=r"export csv writes rows of a .csv file, and .*data is not one")
def _(tmp):
    data = images(tmp)
    return ["prune", "--data", str(data), "--levels", "2", "--policy", "random", "--keep", "0.5", "--export", "csv"], \
        [data], tmp / "o"


@case("score-weights-that-are-not-weights", pattern=r"cannot load the weights .*junk.pth into efficientnet_lite0 \(")
def _(tmp):
    data = images(tmp)
    (tmp / "junk.pth").write_bytes(b"not a state dict")
    return ["score", "--data", str(data), "--weights", str(tmp / "junk.pth")], [data, tmp / "junk.pth"], tmp / "o"


@case("instruct-sparsities-past-99.9", pattern=r"--sparsities reach 0.999999: past 0.999 nearly every weight")
def _(tmp):
    path, lm = alpaca(tmp), tiny_lm_folder(tmp)
    return ["instruct", "--data", str(path), "--model", str(lm), "--device", "cpu", "--sparsities", "0,0.999999"], \
        [path], tmp / "o"


@case("select-unknown-option", pattern=r"unrecognized arguments: --bogus 1 \(see `dlcprune select --help`\)")
def _(tmp):
    return ["select", "--scores", str(tmp), "--keep", "0.5", "--bogus", "1"], [], tmp / "o"


@case("bench-threads-0", pattern="--threads: expected auto or a whole number from 1 to")
def _(tmp):
    return ["bench", "--data", "animal-mnist", "--threads", "0"], [], tmp / "o"


@case("score-threads-beyond-the-cpus", pattern=r"--threads: expected auto or a whole number from 1 to \d+ \(this machine")
def _(tmp):
    return ["score", "--data", str(tmp), "--threads", str((os.cpu_count() or 1) + 1)], [], tmp / "o"


@pytest.fixture
def restore_pil_limit():
    limit = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = limit


@pytest.mark.parametrize("setup, status, pattern", CASES)
def test_fault(setup, status, pattern, tmp_path, capsys, restore_pil_limit):
    import re

    args, inputs, output = setup(tmp_path)
    capsys.readouterr()
    before, existed = digest(inputs), Path(output).exists()
    listing = sorted(p.name for p in Path(output).iterdir()) if Path(output).is_dir() else None
    code = main([*args, "--output", str(output), "--quiet"] if args[0] not in ("bench",) else [*args, "--output", str(output)])
    err = capsys.readouterr().err
    assert code == status, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert re.search(pattern, err), err
    assert digest(inputs) == before, "an input changed"
    if not existed:
        assert not Path(output).exists(), "something was left in the output"
    elif Path(output).is_dir():
        assert sorted(p.name for p in Path(output).iterdir()) == listing


def test_finetune_indices_under_a_manifest_of_the_users_and_in_any_order(tmp_path, capsys):
    """A manifest.json two folders up that no selection wrote is not read; indices in another order
    train on the same samples to the same losses and dynamics (they are read sorted, as every
    selection writes them, so dynamics.npz columns follow sample order)."""
    data = images(tmp_path)
    (tmp_path / "proj" / "sub").mkdir(parents=True)
    (tmp_path / "proj" / "sub" / "keep_0.5").mkdir(parents=True)
    for folder in ("sub", "sub/keep_0.5"):  # under a manifest of the user's, named like a selection's or not
        np.save(tmp_path / "proj" / folder / "keep.npy", np.array([4, 0, 3, 1]))
    np.save(tmp_path / "sorted.npy", np.array([0, 1, 3, 4]))
    (tmp_path / "proj" / "manifest.json").write_text("[1, 2, 3]")
    (tmp_path / "proj" / "sub" / "manifest.json").write_text('{"scores": "abc"}')
    run = lambda idx, out: main(["finetune", "--data", str(data), "--test-data", str(data), "--indices", str(idx),
                                 "--trainer", "full", "--epochs", "1", "--batch-size", "2", "--record-dynamics",
                                 "--output", str(tmp_path / out), "--quiet"])
    assert run(tmp_path / "sorted.npy", "sorted") == 0
    for n, folder in enumerate(("sub", "sub/keep_0.5")):
        assert run(tmp_path / "proj" / folder / "keep.npy", f"given-{n}") == 0, capsys.readouterr().err
        given, ordered = (np.load(tmp_path / out / "dynamics.npz") for out in (f"given-{n}", "sorted"))
        assert sorted(given.files) == sorted(ordered.files) and all(np.array_equal(given[k], ordered[k])
                                                                    for k in given.files if k != "meta")  # meta: its time
        metrics = json.loads((tmp_path / f"given-{n}" / "metrics.json").read_text())
        assert metrics["train_loss"] == json.loads((tmp_path / "sorted" / "metrics.json").read_text())["train_loss"]


def test_the_suite_covers_at_least_40_cases():
    assert len(CASES) + 4 >= 40  # + disk full, stale lock, two interrupts below


def test_disk_full_fails_cleanly_and_the_same_command_resumes(tmp_path, capsys, monkeypatch):
    """ENOSPC while writing the outputs: one line, no output files, a valid checkpoint; once space is
    back the same command finishes with the scores an uninterrupted run writes."""
    from dlcprune import files

    data = images(tmp_path)
    args = lambda out: ["score", "--data", str(data), "--levels", "3", "--step", "0.1", "--output", str(out), "--quiet"]
    assert main(args(tmp_path / "clean")) == 0
    real = files.save_npy

    def full(path, array):
        if Path(path).name == "levels.npy":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, array)

    monkeypatch.setattr(files, "save_npy", full)
    assert main(args(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no space left on the device") and err.count("\n") == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".partial"]
    monkeypatch.setattr(files, "save_npy", real)
    assert main(args(tmp_path / "out")) == 0
    assert (tmp_path / "out" / "scores.csv").read_bytes() == (tmp_path / "clean" / "scores.csv").read_bytes()


def test_a_stale_lock_is_taken_over(tmp_path):
    data = images(tmp_path)
    out = tmp_path / "o"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".dlcprune.lock").write_text(str(dead.pid))
    assert main(["score", "--data", str(data), "--levels", "2", "--output", str(out), "--quiet"]) == 0
    assert (out / "scores.csv").exists() and not (out / ".dlcprune.lock").exists()


def cli(*args, **kw):
    # SIGINT back to its default in the child: a test runner started in the background ignores it,
    # and Python then never raises KeyboardInterrupt
    return subprocess.Popen([sys.executable, "-m", "dlcprune", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


@pytest.mark.parametrize("sig, status, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_interrupts_end_in_one_line(tmp_path, sig, status, word):
    data = images(tmp_path, {"a": 100, "b": 100})
    proc = cli("score", "--data", str(data), "--levels", "30", "--step", "0.05", "--output", str(tmp_path / "o"),
               "--quiet")
    deadline = time.time() + 120
    while not (tmp_path / "o" / ".partial").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)  # signal the run once it is scoring, however slow the machine
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert err.startswith(word) and "Traceback" not in err and err.count("\n") == 1, err


KILL_POINTS = {  # where `score` is killed with SIGKILL: the function and which call of it
    "plain-feature-pass": ("dlcprune.scoring.dlc", "extract_features", 1),
    "middle-level": ("dlcprune.scoring.level_loop", "level_losses", 2),
    "last-level": ("dlcprune.scoring.level_loop", "level_losses", 3),
    "writing-levels": ("dlcprune.files", "save_npy", "levels.npy"),
    "writing-scores": ("dlcprune.files", "write_text", "scores.csv"),
}
KILLER = """
import importlib, os, signal, sys
module, name, when = sys.argv[1], sys.argv[2], sys.argv[3]
mod = importlib.import_module(module)
real, calls = getattr(mod, name), []
def killing(*a, **k):
    calls.append(1)
    if (when.isdigit() and len(calls) == int(when)) or (not when.isdigit() and str(a[0]).endswith(when)):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
setattr(mod, name, killing)
if module == "dlcprune.files":
    import dlcprune.artifacts as art
    setattr(art.files, name, killing)
from dlcprune.cli import main
sys.exit(main(sys.argv[4:]))
"""


def test_kill_9_anywhere_then_the_same_command_gives_identical_scores(tmp_path):
    data = images(tmp_path, {"a": 5, "b": 5})
    args = lambda out: ["score", "--data", str(data), "--levels", "4", "--step", "0.1", "--output", str(out), "--quiet"]
    assert main(args(tmp_path / "clean")) == 0
    expected = (tmp_path / "clean" / "scores.csv").read_bytes()
    for point, (module, name, when) in KILL_POINTS.items():
        out = tmp_path / point
        killed = subprocess.run([sys.executable, "-c", KILLER, module, name, str(when), *args(out)], cwd=ROOT,
                                capture_output=True, text=True)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        assert main(args(out)) == 0, point
        assert (out / "scores.csv").read_bytes() == expected, point


def test_a_stop_that_python_swallows_is_raised_again_and_not_printed(capsys):
    """Python ignores an exception raised inside a weakref callback (as an import lock's): SIGTERM
    arriving there is signalled again, so the run still stops with the one line, and nothing is printed."""
    import gc
    import os
    import weakref

    from dlcprune.cli import Terminated, _raising_stops_again, _stop

    previous, unraisable = signal.signal(signal.SIGTERM, _stop), sys.unraisablehook
    sys.unraisablehook = _raising_stops_again(unraisable, os.getpid())
    try:
        class Thing:
            pass

        thing = Thing()
        ref = weakref.ref(thing, lambda r: _stop(signal.SIGTERM, None))  # raises inside the callback: swallowed
        with pytest.raises(Terminated):
            del thing
            gc.collect()
            for _ in range(600):  # without the hook the stop is lost and this runs a minute
                time.sleep(0.1)
        assert ref() is None and capsys.readouterr().err == ""
    finally:
        sys.unraisablehook = unraisable
        signal.signal(signal.SIGTERM, previous)
