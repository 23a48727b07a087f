"""--levels auto: the refinement plan on constructed losses, and through the scorer and the CLI."""
import numpy as np
import pytest

from dlcprune import from_arrays, from_module, score_dlc
from dlcprune.scoring.adaptive import AdaptiveLevels, interpolated_mean, spearman
from tests.conftest import random_images, tiny_cnn

K, C = 50, 4


def constructed_losses() -> np.ndarray:
    """(K, 100): loss_k = log C - g(k) * u with g = max(0, 1 - k / 24): every sample's gap to log C
    shrinks linearly and vanishes from level 24 on (the collapse)."""
    u = np.linspace(0.1, 1.0, 100)[np.random.default_rng(0).permutation(100)]
    g = np.maximum(0.0, 1.0 - np.arange(K) / 24)
    return np.log(C) - g[:, None] * u[None, :]


def run(plan: AdaptiveLevels, table: np.ndarray) -> dict:
    losses = {k: table[k] for k in plan.first_round()}
    while wanted := plan.next_round(losses):
        assert wanted == sorted(wanted) and not set(wanted) & set(losses)
        losses.update({k: table[k] for k in wanted})
    return losses


def test_stops_once_the_ranking_is_stable_and_never_refines_past_the_collapse():
    table = constructed_losses()
    plan = AdaptiveLevels(K, C)
    assert plan.first_round() == [0, 16, 32, 48, 49]
    losses = run(plan, table)
    # level 32 is the first computed level with gap <= 0.1 x level 0's; round 2 adds 8 and 24 below it;
    # the ranking (by u) is already that of round 1, so refinement stops there
    assert plan.collapse_level_ == 32
    assert sorted(losses) == [0, 8, 16, 24, 32, 48, 49]
    # g is piecewise linear with its kink at a computed level: the interpolated mean is the full mean,
    # also from the levels up to the collapse alone (level 32's losses held for 33..49: all log C)
    np.testing.assert_allclose(interpolated_mean(losses, K), table.mean(0), rtol=1e-12)
    assert plan.used(losses) == [0, 8, 16, 24, 32]
    np.testing.assert_allclose(interpolated_mean({k: losses[k] for k in plan.used(losses)}, K), table.mean(0), rtol=1e-12)


def test_without_stability_it_refines_every_level_below_the_collapse():
    losses = run(AdaptiveLevels(K, C, stability=1.01), constructed_losses())
    assert sorted(losses) == list(range(32)) + [32, 48, 49]


def test_spearman_matches_the_definition():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 30.0, 20.0, 40.0])
    ra, rb = np.array([0, 1, 2, 3]), np.array([0, 2, 1, 3])
    assert spearman(a, b) == pytest.approx(1 - 6 * ((ra - rb) ** 2).sum() / (4 * (16 - 1)))
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_scorer_with_adaptive_levels():
    data = from_arrays(*random_images(18, seed=1))
    encoder = from_module(tiny_cnn(0), lambda m, x: m.features(x))
    result = score_dlc(encoder, data, levels=20, step=0.1, adaptive=True, progress=False)
    computed = result.parameters["levels_computed"]
    # round 1: 0, 16, 19; the tiny model has collapsed at 16; spacing 8, 4, 2 below it, then stable;
    # level 19, past the collapse, is left out of the score
    assert computed == [0, 2, 4, 6, 8, 10, 12, 14, 16] and result.parameters["collapse_level"] == 16
    assert result.level_losses.shape == (len(computed), 18) and result.sparsity.shape == (len(computed),)
    full = score_dlc(encoder, data, levels=20, step=0.1, progress=False)
    for row, k in zip(result.level_losses, computed):  # each computed level equals the same level of the full path
        np.testing.assert_array_equal(row, full.level_losses[k])


def test_cli_levels_auto(tmp_path, capsys):
    import json

    from dlcprune.cli import main
    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "d", {"a": 5, "b": 5}, size=32)
    assert main(["score", "--data", str(data), "--levels", "auto", "--output", str(tmp_path / "o"), "--quiet"]) == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    computed = m["parameters"]["levels_computed"]
    collapse = m["parameters"]["collapse_level"]
    assert m["parameters"]["adaptive"] and {0, 16} <= set(computed) and computed[-1] == collapse < 49
    assert computed == sorted(computed) and all(k <= collapse for k in computed)
    assert np.load(tmp_path / "o" / "levels.npy").shape == (len(computed), 10)
    assert f"({len(computed)} of 50 levels)" in capsys.readouterr().out
    assert main(["score", "--data", str(data), "--levels", "many", "--output", str(tmp_path / "x")]) == 2


