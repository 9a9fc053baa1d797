"""Latent Shift: the batched lambda search, classifier and autoencoder adapters, the default autoencoder."""

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from torch import nn
from torch.utils.data import TensorDataset

from skshortcut import ERMClassifier
from skshortcut.counterfactual import (
    STOP_REASONS,
    Autoencoder,
    ConvAutoencoder,
    LatentShift,
    as_autoencoder,
    as_classifier_output,
    relative_change,
)


# --------------------------------------------------------------------------- a linear world
class Coordinate(nn.Module):
    """Logits [0, k * x_j]: the softmax probability of class 1 is sigmoid(k * x_j)."""

    def __init__(self, j, k=4.0):
        super().__init__()
        self.j, self.k = j, k
        self.lin = nn.Linear(1, 1)  # a parameter, so the module has a device

    def forward(self, x):
        s = self.k * x[:, self.j]
        return torch.stack([torch.zeros_like(s), s], dim=1)


class ProbaBox:
    """A black-box classifier: predict_proba only, numpy in and out."""

    def __init__(self, module):
        self.module = module
        self.classes_ = np.array(["neg", "pos"])

    def predict_proba(self, X):
        with torch.no_grad():
            return torch.softmax(self.module(torch.as_tensor(X)), 1).numpy()


IDENTITY = (nn.Identity(), nn.Identity())


def points(n=40, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (n, 3)).astype(np.float32)


# --------------------------------------------------------------------------- relative change
def test_relative_change_values():
    out = relative_change([[0.3, -0.6], [0.1, 0.0]], [0.6, 0.0])
    np.testing.assert_allclose(out[0], [0.5, -1.0])
    assert np.isnan(out[1]).all()
    with pytest.raises(ValueError, match="downstream_change"):
        relative_change([0.1, 0.2], [0.3])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=20),
    st.floats(0.05, 1.0),
    st.floats(0.1, 10.0),
)
def test_relative_change_laws(downstream, base, scale):
    d = np.asarray(downstream)
    b = np.full(len(d), base)
    # the base against itself is 1; scaling both changes leaves the ratio alone
    np.testing.assert_allclose(relative_change(b, b), 1.0)
    np.testing.assert_allclose(relative_change(scale * d, scale * b), relative_change(d, b), rtol=1e-9, atol=1e-12)
    # flipping the downstream change flips the sign
    np.testing.assert_allclose(relative_change(-d, b), -relative_change(d, b), atol=1e-12)


# --------------------------------------------------------------------------- the search
def test_counterfactual_lowers_base_and_leaves_independent_classifier_alone():
    X = points()
    ls = LatentShift(IDENTITY, (Coordinate(0), 1), downstream={"other": (Coordinate(1), 1)}, max_image_change=None,
                     n_path=4, device="cpu")
    r = ls.generate(X)
    base = r.path_outputs["base"]
    assert base.shape == (len(X), 4) and r.path_lambdas.shape == (len(X), 4)
    # the path only lowers the base prediction, the counterfactual is D(z - lambda* grad)
    assert np.all(np.diff(base, axis=1) <= 1e-6)
    p0 = 1 / (1 + np.exp(-4 * X[:, 0]))
    np.testing.assert_allclose(base[:, 0], p0, rtol=1e-5)
    grad = 4 * p0 * (1 - p0)
    expected = X.copy()
    expected[:, 0] -= r.lambdas * grad
    np.testing.assert_allclose(r.counterfactuals, expected, rtol=1e-4, atol=1e-5)
    # Eq. 1 moves only the coordinate the base classifier reads: the other classifier never changes
    np.testing.assert_allclose(r.relative_changes[:, 0][r.base_change > 0], 0.0, atol=1e-6)
    # images that could drop by 0.6 did; the others stopped below min_output
    high = p0 > 0.7
    assert set(r.stop_reason[high]) == {"target_drop"}
    assert np.all(r.base_change[high] > 0.6)
    assert set(r.stop_reason) <= set(STOP_REASONS)
    assert np.all(r.lambdas >= 0) and np.all(r.n_steps >= 1)


def test_aligned_classifier_has_relative_change_one():
    X = points()
    ls = LatentShift(IDENTITY, (Coordinate(0), 1), downstream={"same": (Coordinate(0), 1)}, device="cpu",
                     max_image_change=None)
    r = ls.generate(X)
    keep = r.base_change > 0.3
    assert keep.sum() > 5
    np.testing.assert_allclose(r.relative_changes[keep, 0], 1.0, rtol=1e-5)


