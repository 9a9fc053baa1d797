"""The laws of scikit-learn's estimator checks, on images, for every image estimator.

scikit-learn's checks build 2-D feature tables, which the image estimators
refuse (see ``tests/test_estimator_checks.py``); these tests state the same
laws on small 4-D images.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from sklearn.frozen import FrozenEstimator

from skshortcut import ChromaVAEClassifier, Embedder, ERMClassifier, MaskAndCombineRetrainer, WassersteinDisentangler
from skshortcut.counterfactual import Autoencoder


def _images(n=48, c=3, size=8, seed=0):
    rng = np.random.RandomState(seed)
    y = np.array(["a", "b"] * (n // 2))
    X = rng.rand(n, c, size, size).astype(np.float32) * 0.5
    X[y == "b", 0] += 0.5  # channel 0 separates the classes
    return X, y


def _same(a, b):
    if np.asarray(a).dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(a, b)


@dataclass
class Spec:
    make: object
    output: str = "predict"  # the method whose output the laws compare
    supervised: bool = True
    any_labels: bool = True  # whether it learns any label set (not one fixed by a base model)
    two_labels: bool = False  # y is (foreground, background)
    fit_kwargs: dict = field(default_factory=dict)

    def fit(self, est, X, y):
        if not self.supervised:
            return est.fit(X, **self.fit_kwargs)
        if self.two_labels:
            y = np.c_[np.asarray(y, dtype=object), np.arange(len(y)) % 2]
        return est.fit(X, y, **self.fit_kwargs)

    def out(self, est, X):
        return np.asarray(getattr(est, self.output)(X))


_BASE = {}


def _frozen_base():
    """A small ERM base model on the laws' images (fitted once)."""
    if "erm" not in _BASE:
        X, y = _images()
        _BASE["erm"] = ERMClassifier(max_epochs=2, random_state=0, device="cpu", module__width=8).fit(X, y)
    return FrozenEstimator(_BASE["erm"])


SPECS = {
    "ERMClassifier": Spec(lambda: ERMClassifier(max_epochs=2, random_state=0, device="cpu")),
    "MaskAndCombineRetrainer": Spec(
        lambda: MaskAndCombineRetrainer(_frozen_base(), max_epochs=1, random_state=0, device="cpu"), any_labels=False
    ),
    "ChromaVAEClassifier": Spec(lambda: ChromaVAEClassifier(dim_z=4, max_epochs=1, random_state=0, device="cpu")),
    "WassersteinDisentangler": Spec(
        lambda: WassersteinDisentangler(max_epochs=1, random_state=0, device="cpu"), two_labels=True
    ),
    "Embedder": Spec(lambda: Embedder(_frozen_base(), device="cpu"), output="transform", supervised=False),
    "Autoencoder": Spec(
        lambda: Autoencoder(latent_dim=4, max_epochs=1, random_state=0, device="cpu"), output="transform", supervised=False
    ),
}


@pytest.fixture(params=sorted(SPECS))
def spec(request):
    return SPECS[request.param]


@pytest.fixture(params=sorted(name for name, s in SPECS.items() if s.supervised))
def supervised_spec(request):
    return SPECS[request.param]


@pytest.fixture(params=sorted(name for name, s in SPECS.items() if hasattr(s.make(), "transform")))
def transformer_spec(request):
    return SPECS[request.param]


def test_fit_returns_self_and_is_idempotent(spec):
    X, y = _images()
    est = spec.make()
    assert spec.fit(est, X, y) is est
    first = spec.out(est, X)
    spec.fit(est, X, y)
    _same(spec.out(est, X), first)


def test_unfitted_is_not_fitted_and_clone_keeps_parameters(spec):
    est = spec.make()
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    with pytest.raises(NotFittedError):
        spec.out(est, _images()[0])
    assert repr(clone(est)) == repr(est)
    X, y = _images()
    spec.fit(est, X, y)
    check_is_fitted(est)
    assert repr(clone(est)) == repr(spec.make())


