"""The Python API as a user calls it: labels of any kind, bad input refused in one DlcpruneError
(never a traceback from deep inside numpy or torch), and what select() hands back."""
import re

import numpy as np
import pandas as pd  # a dependency of datasets
import pytest
import torch

import dlcprune
from dlcprune import DlcpruneError, FlexRand, select
from dlcprune.masking import NestedMasks
from dlcprune.selection import class_codes
from dlcprune.training import train_linear_probe

from .conftest import random_images, tiny_cnn

RNG = np.random.default_rng(0)
SCORES = RNG.normal(size=30)
LABELS = np.arange(30) % 3
FEATURES = RNG.normal(size=(30, 8)).astype(np.float32)


def test_class_codes_number_classes_in_sorted_order():
    assert class_codes([0, 2, 1, 2]).tolist() == [0, 2, 1, 2]  # 0..C-1 stay as they are
    assert class_codes([30, -1, 30, 7]).tolist() == [2, 0, 2, 1]
    assert class_codes(np.array(["cat", "ant", "cat"])).tolist() == [1, 0, 1]
    assert class_codes(np.array([1.0, 0.0])).tolist() == [1, 0]
    assert class_codes(torch.tensor([1, 0], dtype=torch.float32).requires_grad_()).tolist() == [1, 0]


@pytest.mark.parametrize("method", ["random", "flexrand", "herding", "margin", "el2n"])
def test_labels_of_any_range_select_as_their_classes_do(method):
    dynamics = "head" if method == "el2n" else None
    base = select(SCORES, labels=LABELS, features=FEATURES, method=method, keep=0.3, dynamics=dynamics)
    for relabelled in (LABELS * 10 ** 8, LABELS - 1, np.array(["a", "b", "c"])[LABELS]):
        other = select(SCORES, labels=relabelled, features=FEATURES, method=method, keep=0.3, dynamics=dynamics)
        assert other.indices().tolist() == base.indices().tolist()
    assert base.labels.tolist() == LABELS.tolist()


@pytest.mark.parametrize("labels, message", [
    (LABELS + 0.5, "labels must be class ids (whole numbers or strings), found 0.5"),
    (np.zeros((30, 2)), "labels must be one class id per sample, a 1-D array; got shape (30, 2)"),
    (LABELS[:-1], "need one label per sample: 29 labels for 30 samples"),
])
def test_bad_labels_are_one_line(labels, message):
    with pytest.raises(DlcpruneError) as err:
        select(SCORES, labels=labels, method="random", keep=0.3)
    assert str(err.value) == message


@pytest.mark.parametrize("features, message", [
    (FEATURES[:-2], "features must be one row per sample, (N=30, D); got shape (28, 8)"),
    (FEATURES[:, 0], "features must be one row per sample, (N=30, D); got shape (30,)"),
    (np.where(np.arange(30)[:, None] < 2, np.nan, FEATURES), "the features of 2 sample(s) hold NaN or inf; "
                                                             "extract the features again"),
    (np.full((30, 2), "x"), "features must be an (N, D) array of numbers; got <U1 values"),
])
@pytest.mark.parametrize("method", ["herding", "margin", "auto"])
def test_bad_features_are_one_line(features, message, method):
    with pytest.raises(DlcpruneError) as err:
        select(SCORES, labels=LABELS, features=features, method=method, keep=0.3)
    assert str(err.value) == message


@pytest.mark.parametrize("method, start", [("auto", "'auto' judges each subset by a linear probe"),
                                           ("flexrand-auto", "'flexrand-auto' judges each subset"),
                                           ("margin", "method 'margin' scores a linear probe's class probabilities")])
def test_methods_that_need_classes_refuse_one_class(method, start):
    for labels in (None, np.zeros(30, dtype=int)):
        with pytest.raises(DlcpruneError, match="^" + start):
            select(SCORES, labels=labels, features=FEATURES, method=method, keep=0.3)


def test_auto_without_features_names_auto():
    with pytest.raises(DlcpruneError, match="^method 'auto' needs the pre-trained features"):
        select(SCORES, labels=LABELS, method="auto", keep=0.3)


def test_empty_data_is_one_line():
    with pytest.raises(DlcpruneError, match="no samples to select from"):
        select(np.array([]), labels=np.array([], dtype=int), method="random", keep=0.3)
    with pytest.raises(DlcpruneError, match="no samples to select from"):
        FlexRand(0.5).select([], [], keep=0.5)


@pytest.mark.parametrize("keep, message", [
    ("0.3", "keep must be a fraction or a list of fractions (the share KEPT), got the string '0.3'"),
    (True, "keep must be a fraction in (0, 1] (the share of samples KEPT), got True"),
    ([0.3, "x"], "keep must be a fraction in (0, 1] (the share of samples KEPT), got 'x'"),
])
def test_bad_keep_is_one_line(keep, message):
    with pytest.raises(DlcpruneError) as err:
        select(SCORES, labels=LABELS, method="random", keep=keep)
    assert str(err.value) == message


