"""The objects users already hold: torchvision folders, Hugging Face datasets, torch datasets."""
import numpy as np
import pytest
import torch
from PIL import Image

from dlcprune import DlcpruneError, load_dataset, score_dlc, select
from dlcprune.cli import main
from tests.conftest import write_image_folder


def hf_images(n_per_class=4, size=16):
    from datasets import ClassLabel, Dataset, Features, Image as HFImage

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(2 * n_per_class)]
    features = Features({"img": HFImage(), "label": ClassLabel(names=["cat", "dog"])})
    return Dataset.from_dict({"img": images, "label": [0, 1] * n_per_class}, features=features)


def test_torchvision_imagefolder_is_read_with_its_own_sample_list(tmp_path, tiny_encoder):
    from torchvision.datasets import ImageFolder

    root = write_image_folder(tmp_path / "d", {"ant": 4, "bee": 5}, size=16)
    (root / "bee" / "sub").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "bee" / "sub" / "z.png")
    folder = ImageFolder(str(root))
    data = load_dataset(folder)
    assert data.class_names == folder.classes and data.labels.tolist() == folder.targets
    result = score_dlc(tiny_encoder, data, levels=2, step=0.1, progress=False)
    sel = select(result.scores, labels=data.labels, method="easy", keep=0.5)
    subset = sel.subset(folder)  # a torch Subset of the user's own object, same positions
    assert isinstance(subset, torch.utils.data.Subset) and subset.indices == sel.indices().tolist()
    assert [folder.targets[i] for i in subset.indices] == data.labels[sel.indices()].tolist()


def test_hf_image_dataset_keeps_classlabel_names(tiny_encoder):
    ds = hf_images()
    data = load_dataset(ds)
    assert data.class_names == ["cat", "dog"] and data.labels.tolist() == [0, 1] * 4
    assert data.items([0])[0].shape == (16, 16, 3)
    assert score_dlc(tiny_encoder, data, levels=2, step=0.1, progress=False).scores.shape == (8,)


def test_hf_text_dataset_and_dataset_dict():
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    ds = Dataset.from_dict({"text": ["bad", "good", "awful", "great"], "label": [0, 1, 0, 1]}, features=features)
    assert load_dataset(ds).class_names == ["neg", "pos"]
    both = DatasetDict({"train": ds, "test": ds.select([0, 1])})
    with pytest.raises(DlcpruneError, match=r"splits \['test', 'train'\]; choose one"):
        load_dataset(both)
    assert len(load_dataset(both, hf_split="test")) == 2


def test_map_style_torch_dataset_of_tensors(tiny_encoder):
    images = torch.rand(6, 3, 16, 16)
    data = load_dataset(torch.utils.data.TensorDataset(images, torch.tensor([0, 1, 0, 1, 0, 1])))
    assert data.labels.tolist() == [0, 1] * 3
    np.testing.assert_array_equal(data.items([2])[0], np.round(images[2].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    with pytest.raises(DlcpruneError, match="cannot read a int"):
        load_dataset(3)


def test_cli_scores_an_hf_image_folder(tmp_path):
    hf_images(size=32).save_to_disk(str(tmp_path / "hf"))
    assert main(["score", "--data", str(tmp_path / "hf"), "--levels", "2", "--step", "0.1",
                 "--output", str(tmp_path / "s"), "--quiet"]) == 0
    assert (tmp_path / "s" / "scores.csv").read_text().count("\n") == 9
