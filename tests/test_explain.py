"""Tests for skshortcut.explain: relevance conservation, shapes, batching, and no side effects."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import TensorDataset

from skshortcut.explain import (
    LRP,
    METHODS,
    GradCAM,
    IntegratedGradients,
    Saliency,
    XGradCAM,
    attribute,
    find_last_conv,
)
from skshortcut.nets import SmallCNN


def _randomise_batchnorm(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return net


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return _randomise_batchnorm(SmallCNN(n_blocks=3, width=8))


@pytest.fixture(scope="module")
def images():
    return np.random.RandomState(0).rand(10, 3, 16, 16).astype("float32")


def _hooks(module):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in module.modules())


# ------------------------------------------------------------------ LRP
def test_lrp_conserves_relevance_on_a_small_cnn_with_batchnorm(cnn, images):
    x = torch.as_tensor(images[:4])
    with torch.no_grad():
        cnn.eval()
        logits = cnn(x)
    target = logits.argmax(1)
    R = LRP(cnn, zero_params=["bias"]).attribute(x, target)
    # with biases left out of the rules, every layer passes on exactly the relevance it receives
    np.testing.assert_allclose(R.sum(dim=(1, 2, 3)).numpy(), logits.max(1).values.numpy(), rtol=1e-3)
    # with biases (the default), they absorb a share: the sum differs from the logit
    R_bias = LRP(cnn).attribute(x, target)
    assert not np.allclose(R_bias.sum(dim=(1, 2, 3)).numpy(), logits.max(1).values.numpy(), rtol=1e-3)


def test_lrp_conserves_relevance_on_resnet18_and_leaves_it_unchanged():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = _randomise_batchnorm(resnet18(weights=None, num_classes=3))
    net.train()
    net.fc.weight.requires_grad_(False)
    state = copy.deepcopy(net.state_dict())
    flags = [p.requires_grad for p in net.parameters()]
    x = torch.rand(2, 3, 64, 64)
    R = LRP(net, zero_params=["bias"]).attribute(x, torch.tensor([0, 2]))
    with torch.no_grad():
        net.eval()
        logits = net(x)
        net.train()
    np.testing.assert_allclose(R.sum(dim=(1, 2, 3)).numpy(), logits[[0, 1], [0, 2]].numpy(), rtol=1e-3)
    # canonizers (BatchNorm merging, explicit skip sums) are undone; flags and hooks restored
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert all(m.training for m in net.modules())
    assert [p.requires_grad for p in net.parameters()] == flags
    assert _hooks(net) == 0
    assert all(p.grad is None for p in net.parameters())


def test_lrp_target_changes_the_explanation(cnn, images):
    x = torch.as_tensor(images[:3])
    r0 = LRP(cnn).attribute(x, torch.zeros(3, dtype=torch.long))
    r1 = LRP(cnn).attribute(x, torch.ones(3, dtype=torch.long))
    assert not torch.allclose(r0, r1)


def test_lrp_predicted_target_is_the_argmax(cnn, images):
    x = torch.as_tensor(images[:4])
    with torch.no_grad():
        cnn.eval()
        pred = cnn(x).argmax(1)
    torch.testing.assert_close(LRP(cnn).attribute(x), LRP(cnn).attribute(x, pred))


@pytest.mark.parametrize("composite", ["epsilon_gamma", "epsilon", "epsilon_plus", "epsilon_alpha2_beta1"])
def test_lrp_composites_give_finite_maps(cnn, images, composite):
    R = LRP(cnn, composite=composite).attribute(torch.as_tensor(images[:2]), torch.tensor([0, 1]))
    assert R.shape == (2, 3, 16, 16) and torch.isfinite(R).all() and R.abs().sum() > 0


def test_lrp_rejects_bad_parameters(cnn, images):
    x = torch.as_tensor(images[:2])
    with pytest.raises(ValueError, match="`composite`"):
        LRP(cnn, composite="zplus-ish").attribute(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="`gamma`"):
        LRP(cnn, gamma=-1).attribute(x, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="`canonizers`"):
        LRP(cnn, canonizers="none").attribute(x, torch.tensor([0, 1]))


# ------------------------------------------------------------------ CAMs
def test_find_last_conv_follows_forward_order():
    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.late = nn.Conv2d(4, 4, 3, padding=1)  # declared first, runs last
            self.early = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.late(self.early(x)).mean(dim=(2, 3)))

    name, layer = find_last_conv(Reversed(), torch.zeros(1, 3, 8, 8))
    assert name == "late" and isinstance(layer, nn.Conv2d)
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        find_last_conv(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.zeros(1, 3, 2, 2))


def test_xgradcam_matches_its_definition(cnn, images):
    x = torch.as_tensor(images[:3])
    target = torch.tensor([1, 0, 1])
    layer = cnn.features[8]  # the last conv
    acts = {}
    h = layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    cnn.eval()
    out = cnn(x)
    h.remove()
    A = acts["a"]
    grads = torch.autograd.grad(out[torch.arange(3), target].sum(), A)[0]
    alpha = (grads * A / A.sum(dim=(2, 3), keepdim=True)).sum(dim=(2, 3), keepdim=True)
    expected = torch.relu((alpha * A).sum(1)).detach()
    got = XGradCAM(cnn).attribute(x, target)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(XGradCAM(cnn, layer="features.8").attribute(x, target), expected, rtol=1e-4, atol=1e-6)


def test_gradcam_is_a_nonnegative_map_at_the_layer_resolution(cnn, images):
    cam = GradCAM(cnn).attribute(torch.as_tensor(images[:2]), torch.tensor([0, 1]))
    assert cam.shape == (2, 4, 4) and (cam >= 0).all()
    cam = GradCAM(cnn, layer="features.0", relu=False).attribute(torch.as_tensor(images[:2]), torch.tensor([0, 1]))
    assert cam.shape == (2, 16, 16) and (cam < 0).any()


def test_cam_layer_errors(cnn, images):
    x = torch.as_tensor(images[:2])
    with pytest.raises(ValueError, match="`layer='nope'`"):
        XGradCAM(cnn, layer="nope").attribute(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="not part of the model"):
        XGradCAM(cnn, layer=nn.Conv2d(3, 3, 1)).attribute(x, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="`layer`"):
        XGradCAM(cnn, layer=3).attribute(x, torch.tensor([0, 1]))


# ------------------------------------------------------------------ gradients
def test_integrated_gradients_completeness(cnn, images):
    x = torch.as_tensor(images[:2])
    with torch.no_grad():
        cnn.eval()
        gap = cnn(x)[:, 1] - cnn(torch.zeros_like(x))[:, 1]
    ig = IntegratedGradients(cnn, n_steps=64).attribute(x, torch.tensor([1, 1]))
    np.testing.assert_allclose(ig.sum(dim=(1, 2, 3)).numpy(), gap.numpy(), rtol=0.05, atol=1e-3)
    with pytest.raises(ValueError, match="`n_steps`"):
        IntegratedGradients(cnn, n_steps=0).attribute(x, torch.tensor([1, 1]))


def test_saliency_is_the_input_gradient(cnn, images):
    x = torch.as_tensor(images[:2]).clone().requires_grad_(True)
    cnn.eval()
    grad = torch.autograd.grad(cnn(x)[:, 0].sum(), x)[0]
    torch.testing.assert_close(Saliency(cnn, abs=False).attribute(x.detach(), torch.tensor([0, 0])), grad)
    torch.testing.assert_close(Saliency(cnn).attribute(x.detach(), torch.tensor([0, 0])), grad.abs())


def test_single_logit_models_explain_both_classes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))
    x = torch.rand(2, 3, 6, 6)
    s1 = Saliency(net, abs=False).attribute(x, torch.tensor([1, 1]))
    s0 = Saliency(net, abs=False).attribute(x, torch.tensor([0, 0]))
    torch.testing.assert_close(s0, -s1)


# ------------------------------------------------------------------ no side effects, every method
@pytest.mark.parametrize("method", sorted(METHODS))
def test_methods_leave_the_module_unchanged(method, images):
    torch.manual_seed(1)
    net = _randomise_batchnorm(SmallCNN(n_blocks=2, width=4))
    net.train()
    net.features[0].weight.requires_grad_(False)
    state = copy.deepcopy(net.state_dict())
    flags = [p.requires_grad for p in net.parameters()]
    H = attribute(net, images[:5], method=method, batch_size=2, method_params={"n_steps": 4} if method == "integrated_gradients" else None)
    assert np.isfinite(H).all()
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert all(m.training for m in net.modules())
    assert [p.requires_grad for p in net.parameters()] == flags
    assert _hooks(net) == 0
    assert all(p.grad is None for p in net.parameters())


# ------------------------------------------------------------------ attribute(): shapes, normalisation, batches
@pytest.mark.parametrize(
    ("method", "channels", "size", "shape"),
    [
        ("lrp", "sum", None, (10, 16, 16)),
        ("lrp", "keep", None, (10, 3, 16, 16)),
        ("lrp", "keep", 4, (10, 3, 4, 4)),
        ("saliency", "sum", (8, 6), (10, 8, 6)),
        ("xgradcam", "sum", None, (10, 4, 4)),
        ("xgradcam", "keep", (16, 16), (10, 16, 16)),
        ("gradcam", "keep", 2, (10, 2, 2)),
    ],
)
def test_attribute_shapes(cnn, images, method, channels, size, shape):
    assert attribute(cnn, images, method=method, channels=channels, size=size, batch_size=4).shape == shape


def test_attribute_normalises_each_map_by_its_max_abs(cnn, images):
    H = attribute(cnn, images, size=8)
    np.testing.assert_allclose(np.abs(H).reshape(10, -1).max(1), 1.0, rtol=1e-6)
    raw = attribute(cnn, images, size=8, normalize=None)
    np.testing.assert_allclose(H, raw / np.abs(raw).reshape(10, -1).max(1)[:, None, None], rtol=1e-5)


def test_all_zero_maps_stay_zero(images):
    net = SmallCNN(n_blocks=1, width=4)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    H = attribute(net, images[:3], method="saliency")
    assert np.array_equal(H, np.zeros_like(H))


def test_attribute_accepts_given_targets_and_datasets(cnn, images):
    target = np.array([0, 1] * 5)
    H = attribute(cnn, images, target=target, size=8)
    ds = TensorDataset(torch.as_tensor(images), torch.as_tensor(target))
    np.testing.assert_allclose(attribute(cnn, ds, target=target, size=8, batch_size=3), H, rtol=1e-4, atol=1e-6)
    assert not np.allclose(attribute(cnn, images, target=1 - target, size=8), H)


def test_attribute_accepts_a_fitted_skorch_net(tiny_images):
    from skshortcut import ERMClassifier

    X, y = tiny_images
    erm = ERMClassifier(max_epochs=1, module__width=4, module__n_blocks=2, random_state=0, device="cpu").fit(X[:32], y[:32])
    assert attribute(erm, X[:6], method="xgradcam").shape == (6, 6, 6)


@settings(max_examples=8, deadline=None)
@given(batch_size=st.integers(1, 10), method=st.sampled_from(["lrp", "xgradcam", "saliency"]))
def test_attribute_does_not_depend_on_the_batch_size(cnn, images, batch_size, method):
    full = attribute(cnn, images, method=method, batch_size=10, size=8)
    np.testing.assert_allclose(attribute(cnn, images, method=method, batch_size=batch_size, size=8), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"method": "shap"}, ValueError, "`method`"),
        ({"channels": "mean"}, ValueError, "`channels`"),
        ({"normalize": "l2"}, ValueError, "`normalize`"),
        ({"size": 0}, ValueError, "`size`"),
        ({"size": (4, 4, 4)}, ValueError, "`size`"),
        ({"batch_size": 0}, ValueError, "`batch_size`"),
        ({"target": "true"}, ValueError, "`target`"),
        ({"target": [0, 1]}, ValueError, "`target`"),
        ({"target": np.full(10, 0.5)}, ValueError, "integer"),
        ({"target": np.full(10, 7)}, ValueError, "class index 7"),
        ({"method": "lrp", "layer": "features.0"}, ValueError, "`layer`"),
        ({"method_params": [1]}, TypeError, "`method_params`"),
    ],
)
def test_attribute_rejects_bad_arguments(cnn, images, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        attribute(cnn, images, **kwargs)


def test_attribute_rejects_non_images_and_non_models(cnn):
    with pytest.raises(ValueError, match="images"):
        attribute(cnn, np.zeros((4, 10), dtype="float32"))
    with pytest.raises(TypeError, match="`estimator`"):
        attribute("a model", np.zeros((4, 3, 8, 8), dtype="float32"))


# ------------------------------------------------------------------ closed-form gamma rule
def _zennit_reference(model, zero_params=None):
    """The default composite with zennit's own Gamma rule: the heatmaps before the closed form."""
    from zennit.rules import Gamma

    from skshortcut.explain import _auto_canonizers, _epsilon_gamma_composite

    return _epsilon_gamma_composite(_auto_canonizers(model), 4.0, 1e-6, zero_params, conv_rule=Gamma)


