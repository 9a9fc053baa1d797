import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skshortcut import ERMClassifier
from skshortcut.nets import SmallCNN, build_classifier


def test_fit_predict_string_labels_and_determinism(tiny_images):
    X, y = tiny_images
    labels = np.array(["cat", "dog"])[y]
    a = ERMClassifier(max_epochs=20, lr=0.01, batch_size=32, validation_fraction=0, random_state=0, device="cpu").fit(X, labels)
    b = ERMClassifier(max_epochs=20, lr=0.01, batch_size=32, validation_fraction=0, random_state=0, device="cpu").fit(X, labels)
    assert a.classes_.tolist() == ["cat", "dog"]
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)
    assert set(a.predict(X)) <= {"cat", "dog"}
    assert a.score(X, labels) > 0.9  # channel 0 brightness separates the classes
    assert a.decision_function(X).shape == (len(X),)  # binary: scikit-learn's one score per sample
    assert isinstance(a.module_, SmallCNN)
    assert len(a.history) == 20


def test_random_state_does_not_touch_global_rng(tiny_images):
    X, y = tiny_images
    state = torch.get_rng_state()
    ERMClassifier(max_epochs=1, random_state=1, device="cpu").fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)


def test_clone_keeps_auto_device_and_params(tiny_images):
    X, y = tiny_images
    clf = ERMClassifier(max_epochs=1, random_state=0, module__width=8, lr=0.01).fit(X, y)
    params = clone(clf).get_params()
    assert params["device"] == "auto" and params["module__width"] == 8 and params["lr"] == 0.01
    assert clf.module_.features[0].out_channels == 8


def test_pickle_round_trip(tiny_images):
    X, y = tiny_images
    clf = ERMClassifier(max_epochs=1, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_early_stopping_restores_best(tiny_images):
    X, y = tiny_images
    clf = ERMClassifier(max_epochs=30, patience=2, lr=0.05, random_state=0, device="cpu").fit(X, y)
    losses = [h["valid_loss"] for h in clf.history]
    best = int(np.argmin(losses))
    assert len(clf.history) < 30, "early stopping never triggered: the test needs a run that stops"
    assert best < len(losses) - 1, "the last epoch was the best: restoring would be invisible"
    # the restored network's loss on the validation split is the best epoch's, not the last one's
    y_enc = clf.label_encoder_.transform(y)
    _, valid = clf.get_split_datasets(X, y_enc)
    Xv = np.stack([valid[i][0] for i in range(len(valid))])
    yv = torch.as_tensor(np.array([valid[i][1] for i in range(len(valid))]))
    with torch.no_grad():
        restored = torch.nn.functional.cross_entropy(clf.module_(torch.as_tensor(Xv)), yv).item()
    assert restored == pytest.approx(losses[best], rel=1e-4)
    assert abs(restored - losses[-1]) > 1e-4


def test_three_classes_and_dataset_input(tiny_images):
    from torch.utils.data import TensorDataset

    X, _ = tiny_images
    y = np.arange(len(X)) % 3
    X = X.copy()
    X[:, 1] += 0.4 * (y == 2)[:, None, None]
    X[:, 0] = 0.5 * (y == 1)[:, None, None] + 0.1
    ds = TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    clf = ERMClassifier(max_epochs=15, lr=0.01, validation_fraction=0, random_state=0).fit(ds)
    assert clf.classes_.tolist() == [0, 1, 2]
    assert (clf.predict(ds) == y).mean() > 0.8


def test_bad_input():
    with pytest.raises(ValueError, match="images of shape"):
        ERMClassifier().fit(np.zeros((4, 5)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="single class"):
        ERMClassifier().fit(np.zeros((4, 3, 8, 8), "float32"), [1, 1, 1, 1])
    with pytest.raises(ValueError, match="Inconsistent numbers of samples"):
        ERMClassifier().fit(np.zeros((4, 3, 8, 8), "float32"), [0, 1])
    with pytest.raises(ValueError, match="Unknown `architecture` .vgg.. Closest: .vgg19."):
        build_classifier("vgg", (3, 8, 8), 2)


def test_resnet_option_with_local_weights(tmp_path):
    import torchvision

    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pt"
    torch.save(state, path)
    net = build_classifier("resnet18", (3, 32, 32), 3, weights=path)
    assert net.fc.out_features == 3
    assert torch.equal(net.conv1.weight, state["conv1.weight"])
    with pytest.raises(FileNotFoundError, match="not found"):
        build_classifier("resnet18", (3, 32, 32), 3, weights=tmp_path / "missing.pt")


def test_predict_leaves_the_callers_torch_rng_alone(tiny_images):
    X, y = tiny_images
    clf = ERMClassifier(max_epochs=1, random_state=0, device="cpu").fit(X, y)
    state = torch.get_rng_state()
    clf.predict(X)
    clf.predict_proba(X)
    clf.decision_function(X)
    assert torch.equal(torch.get_rng_state(), state)


def test_partial_fit_takes_float64_images_and_string_labels(tiny_images):
    X, y = tiny_images
    X64, labels = X.astype(np.float64), np.where(y == 1, "dog", "cat")
    clf = ERMClassifier(max_epochs=1, random_state=0, device="cpu", validation_fraction=0)
    clf.partial_fit(X64[:20], labels[:20], classes=["cat", "dog"]).partial_fit(X64[20:], labels[20:])
    assert len(clf.history) == 2 and set(clf.predict(X64)) <= {"cat", "dog"}
    with pytest.raises(ValueError, match="unseen at fit"):
        clf.partial_fit(X64[:4], np.array(["cow"] * 4))
