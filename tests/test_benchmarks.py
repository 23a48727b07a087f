"""Every script under benchmarks/ runs end to end on tiny settings, so a change that breaks one fails
here and not months later. The figures themselves are in benchmarks/RESULTS.md, never asserted."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str) -> str:
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_every_script_has_a_smoke_test():
    here = (ROOT / "tests" / "test_benchmarks.py").read_text()
    scripts = sorted(p.name for p in [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "benchmarks").glob("*.sh")])
    assert scripts and [s for s in scripts if f'"{s}"' not in here] == []


def test_masking_cost():
    out = bench("masking_cost.py", "--samples", "20", "--levels", "3", "--repeats", "2", "--image-size", "32")
    assert "masked / plain = " in out and "peak memory dlc / plain = " in out


def test_adaptive_levels():
    out = bench("adaptive_levels.py", "--data", "animal-mnist", "--samples", "40", "--image-size", "32", "--levels", "6")
    assert "| animal-mnist (40) | auto |" in out


def test_dynamics_cost():
    out = bench("dynamics_cost.py", "--samples", "20", "--epochs", "1", "--levels", "2", "--image-size", "32")
    assert "training-based score time / DLC score time" in out.lower() or "/ dlc" in out.lower()


def test_throughput():
    out = bench("throughput.py", "--samples", "20", "--levels", "2", "--image-size", "32")
    assert "speed-up" in out


def test_kcenter_memory():
    assert "MiB" in bench("kcenter_memory.py", "--n", "300", "--dim", "8")


def test_gpu_protocol_dry_run(tmp_path):
    """The GPU script's commands on the CPU: both datasets, every method, every figure, the summary."""
    import os

    script = lambda *args: subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_protocol.sh"), *args],
                                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHON": sys.executable})
    bad = script("--dryrun", str(tmp_path / "g"))  # a typo is no output folder (nor a full run on a GPU machine)
    assert bad.returncode == 2 and "unknown option --dryrun" in bad.stderr and not (tmp_path / "g").exists()
    res = script(str(tmp_path / "g"), "--dry-run", "--threads", "1")  # options in any order
    assert res.returncode == 0, res.stderr[-3000:]
    for data in ("animal-mnist", "mnist"):
        for name in ("results.md", "learning_curve.png", "time_to_accuracy.png", "time_to_accuracy.json", "dynamics.npz"):
            assert (tmp_path / "g" / data / name).exists(), (data, name)
        table = (tmp_path / "g" / data / "results.md").read_text()
        assert all(f"| {m} |" in table for m in ("random", "auto", "flexrand", "herding", "forgetting", "el2n", "full pool"))
    summary = (tmp_path / "g" / "summary.md").read_text()
    assert summary.count("time to accuracy: ") == 2 and "## mnist" in summary


def test_probe_vs_finetune(tmp_path):
    header = "method,keep,seed,accuracy,kept,choice,model_s,select_s,train_s\n"
    cells = {"probe": {"random": 0.80, "herding": 0.82, "easy": 0.78, "auto": 0.81},
             "full": {"random": 0.90, "herding": 0.93, "easy": 0.89, "auto": 0.91}}
    for trainer, per in cells.items():
        (tmp_path / trainer).mkdir()
        rows = [f"{m},{k},0,{a + k / 100},10,,0,0,0\n" for m, a in per.items() for k in (0.1, 0.5)]
        (tmp_path / trainer / "results.csv").write_text(header + "full pool,1.0,0,0.95,20,,0,0,0\n" + "".join(rows))
    out = bench("probe_vs_finetune.py", "--probe", str(tmp_path / "probe"), "--full", str(tmp_path / "full"))
    assert "| herding | +2.00 | 1 | +3.00 | 1 |" in out and "| easy | -2.00 | 3 | -1.00 | 3 |" in out
    assert "Spearman(probe ranking, fine-tuning ranking) = 1.000 over 3 methods" in out and "agrees for 3 of 3" in out


def test_auto_cost():
    out = bench("auto_cost.py", "--per-class", "10", "--levels", "2", "--image-size", "32")
    assert "choice cost / DLC scoring cost = " in out and "advice: " in out