def _max_rel_err(new, old):
    new, old = torch.as_tensor(new).flatten(1), torch.as_tensor(old).flatten(1)
    return float(((new - old).abs().amax(1) / old.abs().amax(1)).max())


def test_default_lrp_heatmaps_equal_zennits_gamma_rule_on_a_small_cnn(cnn, images):
    X = np.concatenate([images, images[::-1] * 0.5])
    new = attribute(cnn, X, batch_size=8)
    old = attribute(cnn, X, batch_size=8, method_params={"composite": _zennit_reference(cnn)})
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-5)
    x = torch.as_tensor(images)
    assert _max_rel_err(LRP(cnn).attribute(x), LRP(cnn, composite=_zennit_reference(cnn)).attribute(x)) < 1e-5


def test_default_lrp_heatmaps_equal_zennits_gamma_rule_on_resnet18():
    from torchvision.models import resnet18

    torch.manual_seed(1)
    net = _randomise_batchnorm(resnet18(weights=None, num_classes=3))
    X = torch.rand(6, 3, 48, 48).numpy()
    new = attribute(net, X, batch_size=4, channels="keep")
    old = attribute(net, X, batch_size=4, channels="keep", method_params={"composite": _zennit_reference(net)})
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-5)
    assert _hooks(net) == 0
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("groups, stride, signed", [(1, 1, True), (2, 1, False), (2, 2, True), (1, 2, False)])
def test_closed_form_gamma_matches_zennit_on_grouped_strided_convs_and_signed_inputs(groups, stride, signed):
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=stride, groups=groups, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    )  # fmt: skip
    x = torch.rand(6, 3, 15, 15) * 2 - 1 if signed else torch.rand(6, 3, 15, 15)
    new = LRP(net).attribute(x)
    old = LRP(net, composite=_zennit_reference(net)).attribute(x)
    assert _max_rel_err(new, old) < 1e-5


