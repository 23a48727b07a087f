"""Thread settings: the default count, passive OpenMP waiting on a busy machine, and the same bytes."""
import json
import os
import subprocess
import sys

import pytest

from dlcprune import threads
from tests.conftest import write_image_folder

PROBE = r"""
import json, os, sys
import dlcprune.threads as t
t.physical_cores = lambda: 2
busy = float(sys.argv[1])
def busy_cpus(interval=0.1):
    if busy < 0:
        raise AssertionError("the load was measured")
    return busy
t.busy_cpus = busy_cpus
n = t.set_threads(None if sys.argv[2] == "default" else sys.argv[2] if sys.argv[2] == "auto" else int(sys.argv[2]))
print(json.dumps({"n": n, "policy": os.environ.get("OMP_WAIT_POLICY"), "torch": "torch" in sys.modules,
                  "omp": os.environ["OMP_NUM_THREADS"]}))
"""


def probe(busy: float, threads_arg: str, **env) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    res = subprocess.run([sys.executable, "-c", PROBE, str(busy), threads_arg], capture_output=True, text=True,
                         env={**base, **env}, check=True)
    return json.loads(res.stdout)


def test_default_threads_wait_passively_only_on_a_busy_machine():
    assert probe(1.0, "default") == {"n": 2, "policy": "PASSIVE", "torch": False, "omp": "2"}
    assert probe(0.4, "default") == {"n": 2, "policy": None, "torch": False, "omp": "2"}  # rounds to idle
    assert probe(1.0, "auto") == {"n": 1, "policy": None, "torch": False, "omp": "1"}  # one thread: nothing waits
    assert probe(-1, "2")["policy"] is None  # an explicit count: the load is not even measured
    assert probe(1.0, "default", OMP_WAIT_POLICY="active")["policy"] == "active"  # the user's own policy stays


def test_the_users_omp_num_threads_is_the_default():
    """A user who runs two jobs side by side with OMP_NUM_THREADS=1 gets one thread, as they asked;
    a value that is not a count is ignored, and --threads still wins."""
    assert probe(-1, "default", OMP_NUM_THREADS="1") == {"n": 1, "policy": None, "torch": False, "omp": "1"}
    assert probe(0.0, "default", OMP_NUM_THREADS="3")["n"] == 3
    assert probe(0.0, "default", OMP_NUM_THREADS="0")["n"] == 2
    assert probe(0.0, "default", OMP_NUM_THREADS="two")["n"] == 2
    assert probe(-1, "2", OMP_NUM_THREADS="1")["n"] == 2


def test_after_torch_is_loaded_only_the_count_changes(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "busy_cpus", lambda interval=0.1: pytest.fail("the load was measured"))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    try:
        assert threads.set_threads(1) == 1 and torch.get_num_threads() == 1
        threads.set_threads(None)
        assert "OMP_WAIT_POLICY" not in os.environ
    finally:
        torch.set_num_threads(before)


def test_scores_are_the_same_bytes_whichever_way_threads_wait(tmp_path):
    """Passive waiting changes when a thread sleeps, never what it sums: the scores of an idle run."""
    data = write_image_folder(tmp_path / "data", {"a": 5, "b": 4, "c": 5}, size=40)
    outs = {}
    for policy in ("ACTIVE", "PASSIVE"):
        outs[policy] = out = tmp_path / policy
        res = subprocess.run([sys.executable, "-m", "dlcprune", "score", "--data", str(data), "--image-size", "32",
                              "--levels", "3", "--step", "0.1", "--threads", "2", "--output", str(out), "--quiet"],
                             env={**os.environ, "OMP_WAIT_POLICY": policy}, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    for name in ("scores.csv", "levels.npy", "features.npy"):
        assert (outs["ACTIVE"] / name).read_bytes() == (outs["PASSIVE"] / name).read_bytes(), name
    manifest = json.loads((outs["PASSIVE"] / "manifest.json").read_text())
    assert manifest["runtime"] == {"threads": 2, "omp_wait_policy": "passive"}


def test_the_command_line_loads_no_numpy_or_torch_before_it_sets_the_threads():
    """numpy's BLAS and torch size their thread pools when first imported: `--threads` reaches them
    only if parsing the command line imported neither (an import at the top of a module the parser
    reads broke this once)."""
    code = ("import sys, dlcprune.cli; from dlcprune.cli.parser import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