def test_auto_targets(tmp_path):
    from dlcprune.cli import main
    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "d", {"a": 10, "b": 10}, size=32)
    assert main(["bench", "--data", str(data), "--levels", "2", "--step", "0.1", "--keep", "0.5", "--seeds", "2",
                 "--methods", "random,easy,auto", "--output", str(tmp_path / "b"), "--quiet"]) == 0
    out = bench("auto_targets.py", str(tmp_path / "b"))
    assert "auto - random = " in out and "best single method" in out and "calibration: " in out


def test_auto_rule(tmp_path):
    out = bench("auto_rule.py", "--data", "animal-mnist", "--train-per-class", "10", "--test-per-class", "5",
                "--levels", "2", "--image-size", "32", "--keep", "0.5", "--seeds", "1", "--output", str(tmp_path / "r"))
    assert "accuracy_rule: test gain over random" in out and "studentized_loglik_rule" in out
    rows = json.loads((tmp_path / "r" / "rule.json").read_text())
    assert [r["keep"] for r in rows] == [0.5] and rows[0]["auto_now"] == rows[0]["accuracy_rule"]  # today's rule, replayed


def test_judge_precision(tmp_path):
    from dlcprune.cli import main
    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "d", {"a": 15, "b": 15}, size=32)
    assert main(["score", "--data", str(data), "--image-size", "32", "--levels", "2", "--step", "0.1",
                 "--output", str(tmp_path / "s"), "--quiet"]) == 0
    out = bench("judge_precision.py", "--scores", str(tmp_path / "s"), "--keep", "0.3,0.6")
    assert "same choice at " in out and "| 0.6 |" in out and "validation accuracy moved by" in out


@pytest.mark.parametrize("chitchat", [0])
def test_make_instructions_and_instruct_lora(tmp_path, chitchat):
    """The instruction benchmark on a tiny random Llama (the real SmolLM2 runs in RESULTS.md)."""
    from dlcprune.cli import main
    from tests.conftest import save_tiny_llama

    bench("make_instructions.py", "--train", "8", "--test", "4", "--output", str(tmp_path / "instr"))
    save_tiny_llama(tmp_path / "lm")
    assert main(["instruct", "--data", str(tmp_path / "instr" / "train.jsonl"), "--model", str(tmp_path / "lm"),
                 "--sparsities", "0,0.2", "--keep", "0.5", "--output", str(tmp_path / "scores"), "--quiet"]) == 0
    out = bench("instruct_lora.py", "--data", str(tmp_path / "instr"), "--scores", str(tmp_path / "scores"),
                "--model", str(tmp_path / "lm"), "--seeds", "1", "--epochs", "1")
    assert "| DLC + FlexRand (γ=0.5) | 1 |" in out and "DLC scoring" in out


def test_busy_machine():
    out = bench("busy_machine.py", "--samples", "20", "--levels", "2", "--limit-s", "60")
    assert "| torch's own |" in out and "| --threads auto |" in out
    # the competing process makes the default wait passively with as many threads: the same scores
    assert re.search(r"\| dlcprune default \| (\d+) \w+ / \1 passive \|.* \| True \|", out), out


def test_decode_once():
    out = bench("decode_once.py", "--images", "20", "--levels", "3", "--source-size", "48", "--image-size", "32")
    assert "scores identical: True" in out and "by efficientnet_lite0 (pretrained)" in out


def test_decode_once_with_a_stand_in_encoder():
    out = bench("decode_once.py", "--images", "20", "--levels", "3", "--source-size", "48", "--image-size", "32",
                "--encoder", "timm:mobilenetv3_small_050", "--weights", "random")
    assert "scores identical: True" in out and "by timm:mobilenetv3_small_050 (random)" in out


def test_scale():
    out = bench("scale.py", "--sizes", "300,600", "--levels", "2", "--dim", "16")
    assert "peak RSS at the largest N" in out


def test_inference_limit():
    out = bench("inference_limit.py", "--images", "40", "--image-size", "32", "--levels", "2", "--repeats", "1",
                "--skip-compile")
    assert "throughput / fastest plain" in out


