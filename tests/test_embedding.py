"""Embedder: a base model's penultimate features as a scikit-learn transformer."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from torch.utils.data import Dataset, TensorDataset

from skshortcut import DFRRetrainer, ERMClassifier
from skshortcut.base_model import as_base_model
from skshortcut.embedding import Embedder
from skshortcut.explain import attribute
from skshortcut.nets import SmallCNN


def _data(n=120, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    spurious = np.where(rng.rand(n) < 0.8, y, 1 - y)
    X = rng.rand(n, 3, 8, 8).astype("float32") * 0.5
    X[:, 0] += 0.5 * y[:, None, None]
    X[:, 1] += 0.5 * spurious[:, None, None]
    return X, y, 2 * y + spurious


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def erm(data):
    X, y, _ = data
    return ERMClassifier(max_epochs=2, module__width=4, device="cpu", random_state=0).fit(X, y)


def _module(seed=0):
    torch.manual_seed(seed)
    return SmallCNN(in_channels=3, n_classes=2, width=4)


class _Images(Dataset):
    """Items are images only (no tuple)."""

    def __init__(self, X):
        self.X = torch.as_tensor(X)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i]


# --------------------------------------------------------------------------- features
def test_features_are_the_input_of_the_head(data):
    X, _, _ = data
    module = _module()
    Z = Embedder(module, device="cpu", batch_size=7).fit_transform(X)
    captured = []
    handle = module.fc.register_forward_pre_hook(lambda _m, inp: captured.append(inp[0].detach().clone()))
    try:
        module.eval()
        with torch.no_grad():
            module(torch.as_tensor(X))
    finally:
        handle.remove()
    np.testing.assert_allclose(Z, captured[0].numpy(), rtol=1e-5, atol=1e-6)
    assert Z.dtype == np.float32 and Z.shape == (len(X), module.fc.in_features)
    np.testing.assert_array_equal(Z, as_base_model(module, X, device="cpu").embed(X, batch_size=7))


def test_batch_size_does_not_change_the_features(data):
    X, _, _ = data
    module = _module()
    Z1 = Embedder(module, device="cpu", batch_size=1).fit_transform(X)
    Z2 = Embedder(module, device="cpu", batch_size=500).fit_transform(X)
    np.testing.assert_allclose(Z1, Z2, rtol=1e-5, atol=1e-6)


def test_arrays_tensors_and_datasets_give_the_same_features(data):
    X, y, _ = data
    emb = Embedder(_module(), device="cpu", batch_size=16).fit(X)
    Z = emb.transform(X)
    np.testing.assert_allclose(emb.transform(torch.as_tensor(X)), Z, rtol=1e-6)
    np.testing.assert_allclose(emb.transform(TensorDataset(torch.as_tensor(X), torch.as_tensor(y))), Z, rtol=1e-6)
    np.testing.assert_allclose(emb.transform(_Images(X)), Z, rtol=1e-6)
    # a Dataset at fit too
    np.testing.assert_allclose(Embedder(emb.estimator, device="cpu").fit(_Images(X)).transform(X), Z, rtol=1e-6)


def test_dataloader_workers_give_the_same_features(data):
    X, y, _ = data
    emb = Embedder(_module(), device="cpu", batch_size=16, num_workers=2).fit(X)
    ds = TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    np.testing.assert_allclose(emb.transform(ds), emb.set_params(num_workers=0).transform(ds), rtol=1e-6)


def test_the_given_models_are_left_as_they_were(data, erm):
    X, _, _ = data
    module = _module()
    module.train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    emb = Embedder(module, device="cpu").fit(X)
    emb.transform(X)
    assert emb.estimator is module and module.training
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert not module._forward_hooks and not module.fc._forward_pre_hooks
    frozen = FrozenEstimator(erm)
    emb = Embedder(frozen, device="cpu").fit(X)
    assert emb.estimator is frozen and emb.base_model_.module is erm.module_
    np.testing.assert_array_equal(emb.transform(X), as_base_model(erm, X, device="cpu").embed(X))


# --------------------------------------------------------------------------- names, output
def test_feature_names_and_pandas_output(data):
    pd = pytest.importorskip("pandas")
    X, _, _ = data
    emb = Embedder(_module(), device="cpu").fit(X)
    names = emb.get_feature_names_out()
    assert names.tolist() == [f"embedding{i}" for i in range(emb.n_features_out_)]
    Z = emb.transform(X)
    out = emb.set_output(transform="pandas").transform(X)
    assert isinstance(out, pd.DataFrame) and out.columns.tolist() == names.tolist()
    np.testing.assert_array_equal(out.to_numpy(), Z)
    assert isinstance(emb.set_output(transform="default").transform(X), np.ndarray)
    with pytest.raises(ValueError, match="input_features"):
        emb.get_feature_names_out(["a"])


# --------------------------------------------------------------------------- bad input
def test_bad_images_are_refused(data):
    X, _, _ = data
    emb = Embedder(_module(), device="cpu")
    bad = X.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        emb.fit(bad)
    emb.fit(X)
    with pytest.raises(ValueError, match="NaN or infinity"):
        emb.transform(bad)
    with pytest.raises(ValueError, match=r"NaN or infinity \(first at sample 3\)"):
        emb.transform(_Images(bad))
    with pytest.raises(ValueError, match="feature table"):
        emb.transform(X.reshape(len(X), -1))
    with pytest.raises(ValueError, match="channel"):
        emb.transform(X[:, :1])
    with pytest.raises(ValueError, match="shape"):
        emb.transform(_Images(X[:, :, :4, :4]))
    with pytest.raises(ValueError, match="empty Dataset"):
        emb.transform(_Images(X[:0]))


@pytest.mark.parametrize(
    "params", [{"batch_size": 0}, {"device": "tpu9"}, {"num_workers": -1}, {"head": 3}, {"verbose": "x"}]
)
def test_parameters_are_checked_at_fit(data, params):
    X, _, _ = data
    emb = Embedder(_module(), **params)  # __init__ only stores
    with pytest.raises(InvalidParameterError):
        emb.fit(X)


def test_model_errors_name_what_to_pass(data, erm):
    X, _, _ = data
    with pytest.raises(TypeError, match="FrozenEstimator"):
        Embedder(clone(erm), device="cpu").fit(X)
    with pytest.raises(TypeError, match="estimator"):
        Embedder(object(), device="cpu").fit(X)
    with pytest.raises(ValueError, match="weights"):
        Embedder(_module(), weights="x.pt", device="cpu").fit(X)
    with pytest.raises(ValueError, match="architecture"):
        Embedder("no_such_net", device="cpu").fit(X)
    with pytest.raises(Exception, match="not fitted"):
        Embedder(_module()).transform(X)


# --------------------------------------------------------------------------- backbones by name
def test_backbone_by_name_is_built_at_fit_and_seeded(data):
    X, _, _ = data
    emb = Embedder("cnn", device="cpu", random_state=0)
    assert emb.estimator == "cnn"  # nothing built before fit
    Z = emb.fit_transform(X)
    assert emb.estimator == "cnn" and Z.shape == (len(X), 128)
    np.testing.assert_array_equal(Embedder("cnn", device="cpu", random_state=0).fit_transform(X), Z)
    assert not np.allclose(Embedder("cnn", device="cpu", random_state=1).fit_transform(X), Z)
    resnet = Embedder("resnet18", device="cpu", random_state=0).fit(np.zeros((2, 3, 32, 32), "float32"))
    assert resnet.n_features_out_ == 512 and resnet.base_model_.head_name == "fc"


# --------------------------------------------------------------------------- clone, pickle, hash
def test_clone_keeps_the_model_given_as_a_parameter(data, erm):
    X, _, _ = data
    frozen = FrozenEstimator(erm)
    emb = Embedder(frozen, device="cpu", batch_size=32)  # unfitted, model given
    copy = clone(emb)
    assert copy.estimator is frozen and copy.get_params()["batch_size"] == 32
    assert not hasattr(copy, "base_model_")
    np.testing.assert_array_equal(copy.fit_transform(X), emb.fit_transform(X))
    module = _module()
    copy = clone(Embedder(module, device="cpu"))
    assert copy.estimator is not module  # a module is deep-copied, weights included
    np.testing.assert_array_equal(copy.fit_transform(X), Embedder(module, device="cpu").fit_transform(X))


def test_pickle_round_trip(data, erm):
    X, _, _ = data
    for model in (_module(), FrozenEstimator(erm), "cnn"):
        emb = Embedder(model, device="cpu", random_state=0).fit(X)
        again = pickle.loads(pickle.dumps(emb))
        np.testing.assert_array_equal(again.transform(X), emb.transform(X))
        assert again.get_feature_names_out().tolist() == emb.get_feature_names_out().tolist()


def test_hashing_a_frozen_model_is_deterministic(data, erm):
    """Pipeline(memory=...) finds its cache by joblib.hash of the unfitted step: it must not drift."""
    X, _, _ = data
    for model in (FrozenEstimator(erm), FrozenEstimator(_module())):
        emb = Embedder(model, device="cpu")
        h = joblib.hash(emb)
        assert joblib.hash(emb) == h
        assert joblib.hash(clone(emb)) == h  # clone returns the frozen model itself
        fitted = Embedder(model, device="cpu").fit(X)
        fitted.transform(X)  # embedding leaves the model as it was
        assert joblib.hash(emb) == h
        attribute(model, X[:8], device="cpu")  # heatmaps (ExMap's pass) leave it as it was too
        assert joblib.hash(emb) == h


# --------------------------------------------------------------------------- pipelines
def test_pipeline_with_dfr_routes_groups(data, erm):
    X, y, groups = data
    dfr_params = dict(Cs=[1.0, 0.1], n_retrains=3, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(Embedder(FrozenEstimator(erm), device="cpu"), DFRRetrainer(**dfr_params).set_fit_request(groups=True))
        pipe.fit(X, y, groups=groups)
    assert pipe[-1].balanced_on_ == "groups"
    Z = Embedder(FrozenEstimator(erm), device="cpu").fit_transform(X)
    direct = DFRRetrainer(**dfr_params).fit(Z, y, groups=groups)
    np.testing.assert_allclose(pipe[-1].coef_, direct.coef_)
    np.testing.assert_array_equal(pipe.predict(X), direct.predict(Z))


SAMPLES_FORWARDED = []


def _count_forward(_module, inputs, _output):
    # a module-level function: joblib hashes it by name, so the counter does not change the hash
    SAMPLES_FORWARDED.append(len(inputs[0]))


def _grid_search_samples(erm, X, y, groups, memory):
    SAMPLES_FORWARDED.clear()
    grid = {"dfr__n_retrains": [1, 2, 3], "dfr__min_group_size": [1, 6]}
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline(
            [("embed", Embedder(FrozenEstimator(erm), head="fc", device="cpu", batch_size=32)),
             ("dfr", DFRRetrainer(Cs=[1.0], n_tuning_splits=1, random_state=0).set_fit_request(groups=True))],
            memory=memory,
        )
        search = GridSearchCV(pipe, grid, cv=KFold(3)).fit(X, y, groups=groups)
    return sum(SAMPLES_FORWARDED), search


def test_grid_search_over_dfr_embeds_each_fit_input_once(data, erm, tmp_path):
    X, y, groups = data
    n, n_folds, n_candidates = len(X), 3, 6
    n_train, n_test = n - n // n_folds, n // n_folds
    handle = erm.module_.register_forward_hook(_count_forward)
    try:
        cached, search = _grid_search_samples(erm, X, y, groups, memory=str(tmp_path / "cache"))
        uncached, _ = _grid_search_samples(erm, X, y, groups, memory=None)
    finally:
        handle.remove()
    # scoring embeds each test fold for each candidate (predict is never cached)
    scoring = n_candidates * n_folds * n_test
    # with memory: one pass per distinct fit input (3 training folds, then the refit on all of X)
    assert cached == n_folds * n_train + n + scoring
    # without: one pass per candidate and fold
    assert uncached == n_candidates * n_folds * n_train + n + scoring
    assert search.best_estimator_[-1].balanced_on_ == "groups"
