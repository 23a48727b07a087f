"""Nested masks: counts and masks equal torch's global_unstructured; restore is bit-exact."""
import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from dlcprune.masking import NestedMasks, kth_smallest, level_counts
from tests.conftest import tiny_cnn


def conv_params(model):
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("total,step,levels", [(1000, 0.02, 50), (3331, 0.05, 20), (7, 0.3, 6), (1, 0.5, 3)])
def test_level_counts_follow_global_unstructured(total, step, levels):
    w = nn.Parameter(torch.randn(total))
    holder = nn.Module()
    holder.weight = w
    expected = [0]
    for _ in range(levels - 1):
        prune.global_unstructured([(holder, "weight")], pruning_method=prune.L1Unstructured, amount=step)
        expected.append(int((holder.weight_mask == 0).sum()))
    assert level_counts(total, levels=levels, step=step).tolist() == expected


def test_level_counts_hand_computed():
    # 1000 -> +20 (2% of 1000) -> +20 (2% of 980 = 19.6) -> +19 (2% of 960 = 19.2)
    assert level_counts(1000, levels=4, step=0.02).tolist() == [0, 20, 40, 59]


def test_magnitude_masks_equal_global_unstructured_applied_k_times():
    levels, step = 12, 0.1
    ours, ref = tiny_cnn(1), tiny_cnn(1)
    masks = NestedMasks([m.weight for m, _ in conv_params(ours)], levels=levels, step=step)
    with masks.applied() as set_level:
        for k in range(levels):
            if k:
                prune.global_unstructured(conv_params(ref), pruning_method=prune.L1Unstructured, amount=step)
            set_level(k)
            for (m_ours, _), (m_ref, _) in zip(conv_params(ours), conv_params(ref)):
                ref_mask = getattr(m_ref, "weight_mask", torch.ones_like(m_ref.weight))
                assert torch.equal(m_ours.weight != 0, ref_mask != 0), f"level {k}"
                assert torch.equal(m_ours.weight, m_ref.weight)
            assert sum(int((m.weight == 0).sum()) for m, _ in conv_params(ours)) == masks.counts_[k]


def test_restore_is_bit_exact_including_signed_zeros_and_bf16():
    torch.manual_seed(0)
    a = torch.randn(50, 7)
    a[0, :3] = torch.tensor([0.0, -0.0, 0.0])
    b = torch.randn(300).to(torch.bfloat16)
    weights = [nn.Parameter(a.clone()), nn.Parameter(b.clone())]
    originals = [w.detach().clone() for w in weights]
    masks = NestedMasks(weights, levels=8, step=0.2)
    with masks.applied() as set_level:
        set_level(7)
        assert sum(int((w == 0).sum()) for w in weights) >= masks.counts_[7]
    for w, o in zip(weights, originals):
        assert torch.equal(w.detach().view(torch.int16 if w.dtype == torch.bfloat16 else torch.int32),
                           o.view(torch.int16 if o.dtype == torch.bfloat16 else torch.int32))


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_restore_on_error_and_ctrl_c(error):
    model = tiny_cnn(2)
    before = copy.deepcopy(model.state_dict())
    masks = NestedMasks([m.weight for m, _ in conv_params(model)], levels=10, step=0.1)
    with pytest.raises(error):
        with masks.applied() as set_level:
            set_level(5)
            raise error()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_masks_only_grow():
    masks = NestedMasks([nn.Parameter(torch.randn(100))], levels=5, step=0.1)
    with masks.applied() as set_level:
        set_level(3)
        with pytest.raises(ValueError, match="only grow"):
            set_level(2)


def test_random_masking_is_seeded_nested_and_exact_in_count():
    def zero_sets(seed):
        w = nn.Parameter(torch.randn(2000) + 10.0)  # no exact zeros, magnitudes all large
        masks = NestedMasks([w], levels=6, step=0.25, method="random", seed=seed)
        sets = []
        with masks.applied() as set_level:
            for k in range(6):
                set_level(k)
                sets.append(set(torch.nonzero(w == 0).flatten().tolist()))
        assert [len(s) for s in sets] == masks.counts_.tolist()
        assert all(a <= b for a, b in zip(sets, sets[1:]))
        return sets

    assert zero_sets(3) == zero_sets(3)
    assert zero_sets(3) != zero_sets(4)


def test_random_masks_ignore_magnitude():
    w = nn.Parameter(torch.arange(1, 1001, dtype=torch.float32))
    masks = NestedMasks([w], levels=2, step=0.5, method="random", seed=0)
    with masks.applied() as set_level:
        set_level(1)
        zeroed = torch.nonzero(w == 0).flatten()
    assert len(zeroed) == 500
    assert zeroed.max() > 500 and zeroed.min() < 500  # not simply the 500 smallest


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1e6, allow_subnormal=False, width=32), min_size=1, max_size=40),
                min_size=1, max_size=4), st.data())
def test_kth_smallest_equals_sorting(chunks, data):
    tensors = [torch.tensor(c, dtype=torch.float32) for c in chunks]
    flat = np.sort(np.concatenate([np.asarray(c, dtype=np.float32) for c in chunks]))
    ranks = data.draw(st.lists(st.integers(1, len(flat)), min_size=1, max_size=5))
    assert kth_smallest(lambda: tensors, ranks).tolist() == flat[np.array(ranks) - 1].astype(np.float64).tolist()


def test_kth_smallest_with_ties_and_zeros():
    t = [torch.tensor([0.0, 0.0, 3.0, 1.5]), torch.tensor([1.5, 1.5, 0.25])]
    assert kth_smallest(lambda: t, [1, 2, 3, 4, 5, 6, 7]).tolist() == [0, 0, 0.25, 1.5, 1.5, 1.5, 3.0]


@pytest.mark.parametrize("method", ["magnitude", "random"])
def test_reset_mid_run_restores_bits_and_the_next_levels_are_the_same(method):
    """The level loop runs every level over a block, resets, and starts again on the next block."""
    torch.manual_seed(1)
    a = torch.randn(40, 9)
    a[0, :2] = torch.tensor([0.0, -0.0])
    w = nn.Parameter(a.clone())
    masks = NestedMasks([w], levels=6, step=0.25, method=method, seed=3)
    bits = lambda t: t.detach().clone().view(torch.int32)
    seen = []
    with masks.applied() as set_level:
        for _ in range(3):
            assert torch.equal(bits(w), a.view(torch.int32))
            pass_ = []
            for k in (1, 3, 5):
                set_level(k)
                pass_.append(bits(w))
            seen.append(pass_)
            set_level.reset()
            assert set_level.level == 0
    assert all(torch.equal(x, y) for p in seen[1:] for x, y in zip(p, seen[0]))
    assert torch.equal(bits(w), a.view(torch.int32))
