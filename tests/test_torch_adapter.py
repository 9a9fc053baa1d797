import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from skshortcut import ERMClassifier
from skshortcut._torch import iter_batches, resolve_device, torch_seed
from skshortcut.base_model import as_base_model, resolve_base_model
from skshortcut.nets import SmallCNN


class TupleDataset(Dataset):
    """Items are (image, label, group), as the real-format loaders return."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.as_tensor(self.X[i]), int(self.y[i]), 0


class TwoHeads(nn.Module):
    """An auxiliary linear layer defined after the head but used before it in forward."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 2)
        self.aux = nn.Linear(12, 8)

    def forward(self, x):
        return self.head(torch.relu(self.aux(x.flatten(1)[:, :12])))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="`device` must be"):
        resolve_device("gpu-please")


def test_head_found_in_forward_order_not_definition_order():
    base = as_base_model(TwoHeads(), np.zeros((2, 3, 2, 2), "float32"), device="cpu")
    assert base.head_name == "head" and base.n_features == 8


def test_embed_matches_manual_features_and_restores_state(tiny_images):
    X, _ = tiny_images
    net = SmallCNN(n_classes=2)
    net.train()
    before = copy.deepcopy(net.state_dict())
    base = as_base_model(net, X, device="cpu")
    Z, logits = base.embed(X, batch_size=7, return_logits=True)
    net.eval()
    with torch.no_grad():
        expected = net.features(torch.as_tensor(X)).numpy()
        expected_logits = net(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(Z, expected, atol=1e-5)
    np.testing.assert_allclose(logits, expected_logits, atol=1e-5)
    # the user's module: train mode back, no hooks, same parameters and BN statistics
    net.train()
    base2 = as_base_model(net, X, device="cpu")
    base2.embed(X)
    assert net.training and all(m.training for m in net.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_embed_dataset_equals_array(tiny_images):
    X, y = tiny_images
    base = as_base_model(SmallCNN(), X, device="cpu")
    np.testing.assert_allclose(base.embed(TupleDataset(X, y), batch_size=10), base.embed(X), atol=1e-6)


def test_named_head_and_errors(tiny_images):
    X, _ = tiny_images
    net = SmallCNN()
    assert as_base_model(net, head="fc", device="cpu").head is net.fc
    with pytest.raises(ValueError, match="names no submodule"):
        as_base_model(net, head="nope", device="cpu")
    with pytest.raises(ValueError, match="expected nn.Linear"):
        as_base_model(net, head="features", device="cpu")
    with pytest.raises(ValueError, match="has no nn.Linear"):
        as_base_model(nn.Sequential(nn.Conv2d(3, 2, 3)), X, device="cpu")
    with pytest.raises(TypeError, match="not fitted"):
        as_base_model(ERMClassifier(), X)
    with pytest.raises(TypeError, match="must be a fitted skorch net"):
        as_base_model("resnet", X)


def test_resolve_base_model_fits_erm_when_none(tiny_images):
    X, y = tiny_images
    base, fitted = resolve_base_model(None, X, y, device="cpu", random_state=0)
    assert isinstance(fitted, ERMClassifier) and base.head is fitted.module_.fc
    with pytest.raises(ValueError, match="needs `y`"):
        resolve_base_model(None, X)


def test_iter_batches_and_seed_context():
    X = np.arange(10, dtype="float32").reshape(10, 1)
    sizes = [len(b) for b in iter_batches(X, 4)]
    assert sizes == [4, 4, 2]
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        list(iter_batches(X, 0))
    state = torch.get_rng_state()
    with torch_seed(3):
        a = torch.rand(2)
    assert torch.equal(torch.get_rng_state(), state)
    with torch_seed(3):
        assert torch.equal(torch.rand(2), a)
