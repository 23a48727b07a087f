"""Dataset adapters: documented sample order, exact pixels, bad input named in one line."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlcprune import DlcpruneError, from_arrays, load_dataset
from dlcprune.data import stratified_split
from dlcprune.scoring.dlc import check_dataset
from dlcprune.models import from_module
from tests.conftest import tiny_cnn, write_image_folder


def test_folder_order_and_rules_are_torchvisions(tmp_path):
    """A messy folder: hidden files and folders, sub-folders, upper-case suffixes, a .gif and
    non-image files. dlcprune's samples are torchvision ImageFolder's, position by position."""
    from torchvision.datasets import ImageFolder

    root = tmp_path / "d"
    for rel in ["zebra/b.png", "zebra/a.PNG", "ape/x/2.png", "ape/y.png", "ape/10.png", "ape/1.jpeg",
                "ape/.hidden.png", ".ipynb_checkpoints/q.png", "zebra/.cache/c.png"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / rel, format="PNG")
    (root / "ape" / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "zebra" / "anim.gif")
    data = load_dataset(str(root))
    reference = ImageFolder(str(root))
    assert data.class_names == reference.classes == [".ipynb_checkpoints", "ape", "zebra"]
    assert data.ids == [Path(p).relative_to(root).as_posix() for p, _ in reference.samples]
    assert data.labels.tolist() == [y for _, y in reference.samples]
    assert data.ids[:6] == [".ipynb_checkpoints/q.png", "ape/.hidden.png", "ape/1.jpeg", "ape/10.png", "ape/y.png",
                            "ape/x/2.png"]


def test_folder_pixels_grey_and_rgb(tmp_path):
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4)
    (tmp_path / "a").mkdir()
    Image.fromarray(grey, mode="L").save(tmp_path / "a" / "g.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "a" / "rgb.png")
    g, rgb = load_dataset(str(tmp_path)).items([0, 1])
    assert g.shape == (4, 4, 1) and np.array_equal(g[..., 0], grey)
    assert rgb.shape == (4, 4, 3) and np.array_equal(rgb[..., 2], grey)


def test_npz_and_arrays(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=images, labels=np.array([7, 3, 7, 3, 3]))
    data = load_dataset(str(tmp_path / "d.npz"))
    assert data.class_names == ["3", "7"] and data.labels.tolist() == [1, 0, 1, 0, 0]
    assert data.ids == ["0", "1", "2", "3", "4"]
    assert np.array_equal(data.items([2])[0][..., 0], images[2])


@pytest.mark.parametrize("images,labels,message", [
    (np.zeros((4, 5, 5), np.uint8), np.zeros(3, int), "4 images but labels of shape"),
    (np.zeros((4, 5, 5), np.float32), np.zeros(4, int), "must be uint8"),
    (np.zeros((4, 5, 5, 2), np.uint8), np.zeros(4, int), "C = 1 or 3"),
    (np.zeros((0, 5, 5), np.uint8), np.zeros(0, int), "empty"),
    (np.zeros((2, 5, 5), np.uint8), np.array([0.5, 1.5]), "labels must be integers"),
])
def test_bad_arrays(images, labels, message):
    with pytest.raises(DlcpruneError, match=message):
        from_arrays(images, labels)


def test_npz_missing_array(tmp_path):
    np.savez(tmp_path / "d.npz", pictures=np.zeros((2, 3, 3), np.uint8), labels=np.zeros(2, int))
    with pytest.raises(DlcpruneError, match=r"lacks the array\(s\) \['images'\]"):
        load_dataset(str(tmp_path / "d.npz"))


def test_empty_folder_and_missing_path(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DlcpruneError, match="no images found"):
        load_dataset(str(tmp_path / "empty"))
    with pytest.raises(DlcpruneError, match="no such dataset or path"):
        load_dataset(str(tmp_path / "nope"))


def test_corrupt_image_is_named(tmp_path):
    root = write_image_folder(tmp_path / "d", {"a": 2, "b": 2}, size=8)
    (root / "b" / "img_001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    data = load_dataset(str(root))
    with pytest.raises(DlcpruneError, match=r"cannot read image .*b/img_001.png"):
        data.items(range(len(data)))


def test_truncated_image_is_named(tmp_path):
    root = write_image_folder(tmp_path / "d", {"a": 2, "b": 2}, size=32)
    path = root / "a" / "img_000.png"
    path.write_bytes(path.read_bytes()[:60])
    data = load_dataset(str(root))
    with pytest.raises(DlcpruneError, match=r"cannot read image .*a/img_000.png"):
        data.items(range(len(data)))


def test_mixed_sizes_need_image_size(tmp_path):
    root = write_image_folder(tmp_path / "d", {"a": 3, "b": 3}, size=16)
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(root / "b" / "big.png")
    data = load_dataset(str(root))
    with pytest.raises(DlcpruneError, match=r"2 different sizes .*b/big.png is 24x20.*--image-size"):
        check_dataset(data, from_module(tiny_cnn(), lambda m, x: m.features(x)))
    check_dataset(data, from_module(tiny_cnn(), lambda m, x: m.features(x), image_size=16))  # resizing: comparable


def test_fingerprint_changes_with_content(tmp_path):
    images = np.zeros((4, 3, 3), np.uint8)
    a = from_arrays(images, np.array([0, 0, 1, 1])).fingerprint()
    images[3, 0, 0] = 1
    assert from_arrays(images, np.array([0, 0, 1, 1])).fingerprint() != a
    assert from_arrays(images, np.array([0, 1, 0, 1])).fingerprint() != from_arrays(images, np.array([0, 0, 1, 1])).fingerprint()


def test_stratified_split_is_disjoint_seeded_and_per_class():
    labels = np.repeat([0, 1, 2], 10)
    parts = stratified_split(labels, {"train": 6, "test": 3}, seed=0)
    assert set(parts["train"]).isdisjoint(parts["test"])
    assert np.bincount(labels[parts["train"]]).tolist() == [6, 6, 6]
    assert np.bincount(labels[parts["test"]]).tolist() == [3, 3, 3]
    again = stratified_split(labels, {"train": 6, "test": 3}, seed=0)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_builtin_animal_mnist():
    data = load_dataset("animal-mnist")
    assert len(data) == 10_000 and data.num_classes == 10
    assert np.bincount(data.labels).tolist() == [1000] * 10
    assert data.items([0])[0].shape == (28, 28, 1)


def test_builtin_mnist():
    train, test = load_dataset("mnist"), load_dataset("mnist-test")
    assert (len(train), len(test)) == (50_000, 10_000) and train.class_names == [str(d) for d in range(10)]
    img = train.items([0])[0]
    assert img.dtype == np.uint8 and img.shape == (28, 28, 1) and img.max() > 200


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    """Pillow's own conversion clips 16-bit grey to 255 (nearly every pixel white); they are scaled."""
    root = tmp_path / "d"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray((np.arange(16).reshape(4, 4) * 4369).astype(np.uint16)).save(root / c / f"{i}.png")
    pixels = load_dataset(str(root)).items([0])[0][..., 0]
    assert pixels.dtype == np.uint8 and pixels[0].tolist() == [0, 17, 34, 51] and pixels.max() == 255
