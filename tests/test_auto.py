"""auto: the rule (never a candidate that is no better than random), the intervals, the advice,
the whole-set final selection, and the command line."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from dlcprune import DlcpruneError
from dlcprune.cli import main
from dlcprune.data import holdout_split
from dlcprune.methods import SelectionInputs, make_method
from dlcprune.methods.auto import Auto, gamma_grid
from dlcprune.methods.judge import Estimate, estimate, verdict_line
from dlcprune.methods.select import advise, select


def test_gamma_grid():
    assert gamma_grid(0.2) == [0.1, 0.5, 0.9]
    assert gamma_grid(1.0) == [0.5]


def test_validation_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat([0, 1, 2], [10, 20, 5])
    pool, val = holdout_split(labels, fraction=0.2, seed=3)
    assert np.bincount(labels[val]).tolist() == [2, 4, 1]
    assert sorted(np.concatenate([pool, val]).tolist()) == list(range(35))
    assert np.array_equal(val, holdout_split(labels, fraction=0.2, seed=3)[1])


def test_validation_split_that_empties_a_class_is_refused():
    with pytest.raises(DlcpruneError, match="class 1 has 2 sample.*no held-out samples"):
        holdout_split(np.array([0] * 10 + [1] * 2), fraction=0.2)


def blobs(seed: int, n: int = 120, classes: int = 3, dims: int = 8):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n)
    features = rng.normal(size=(len(labels), dims))
    features[np.arange(len(labels)), labels] += 1.0
    return labels, features


def test_a_worse_candidate_is_never_chosen():
    """Per class the hardest 60% are mislabelled: top-K hard is worse than random at every keep."""
    for seed in range(3):
        method = Auto(["hard"]).fit(noisy_pool(seed))
        for keep in (0.1, 0.2, 0.4, 0.6):
            d = method.decide(keep)
            assert d.chosen == "random", (seed, keep)
            assert d.verdict == (f"level with random: no candidate's gain over random was proven (best, hard: "
                                 f"{100 * (d.validation_accuracy['hard'] - d.validation_accuracy['random']):+.2f} "
                                 f"validation points, the rule's lower bound {100 * d.best_gain_bound:+.2f}); "
                                 "the selection is random") and d.best_gain_bound <= 0


def test_candidates_no_better_than_random_are_rarely_chosen():
    """Scores are pure noise, so FlexRand at every gamma is random in disguise (fresh draws per seed, as
    random's): with alpha = 0.1 (simultaneous) about 10% of decisions may pick one; here 2 or fewer
    of 24, and the verdict never claims a gain. (A deterministic method is one fixed subset: if that
    subset is better on validation, choosing it is right, so it is not a null candidate.)"""
    chosen = []
    for seed in range(6):
        labels, features = blobs(seed)
        scores = np.random.default_rng(100 + seed).normal(size=len(labels))
        method = Auto(["flexrand"]).fit(SelectionInputs(labels=labels, features=features, dlc_scores=scores))
        for keep in (0.1, 0.3, 0.5, 0.7):
            decision = method.decide(keep)
            chosen.append(decision.chosen)
            assert not decision.verdict.startswith("beats random"), decision.as_dict()
    assert sum(c != "random" for c in chosen) <= 2, chosen


def noisy_pool(seed: int = 0):
    """Per class, the hardest 60% are copies of the other class (mislabelled): only the easy end
    of the ranking teaches the truth."""
    rng = np.random.default_rng(seed)
    centres = np.array([[4.0, 0.0], [-4.0, 0.0]])
    features, labels, scores = [], [], []
    for c in (0, 1):
        features += [centres[c] + rng.normal(0, 0.5, (40, 2)), centres[1 - c] + rng.normal(0, 0.5, (60, 2))]
        labels += [c] * 100
        scores += list(rng.uniform(0, 1, 40)) + list(rng.uniform(2, 3, 60))
    val_labels = np.repeat([0, 1], 40)
    val = (centres[val_labels] + rng.normal(0, 0.5, (80, 2)), val_labels)
    return SelectionInputs(labels=np.array(labels), features=np.concatenate(features), dlc_scores=np.array(scores),
                           validation=val)


def test_a_real_effect_is_found_and_judged():
    method = Auto(["easy", "flexrand", "hard"]).fit(noisy_pool())
    d = method.decide(0.2)
    assert d.chosen in ("easy", "flexrand gamma=0.1")
    assert d.accuracy["chosen"].value == 1.0 and d.accuracy["random"].value < 0.5
    assert d.gain.low > 0.3 and d.verdict.startswith("beats random by")
    assert d.validation_accuracy["hard"] < 0.5
    # the bench's case: external validation, so the selection stays in the pool (200 samples)
    kept = method.select(keep=0.2, seed=0)
    assert len(kept) == 40 and kept.max() < 200


def test_flexrand_auto_never_falls_back_to_random():
    labels, features = blobs(1)
    scores = np.random.default_rng(7).normal(size=len(labels))
    method = make_method("flexrand-auto").fit(SelectionInputs(labels=labels, features=features, dlc_scores=scores))
    assert method.decide(0.3).chosen.startswith("flexrand gamma=")


def test_intervals_cover_a_known_effect():
    """Accuracy 0.80 vs 0.70 on 1,000 validation samples, 3 draws each: the 95% interval of the
    difference covers the true 0.10 in about 95% of 200 simulated experiments and excludes 0."""
    rng = np.random.default_rng(0)
    covered, excludes_zero = 0, 0
    for trial in range(200):
        a = rng.random((3, 1000)) < 0.8
        b = rng.random((3, 1000)) < 0.7
        e = estimate(a, b, rounds=500, seed=trial)
        covered += e.low <= 0.1 <= e.high
        excludes_zero += e.low > 0
    assert covered >= 180 and excludes_zero == 200


def test_verdict_lines():
    assert verdict_line(Estimate(0.012, 0.004, 0.02)) == "beats random by 1.20 points [+0.40, +2.00]"
    assert verdict_line(Estimate(-0.03, -0.05, -0.01)) == "worse than random by 3.00 points [-5.00, -1.00]"
    assert verdict_line(Estimate(0.002, -0.004, 0.008)).startswith("level with random (+0.20 points")
    assert verdict_line(Estimate(-0.00001, -0.00004, 0.008)) == "level with random (+0.00 points [+0.00, +0.80])"


def test_advice_picks_the_smallest_fraction_within_the_drop():
    """Constructed curves: the lower end of (chosen - full pool) per keep, in points."""
    lows = {0.1: -6.0, 0.2: -2.5, 0.3: -0.9, 0.4: -1.2, 0.5: -0.2}
    stub = SimpleNamespace(decide=lambda k: SimpleNamespace(below_full=Estimate(0.0, lows[k] / 100, 0.0)))
    assert advise(stub, list(lows), 1.0)["keep"] == 0.3
    assert advise(stub, list(lows), 3.0)["keep"] == 0.2
    assert advise(stub, list(lows), 0.1)["keep"] is None
    assert advise(stub, list(lows), 0.1)["advice"].startswith("no keep fraction")


def test_select_api_draws_the_final_selection_from_the_whole_set():
    labels, features = blobs(2, n=50)
    scores = np.random.default_rng(3).normal(size=len(labels))
    sel = select(scores, labels=labels, features=features, method="auto", keep=[0.2, 0.5], seed=1)
    assert sel.method == "auto" and set(sel.kept) == {0.2, 0.5}
    for keep, idx in sel.kept.items():
        assert np.bincount(labels[idx]).tolist() == [round(50 * keep)] * 3
    val = holdout_split(labels, fraction=0.2, seed=1)[1]
    assert set(sel.indices(0.5)) & set(val)  # validation samples may be kept: they only judge
    assert sel.parameters["validation_held_out"] == 30 and sel.parameters["choice_s"] > 0
    assert set(sel.verdicts) == {0.2, 0.5} and "verdict" in sel.verdicts[0.2]
    again = select(scores, labels=labels, features=features, method="auto", keep=[0.2, 0.5], seed=1)
    assert all(np.array_equal(sel.kept[k], again.kept[k]) for k in sel.kept)


def test_select_api_rejects_bad_requests():
    labels, features = blobs(0, n=20)
    scores = np.zeros(len(labels))
    with pytest.raises(DlcpruneError, match="unknown candidate method 'herd'.*herding"):
        select(scores, labels=labels, features=features, method="auto", keep=0.5, candidates=["herd"])
    with pytest.raises(DlcpruneError, match="'random' cannot be a candidate"):
        select(scores, labels=labels, features=features, method="auto", keep=0.5, candidates=["random"])
    with pytest.raises(DlcpruneError, match="target_drop is in points"):
        select(scores, labels=labels, features=features, method="auto", target_drop=-1)
    with pytest.raises(DlcpruneError, match="applies to the auto methods"):
        select(scores, labels=labels, method="easy", keep=0.5, target_drop=1.0)
    with pytest.raises(DlcpruneError, match="give keep"):
        select(scores, labels=labels, method="easy")


@pytest.fixture(scope="module")
def scored_blobs(tmp_path_factory):
    """A scores folder written from arrays (30 per class, 3 classes), as `dlcprune score` would."""
    from dlcprune import files

    folder = tmp_path_factory.mktemp("auto") / "scores"
    labels, features = blobs(5, n=30)
    scores = np.random.default_rng(5).normal(size=len(labels))
    rows = ["index,id,label,score"] + [f"{i},{i},{y},{float(s)!r}" for i, (y, s) in enumerate(zip(labels, scores))]
    files.write_text(folder / "scores.csv", "\n".join(rows) + "\n")
    files.save_npy(folder / "features.npy", features)
    files.write_json(folder / "manifest.json", {"method": "dlc"})
    return folder


def test_cli_auto_writes_selection_and_verdict(scored_blobs, tmp_path, capsys):
    out = tmp_path / "sel"
    assert main(["select", "--scores", str(scored_blobs), "--policy", "auto", "--keep", "0.1,0.3,0.5",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verdict (validation split, linear probe on frozen features):" in printed
    assert printed.count("  keep ") == 3
    verdict = json.loads((out / "verdict.json").read_text())
    assert [v["keep"] for v in verdict["verdicts"]] == [0.1, 0.3, 0.5]
    assert "linear probe" in verdict["judge"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["method"] == "auto" and m["parameters"]["candidates"][0] == "easy"
    assert m["fractions"]["keep_0.3"]["decision"]["chosen"] == verdict["verdicts"][1]["chosen"]
    assert len(np.load(out / "keep_0.3" / "keep_indices.npy")) == 27


def test_cli_target_drop_writes_the_advised_selection(scored_blobs, tmp_path, capsys):
    out = tmp_path / "adv"
    assert main(["select", "--scores", str(scored_blobs), "--policy", "auto", "--target-drop", "30",
                 "--output", str(out)]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    advised = verdict["advice"]["keep"]
    assert advised is not None and [p.name for p in out.iterdir() if p.is_dir()] == [f"keep_{advised:g}"]
    assert f"advice: keep {advised:g}" in capsys.readouterr().out
    assert len(verdict["verdicts"]) == 9


@pytest.mark.parametrize("args, message", [
    (["--target-drop", "-1"], "--target-drop is in points"),
    (["--target-drop", "abc"], "--target-drop: expected a number like 0.5 or 1e-3, got 'abc'"),
    (["--target-drop", "inf"], "--target-drop: expected a number like 0.5 or 1e-3, got 'inf'"),
    (["--candidates", "herding,nope", "--keep", "0.5"], "unknown candidate method 'nope'"),
    (["--candidates", ",", "--keep", "0.5"], "expected comma-separated method names"),
    (["--policy", "easy", "--candidates", "herding", "--keep", "0.5"], "--candidates applies to the auto methods (auto, flexrand-auto), not 'easy'"),
    (["--policy", "easy", "--candidates", "herding", "--target-drop", "1", "--keep", "0.5"], "--candidates and --target-drop apply"),
    (["--candidates", "herding,el2n", "--keep", "0.5"], "method 'el2n' needs training dynamics"),
    (["--candidates", "flexrand-auto", "--keep", "0.5"], "cannot be a candidate of auto (it is itself a choice among methods)"),
])
def test_cli_bad_auto_options(scored_blobs, tmp_path, capsys, args, message):
    out = tmp_path / "bad"
    assert main(["select", "--scores", str(scored_blobs), *args, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not out.exists()


def test_judge_on_a_pool_smaller_than_its_dims_projects_onto_the_pool_span():
    """24 samples of 300-dim features (fewer than the 256 principal directions asked for): the
    projection keeps the pool's whole span, so every probe predicts what the unprojected one does
    (float64: the fits are the same up to rounding, which float32 would make visible at the argmax)."""
    from dlcprune.methods.judge import ProbeJudge

    rng = np.random.default_rng(0)
    labels, val_labels = np.arange(24) % 3, np.arange(60) % 3
    centres = 0.12 * rng.normal(size=(3, 300))
    x = centres[labels] + rng.normal(size=(24, 300))
    v = centres[val_labels] + rng.normal(size=(60, 300))
    projected = ProbeJudge(x, labels, v, val_labels, num_classes=3, dims=256, dtype="float64")
    full = ProbeJudge(x, labels, v, val_labels, num_classes=3, dims=None, dtype="float64")
    assert projected.x.shape == (24, 24) and full.x.shape == (24, 300)
    for kept in (None, np.arange(0, 24, 2), np.array([0, 1, 2, 5, 7, 9])):
        assert np.array_equal(projected.correct(kept), full.correct(kept)), kept
    assert 0.4 < projected.correct().mean() < 0.9  # above chance (1/3), far from perfect: the check has teeth
