"""Baseline selection methods: exact outputs on hand-made inputs, and properties of every method."""
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcprune import DlcpruneError
from dlcprune.methods import METHODS, SelectionInputs, make_method
from dlcprune.methods.dynamics import early_epoch, forgetting_events, negative_aum
from dlcprune.methods.geometry import euclidean_from, farthest_first
from dlcprune.methods.herding import herding_order
from dlcprune.methods.moderate import middle_band
from dlcprune.methods.uncertainty import entropy, least_confidence, margin
from dlcprune.selection import CCS, class_counts
from dlcprune.training import DynamicsRecorder, Trajectory, record_head_dynamics


def test_kcenter_greedy_picks_the_farthest_points_in_order():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [20.0]])
    # from 0: 20 is farthest; then 10 (10 away from both); then 2 (2 from 0, 8 from 10) ...
    assert farthest_first(0, 4, euclidean_from(x)).tolist() == [0, 5, 3, 2]
    assert farthest_first(3, 3, euclidean_from(x)).tolist() == [3, 0, 5]


def test_kcenter_method_starts_at_a_seeded_random_point_per_class():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [20.0]])
    labels = np.zeros(6, dtype=int)
    first = int(np.random.default_rng(3).integers(6))
    kept = make_method("kcenter").fit(SelectionInputs(labels=labels, features=x)).select(keep=0.5, seed=3)
    assert kept.tolist() == sorted(farthest_first(first, 3, euclidean_from(x)).tolist())


def test_contextual_diversity_uses_symmetric_kl_between_probabilities():
    p = np.array([[0.98, 0.01, 0.01], [0.9, 0.05, 0.05], [0.01, 0.98, 0.01], [0.34, 0.33, 0.33]])
    kl = lambda a, b: (a * np.log(a / b)).sum()
    sym = lambda i: np.array([0.5 * kl(p[i], q) + 0.5 * kl(q, p[i]) for q in p])
    expected = [0, int(np.argmax(sym(0)))]
    assert expected == [0, 2]
    assert farthest_first(0, 2, sym).tolist() == expected
    # the method itself: its probabilities replaced by p, its first centre forced to position 0
    labels = np.array([0, 0, 1, 2])  # the probe needs two classes or more; its probabilities are replaced below
    method = make_method("contextual-diversity").fit(SelectionInputs(labels=labels, features=np.eye(4)[:, :3]))
    method.probabilities_ = p
    first_is_zero = type("Rng", (), {"integers": lambda self, n: 0})()
    assert method.choose(np.arange(4), 2, first_is_zero).tolist() == expected


def test_herding_order_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    mu, chosen = x.mean(0), []
    for _ in range(12):  # the candidate whose addition brings the running mean closest to mu
        gaps = [np.inf if i in chosen else np.linalg.norm(mu - x[chosen + [i]].mean(0)) for i in range(30)]
        chosen.append(int(np.argmin(gaps)))
    assert herding_order(x, 12).tolist() == chosen


def test_herding_reuses_its_sequence_across_keep_fractions():
    rng = np.random.default_rng(1)
    x, labels = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)
    m = make_method("herding").fit(SelectionInputs(labels=labels, features=x))
    small, large = m.select(keep=0.2), m.select(keep=0.6)
    assert set(small) <= set(large)
    assert set(small[:4]) == set(herding_order(x[:20], 4))


def test_moderate_keeps_the_middle_band_of_distances():
    # one class, 1-d features 0..9: centre 4.5, distances 4.5 3.5 2.5 1.5 .5 .5 1.5 2.5 3.5 4.5;
    # ascending ranks 3..6 of 10 are positions 6, 2, 7, 1
    x = np.arange(10, dtype=float)[:, None]
    kept = make_method("moderate").fit(SelectionInputs(labels=np.zeros(10, int), features=x)).select(keep=0.4)
    assert kept.tolist() == [1, 2, 6, 7]
    assert middle_band(np.array([5.0, 1.0, 3.0, 2.0, 4.0]), 1).tolist() == [2]


def test_uncertainty_scores_exact():
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]])
    assert np.allclose(least_confidence(p), [0.3, 0.6, 0.0])
    assert np.allclose(entropy(p), [-(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)),
                                   -(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)), 0.0])
    assert np.allclose(margin(p), [-0.5, 0.0, -1.0])


def _trajectory(correct=None, margins=None) -> Trajectory:
    shape = np.shape(correct if correct is not None else margins)
    zeros = np.zeros(shape)
    return Trajectory(loss=zeros, correct=np.asarray(correct if correct is not None else zeros, bool),
                      margin=np.asarray(margins if margins is not None else zeros, float), error_l2=zeros,
                      grad_norm=zeros)


def test_forgetting_counts_a_constructed_learn_forget_sequence():
    # columns are samples, rows epochs: learned/forgotten twice; learned once; never learned; forgotten at the end
    correct = np.array([[1, 0, 0, 1], [0, 0, 0, 1], [1, 1, 0, 1], [0, 1, 0, 1], [1, 1, 0, 0]])
    assert forgetting_events(_trajectory(correct)).tolist() == [2, 0, 5, 1]


def test_aum_is_the_mean_margin_negated():
    margins = np.array([[1.0, -2.0], [3.0, 0.0]])
    assert negative_aum(_trajectory(margins=margins)).tolist() == [-2.0, 1.0]