def test_numpy_keeps_are_fractions_like_any_other():
    want = select(SCORES, labels=LABELS, method="random", keep=0.3).indices().tolist()
    for keep in (np.float32(0.3), np.array(0.3), np.array([0.3])):
        assert select(SCORES, labels=LABELS, method="random", keep=keep).indices().tolist() == want


@pytest.mark.parametrize("seed", [None, -1, 1.5, "a", True])
def test_a_seed_is_a_whole_number(seed):
    with pytest.raises(DlcpruneError, match="^seed must be a whole number >= 0"):
        select(SCORES, labels=LABELS, method="random", keep=0.3, seed=seed)
    with pytest.raises(DlcpruneError, match="^seed must be a whole number >= 0"):
        FlexRand(0.5).select(SCORES, LABELS, keep=0.3, seed=seed)


def test_option_types_are_named():
    with pytest.raises(DlcpruneError, match=r"must be a number strictly between 0 and 1, got '0\.5'"):
        select(SCORES, labels=LABELS, method="flexrand", split="0.5", keep=0.3)
    with pytest.raises(DlcpruneError, match=r"candidates is a list of method names; got the string 'herding' "
                                            r"\(pass \['herding'\]"):
        select(SCORES, labels=LABELS, features=FEATURES, method="auto", candidates="herding", keep=0.3)


def test_a_scores_folder_brings_its_own_labels(tmp_path):
    rows = "".join(f"{i},s{i},{y},{s!r}\n" for i, (y, s) in enumerate(zip(LABELS, SCORES.tolist())))
    (tmp_path / "scores.csv").write_text("index,id,label,score\n" + rows)
    with pytest.raises(DlcpruneError, match="labels come from the scores folder"):
        select(tmp_path, labels=LABELS, method="easy", keep=0.5)
    by_csv = select(tmp_path / "scores.csv", method="easy", keep=0.5)  # the file itself names its folder
    assert by_csv.indices().tolist() == select(SCORES, labels=LABELS, method="easy", keep=0.5).indices().tolist()
    for wrong in (None, 5):
        with pytest.raises(DlcpruneError, match="a scores folder is a path"):
            dlcprune.read_scores(wrong)


def test_selection_indices_are_copies_found_by_value():
    sel = select(SCORES, labels=LABELS, method="random", keep=[0.1 * 3, 0.5])
    first = sel.indices(0.3)  # 0.1 * 3 is 0.30000000000000004
    first[0] = 999
    assert sel.indices(0.3)[0] != 999
    with pytest.raises(DlcpruneError, match=r"^no keep fraction 0.7 in this selection; it has \[0.3"):
        sel.indices(0.7)
    assert repr(sel) == "Selection(method='random', samples=30, kept={0.3: 9, 0.5: 15})"


def test_subset_of_arrays_and_frames_takes_rows():
    sel = select(SCORES, labels=LABELS, method="easy", keep=0.1)
    idx = sel.indices()
    assert np.array_equal(sel.subset(FEATURES), FEATURES[idx])
    frame = pd.DataFrame({"x": np.arange(30) * 2})
    assert sel.subset(frame)["x"].tolist() == (idx * 2).tolist()
    assert torch.equal(sel.subset(torch.arange(30)), torch.from_numpy(idx))
    with pytest.raises(DlcpruneError, match="cannot take a subset of a str"):
        sel.subset("x" * 30)


def test_probe_inputs_are_checked():
    with pytest.raises(DlcpruneError, match=r"labels must be whole numbers in 0\.\.1 \(num_classes=2\)"):
        train_linear_probe(FEATURES, LABELS, num_classes=2)
    with pytest.raises(DlcpruneError, match="the features of 1 sample"):
        train_linear_probe(np.where(np.arange(30)[:, None] == 4, np.nan, FEATURES), LABELS, num_classes=3)
    with pytest.raises(DlcpruneError, match=r"need one label per feature row"):
        train_linear_probe(FEATURES, LABELS[:5], num_classes=3)
    with pytest.raises(DlcpruneError, match=r"N >= 1"):
        train_linear_probe(np.zeros((0, 3)), np.zeros(0, dtype=int), num_classes=2)