def test_instruction_pool_builder_and_bookkeeping(tmp_path):
    """The mixed, corrupted pool and the corrupted-share table on a tiny random Llama."""
    from tests.conftest import save_tiny_llama

    out = bench("make_instruction_pool.py", "--pool", "24", "--heldout", "2", "--corrupt", "0.25",
                "--output", str(tmp_path / "pool"))
    meta = json.loads((tmp_path / "pool" / "pool_meta.json").read_text())
    records = (tmp_path / "pool" / "pool.jsonl").read_text().splitlines()
    assert len(records) == len(meta["records"]) == 24 // len(meta["tasks"]) * len(meta["tasks"])
    for task in meta["tasks"]:  # exactly the documented share of each task is corrupted, held-out records are clean
        kinds = [m["corrupted"] for m in meta["records"] if m["task"] == task]
        assert sum(k is not None for k in kinds) == round(0.25 * len(kinds))
        assert len((tmp_path / "pool" / f"heldout_{task}.jsonl").read_text().splitlines()) == 2
    flipped = [json.loads(r) for r, m in zip(records, meta["records"]) if m["corrupted"] == "flipped"]
    assert flipped and all(r["output"] in ("positive", "negative") for r in flipped)
    assert "corrupted" in out
    save_tiny_llama(tmp_path / "lm")
    table = bench("instruction_pool.py", "--pool", str(tmp_path / "pool"), "--model", str(tmp_path / "lm"),
                  "--levels", "2", "--keep", "0.25,0.5", "--seeds", "2", "--output", str(tmp_path / "kept.json"))
    assert "| dlc-flexrand |" in table and "| ifd |" in table
    rows = json.loads((tmp_path / "kept.json").read_text())["rows"]
    corrupted = np.array([m["corrupted"] is not None for m in meta["records"]])
    easy = [r for r in rows if r["method"] == "dlc-easy" and r["keep"] == 0.5][0]
    assert easy["kept"] == 12 and 0 <= easy["corrupted_share"] <= 1
    assert sum(easy["tasks_last_run"].values()) == 12
    assert corrupted.sum() == round(0.25 * len(corrupted) / len(meta["tasks"])) * len(meta["tasks"])


def test_proxy_scoring(tmp_path):
    """Score with one model, train another: two tiny Llamas (the same random weights: Spearman 1)."""
    from tests.conftest import save_tiny_llama

    bench("make_instruction_pool.py", "--pool", "24", "--heldout", "4", "--output", str(tmp_path / "pool"))
    save_tiny_llama(tmp_path / "small")
    save_tiny_llama(tmp_path / "large")
    out = bench("proxy_scoring.py", "--pool", str(tmp_path / "pool"), "--records", "12", "--score-model",
                str(tmp_path / "small"), "--model", str(tmp_path / "large"), "--levels", "2", "--keep", "0.5",
                "--heldout-per-task", "1", "--output", str(tmp_path / "proxy.json"))
    figures = json.loads((tmp_path / "proxy.json").read_text())
    assert figures["spearman"] == pytest.approx(1.0) and "| proxy-selected | 6 |" in out
    assert set(figures["runs"]) == {"no fine-tuning", "proxy-selected", "self-selected", "random"}
    accuracy = figures["runs"]["random"][0]["acc"]  # lm-eval on both sentiment tasks' 4 held-out records
    assert set(accuracy) == {"heldout_sentiment_short", "heldout_sentiment_long"}
    assert all(a in (0.0, 0.25, 0.5, 0.75, 1.0) for a in accuracy.values())


