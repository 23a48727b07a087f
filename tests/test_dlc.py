"""DLC scoring: hand-computed prototype losses, an independent reference loop, resume, bad input."""
import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from dlcprune import DlcpruneError, from_arrays, from_module, score_dlc
from dlcprune.scoring import dlc as dlc_module
from dlcprune.scoring import level_loop
from dlcprune.data.images import ArrayReader, ImageDataset
from dlcprune.scoring import class_prototypes, prototype_losses
from tests.conftest import random_images, tiny_cnn


def test_prototypes_and_losses_hand_computed():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 2.0]])
    y = torch.tensor([0, 0, 1, 1])
    mu = class_prototypes(z, y, 2)
    assert mu.tolist() == [[1.0, 0.0], [10.0, 1.0]]
    losses = prototype_losses(z, y, mu)
    # distances to (mu_0, mu_1): sample 0 (1, sqrt 101), 1 (1, sqrt 65), 2 (9, 1), 3 (sqrt 85, 1)
    def ce(d_own, d_other):
        return -math.log(math.exp(1 / d_own) / (math.exp(1 / d_own) + math.exp(1 / d_other)))

    expected = [ce(1, math.sqrt(101)), ce(1, math.sqrt(65)), ce(1, 9), ce(1, math.sqrt(85))]
    assert losses.tolist() == pytest.approx(expected, abs=1e-12)


def test_feature_on_its_prototype_gives_zero_loss_not_nan():
    z = torch.tensor([[1.0, 1.0], [1.0, 1.0], [5.0, 5.0], [7.0, 7.0]])
    y = torch.tensor([0, 0, 1, 1])
    losses = prototype_losses(z, y, class_prototypes(z, y, 2))
    assert torch.isfinite(losses).all()
    assert losses[0].item() == 0.0


def reference_dlc(model, images, labels, *, levels, step):
    """An independent loop as DESIGN.md states it, with torch's own global_unstructured pruning."""
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float()
         - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255) / (torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255)
    y = torch.from_numpy(labels)
    params = [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        z0 = model.features(x)
    mu = torch.stack([z0[y == c].mean(0) for c in range(int(y.max()) + 1)]).double()
    losses = []
    for k in range(levels):
        if k:
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=step)
        with torch.no_grad():
            z = model.features(x).double()
        losses.append(F.cross_entropy(1.0 / torch.cdist(z, mu), y, reduction="none").numpy())
    return np.mean(losses, 0), np.stack(losses)


def test_scores_equal_an_independent_reference_loop():
    images, labels = random_images(24, size=12)
    data = from_arrays(images, labels)
    model = tiny_cnn(3)
    encoder = from_module(copy.deepcopy(model), lambda m, x: m.features(x))
    result = score_dlc(encoder, data, levels=8, step=0.1, batch_size=24, progress=False)
    ref_scores, ref_levels = reference_dlc(model, images, labels, levels=8, step=0.1)
    # float32 features through two code paths: equal to float32 precision
    np.testing.assert_allclose(result.level_losses, ref_levels, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(result.scores, ref_scores, rtol=1e-5, atol=1e-9)
    assert result.level_losses.shape == (8, 24) and result.features.shape == (24, 12)
    assert result.sparsity[0] == 0 and np.all(np.diff(result.sparsity) > 0)


def test_weights_restored_and_runs_reproducible(tiny_encoder):
    images, labels = random_images(15, size=10)
    data = from_arrays(images, labels)
    before = copy.deepcopy(tiny_encoder.module.state_dict())
    a = score_dlc(tiny_encoder, data, levels=5, step=0.2, progress=False)
    for name, t in tiny_encoder.module.state_dict().items():
        assert torch.equal(t, before[name])
    b = score_dlc(tiny_encoder, data, levels=5, step=0.2, progress=False)
    assert np.array_equal(a.scores, b.scores)


def test_interrupted_run_resumes_to_identical_scores(tmp_path, tiny_encoder, monkeypatch):
    images, labels = random_images(18, size=10)
    data = from_arrays(images, labels)
    full = score_dlc(tiny_encoder, data, levels=7, step=0.15, progress=False)

    real = level_loop.level_losses
    calls = []

    def dies_at_level_4(*args, where, **kwargs):
        calls.append(where)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, where=where, **kwargs)

    monkeypatch.setattr(level_loop, "level_losses", dies_at_level_4)
    with pytest.raises(KeyboardInterrupt):
        score_dlc(tiny_encoder, data, levels=7, step=0.15, checkpoint_dir=tmp_path, progress=False)
    assert json.loads((tmp_path / "progress.json").read_text()) == {"0": 18, "1": 18, "2": 18, "3": 18}

    calls.clear()
    monkeypatch.setattr(level_loop, "level_losses", lambda *a, where, **k: (calls.append(where), real(*a, where=where, **k))[1])
    resumed = score_dlc(tiny_encoder, data, levels=7, step=0.15, checkpoint_dir=tmp_path, progress=False)
    assert len(calls) == 3  # only levels 4, 5, 6 were computed again
    assert np.array_equal(resumed.scores, full.scores)
    assert np.array_equal(resumed.level_losses, full.level_losses)