def test_el2n_equals_softmax_minus_onehot_on_known_logits():
    rec = DynamicsRecorder(np.array([0, 2]), epochs=1)
    logits = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    rec.add(0, np.array([0, 1]), logits, torch.zeros(2, 4))
    p = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    expected = [np.linalg.norm(np.array([1 / 3, 1 / 3, 1 / 3]) - [1, 0, 0]), np.linalg.norm(p - [0, 0, 1])]
    assert np.allclose(rec.error_l2[0], expected, atol=1e-12)
    assert rec.correct[0].tolist() == [True, True]  # argmax of a tie is the first class
    assert np.allclose(rec.margin[0], [0.0, 1.0])


def test_grand_equals_the_gradient_norm_of_a_linear_head():
    torch.manual_seed(0)
    head = torch.nn.Linear(5, 3).double()
    h, y = torch.randn(4, 5, dtype=torch.float64), np.array([0, 1, 2, 1])
    rec = DynamicsRecorder(y, epochs=1)
    rec.add(0, np.arange(4), head(h), h)
    for i in range(4):
        head.zero_grad()
        torch.nn.functional.cross_entropy(head(h[i:i + 1]), torch.tensor(y[i:i + 1])).backward()
        norm = torch.cat([head.weight.grad.flatten(), head.bias.grad]).norm().item()
        assert rec.grad_norm[0, i] == pytest.approx(norm, rel=1e-10)


def test_early_epoch_is_a_tenth_of_training():
    assert [early_epoch(e) for e in (1, 5, 10, 20, 200)] == [0, 0, 0, 1, 19]


def test_head_dynamics_learn_a_separable_set_and_are_seeded():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    x = rng.normal(size=(90, 8)) + 4 * np.eye(8)[y]
    t = record_head_dynamics(x, y, num_classes=3, epochs=8, batch_size=16, seed=1)
    assert t.correct.shape == (8, 90) and t.correct[-1].mean() == 1.0
    assert t.loss[-1].mean() < t.loss[0].mean()
    again = record_head_dynamics(x, y, num_classes=3, epochs=8, batch_size=16, seed=1)
    assert np.array_equal(t.loss, again.loss)


def test_trajectory_round_trips_through_a_file(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 10)
    t = record_head_dynamics(rng.normal(size=(20, 4)), y, num_classes=2, epochs=3)
    t.save(tmp_path / "d.npz")
    back = Trajectory.load(tmp_path / "d.npz")
    assert np.array_equal(back.grad_norm, t.grad_norm) and back.parameters == t.parameters
    with pytest.raises(DlcpruneError, match="cannot read training dynamics"):
        Trajectory.load(tmp_path / "missing.npz")


def test_ccs_strata_budgets():
    ccs = CCS()
    # smallest non-empty bins first, each min(size, budget left // bins left)
    assert ccs.bin_budgets(np.array([2, 2, 2]), 5).tolist() == [1, 2, 2]
    assert ccs.bin_budgets(np.array([0, 1, 10, 3]), 6).tolist() == [0, 1, 3, 2]


def test_ccs_cuts_the_hardest_and_covers_the_score_range():
    scores = np.concatenate([np.full(10, 0.05), np.full(30, 0.55), np.full(10, 0.95)])  # three populated strata
    kept = CCS(cut=0.2, strata=10).select(scores, np.zeros(50, int), keep=0.3, seed=0)
    # the hardest 10 (0.95) are cut; 15 kept from two bins of 10 and 30: min(10, 15 // 2) = 7, then 8
    assert len(kept) == 15 and (scores[kept] < 0.9).all()
    assert (scores[kept] == 0.05).sum() == 7 and (scores[kept] == 0.55).sum() == 8


def test_a_dynamics_method_without_dynamics_says_how_to_record_them():
    with pytest.raises(DlcpruneError, match="needs training dynamics, and none were recorded: pass --dynamics head"):
        make_method("el2n").fit(SelectionInputs(labels=np.zeros(4, int), features=np.zeros((4, 2))))


def test_kcenter_memory_is_linear_in_n():
    rng = np.random.default_rng(0)
    n, d = 3000, 16
    x, labels = rng.normal(size=(n, d)), np.zeros(n, dtype=int)
    m = make_method("kcenter").fit(SelectionInputs(labels=labels, features=x))
    tracemalloc.start()
    m.select(keep=0.05)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40 * n * 8  # a few length-N vectors; an N x N matrix would be 72 MB


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(3), [13, 9, 20])
    features = rng.normal(size=(42, 6)) + labels[:, None]
    dynamics = record_head_dynamics(features, labels, num_classes=3, epochs=4)
    return SelectionInputs(labels=labels, features=features, dlc_scores=rng.random(42), dynamics=dynamics)


@pytest.fixture(scope="module")
def fitted(pool):
    return {name: make_method(name).fit(pool) for name in METHODS.names()}


@settings(max_examples=40, deadline=None)
@given(keep=st.floats(0.02, 1.0), seed=st.integers(0, 2**31 - 1), name=st.sampled_from(sorted(METHODS.names())))
def test_every_method_keeps_exactly_the_stratified_counts_without_duplicates(fitted, pool, keep, seed, name):
    kept = fitted[name].select(keep=keep, seed=seed)
    assert len(np.unique(kept)) == len(kept) and np.array_equal(kept, np.sort(kept))
    counts = np.bincount(pool.labels[kept], minlength=3).tolist()
    assert counts == list(class_counts(pool.labels, keep).values())
    assert np.array_equal(kept, fitted[name].select(keep=keep, seed=seed))  # same seed, same selection