def test_instruction_lora_table_runs_and_resumes(tmp_path):
    """LoRA per method and keep on the pool with a tiny random Llama; a rerun trains nothing more."""
    from tests.conftest import save_tiny_llama

    bench("make_instruction_pool.py", "--pool", "24", "--heldout", "4", "--output", str(tmp_path / "pool"))
    save_tiny_llama(tmp_path / "lm")
    subprocess.run([sys.executable, "-m", "dlcprune", "score", "--data", str(tmp_path / "pool" / "pool.jsonl"),
                    "--model", str(tmp_path / "lm"), "--levels", "2", "--output", str(tmp_path / "dlc")],
                   check=True, capture_output=True, cwd=ROOT)
    args = ("--pool", str(tmp_path / "pool"), "--scores", str(tmp_path / "dlc"), "--model", str(tmp_path / "lm"),
            "--keep", "0.25", "--seeds", "2", "--passes", "12", "--methods", "random,dlc-flexrand,longest,embed-kcenter",
            "--output", str(tmp_path / "lora.json"))
    out = bench("instruction_lora_table.py", *args)
    state = json.loads((tmp_path / "lora.json").read_text())
    runs = state["runs"]
    # no fine-tuning + (random, flexrand) x 2 seeds + 2 deterministic methods; every method is planned
    assert len(runs) == 1 + 4 + 2 and "| dlc-flexrand |" in out and "| embed-kcenter |" in out
    assert {p["method"] for p in state["plan"]} == {"random", "dlc-flexrand", "dlc-easy", "dlc-hard", "longest",
                                                    "perplexity", "ifd", "embed-kcenter"}
    quarter = [r for r in runs if r["method"] == "longest" and r["keep"] == 0.25][0]
    assert quarter["kept"] == 6 and quarter["epochs"] == 2 and sum(quarter["tasks"].values()) == 6
    # "reply" is in the pool only where the optional chitchat-dataset is installed
    tasks = {path.stem.removeprefix("heldout_") for path in (tmp_path / "pool").glob("heldout_*.jsonl")}
    assert tasks >= {"sentiment-short", "sentiment-long", "first-words"} and set(quarter["nll"]) == tasks
    again = bench("instruction_lora_table.py", *args)
    assert "seed" not in again.split("held-out")[0]  # no run line: everything was on record
    assert json.loads((tmp_path / "lora.json").read_text())["runs"] == runs
    other = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "instruction_lora_table.py"), *args[:-1],
                            str(tmp_path / "lora.json"), "--seeds", "3"], capture_output=True, text=True, cwd=ROOT)
    assert other.returncode != 0 and "holds runs with other seeds" in other.stderr
    script = [sys.executable, str(ROOT / "benchmarks" / "instruction_lora_table.py")]
    typo = subprocess.run([*script, *args[:-1], str(tmp_path / "typo.json"), "--methods", "random,longst"],
                          capture_output=True, text=True, cwd=ROOT)
    assert typo.returncode != 0 and "unknown method(s) longst; choose from random," in typo.stderr
    assert not (tmp_path / "typo.json").exists()  # refused before any work
    bench("make_instruction_pool.py", "--pool", "24", "--heldout", "1", "--output", str(tmp_path / "pool1"))
    small = subprocess.run([*script, *args[:-1], str(tmp_path / "small.json"), "--pool", str(tmp_path / "pool1")],
                           capture_output=True, text=True, cwd=ROOT)
    assert small.returncode != 0 and "Traceback" not in small.stderr
    assert small.stderr.startswith("error: a multiple-choice task needs 2..20 distinct responses")


def test_cpu_bf16(tmp_path):
    from tests.conftest import save_tiny_llama

    bench("make_instruction_pool.py", "--pool", "24", "--heldout", "2", "--output", str(tmp_path / "pool"))
    save_tiny_llama(tmp_path / "lm")
    out = bench("cpu_bf16.py", "--data", str(tmp_path / "pool" / "pool.jsonl"), "--records", "12", "--levels", "2",
                "--model", f"hf:{tmp_path / 'lm'}")
    assert "| bf16 |" in out and "speed-up" in out and "kept at 30% (flexrand):" in out
    assert float(out.split("Spearman ")[1].split(";")[0]) > 0.5


def test_length_batching(tmp_path):
    from tests.conftest import save_tiny_llama

    bench("make_instruction_pool.py", "--pool", "24", "--heldout", "2", "--output", str(tmp_path / "pool"))
    save_tiny_llama(tmp_path / "lm")
    out = bench("length_batching.py", "--data", str(tmp_path / "pool" / "pool.jsonl"), "--records", "12",
                "--model", str(tmp_path / "lm"), "--batch-size", "4", "--repeats", "1")
    assert "| length-sorted |" in out and "speed-up" in out
    assert float(out.split("largest loss difference ")[1].split()[0]) < 1e-4


def test_level_subsets(tmp_path):
    from tests.conftest import save_tiny_llama

    bench("make_instruction_pool.py", "--pool", "24", "--heldout", "2", "--output", str(tmp_path / "pool"))
    save_tiny_llama(tmp_path / "lm")
    out = bench("level_subsets.py", "--pool", str(tmp_path / "pool" / "pool.jsonl"), "--model", f"hf:{tmp_path / 'lm'}")
    assert "| 0, 1, 2, 3, 4 | 1.0000 | 1.000 | 1.000 |" in out and "one LoRA run on the kept 30%" in out