def test_checkpoint_of_other_arguments_is_not_reused(tmp_path, tiny_encoder):
    images, labels = random_images(12, size=10)
    data = from_arrays(images, labels)
    score_dlc(tiny_encoder, data, levels=3, step=0.2, checkpoint_dir=tmp_path, progress=False)
    other = score_dlc(tiny_encoder, data, levels=3, step=0.4, checkpoint_dir=tmp_path, progress=False)
    fresh = score_dlc(tiny_encoder, data, levels=3, step=0.4, progress=False)
    assert np.array_equal(other.scores, fresh.scores)


def test_class_with_one_sample_is_rejected(tiny_encoder):
    images, labels = random_images(7, size=10)
    labels = np.array([0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(DlcpruneError, match="class '2' has 1 sample.*at least 2"):
        score_dlc(tiny_encoder, from_arrays(images, labels), levels=2, step=0.1, progress=False)


def test_nan_features_are_rejected():
    model = tiny_cnn(0)
    encoder = from_module(model, lambda m, x: m.features(x) * float("nan"))
    images, labels = random_images(6, size=10)
    with pytest.raises(DlcpruneError, match="NaN/inf features for 6 sample"):
        score_dlc(encoder, from_arrays(images, labels), levels=2, step=0.1, progress=False)


def test_dataloader_workers_give_identical_scores():
    from dlcprune.scoring.passes import batches
    from tests.conftest import random_images, tiny_cnn

    data = from_arrays(*random_images(21, seed=2))
    encoder = from_module(tiny_cnn(0), lambda m, x: m.features(x))
    spans = [span for span, _ in batches(data, batch_size=8, workers=2)]
    assert spans == [range(0, 8), range(8, 16), range(16, 21)]
    plain = score_dlc(encoder, data, levels=3, step=0.1, batch_size=8, progress=False)
    prefetched = score_dlc(encoder, data, levels=3, step=0.1, batch_size=8, workers=2, progress=False)
    np.testing.assert_array_equal(plain.level_losses, prefetched.level_losses)


class CountingReader(ArrayReader):
    """Counts how often each image is read (decoded)."""

    def __init__(self, images):
        super().__init__(images)
        self.reads = np.zeros(len(images), dtype=int)

    def read(self, index):
        self.reads[index] += 1
        return super().read(index)


@pytest.mark.parametrize("levels", [2, 5, 9])
@pytest.mark.parametrize("block_bytes", [1, 10 ** 9])  # one batch per block; everything in one block
def test_each_sample_is_decoded_twice_whatever_the_levels(tiny_encoder, levels, block_bytes):
    images, labels = random_images(20, size=10)
    reader = CountingReader(images)
    data = ImageDataset(ids=[str(i) for i in range(20)], labels=labels, class_names=["0", "1", "2"],
                        source="counted", reader=reader)
    score_dlc(tiny_encoder, data, levels=levels, step=0.1, batch_size=6, block_bytes=block_bytes, progress=False)
    assert reader.reads.tolist() == [2] * 20  # the plain pass, then one read for all masked levels


def test_block_size_does_not_change_scores(tiny_encoder):
    images, labels = random_images(21, size=10)
    data = from_arrays(images, labels)
    one = score_dlc(tiny_encoder, data, levels=6, step=0.2, batch_size=4, progress=False)
    per_batch = score_dlc(tiny_encoder, data, levels=6, step=0.2, batch_size=4, block_bytes=1, progress=False)
    assert np.array_equal(one.scores, per_batch.scores)
    assert np.array_equal(one.level_losses, per_batch.level_losses)
    assert np.array_equal(one.features, per_batch.features)


def test_killed_in_a_later_block_resumes_from_the_finished_blocks(tmp_path, tiny_encoder, monkeypatch):
    images, labels = random_images(18, size=10)
    data = from_arrays(images, labels)
    run = dict(levels=4, step=0.15, batch_size=4, block_bytes=1, progress=False)  # 5 blocks of 4, 4, 4, 4, 2
    full = score_dlc(tiny_encoder, data, **run)
    real, calls = level_loop.level_losses, []

    def dies_in_block_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2 * 3 + 2:  # 3 masked levels per block: the second level of block 3
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(level_loop, "level_losses", dies_in_block_3)
    with pytest.raises(KeyboardInterrupt):
        score_dlc(tiny_encoder, data, checkpoint_dir=tmp_path, **run)
    # level 1 holds blocks 1-3 (samples 0-11), levels 2 and 3 blocks 1-2
    assert json.loads((tmp_path / "progress.json").read_text()) == {"0": 18, "1": 12, "2": 8, "3": 8}
    calls.clear()
    monkeypatch.setattr(level_loop, "level_losses", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    resumed = score_dlc(tiny_encoder, data, checkpoint_dir=tmp_path, **run)
    assert len(calls) == 2 + 3 + 3  # block 3 at levels 2 and 3, blocks 4 and 5 at all three
    assert np.array_equal(resumed.scores, full.scores) and np.array_equal(resumed.level_losses, full.level_losses)
    mmap = __import__("mmap").mmap
    assert isinstance(resumed.features.base, mmap)  # read from the checkpoint, not held
    assert isinstance(resumed.level_losses.base, mmap) and str(resumed.level_losses.filename) == str(tmp_path / "levels.npy")
    again = score_dlc(tiny_encoder, data, checkpoint_dir=tmp_path, **run)  # all on record: nothing computed or written
    assert len(calls) == 8 and np.array_equal(again.scores, full.scores)


def test_features_stream_to_the_checkpoint_and_equal_the_in_memory_ones(tmp_path, tiny_encoder):
    images, labels = random_images(15, size=10)
    data = from_arrays(images, labels)
    kept = score_dlc(tiny_encoder, data, levels=3, step=0.2, batch_size=4, checkpoint_dir=tmp_path, progress=False)
    held = score_dlc(tiny_encoder, data, levels=3, step=0.2, batch_size=4, progress=False)
    assert np.array_equal(np.load(tmp_path / "features.npy"), held.features)
    assert np.array_equal(kept.scores, held.scores)


def test_a_mapped_npy_is_linked_not_copied_and_a_slice_is_copied(tmp_path):
    """The scores folder takes the checkpoint's streamed features by a hard link: the same bytes as
    np.save, no second copy; any other array (a slice of it, an in-memory one) is written."""
    import os

    from dlcprune import files

    a = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    np.save(tmp_path / "src.npy", a)
    mapped = np.load(tmp_path / "src.npy", mmap_mode="r")
    files.save_npy(tmp_path / "whole.npy", mapped)
    files.save_npy(tmp_path / "part.npy", mapped[5:])
    files.save_npy(tmp_path / "held.npy", a)
    assert os.path.samefile(tmp_path / "src.npy", tmp_path / "whole.npy")
    assert not os.path.samefile(tmp_path / "src.npy", tmp_path / "part.npy")
    assert (tmp_path / "whole.npy").read_bytes() == (tmp_path / "held.npy").read_bytes()
    assert np.array_equal(np.load(tmp_path / "part.npy"), a[5:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held.npy", "part.npy", "src.npy", "whole.npy"]  # no temp left


def test_compiled_encoder_sees_the_masks_and_gives_the_eager_scores_to_rounding():
    """torch.compile keeps the weights as graph inputs: masking them in place must change its output."""
    images, labels = random_images(24, size=10)
    data = from_arrays(images, labels)
    eager = score_dlc(from_module(tiny_cnn(0), lambda m, x: m.features(x)), data, levels=5, step=0.3, progress=False)
    encoder = from_module(tiny_cnn(0), lambda m, x: m.features(x))
    encoder.compile = True
    compiled = score_dlc(encoder, data, levels=5, step=0.3, progress=False)
    assert compiled.parameters["compiled"] is True
    assert np.abs(eager.level_losses[1:] - eager.level_losses[0]).max() > 1e-3  # the levels differ ...
    np.testing.assert_allclose(compiled.level_losses, eager.level_losses, rtol=1e-4, atol=1e-6)  # ... and it follows them


def test_level_rows_on_disk_average_bit_for_bit_as_the_stacked_mean(tmp_path, monkeypatch):
    """The chunked mean of the losses file equals ``mean(0)`` of the whole (K, N) array, including a
    last chunk that would be one sample wide (numpy sums a lone column pairwise: other bits)."""
    from dlcprune import files
    from dlcprune.scoring.checkpoint import LevelRows

    rng = np.random.default_rng(0)
    levels = 12
    monkeypatch.setattr(files, "CHUNK_BYTES", 8 * levels * 4)  # chunks of 4 samples
    for n in (1, 4, 10, *[5] * 20, *[9] * 20):  # 5 and 9: one sample past whole chunks (many draws: not always other bits)
        values = rng.exponential(size=(levels, n)) * 10.0 ** rng.uniform(-8, 2, size=(levels, n))
        (tmp_path / f"{n}.npy").unlink(missing_ok=True)
        rows = LevelRows(tmp_path / f"{n}.npy", levels, n)
        for k in range(levels):
            rows.write(k, 0, values[k])
        assert rows.mean().tobytes() == values.mean(0).tobytes()
        assert np.array_equal(np.load(tmp_path / f"{n}.npy"), values) and np.array_equal(rows.row(3), values[3])


def test_a_progress_record_without_its_losses_file_is_not_trusted(tmp_path, tiny_encoder, monkeypatch):
    images, labels = random_images(12, size=10)
    data = from_arrays(images, labels)
    full = score_dlc(tiny_encoder, data, levels=3, step=0.2, checkpoint_dir=tmp_path, progress=False)
    (tmp_path / "levels.npy").unlink()  # progress.json still says every level is written
    with monkeypatch.context() as m:  # killed right after the new (zero) file is made, before anything is recorded
        m.setattr(dlc_module, "_unmasked_losses", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            score_dlc(tiny_encoder, data, levels=3, step=0.2, checkpoint_dir=tmp_path, progress=False)
    again = score_dlc(tiny_encoder, data, levels=3, step=0.2, checkpoint_dir=tmp_path, progress=False)
    assert np.array_equal(again.scores, full.scores) and np.array_equal(again.level_losses, full.level_losses)


def test_a_checkpoint_resumes_only_on_as_many_cpu_threads(tmp_path, tiny_encoder, monkeypatch):
    """Sums split over another number of threads differ in the last bits: a run killed on one thread
    and resumed on two would mix two results, so the thread count is part of the checkpoint's key."""
    images, labels = random_images(12, size=10)
    data = from_arrays(images, labels)
    real = level_loop.level_losses
    calls = []
    monkeypatch.setattr(level_loop, "level_losses", lambda *a, where, **k: (calls.append(where), real(*a, where=where, **k))[1])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        score_dlc(tiny_encoder, data, levels=3, step=0.2, checkpoint_dir=tmp_path, progress=False)
        assert json.loads((tmp_path / "key.json").read_text())["cpu_threads"] == 1
        calls.clear()
        score_dlc(tiny_encoder, data, levels=3, step=0.2, checkpoint_dir=tmp_path, progress=False)
        assert calls == []  # same threads: every level read back
        torch.set_num_threads(2)
        score_dlc(tiny_encoder, data, levels=3, step=0.2, checkpoint_dir=tmp_path, progress=False)
        assert len(calls) == 2 and json.loads((tmp_path / "key.json").read_text())["cpu_threads"] == 2
    finally:
        torch.set_num_threads(before)