def test_each_image_keeps_its_own_lambda():
    """Searching a batch gives what searching each image alone gives."""
    X = points(30, seed=1)
    kw = dict(downstream={"other": (Coordinate(1), 1)}, max_image_change=None, device="cpu")
    batched = LatentShift(IDENTITY, (Coordinate(0), 1), batch_size=64, **kw).generate(X)
    single = LatentShift(IDENTITY, (Coordinate(0), 1), batch_size=1, **kw).generate(X)
    np.testing.assert_allclose(batched.lambdas, single.lambdas, rtol=1e-5)
    np.testing.assert_array_equal(batched.n_steps, single.n_steps)
    np.testing.assert_array_equal(batched.stop_reason, single.stop_reason)
    np.testing.assert_allclose(batched.counterfactuals, single.counterfactuals, rtol=1e-5, atol=1e-6)
    # images differ, and so do their lambdas
    assert len(np.unique(np.round(batched.lambdas, 4))) > 10


def test_fixed_step_size_follows_the_authors_schedule():
    X = points(8)
    r = LatentShift(IDENTITY, (Coordinate(0), 1), step_size=0.5, growth=0.1, max_image_change=None,
                    device="cpu").generate(X)
    for lam, k in zip(r.lambdas, r.n_steps):
        expected = 0.0
        for _ in range(k):
            expected = 1.1 * expected + 0.5
        assert lam == pytest.approx(expected, rel=1e-5)


def test_a_step_that_raises_the_prediction_is_taken_back():
    class Wave(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 1)

        def forward(self, x):
            s = 4.0 * torch.sin(3.0 * x[:, 0])
            return torch.stack([torch.zeros_like(s), s], dim=1)

    X = points(20)
    X[:, 0] = np.abs(X[:, 0]) / 2  # on the rising side of the wave: lowering x lowers the prediction, then raises it
    r = LatentShift(IDENTITY, (Wave(), 1), step_size=0.05, min_output=0.0, target_drop=0.99, max_image_change=None,
                    device="cpu").generate(X)
    assert set(r.stop_reason) == {"rise"}

    def schedule(k):
        lam = 0.0
        for _ in range(k):
            lam = 1.1 * lam + 0.05
        return lam

    for i in range(len(X)):
        assert r.lambdas[i] == pytest.approx(schedule(r.n_steps[i] - 1), rel=1e-5)
        grad = 4 * 3 * np.cos(3 * X[i, 0]) * (lambda p: p * (1 - p))(1 / (1 + np.exp(-4 * np.sin(3 * X[i, 0]))))
        rejected = X[i, 0] - schedule(r.n_steps[i]) * grad
        p_rejected = 1 / (1 + np.exp(-4 * np.sin(3 * rejected)))
        assert r.path_outputs["base"][i, -1] < p_rejected


def test_stop_reasons_image_change_zero_gradient_and_budget():
    X = points(10)
    X[:, 0] = np.abs(X[:, 0])  # base predictions >= 0.5: nothing starts below min_output
    tiny = LatentShift(IDENTITY, (Coordinate(0), 1), max_image_change=1e-6, device="cpu").generate(X)
    assert set(tiny.stop_reason) == {"image_change"} and set(tiny.n_steps) == {1}
    np.testing.assert_array_equal(tiny.lambdas, 0.0)  # the offending step is taken back

    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.tensor([0.0, 1.0]))

        def forward(self, x):
            return self.b.expand(x.shape[0], 2)

    flat = LatentShift(IDENTITY, (Constant(), 1), device="cpu").generate(X)
    assert set(flat.stop_reason) == {"zero_gradient"}
    np.testing.assert_array_equal(flat.lambdas, 0.0)
    assert np.all(np.isnan(flat.relative_changes))  # no downstream columns, and nothing moved
    short = LatentShift(IDENTITY, (Coordinate(0, k=0.01), 1), max_steps=2, max_image_change=None, device="cpu").generate(X)
    assert set(short.stop_reason) == {"max_steps"} and set(short.n_steps) == {2}


def test_black_box_base_uses_finite_differences():
    X = points(20, seed=2)
    kw = dict(downstream={"other": (Coordinate(1), 1)}, max_image_change=None, step_size=0.05, device="cpu")
    exact = LatentShift(IDENTITY, (Coordinate(0), 1), **kw).generate(X)
    boxed = LatentShift(IDENTITY, (ProbaBox(Coordinate(0)), "pos"), **kw).generate(X)
    np.testing.assert_array_equal(exact.n_steps, boxed.n_steps)
    np.testing.assert_allclose(boxed.counterfactuals, exact.counterfactuals, atol=2e-3)
    np.testing.assert_allclose(boxed.path_outputs["base"], exact.path_outputs["base"], atol=2e-3)


