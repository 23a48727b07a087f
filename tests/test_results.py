"""The bench folder's summaries on fixed rows: exact time-to-accuracy figures and headlines."""
import pytest

from dlcprune.results import FULL, time_to_accuracy


def row(method, keep, seed, accuracy, model_s=0.0, select_s=0.0, train_s=0.0, kept=0):
    return {"method": method, "keep": keep, "seed": seed, "accuracy": accuracy, "model_s": model_s,
            "select_s": select_s, "train_s": train_s, "kept": kept}


FULL_ROWS = [row(FULL, 1.0, 0, 0.90, train_s=100.0), row(FULL, 1.0, 1, 0.92, train_s=120.0)]  # 91%, 110 s


def test_cheapest_cell_within_one_point_of_the_full_run():
    rows = FULL_ROWS + [
        row("random", 0.3, 0, 0.895, train_s=30.0), row("random", 0.3, 1, 0.905, train_s=34.0),   # 90.0%: reaches
        row("random", 0.1, 0, 0.80, train_s=10.0), row("random", 0.1, 1, 0.82, train_s=10.0),     # 81%: does not
        row("auto", 0.3, 0, 0.91, model_s=20.0, select_s=5.0, train_s=30.0),                      # decision paid here
        row("auto", 0.3, 1, 0.91, model_s=20.0, select_s=0.5, train_s=34.0)]
    s = time_to_accuracy(rows)
    assert s["full"] == {"accuracy": pytest.approx(0.91), "seconds": 110.0}
    cells = {(c["method"], c["keep"]): (round(c["accuracy"], 4), c["seconds"], c["time_share"]) for c in s["cells"]}
    assert cells == {("random", 0.1): (0.81, 10.0, 0.0909), ("random", 0.3): (0.9, 32.0, 0.2909),
                     ("auto", 0.3): (0.91, 57.0, 0.5182)}  # 20 + max(5, 0.5) + 32
    assert s["headline"] == ("random at keep 30% reaches full-data accuracy − 1 point (90.00% vs 91.00%) in 29% of "
                             "the full run's time (32 s with scoring and selection vs 110 s)")
    assert s["cheapest_reaching"]["auto"]["seconds"] == 57.0 and s["cheapest_reaching"]["random"]["keep"] == 0.3


def test_headline_says_when_pruning_does_not_pay():
    rows = FULL_ROWS + [row("herding", 0.5, 0, 0.88, model_s=5.0, train_s=50.0),
                        row("random", 0.5, 0, 0.86, train_s=50.0)]
    s = time_to_accuracy(rows)
    assert s["cheapest_reaching"] == {"herding": None, "random": None}
    assert s["headline"] == ("no pruned subset reaches full-data accuracy − 1 point (91.00%): pruning does not pay "
                             "here; the closest, herding at keep 50%, reaches 88.00% (-3.00 points) in 50% of the time")


def test_time_to_accuracy_needs_the_full_run():
    with pytest.raises(ValueError, match="full-pool rows"):
        time_to_accuracy([row("random", 0.5, 0, 0.9)])


def test_a_probe_started_head_charges_the_feature_pass_to_what_read_nothing():
    """random and the full pool read no features before training, so they pay the pass over their
    kept samples; a method with model time (it read features or scores) has paid it already."""
    rows = [row(FULL, 1.0, 0, 0.9, train_s=100.0, kept=1000), row("random", 0.5, 0, 0.9, train_s=50.0, kept=500),
            row("herding", 0.5, 0, 0.9, model_s=4.0, train_s=50.0, kept=500)]
    s = time_to_accuracy(rows, feature_s_per_sample=0.01)
    assert s["full"]["seconds"] == 110.0
    assert {c["method"]: c["seconds"] for c in s["cells"]} == {"random": 55.0, "herding": 54.0}
    assert s["headline"].startswith("herding at keep 50% reaches")