class _ConvThenInplaceRelu(nn.Module):
    """A layer whose output is changed in place by an operation zennit does not see."""

    def __init__(self, conv1d=False):
        super().__init__()
        conv = nn.Conv1d if conv1d else nn.Conv2d
        self.conv = conv(3, 6, 3, padding=1)
        self.conv2 = conv(6, 6, 3, padding=1, padding_mode="reflect")
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        h = torch.nn.functional.relu(self.conv(x), inplace=True)
        h = torch.relu(self.conv2(h))
        return self.fc(h.flatten(2).mean(2))


@pytest.mark.parametrize("conv1d", [False, True])
def test_closed_form_gamma_handles_inplace_outputs_conv1d_and_falls_back_on_other_paddings(conv1d):
    from skshortcut._lrp_rules import ClosedFormGamma

    torch.manual_seed(3)
    net = _ConvThenInplaceRelu(conv1d)
    assert ClosedFormGamma().covers(net.conv) and not ClosedFormGamma().covers(net.conv2)  # reflect padding
    x = torch.rand(5, 3, 12) if conv1d else torch.rand(5, 3, 10, 10)
    new = LRP(net).attribute(x)
    old = LRP(net, composite=_zennit_reference(net)).attribute(x)
    assert _max_rel_err(new, old) < 1e-5


def test_closed_form_gamma_runs_two_convolutions_per_layer_not_six(cnn, images, monkeypatch):
    import torch.nn.modules.conv as conv_module

    calls = []
    real = conv_module.F.conv2d

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(conv_module.F, "conv2d", counting)
    x = torch.as_tensor(images[:2])
    n_convs = sum(isinstance(m, nn.Conv2d) for m in cnn.modules())
    LRP(cnn).attribute(x, torch.tensor([0, 1]))
    # the layer's own forward pass and |W| * |x|; zennit's Gamma re-runs each layer five times
    assert len(calls) == 2 * n_convs
    calls.clear()
    LRP(cnn, composite=_zennit_reference(cnn)).attribute(x, torch.tensor([0, 1]))
    assert len(calls) == 6 * n_convs
