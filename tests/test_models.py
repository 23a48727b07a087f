"""Encoder adapters: preprocessing and features equal direct computations; the right weights are masked."""
import copy

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from dlcprune import DlcpruneError, load_encoder
from dlcprune.models import from_module, timm_encoder


@pytest.fixture(scope="module")
def effnet():
    return load_encoder("efficientnet_lite0", device="cpu", image_size=None)  # the files' sizes: exact arithmetic


def test_efficientnet_preprocessing_exact(effnet):
    grey = np.random.default_rng(0).integers(0, 256, (2, 20, 20, 1), dtype=np.uint8)
    x = effnet.preprocess(list(grey))
    expected = (torch.from_numpy(grey).permute(0, 3, 1, 2).float().expand(-1, 3, -1, -1) - 127.0) / 128.0
    assert torch.equal(x, expected)
    same = copy.copy(effnet)  # the module-wide fixture stays as it is for the other tests
    same.image_size = 20
    assert torch.equal(same.preprocess(list(grey)), expected)  # no resize at the same size
    bigger = copy.copy(effnet)
    bigger.image_size = 32
    resized = bigger.preprocess(list(grey))
    assert effnet.image_size is None
    ref = F.interpolate(torch.from_numpy(grey).permute(0, 3, 1, 2).float().expand(-1, 3, -1, -1), size=(32, 32),
                        mode="bilinear", align_corners=False, antialias=True)
    assert torch.allclose(resized, (ref - 127.0) / 128.0)


def test_efficientnet_features_and_masked_weights(effnet):
    rgb = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    z = effnet.features(list(rgb))
    x = (torch.from_numpy(rgb).permute(0, 3, 1, 2).float() - 127.0) / 128.0
    with torch.no_grad():
        ref = effnet.module.extract_features(x.contiguous(memory_format=torch.channels_last)).mean((2, 3))
    assert z.shape == (3, 1280)
    assert torch.allclose(z, ref, atol=1e-5)
    convs = [m.weight for m in effnet.module.modules() if isinstance(m, nn.Conv2d)]
    assert [id(w) for _, w in effnet.maskable] == [id(w) for w in convs]
    assert sum(w.numel() for _, w in effnet.maskable) == 3_328_992
    assert len(effnet.weights_sha256) == 64


def test_timm_cnn_uses_pre_logits_and_masks_convs():
    enc = timm_encoder("resnet18", weights="random", device=torch.device("cpu"))
    rgb = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    x = enc.preprocess(list(rgb))
    with torch.no_grad():
        ref = enc.module.forward_head(enc.module.forward_features(x), pre_logits=True)
    assert torch.allclose(enc.features(list(rgb)), ref)
    assert ref.shape == (2, 512)
    assert all(".weight" in n for n, _ in enc.maskable)
    assert len(enc.maskable) == sum(isinstance(m, nn.Conv2d) for m in enc.module.modules())
    mean = torch.tensor(enc.module.pretrained_cfg["mean"]) * 255
    assert torch.allclose(torch.tensor(enc.pixel_mean), mean)


def test_timm_transformer_masks_linears_except_head():
    enc = timm_encoder("vit_tiny_patch16_224", weights="random", device=torch.device("cpu"), img_size=32)
    linears = [m for m in enc.module.modules() if isinstance(m, nn.Linear)]
    head = enc.module.get_classifier()
    assert len(enc.maskable) == len(linears) - 1
    assert all(w is not head.weight for _, w in enc.maskable)
    z = enc.features([np.zeros((32, 32, 3), np.uint8)])
    assert z.shape == (1, 192)


def test_timm_offline_pretrained_is_a_clear_error(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as on a machine with no network
    with pytest.raises(DlcpruneError, match="cannot load pretrained weights for timm:resnet18.*--weights"):
        timm_encoder("resnet18", weights="pretrained")


def test_timm_weights_from_a_local_file(tmp_path):
    model = timm.create_model("resnet18", pretrained=False)
    torch.save(model.state_dict(), tmp_path / "w.pth")
    enc = timm_encoder("resnet18", weights=str(tmp_path / "w.pth"), device=torch.device("cpu"))
    assert enc.module.conv1.weight.data_ptr() != model.conv1.weight.data_ptr()
    assert torch.equal(enc.module.conv1.weight, model.conv1.weight)


@pytest.mark.parametrize("spec,suggestion", [("efficientnet_lite", "efficientnet_lite0"),
                                             ("timm:resnet181", "resnet18")])
def test_unknown_model_lists_close_matches(spec, suggestion):
    with pytest.raises(DlcpruneError, match=f"unknown .*did you mean.*{suggestion}"):
        load_encoder(spec)


@pytest.mark.parametrize("name", ["resnet18", "vit_tiny_patch16_224"])
def test_pretrained_input_is_timms_evaluation_transform(name):
    """The default image_size ("pretrained") reproduces timm's own eval transform (resize the shorter
    side to size / crop_pct, centre crop, its interpolation and mean/std) to one grey level."""
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    enc = timm_encoder(name, weights="random", device=torch.device("cpu"))
    transform = create_transform(**resolve_data_config(model=enc.module))
    rng = np.random.default_rng(3)
    for h, w in [(300, 200), (64, 64), (28, 40)]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ours, theirs = enc.preprocess([image])[0], transform(Image.fromarray(image))
        assert ours.shape == theirs.shape == (3, 224, 224)
        one_level = 1.001 / (255 * min(resolve_data_config(model=enc.module)["std"]))
        assert float((ours - theirs).abs().max()) <= one_level
        assert float((ours - theirs).abs().mean()) < 0.01 * one_level  # nearly every value exact


def test_image_size_choices_and_their_records():
    lite0 = load_encoder("efficientnet_lite0", weights="random", device="cpu")
    assert lite0.preprocessing() == {"image_size": 224, "crop_pct": 0.875, "interpolation": "bicubic"}
    assert load_encoder("efficientnet_lite0", weights="random", device="cpu", image_size=64).preprocessing() == {"image_size": 64}
    assert load_encoder("efficientnet_lite0", weights="random", device="cpu", image_size=None).preprocessing() == {"image_size": None}
    rgb = np.random.default_rng(4).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    assert tuple(lite0.preprocess([rgb, rgb[:20]]).shape) == (2, 3, 224, 224)  # mixed sizes: each resized and cropped
    with pytest.raises(DlcpruneError, match="image_size must be at least 8 pixels, got 4"):
        load_encoder("efficientnet_lite0", weights="random", image_size=4)
    with pytest.raises(DlcpruneError, match="image_size must be a number of pixels, 'pretrained' or None"):
        load_encoder("efficientnet_lite0", weights="random", image_size="large")
    with pytest.raises(DlcpruneError, match="custom has no pretrained input size"):
        from_module(nn.Sequential(nn.Conv2d(3, 4, 3)), lambda m, x: m(x).mean((2, 3)), image_size="pretrained")
