"""Data-parallel scoring: sharding, and 2 CPU processes under torchrun equal to one process."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlcprune.scoring.shard import shard_bounds
from tests.conftest import write_image_folder


@given(n=st.integers(0, 500), world=st.integers(1, 9))
def test_shards_cover_every_sample_exactly_once(n, world):
    bounds = shard_bounds(n, world)
    covered = np.concatenate([np.arange(a, b) for a, b in bounds])
    assert covered.tolist() == list(range(n))
    sizes = [b - a for a, b in bounds]
    assert len(sizes) == world and max(sizes) - min(sizes) <= 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def score(*args, processes=1, command="score"):
    env = dict(os.environ, OMP_NUM_THREADS="1")  # torchrun's per-rank default; the same for both runs
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                "--master_addr=127.0.0.1", f"--master_port={free_port()}"] if processes > 1 else [sys.executable]
    return subprocess.run([*launcher, "-m", "dlcprune", command, *args], capture_output=True, text=True, env=env)


def test_two_gloo_processes_equal_one_process(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 6, "b": 7, "c": 5}, size=32)
    common = ["--data", str(data), "--levels", "3", "--step", "0.1", "--device", "cpu", "--quiet",
              "--batch-size", "9"]  # 18 samples: each rank's block is one batch of 9, as the single run's batches
    one = score(*common, "--output", str(tmp_path / "one"))
    two = score(*common, "--output", str(tmp_path / "two"), processes=2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert "2 processes" in two.stdout
    for name in ("levels.npy", "features.npy"):
        assert np.array_equal(np.load(tmp_path / "one" / name), np.load(tmp_path / "two" / name)), name
    assert (tmp_path / "one" / "scores.csv").read_text() == (tmp_path / "two" / "scores.csv").read_text()


def test_levels_auto_planned_on_a_subsample_under_two_processes_equals_one(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 70, "b": 70}, size=32)  # 140 >= 2 x the 30 + 30 planned on
    common = ["--data", str(data), "--levels", "auto", "--image-size", "32", "--device", "cpu", "--quiet",
              "--batch-size", "70"]  # each rank's block is one batch, as the single run's batches
    one = score(*common, "--output", str(tmp_path / "one"))
    two = score(*common, "--output", str(tmp_path / "two"), processes=2)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert np.array_equal(np.load(tmp_path / "one" / "levels.npy"), np.load(tmp_path / "two" / "levels.npy"))
    assert (tmp_path / "one" / "scores.csv").read_text() == (tmp_path / "two" / "scores.csv").read_text()
    assert '"planned_on": 60' in (tmp_path / "two" / "manifest.json").read_text()


def test_a_bad_output_folder_stops_every_rank_with_one_message(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 3, "b": 3}, size=32)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.txt").write_text("user file")
    res = score("--data", str(data), "--levels", "2", "--device", "cpu", "--quiet", "--output", str(tmp_path / "out"),
                processes=2)
    assert res.returncode != 0
    assert res.stderr.count("error: ") == 2 and "not empty" in res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.txt"]


@pytest.mark.parametrize("n,world", [(7, 2), (2, 3)])
def test_more_ranks_than_samples_or_uneven_blocks(n, world):
    assert sum(b - a for a, b in shard_bounds(n, world)) == n


def test_more_processes_than_samples_stop_every_rank_with_one_message(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 2, "b": 2}, size=32)
    res = score("--data", str(data), "--levels", "2", "--device", "cpu", "--quiet", "--output", str(tmp_path / "out"),
                processes=5)
    assert res.returncode != 0 and "internal error" not in res.stderr
    assert res.stderr.count("4 sample(s) for 5 processes: every process needs one") == 5
    assert not (tmp_path / "out").exists()


def test_a_one_process_command_under_torchrun_stops_every_rank_with_one_message(tmp_path):
    data = write_image_folder(tmp_path / "data", {"a": 3, "b": 3}, size=32)
    assert score("--data", str(data), "--levels", "2", "--quiet", "--output", str(tmp_path / "s")).returncode == 0
    res = score("--scores", str(tmp_path / "s"), "--policy", "random", "--keep", "0.5", "--quiet",
                "--output", str(tmp_path / "sel"), processes=2, command="select")
    assert res.returncode != 0 and res.stderr.count("select runs in one process") == 2
    assert not (tmp_path / "sel").exists()