def test_pickle_round_trip(spec):
    X, y = _images()
    est = spec.fit(spec.make(), X, y)
    again = pickle.loads(pickle.dumps(est))
    _same(spec.out(again, X), spec.out(est, X))


def test_nan_and_inf_are_refused_at_fit_and_predict(spec):
    X, y = _images()
    bad = X.copy()
    bad[3, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        spec.fit(spec.make(), bad, y)
    est = spec.fit(spec.make(), X, y)
    bad[3, 0, 1, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        spec.out(est, bad)


def test_changed_image_shape_is_refused(spec):
    X, y = _images()
    est = spec.fit(spec.make(), X, y)
    with pytest.raises(ValueError, match="channel"):
        spec.out(est, X[:, :1])
    with pytest.raises(ValueError, match="shape"):
        spec.out(est, _images(size=12)[0])


def test_strides_dtypes_and_sample_order_do_not_change_results(spec):
    X, y = _images()
    est = spec.fit(spec.make(), X, y)
    ref = spec.out(est, X)
    flipped = np.ascontiguousarray(X[::-1])[::-1]  # negative strides
    _same(spec.out(est, flipped), ref)
    _same(spec.out(est, X.astype(np.float64)), ref)
    _same(spec.out(est, X.astype(object)), ref)
    order = np.random.RandomState(1).permutation(len(X))
    _same(spec.out(est, X[order]), ref[order])
    with pytest.raises(TypeError, match="real numbers"):
        spec.out(est, X.astype(str))
    with pytest.raises(ValueError, match="Complex data"):
        spec.out(est, X.astype(np.complex64))


def test_empty_and_2d_input_are_refused(spec):
    X, y = _images()
    with pytest.raises(ValueError, match="no images|at least one"):
        spec.fit(spec.make(), X[:0], y[:0])
    with pytest.raises(ValueError, match="images of shape"):
        spec.fit(spec.make(), X.reshape(len(X), -1), y)


def test_labels(supervised_spec):
    spec = supervised_spec
    X, y = _images()
    if not spec.any_labels:  # the classes are the base model's: other labels are refused
        with pytest.raises(ValueError, match="does not predict"):
            spec.fit(spec.make(), X, (y == "b").astype(int) + 3)
        assert set(np.asarray(spec.fit(spec.make(), X, y).predict(X)).tolist()) <= {"a", "b"}
        return
    with pytest.raises(ValueError, match="single class"):
        spec.fit(spec.make(), X, np.full(len(X), "a"))
    with pytest.raises(ValueError, match="Unknown label type"):
        spec.fit(spec.make(), X, np.linspace(0, 1, len(X)))
    est = spec.fit(spec.make(), X, y)
    assert set(np.asarray(est.predict(X)).tolist()) <= {"a", "b"}
    ints = spec.fit(spec.make(), X, (y == "b").astype(int) + 3)  # an int label set
    assert set(np.asarray(ints.predict(X)).tolist()) <= {3, 4}


def test_transformers_support_set_output(transformer_spec):
    spec = transformer_spec
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = _images()
    fg = spec.fit(spec.make(), X, y)
    names = fg.get_feature_names_out()
    assert len(names) == fg.transform(X).shape[1] and len(set(names)) == len(names)
    frame = spec.fit(spec.make().set_output(transform="pandas"), X, y).transform(X)
    assert list(frame.columns) == list(names)
    if spec.supervised and not spec.two_labels:
        pipe = make_pipeline(spec.make(), LogisticRegression()).set_output(transform="default")
        assert 0 <= pipe.fit(X, y).score(X, y) <= 1


def test_unfitted_default_device_estimator_pickles(spec):
    # joblib and Dask ship unfitted estimators to their workers
    est = spec.make().set_params(device="auto")
    again = pickle.loads(pickle.dumps(est))
    assert again.get_params()["device"] == "auto" and repr(again) == repr(est)
    X, y = _images()
    spec.fit(again, X, y)