def test_dataset_and_tensor_inputs_and_module_state():
    X = points(12)
    enc, dec = nn.Linear(3, 2), nn.Linear(2, 3)
    clf = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    clf.train()
    ls = LatentShift((enc, dec), (clf, 1), downstream={"d": (clf, 0)}, device="cpu")
    a = ls.generate(X)
    b = ls.generate(TensorDataset(torch.as_tensor(X), torch.zeros(12)))
    c = ls.generate(torch.as_tensor(X))
    # eval mode inside (dropout off: deterministic), the user's train flag restored after
    np.testing.assert_allclose(a.counterfactuals, b.counterfactuals, rtol=1e-5)
    np.testing.assert_allclose(a.counterfactuals, c.counterfactuals, rtol=1e-5)
    assert clf.training and clf[1].training
    assert a.downstream_names == ["d"] and a.base_name == "base"
    path = ls.generate(X, return_path_images=True)
    assert path.path_images.shape == (12, 2, 3)
    lean = ls.generate(X, return_images=False)
    assert "counterfactuals" not in lean and lean.lambdas.shape == (12,)


def test_skorch_classifier_with_string_labels(tiny_images):
    X, y = tiny_images
    labels = np.array(["cold", "warm"])[y]
    clf = ERMClassifier(max_epochs=2, random_state=0, device="cpu", module__width=4).fit(X, labels)
    out = as_classifier_output((clf, "warm"), device="cpu")
    with torch.no_grad():
        p = out(torch.as_tensor(X[:5])).numpy()
    np.testing.assert_allclose(p, clf.predict_proba(X[:5])[:, 1], rtol=1e-5)
    assert out.differentiable
    with pytest.raises(ValueError, match="not a class"):
        as_classifier_output((clf, "hot"), device="cpu")
    with pytest.raises(TypeError, match="not fitted"):
        as_classifier_output((ERMClassifier(), 1), device="cpu")


def test_outputs_modes():
    x = torch.zeros(2, 3)
    single = nn.Linear(3, 1)
    nn.init.zeros_(single.weight)
    nn.init.constant_(single.bias, 2.0)
    sig = torch.sigmoid(torch.tensor(2.0)).item()
    assert as_classifier_output((single, 1), device="cpu")(x)[0].item() == pytest.approx(sig)
    assert as_classifier_output((single, 0), device="cpu")(x)[0].item() == pytest.approx(1 - sig)
    multi = nn.Linear(3, 3)
    nn.init.zeros_(multi.weight)
    nn.init.constant_(multi.bias, 1.0)
    assert as_classifier_output((multi, 2), device="cpu")(x)[0].item() == pytest.approx(1 / 3)
    assert as_classifier_output((multi, 2), outputs="sigmoid", device="cpu")(x)[0].item() == pytest.approx(
        torch.sigmoid(torch.tensor(1.0)).item()
    )
    assert as_classifier_output((multi, 2, "probabilities"), device="cpu")(x)[0].item() == pytest.approx(1.0)


def test_bad_arguments():
    X = points(4)
    clf = Coordinate(0)
    with pytest.raises(ValueError, match="outputs"):
        LatentShift(IDENTITY, (clf, 1), outputs="scores", device="cpu").generate(X)
    with pytest.raises(TypeError, match="base"):
        LatentShift(IDENTITY, clf, device="cpu").generate(X)
    with pytest.raises(ValueError, match="out of range"):
        LatentShift(IDENTITY, (clf, 5), device="cpu").generate(X)
    with pytest.raises(TypeError, match="output index"):
        as_classifier_output((clf, "pos"), device="cpu")
    with pytest.raises(TypeError, match="downstream"):
        LatentShift(IDENTITY, (clf, 1), downstream=[(clf, 1)], device="cpu").generate(X)
    with pytest.raises(ValueError, match="base_name"):
        LatentShift(IDENTITY, (clf, 1), downstream={"base": (clf, 0)}, device="cpu").generate(X)
    with pytest.raises(ValueError, match="n_path"):
        LatentShift(IDENTITY, (clf, 1), n_path=1, device="cpu").generate(X)
    with pytest.raises(ValueError, match="target_drop"):
        LatentShift(IDENTITY, (clf, 1), target_drop=0, device="cpu").generate(X)
    with pytest.raises(TypeError, match="step_size"):
        LatentShift(IDENTITY, (clf, 1), step_size="big", device="cpu").generate(X)
    with pytest.raises(ValueError, match="empty"):
        LatentShift(IDENTITY, (clf, 1), device="cpu").generate(X[:0])
    with pytest.raises(TypeError, match="encode"):
        as_autoencoder(object(), device="cpu")
    with pytest.raises(ValueError, match="pair"):
        as_autoencoder((nn.Identity(),), device="cpu")
    with pytest.raises(TypeError, match="not fitted"):
        as_autoencoder(Autoencoder(), device="cpu")
    with pytest.raises(TypeError, match="predict_proba"):
        as_classifier_output((object(), 1), device="cpu")