def test_scoring_arguments_are_checked():
    images, labels = random_images(9)
    data = dlcprune.from_arrays(images, labels)
    encoder = dlcprune.from_module(tiny_cnn(), lambda m, x: m.features(x), name="tiny")
    cases = [(dict(levels=2.5), "levels must be a whole number >= 1, got 2.5"),
             (dict(batch_size=0), "batch_size must be a whole number >= 1, got 0"),
             (dict(step="0.1"), "step must be a number in (0, 1), got '0.1'")]
    for options, message in cases:
        with pytest.raises(DlcpruneError) as err:
            dlcprune.score(encoder, data, progress=False, **options)
        assert str(err.value) == message
    with pytest.raises(DlcpruneError, match=r"the data must be a dlcprune dataset .* \(the arguments are the model, "):
        dlcprune.score(data, encoder)
    with pytest.raises(DlcpruneError, match="the data must be a dlcprune dataset .* got a ndarray"):
        dlcprune.score(encoder, images)
    wrong_rows = dlcprune.from_module(tiny_cnn(), lambda m, x: m.features(x)[:1], name="tiny")
    with pytest.raises(DlcpruneError, match=r"the feature function gave \(1, \d+\) for a batch of 9 images"):
        dlcprune.score(wrong_rows, data, levels=2, progress=False)


def test_nested_masks_refuse_bad_plans_in_one_line():
    w = [torch.ones(3, 3)]
    with pytest.raises(DlcpruneError, match="masking method must be"):
        NestedMasks(w, levels=2, step=0.1, method="magnitud")
    with pytest.raises(DlcpruneError, match="weights must be a non-empty list of floating-point torch tensors"):
        NestedMasks([np.ones((3, 3))], levels=2, step=0.1)
    with pytest.raises(DlcpruneError, match="give either sparsities or levels and step, not both"):
        NestedMasks(w, levels=3, step=0.1, sparsities=[0, 0.1])
    with pytest.raises(DlcpruneError, match=r"need a whole number of levels >= 1 and 0 < step < 1, got levels=2\.5"):
        NestedMasks(w, levels=2.5, step=0.1)


def test_load_dataset_points_arrays_to_from_arrays():
    images, labels = random_images(4)
    for obj in (images, (images, labels)):
        with pytest.raises(DlcpruneError, match=r"load with dlcprune\.from_arrays"):
            dlcprune.load_dataset(obj)


def _tiny_scoring():
    images, labels = random_images(12)
    return dlcprune.from_arrays(images, labels), lambda m, x: m.features(x)


def test_a_checkpoint_folder_of_the_users_is_never_emptied(tmp_path):
    data, features = _tiny_scoring()
    encoder = dlcprune.from_module(tiny_cnn(), features, name="tiny")
    (tmp_path / "mine.npy").write_bytes(b"the user's")
    with pytest.raises(DlcpruneError, match="holds files and no dlcprune checkpoint"):
        dlcprune.score(encoder, data, levels=2, checkpoint_dir=tmp_path, progress=False)
    assert (tmp_path / "mine.npy").read_bytes() == b"the user's"
    ckpt = tmp_path / "ckpt"
    dlcprune.score(encoder, data, levels=2, checkpoint_dir=ckpt, progress=False)
    (ckpt / "notes.npz").write_bytes(b"kept")
    dlcprune.score(encoder, data, levels=3, checkpoint_dir=ckpt, progress=False)  # another key: its own files go
    assert (ckpt / "notes.npz").read_bytes() == b"kept"
    with pytest.raises(DlcpruneError, match="is a file"):
        dlcprune.score(encoder, data, levels=2, checkpoint_dir=tmp_path / "mine.npy", progress=False)


def test_a_checkpoint_resumes_only_the_same_encoder(tmp_path):
    data, features = _tiny_scoring()
    run = lambda encoder: dlcprune.score(encoder, data, levels=3, checkpoint_dir=tmp_path / "c", progress=False).scores
    first = run(dlcprune.from_module(tiny_cnn(), features, name="tiny"))
    changed = [dlcprune.from_module(tiny_cnn(), features, name="tiny", pixel_mean=(0, 0, 0), pixel_std=(1, 1, 1)),
               dlcprune.from_module(tiny_cnn(), lambda m, x: m.features(x) * 2 + 1, name="tiny")]
    for encoder in changed:
        fresh = dlcprune.score(encoder, data, levels=3, progress=False).scores
        assert not np.array_equal(fresh, first)
        assert np.array_equal(run(encoder), fresh)


def test_from_module_checks_what_it_wraps():
    model = tiny_cnn()
    f = lambda m, x: m.features(x)
    cases = [(dict(maskable=list(tiny_cnn(1).named_parameters())), "is not a parameter of the module"),
             (dict(maskable=list(model.parameters())), r"maskable lists \(name, parameter\) pairs"),
             (dict(pixel_mean=(127,)), r"pixel_mean needs one value per RGB channel"),
             (dict(device="gpu"), "device 'gpu' is not a torch device")]
    for options, message in cases:
        with pytest.raises(DlcpruneError, match=message):
            dlcprune.from_module(model, f, **options)
    with pytest.raises(DlcpruneError, match="feature_fn must be a function"):
        dlcprune.from_module(model, None)
    with pytest.raises(DlcpruneError, match="wraps a torch.nn.Module, got a str"):
        dlcprune.from_module("resnet18", f)
    assert dlcprune.from_module(model, f, device="cpu").device == torch.device("cpu")


