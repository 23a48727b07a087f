"""Selection policies: exact outputs on small inputs, and properties for any input (hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcprune import DlcpruneError
from dlcprune.selection import CCS, Easy, FlexRand, Hard, Random, class_counts

POLICY = {"random": Random, "easy": Easy, "hard": Hard, "flexrand": FlexRand, "ccs": CCS}


def make_policy(name, split=None):
    return FlexRand(split) if name == "flexrand" and split is not None else POLICY[name]()

SCORES = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4])
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def test_easy_and_hard_exact():
    # class 0 holds indices 0..3 with scores .5 .1 .9 .3; class 1 holds 4..7 with .7 .2 .8 .4
    assert make_policy("easy").select(SCORES, LABELS, keep=0.5).tolist() == [1, 3, 5, 7]
    assert make_policy("hard").select(SCORES, LABELS, keep=0.5).tolist() == [0, 2, 4, 6]
    assert make_policy("hard").select(SCORES, LABELS, keep=0.25).tolist() == [2, 6]


def test_ties_break_towards_lower_index():
    scores, labels = np.zeros(6), np.zeros(6, dtype=int)
    assert make_policy("easy").select(scores, labels, keep=0.5).tolist() == [0, 1, 2]
    assert make_policy("hard").select(scores, labels, keep=0.5).tolist() == [0, 1, 2]


def test_stratified_counts_use_round():
    labels = np.array([0] * 5 + [1] * 15 + [2] * 4)
    # 5*0.3=1.5 -> 2 (ties to even), 15*0.3=4.5 -> 4, 4*0.3=1.2 -> 1
    assert class_counts(labels, 0.3) == {0: 2, 1: 4, 2: 1}


def test_flexrand_split_equal_to_half_budget_keeps_all_easiest():
    scores = np.arange(100, dtype=float)[::-1].copy()  # index 99 is the easiest
    kept = FlexRand(0.2).select(scores, np.zeros(100, dtype=int), keep=0.4, seed=1)
    easiest_20 = set(range(80, 100))
    assert easiest_20 <= set(kept.tolist()) and len(kept) == 40


def test_flexrand_shares_follow_the_formula():
    # n = 100, b = 0.3: gamma 0.45 -> easy min(.45, .15) = .15, hard .15; gamma .1 -> easy .1, hard .2;
    # gamma .9 -> hard min(.1, .15) = .1, easy .2
    assert FlexRand(0.45).shares(100, 30, 0.3) == (45, 15, 15)
    assert FlexRand(0.1).shares(100, 30, 0.3) == (10, 10, 20)
    assert FlexRand(0.9).shares(100, 30, 0.3) == (90, 20, 10)


def test_seeded_and_reproducible():
    rng = np.random.default_rng(0)
    scores, labels = rng.random(200), rng.integers(0, 4, 200)
    for name in ("random", "flexrand"):
        policy = make_policy(name)
        a, b = policy.select(scores, labels, keep=0.3, seed=7), policy.select(scores, labels, keep=0.3, seed=7)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, policy.select(scores, labels, keep=0.3, seed=8))


@pytest.mark.parametrize("keep", [0, -0.1, 1.5, float("nan")])
def test_bad_keep_rejected(keep):
    with pytest.raises(DlcpruneError, match="keep must be a fraction in"):
        make_policy("random").select(SCORES, LABELS, keep=keep)


@pytest.mark.parametrize("split", [0, 1, 1.2, -0.5])
def test_bad_split_rejected(split):
    with pytest.raises(DlcpruneError, match="strictly between 0 and 1"):
        make_policy("flexrand", split=split)


def test_split_only_for_flexrand():
    from dlcprune.methods.select import select

    with pytest.raises(DlcpruneError, match="applies to the flexrand method, not 'random'"):
        select(SCORES, labels=LABELS, method="random", keep=0.5, split=0.4)


labelled = st.integers(1, 6).flatmap(lambda c: st.lists(st.integers(1, 30), min_size=c, max_size=c)).map(
    lambda sizes: np.repeat(np.arange(len(sizes)), sizes))


@settings(max_examples=150, deadline=None)
@given(labels=labelled, keep=st.floats(0.01, 1.0), seed=st.integers(0, 2**31), split=st.floats(0.01, 0.99),
       policy=st.sampled_from(["random", "easy", "hard", "flexrand"]), data=st.data())
def test_every_policy_keeps_exact_stratified_counts(labels, keep, seed, split, policy, data):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(labels)
    scores = np.array(data.draw(st.lists(st.floats(-5, 5), min_size=len(labels), max_size=len(labels))))
    kept = make_policy(policy, split=split if policy == "flexrand" else None).select(scores, labels, keep=keep, seed=seed)
    assert kept.dtype == np.int64
    assert np.all(np.diff(kept) > 0), "sorted, no duplicates"
    assert kept.min(initial=0) >= 0 and kept.max(initial=0) < len(labels)
    for c, n_keep in class_counts(labels, keep).items():
        assert int((labels[kept] == c).sum()) == n_keep == max(1, round((labels == c).sum() * keep))  # no class dropped


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 200), keep=st.floats(0.01, 1.0), split=st.floats(0.01, 0.99), seed=st.integers(0, 1000))
def test_flexrand_draws_each_share_from_its_pool(n, keep, split, seed):
    scores = np.random.default_rng(seed).permutation(n).astype(float)  # distinct: pools are well defined
    policy = FlexRand(split)
    kept = policy.select(scores, None, keep=keep, seed=seed)
    n_keep = max(1, round(n * keep))
    pool, n_easy, n_hard = policy.shares(n, n_keep, keep)
    assert pool == round(n * split)
    assert n_easy + n_hard == n_keep == len(kept)
    assert 0 <= n_easy <= pool and 0 <= n_hard <= n - pool
    assert int((scores[kept] < pool).sum()) == n_easy  # the easy pool is the `pool` lowest scores
    capped = min(split, keep / 2) if split <= 0.5 else min(1 - split, keep / 2)
    first = round(n * capped)
    if first <= (pool if split <= 0.5 else n - pool) and n_keep - first <= (n - pool if split <= 0.5 else pool) and first <= n_keep:
        assert (n_easy if split <= 0.5 else n_hard) == first  # no pool overflowed: the exact formula


def test_a_small_keep_keeps_one_of_every_class_it_would_round_away():
    labels = np.repeat([0, 1, 2], [40, 4, 1])
    assert class_counts(labels, 0.05) == {0: 2, 1: 1, 2: 1}  # round(4 * 0.05) = round(0.05) = 0 -> 1
    kept = make_policy("easy").select(np.arange(45.0), labels, keep=0.05)
    assert kept.tolist() == [0, 1, 40, 44]


def test_selection_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, dlcprune.selection; assert 'torch' not in sys.modules, 'torch was imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_methods_registry_lists_the_policies_and_auto():
    from dlcprune import list_methods

    assert list_methods()[:5] == ["random", "easy", "hard", "flexrand", "ccs"]
    assert {"auto", "flexrand-auto", "flexrand-herding", "herding", "el2n"} <= set(list_methods())