def test_a_resumed_adaptive_run_computes_the_levels_a_fresh_run_does(tmp_path, monkeypatch):
    """A checkpoint holding more levels than a round asks for (here: left by a run with a stricter
    stability, which refined further) must not change the plan: levels are read back only when wanted."""
    import functools
    import importlib

    scorer = importlib.import_module("dlcprune.scoring.dlc")
    plan = lambda stability: functools.partial(AdaptiveLevels, stability=stability)
    images, labels = random_images(40, size=16, classes=4, seed=3)
    data = from_arrays(images, labels)
    encoder = from_module(tiny_cnn(0), lambda m, x: m.features(x))
    run = lambda **kw: score_dlc(encoder, data, levels=33, step=0.05, adaptive=True, progress=False, **kw)
    monkeypatch.setattr(scorer, "AdaptiveLevels", plan(0.5))  # stops after the second round
    fresh = run()
    monkeypatch.setattr(scorer, "AdaptiveLevels", plan(1.01))  # never stable: every level below the collapse
    finer = run(checkpoint_dir=tmp_path)
    assert len(finer.parameters["levels_computed"]) > len(fresh.parameters["levels_computed"])
    monkeypatch.setattr(scorer, "AdaptiveLevels", plan(0.5))
    resumed = run(checkpoint_dir=tmp_path)
    assert resumed.parameters["levels_computed"] == fresh.parameters["levels_computed"]
    assert np.array_equal(resumed.scores, fresh.scores)


def test_planning_subsample_is_stratified_with_a_floor_per_class():
    from dlcprune.scoring.adaptive import planning_subsample

    labels = np.array([0] * 1000 + [1] * 100 + [2] * 10)
    sub = planning_subsample(labels, seed=0)
    assert np.bincount(labels[sub]).tolist() == [50, 30, 10]  # ceil(5% of 1,000); the floor of 30; all of a small class
    assert np.all(np.diff(sub) > 0) and np.array_equal(sub, planning_subsample(labels, seed=0))
    assert not np.array_equal(sub, planning_subsample(labels, seed=1))


def test_large_data_plans_on_the_subsample_then_reads_every_sample_once_more(monkeypatch):
    """140 samples, 2 classes of 70: the rounds run on 30 + 30; the levels they chose then run on all."""
    from dlcprune.data import ImageDataset
    from dlcprune.scoring.adaptive import planning_subsample
    from tests.test_dlc import CountingReader

    images, labels = random_images(140, size=12, classes=2, seed=5)
    reader = CountingReader(images)
    data = ImageDataset(ids=[str(i) for i in range(140)], labels=labels, class_names=["0", "1"], source="counted",
                        reader=reader)
    encoder = from_module(tiny_cnn(0), lambda m, x: m.features(x))
    result = score_dlc(encoder, data, levels=20, step=0.1, adaptive=True, batch_size=16, progress=False)
    sub = planning_subsample(labels, seed=0)
    full = score_dlc(encoder, from_arrays(images, labels), levels=20, step=0.1, batch_size=16, progress=False)
    plan = AdaptiveLevels(20, 2)
    expected = plan.used(run(plan, full.level_losses[:, sub]))  # the plan on the subsample's own losses
    computed = result.parameters["levels_computed"]
    assert computed == sorted(expected) and result.parameters["planned_on"] == len(sub) == 60
    np.testing.assert_array_equal(result.level_losses, full.level_losses[computed])
    np.testing.assert_allclose(result.scores, interpolated_mean(dict(zip(computed, full.level_losses[computed])), 20))
    rounds = len(result.parameters["refinement"]) + 1
    outside = np.setdiff1d(np.arange(140), sub)
    assert reader.reads[outside].tolist() == [2] * 80 and reader.reads[sub].tolist() == [2 + rounds] * 60
    assert result.timings["planning_s"] > 0


def test_a_subsample_of_more_than_half_the_data_plans_on_everything():
    images, labels = random_images(100, size=12, classes=2, seed=5)  # 30 + 30 of 100: more than half
    encoder = from_module(tiny_cnn(0), lambda m, x: m.features(x))
    result = score_dlc(encoder, from_arrays(images, labels), levels=20, step=0.1, adaptive=True, progress=False)
    full = score_dlc(encoder, from_arrays(images, labels), levels=20, step=0.1, progress=False)
    plan = AdaptiveLevels(20, 2)
    expected = plan.used(run(plan, full.level_losses))
    assert result.parameters["levels_computed"] == expected and "planning_s" not in result.timings
    np.testing.assert_allclose(result.scores, interpolated_mean(dict(zip(expected, full.level_losses[expected])), 20))