class Pairs(torch.utils.data.Dataset):
    def __init__(self, labels):
        self.images, self.labels = random_images(len(labels))[0], labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def test_a_torch_dataset_labels_are_its_classes():
    data = dlcprune.load_dataset(Pairs([0, 10, 20, 10]))
    assert data.labels.tolist() == [0, 1, 2, 1] and data.class_names == ["0", "10", "20"]
    data = dlcprune.load_dataset(Pairs(["cat", "ant"]))
    assert data.labels.tolist() == [1, 0] and data.class_names == ["ant", "cat"]
    assert dlcprune.load_dataset(Pairs([torch.tensor(1), np.int64(0)])).labels.tolist() == [1, 0]
    for labels, message in [([0.5, 1.0], "sample 0's label is 0.5"), ([torch.tensor([0, 1])] * 2, "has shape (2,)"),
                            ([0, "a"], "labels mix whole numbers and strings")]:
        with pytest.raises(DlcpruneError, match=re.escape(message)):
            dlcprune.load_dataset(Pairs(labels))


def test_unlabelled_rows_are_refused(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    hf = Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, -1]},
                           features=Features({"text": Value("string"), "label": ClassLabel(names=["n", "p"])}))
    with pytest.raises(DlcpruneError, match=r"1 row\(s\) have no label \(-1\), e.g. row 2"):
        dlcprune.load_dataset(hf)
    for name, body in [("short.csv", "text,label\nhello,0\nbye\nfoo,1\n"), ("empty.csv", "text,label\nhello,0\nbye,\n"),
                       ("null.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": null}\n')]:
        (tmp_path / name).write_text(body)
        with pytest.raises(DlcpruneError, match=r"row 1 has no label in the column 'label'"):
            dlcprune.load_dataset(tmp_path / name)
    (tmp_path / "rows.json").write_text('["a", "b"]')
    with pytest.raises(DlcpruneError, match="row 0 is a str, not an object"):
        dlcprune.load_dataset(tmp_path / "rows.json")


def test_a_csv_saved_with_a_byte_order_mark_reads_its_header(tmp_path):
    (tmp_path / "bom.csv").write_bytes("text,label\nhello,0\nbye,1\n".encode("utf-8-sig"))
    assert dlcprune.load_dataset(tmp_path / "bom.csv").class_names == ["0", "1"]


def test_an_hf_folder_without_a_tokenizer_is_refused(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path)
    with pytest.raises(DlcpruneError, match="holds no tokenizer"):
        dlcprune.load_model(f"hf:{tmp_path}")


def test_score_options_are_checked_by_type():
    data, features = _tiny_scoring()
    encoder = dlcprune.from_module(tiny_cnn(), features, name="tiny")
    for options, message in [(dict(seed=None), "seed must be a whole number >= 0, got None"),
                             (dict(workers=-1), "workers must be a whole number >= 0, got -1"),
                             (dict(block_bytes=None), "block_bytes must be a whole number >= 1, got None"),
                             (dict(adaptive="no"), "adaptive must be True or False, got 'no'")]:
        with pytest.raises(DlcpruneError) as err:
            dlcprune.score(encoder, data, levels=2, progress=False, **options)
        assert str(err.value) == message
    dlcprune.score(encoder, data, levels=np.int64(2), step=np.float32(0.1), progress=False)
    assert dlcprune.extract_features(encoder, data, progress=False).shape[0] == 12
    with pytest.raises(DlcpruneError, match="the data must be a dlcprune dataset"):
        dlcprune.extract_features(data, encoder)


def test_loaders_refuse_what_they_cannot_read_in_one_line(tmp_path):
    with pytest.raises(DlcpruneError, match="the images must all have one size"):
        dlcprune.from_arrays([np.zeros((16, 16, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)], [0, 1])
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "dataset_info.json").write_text("{}")
    with pytest.raises(DlcpruneError, match="is no readable `save_to_disk` folder"):
        dlcprune.load_dataset(tmp_path / "hf")
    with pytest.raises(DlcpruneError, match="wrap a module of your own with dlcprune.from_module"):
        dlcprune.load_model(tiny_cnn())
    with pytest.raises(DlcpruneError, match="hf holds no tokenizer"):
        dlcprune.load_model(tmp_path / "hf")  # a Path is read as a model folder