def test_parameters_go_through_sklearn_constraints():
    """One style with the estimators: scikit-learn's InvalidParameterError, naming LatentShift and the parameter."""
    from sklearn.utils._param_validation import InvalidParameterError

    X = points(4)
    clf = Coordinate(0)
    for bad in ({"max_steps": 0}, {"batch_size": 1.5}, {"fd_epsilon": -1.0}, {"growth": -0.1}, {"device": "tpu9"},
                {"max_image_change": 0}, {"verbose": "loud"}, {"min_output": float("nan")}):
        (name,) = bad
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of LatentShift must be"):
            LatentShift(IDENTITY, (clf, 1), **bad).generate(X)
    # a FrozenEstimator around a fitted classifier is unwrapped
    from sklearn.frozen import FrozenEstimator

    box = ProbaBox(Coordinate(0))
    direct = as_classifier_output((box, "pos"), device="cpu")(torch.as_tensor(X))
    frozen = as_classifier_output((FrozenEstimator(box), "pos"), device="cpu")(torch.as_tensor(X))
    np.testing.assert_array_equal(direct.numpy(), frozen.numpy())


def test_non_finite_inputs_are_refused():
    """A NaN pixel would make every output along its path NaN: arrays, tensors and Datasets are refused."""
    X = points(6)
    X[2, 0] = np.nan
    ls = LatentShift(IDENTITY, (Coordinate(0), 1), device="cpu")
    for given in (X, torch.as_tensor(X), TensorDataset(torch.as_tensor(X))):
        with pytest.raises(ValueError, match="NaN"):
            ls.generate(given)
    images = np.zeros((2, 1, 2, 2), dtype=np.float32)
    images[1, 0, 1, 1] = -np.inf
    coder = (nn.Flatten(), nn.Unflatten(1, (1, 2, 2)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        LatentShift(coder, (nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), 1), device="cpu").generate(images)


# --------------------------------------------------------------------------- the default autoencoder
def test_autoencoder_fit_transform_and_sklearn_contract():
    X = np.random.RandomState(0).rand(48, 3, 8, 8).astype(np.float32)
    ae = Autoencoder(latent_dim=4, max_epochs=3, random_state=0, device="cpu").fit(X)
    again = Autoencoder(latent_dim=4, max_epochs=3, random_state=0, device="cpu").fit(X)
    Z = ae.transform(X)
    assert Z.shape == (48, 4)
    np.testing.assert_allclose(Z, again.transform(X), rtol=1e-5, atol=1e-6)
    rec = ae.inverse_transform(Z)
    assert rec.shape == X.shape and rec.min() >= 0 and rec.max() <= 1
    assert isinstance(ae.module_, ConvAutoencoder)
    assert ae.score(X) == pytest.approx(-np.mean((ae.reconstruct(X) - X) ** 2))
    params = clone(ae).get_params()
    assert params["device"] == "cpu" and params["latent_dim"] == 4
    assert clone(Autoencoder()).get_params()["device"] == "auto"
    loaded = pickle.loads(pickle.dumps(ae))
    np.testing.assert_allclose(loaded.transform(X[:4]), Z[:4], rtol=1e-5, atol=1e-6)
    # torch Datasets are read in batches, labels or not
    ds = TensorDataset(torch.as_tensor(X), torch.zeros(48))
    np.testing.assert_allclose(ae.transform(ds), Z, rtol=1e-5, atol=1e-6)
    Autoencoder(latent_dim=2, max_epochs=1, criterion=nn.MSELoss, validation_fraction=0, device="cpu").fit(ds)
    # usable by Latent Shift as it is
    clf = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    r = LatentShift(ae, (clf, 1), device="cpu").generate(X)
    assert r.counterfactuals.shape == (48, 3, 8, 8)


def test_autoencoder_rejects_non_images_and_unfitted_use():
    with pytest.raises(ValueError, match="images of shape"):
        Autoencoder(max_epochs=1).fit(np.zeros((4, 8)))
    with pytest.raises(ValueError, match="latent codes"):
        Autoencoder(latent_dim=2, max_epochs=1, device="cpu").fit(np.zeros((8, 1, 8, 8), np.float32)).inverse_transform(
            np.zeros(3)
        )
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        Autoencoder().transform(np.zeros((2, 1, 8, 8), np.float32))
