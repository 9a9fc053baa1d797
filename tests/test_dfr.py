import sys

import numpy as np
import pytest
import scipy.sparse
import sklearn.utils.validation
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from torch.utils.data import TensorDataset

import _last_layer_data  # tests/ is on sys.path

from skshortcut import DFRRetrainer, ERMClassifier, GroupedData, worst_group_accuracy, worst_group_scorer
from skshortcut._balance import balanced_indices
from skshortcut.nets import SmallCNN
from skshortcut.retraining._l1_logistic import l1_penalty_params
from skshortcut.retraining.dfr import fit_l1_logistic

#: what selects L1 in the installed scikit-learn (``l1_ratio=1`` alone is L2 before 1.8)
L1 = l1_penalty_params()


def shortcut_features(n, seed, agreement=0.9, n_noise=10):
    """Core feature weakly predictive, spurious feature strongly correlated with y (90 %, 10 noise features)."""
    return _last_layer_data.shortcut_features(n, seed, agreement=agreement, n_noise=n_noise)


def test_dfr_beats_erm_on_worst_group():
    Z, y, g = shortcut_features(1500, 0)
    Zt, yt, gt = shortcut_features(2000, 1, agreement=0.5)
    erm = LogisticRegression().fit(Z, y)
    dfr = DFRRetrainer(random_state=0).fit(Z, y, groups=g)
    erm_wga = worst_group_accuracy(yt, erm.predict(Zt), groups=gt)
    dfr_wga = worst_group_accuracy(yt, dfr.predict(Zt), groups=gt)
    # measured over seeds 0-4: ERM 0.30-0.38, DFR 0.755-0.771
    assert erm_wga < 0.45 and dfr_wga > 0.7 and dfr_wga - erm_wga > 0.3
    assert dfr.balanced_on_ == "groups"
    assert dfr.best_C_ in dfr.Cs and set(dfr.cv_scores_) == set(dfr.Cs)
    assert dfr.coef_.shape == (1, Z.shape[1]) and dfr.intercept_.shape == (1,)
    # the spurious feature's weight shrinks relative to the core feature
    assert abs(dfr.coef_[0, 1]) < abs(dfr.coef_[0, 0])


def test_matches_a_plain_transcription_of_the_procedure():
    """Averaged coef/intercept/scaler equal a hand-written loop using the same seeds."""
    Z, y, g = shortcut_features(400, 2)
    dfr = DFRRetrainer(Cs=[0.3], n_retrains=3, random_state=7).fit(Z, y, groups=g)
    rng = np.random.RandomState(7)
    rng.randint(0, 2**31 - 1, size=5)  # tuning split seeds (unused with one C)
    seeds = rng.randint(0, 2**31 - 1, size=3)
    coefs, inters, means, scales = [], [], [], []
    for seed in seeds:
        idx = balanced_indices(g, np.random.RandomState(seed))
        sc = StandardScaler().fit(Z[idx])
        m = LogisticRegression(C=0.3, solver="liblinear", max_iter=1000, random_state=seed, **L1)
        m.fit(sc.transform(Z[idx]), y[idx])
        coefs.append(m.coef_)
        inters.append(m.intercept_)
        means.append(sc.mean_)
        scales.append(sc.scale_)
    np.testing.assert_allclose(dfr.coef_, np.mean(coefs, axis=0), atol=1e-8)
    np.testing.assert_allclose(dfr.intercept_, np.mean(inters, axis=0), atol=1e-8)
    np.testing.assert_allclose(dfr.scaler_mean_, np.mean(means, axis=0))
    np.testing.assert_allclose(dfr.scaler_scale_, np.mean(scales, axis=0))


def test_no_groups_balances_classes_and_warns():
    Z, y, _ = shortcut_features(300, 3)
    with pytest.warns(UserWarning, match="class-balanced DFR"):
        dfr = DFRRetrainer(random_state=0, n_retrains=2).fit(Z, y)
    assert dfr.balanced_on_ == "classes"


def test_grouped_data_input_and_disagreeing_groups():
    Z, y, g = shortcut_features(300, 4)
    a = DFRRetrainer(random_state=0, n_retrains=3).fit(GroupedData(Z, g), y)
    b = DFRRetrainer(random_state=0, n_retrains=3).fit(Z, y, groups=g)
    np.testing.assert_allclose(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.predict(GroupedData(Z, g)), b.predict(Z))
    with pytest.raises(ValueError, match="differs from the groups carried"):
        DFRRetrainer().fit(GroupedData(Z, g), y, groups=np.zeros_like(g))


def test_three_classes_string_labels():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, 900)
    Z = np.c_[np.eye(3)[y] * 2 + rng.normal(0, 0.7, (900, 3)), rng.normal(size=(900, 4))]
    labels = np.array(["ant", "bee", "cow"])[y]
    dfr = DFRRetrainer(random_state=0, n_retrains=4).fit(Z, labels, groups=y)
    assert dfr.coef_.shape == (3, 7)
    proba = dfr.predict_proba(Z)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (dfr.predict(Z) == labels).mean() > 0.85
    assert dfr.classes_[proba.argmax(1)].tolist() == dfr.predict(Z).tolist()


def test_n_jobs_gives_identical_results():
    Z, y, g = shortcut_features(400, 5)
    a = DFRRetrainer(random_state=0, n_retrains=4, n_jobs=1).fit(Z, y, groups=g)
    b = DFRRetrainer(random_state=0, n_retrains=4, n_jobs=2).fit(Z, y, groups=g)
    np.testing.assert_allclose(a.coef_, b.coef_)
    assert a.best_C_ == b.best_C_


def test_binary_proba_consistent_with_decision():
    Z, y, g = shortcut_features(300, 6)
    dfr = DFRRetrainer(random_state=0, n_retrains=2).fit(Z, y, groups=g)
    d = dfr.decision_function(Z)
    p = dfr.predict_proba(Z)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-d)))
    np.testing.assert_array_equal(dfr.predict(Z), dfr.classes_[(d > 0).astype(int)])


def test_on_images_through_a_base_model(tiny_images):
    X, y = tiny_images
    net = SmallCNN(n_classes=2)
    dfr = DFRRetrainer(net, device="cpu", random_state=0, n_retrains=2, Cs=[1.0]).fit(X, y, groups=y)
    assert dfr.coef_.shape == (1, net.fc.in_features)
    assert dfr.input_shape_ == X.shape[1:]
    assert not hasattr(dfr, "n_features_in_")  # images are not a feature table
    assert dfr.predict(X).shape == (len(X),)
    assert net.training  # untouched


@pytest.mark.parametrize(
    "kwargs, X, y, groups, exc, match",
    [
        ({}, np.zeros((4, 3, 8, 8)), [0, 1, 0, 1], None, ValueError, "expects a 2-D feature matrix"),
        ({}, np.zeros((4, 2)), [1, 1, 1, 1], None, ValueError, "holds one class"),
        ({}, np.zeros((4, 2)), None, None, ValueError, "requires y to be passed"),
        ({}, np.zeros(4), [0, 1, 0, 1], None, ValueError, "Reshape your data"),
        ({}, np.array([[0.0], [np.nan], [1.0], [2.0]]), [0, 1, 0, 1], None, ValueError, "Input X contains NaN"),
        ({}, np.array([[0.0], [np.inf], [1.0], [2.0]]), [0, 1, 0, 1], None, ValueError, "Input X contains infinity"),
        ({}, TensorDataset(torch.zeros(4, 3, 8, 8)), [0, 1, 0, 1], None, TypeError, "`X` is a torch Dataset"),
        ({}, np.zeros((4, 2)), [0, 1, 0, 1], [0, 1], ValueError, "Inconsistent numbers"),
    ],
)
def test_bad_input(kwargs, X, y, groups, exc, match):
    with pytest.raises(exc, match=match):
        DFRRetrainer(**kwargs).fit(X, y, groups=groups)


def test_one_group_spanning_both_classes_is_a_plain_standardised_fit():
    """With a single group the balanced set is all the data: DFR is one scaler + L1 fit."""
    Z = np.random.RandomState(0).normal(size=(40, 2)) + np.r_[np.zeros(20), np.ones(20)][:, None]
    y = np.array([0] * 20 + [1] * 20)
    dfr = DFRRetrainer(n_retrains=1, Cs=[1.0], random_state=0).fit(Z, y, groups=np.zeros(40, int))
    assert dfr.balanced_on_ == "groups" and dfr.cv_scores_ == {}
    rng = np.random.RandomState(0)
    rng.randint(0, 2**31 - 1, size=5)  # tuning split seeds (unused with one C)
    seed = rng.randint(0, 2**31 - 1, size=1)[0]
    sc = StandardScaler().fit(Z)
    lr = LogisticRegression(C=1.0, solver="liblinear", max_iter=1000, random_state=seed, **L1)
    lr.fit(sc.transform(Z), y)
    np.testing.assert_allclose(dfr.coef_, lr.coef_, atol=1e-10)
    np.testing.assert_allclose(dfr.scaler_mean_, sc.mean_)


def test_tuning_halves_that_miss_a_class_are_left_out_with_a_warning():
    Z = np.random.RandomState(0).normal(size=(40, 2))
    y = np.array([0] * 38 + [1] * 2)  # class 1 only lives in a 2-sample group: a half can miss it
    g = (y == 1).astype(int)
    with pytest.warns(UserWarning, match=r"of 20 random tuning halves miss a class"):
        dfr = DFRRetrainer(n_retrains=1, n_tuning_splits=20, random_state=0).fit(Z, y, groups=g)
    assert set(dfr.cv_scores_) == set(dfr.Cs)
    # the warning's count is the number of halves whose first half (the fitted one) holds one class
    n_missed = sum(
        len(np.unique(y[np.random.RandomState(s).permutation(40)[:20]])) < 2
        for s in np.random.RandomState(0).randint(0, 2**31 - 1, size=20)
    )
    assert 0 < n_missed < 20
    assert max(dfr.cv_scores_.values()) <= 20 - n_missed  # at most 1 per usable split


def test_no_tuning_half_with_every_class_is_explained():
    Z = np.random.RandomState(0).normal(size=(3, 2))
    # fit halves of one sample hold one class each: no C can be scored
    with pytest.raises(ValueError, match="a class is missing, so no C can be scored"):
        DFRRetrainer(n_tuning_splits=3, random_state=0).fit(Z, [0, 0, 1], groups=[0, 0, 1])
    # a single C skips tuning: the same data fits
    assert DFRRetrainer(Cs=[1.0], n_retrains=1, min_group_size=1).fit(Z, [0, 0, 1], groups=[0, 0, 1]).coef_.shape == (1, 2)


def test_predict_before_fit_and_wrong_width():
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(DFRRetrainer(), method)(np.zeros((2, 3)))
    Z, y, g = shortcut_features(200, 7)
    dfr = DFRRetrainer(n_retrains=1, Cs=[1.0]).fit(Z, y, groups=g)
    with pytest.raises(ValueError, match="X has 3 features, but DFRRetrainer is expecting 12 features"):
        dfr.predict(np.zeros((2, 3)))


def test_grid_search_with_routed_groups(routing):
    Z, y, g = shortcut_features(600, 8)
    search = GridSearchCV(
        DFRRetrainer(n_retrains=2, Cs=[1.0], random_state=0), {"min_group_size": [2, 6]}, scoring=worst_group_scorer, cv=2
    )
    search.fit(Z, y, groups=g)
    best = search.best_estimator_
    assert best.balanced_on_ == "groups"
    assert 0.5 < search.best_score_ <= 1.0
    # the refit model is the best parameters fit on all data, groups included
    again = DFRRetrainer(n_retrains=2, Cs=[1.0], random_state=0, **search.best_params_).fit(Z, y, groups=g)
    np.testing.assert_array_equal(best.coef_, again.coef_)
    copy = clone(best)
    assert copy.get_params() == best.get_params() and not hasattr(copy, "coef_")


def test_pipeline_composes():
    Z, y, g = shortcut_features(300, 9)
    pipe = Pipeline([("dfr", DFRRetrainer(n_retrains=2, Cs=[1.0], random_state=0))])
    pipe.fit(GroupedData(Z, g), y)
    assert pipe.predict(Z).shape == (300,)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=80), st.integers(1, 8), st.integers(0, 1000))
def test_balanced_indices_law(groups, min_size, seed):
    """Every group keeps min(its size, target) members; target = smallest group of >= min_size members."""
    groups = np.array(groups)
    idx = balanced_indices(groups, np.random.RandomState(seed), min_group_size=min_size)
    assert len(np.unique(idx)) == len(idx)
    uniq, counts = np.unique(groups, return_counts=True)
    large = counts[counts >= min_size]
    target = large.min() if large.size else counts.min()
    kept = {u: int((groups[idx] == u).sum()) for u in uniq}
    for u, c in zip(uniq, counts):
        assert kept[u] == min(c, target)


# ---------------------------------------------------------------------------- scikit-learn's own checks
# scikit-learn's own checks of DFRRetrainer run in tests/test_estimator_checks.py, beside every estimator's


def test_image_tags_do_not_claim_feature_tables():
    assert DFRRetrainer().__sklearn_tags__().input_tags.two_d_array
    assert not DFRRetrainer(SmallCNN(n_classes=2)).__sklearn_tags__().input_tags.two_d_array


# ---------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    "param, value",
    [
        ("Cs", []),
        ("Cs", [1.0, -1.0]),
        ("Cs", [1.0, np.nan]),
        ("Cs", "abc"),
        ("Cs", 0.5),
        ("n_tuning_splits", 0),
        ("n_retrains", 0),
        ("n_retrains", 1.5),
        ("min_group_size", 0),
        ("head", 3),
        ("batch_size", 0),
        ("device", "tpu9"),
        ("max_iter", 0),
        ("tol", 0.0),
        ("n_jobs", 1.5),
        ("random_state", "seed"),
        ("verbose", "loud"),
    ],
)
def test_every_parameter_is_checked_at_fit(param, value):
    Z, y, g = shortcut_features(40, 0)
    dfr = DFRRetrainer(**{param: value})  # __init__ only stores
    assert dfr.get_params()[param] is value
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter of DFRRetrainer must be"):
        dfr.fit(Z, y, groups=g)


# ---------------------------------------------------------------------------- feature tables
def test_sparse_features_refused_clearly():
    Z, y, g = shortcut_features(60, 0)
    with pytest.raises(TypeError, match="Sparse data was passed for X, but dense data is required"):
        DFRRetrainer().fit(scipy.sparse.csr_matrix(Z), y, groups=g)
    dfr = DFRRetrainer(n_retrains=1, Cs=[1.0]).fit(Z, y, groups=g)
    with pytest.raises(TypeError, match="dense data is required"):
        dfr.predict(scipy.sparse.csr_matrix(Z))


def test_continuous_targets_refused():
    Z, _, g = shortcut_features(60, 0)
    with pytest.raises(ValueError, match="`y` must hold class labels: Unknown label type: continuous"):
        DFRRetrainer().fit(Z, np.linspace(0, 1, 60), groups=g)


def test_nan_features_refused_at_predict():
    Z, y, g = shortcut_features(60, 0)
    dfr = DFRRetrainer(n_retrains=1, Cs=[1.0]).fit(Z, y, groups=g)
    Z[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        dfr.predict(Z)


def test_column_names_kept_and_checked_with_pandas():
    pd = pytest.importorskip("pandas")
    Z, y, g = shortcut_features(80, 0, n_noise=2)
    frame = pd.DataFrame(Z, columns=["core", "spurious", "a", "b"])
    dfr = DFRRetrainer(n_retrains=1, Cs=[1.0]).fit(frame, y, groups=g)
    assert dfr.feature_names_in_.tolist() == ["core", "spurious", "a", "b"]
    with pytest.raises(ValueError, match="feature names should match"):
        dfr.predict(frame[["spurious", "core", "a", "b"]])


class _Frame:
    """A minimal table with named columns, standing in for a data frame."""

    def __init__(self, data, columns):
        self.data, self.columns = np.asarray(data, dtype=float), list(columns)
        self.shape, self.ndim = self.data.shape, 2

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self):
        return len(self.data)

    def reorder(self, columns):
        return _Frame(self.data[:, [self.columns.index(c) for c in columns]], columns)


def test_column_names_kept_and_checked(monkeypatch):
    """Through scikit-learn's own feature-name check (its data-frame detection stubbed for _Frame)."""
    real = sklearn.utils.validation._get_feature_names
    monkeypatch.setattr(
        sklearn.utils.validation,
        "_get_feature_names",
        lambda X: np.asarray(X.columns, dtype=object) if isinstance(X, _Frame) else real(X),
    )
    Z, y, g = shortcut_features(80, 0, n_noise=2)
    frame = _Frame(Z, ["core", "spurious", "a", "b"])
    dfr = DFRRetrainer(n_retrains=1, Cs=[1.0]).fit(frame, y, groups=g)
    assert dfr.feature_names_in_.tolist() == ["core", "spurious", "a", "b"] and dfr.n_features_in_ == 4
    np.testing.assert_array_equal(dfr.predict(frame), dfr.predict(Z))
    with pytest.raises(ValueError, match="feature names should match"):
        dfr.predict(frame.reorder(["spurious", "core", "a", "b"]))
    with pytest.raises(ValueError, match="feature names should match"):
        dfr.predict(_Frame(Z, ["core", "colour", "a", "b"]))


# ---------------------------------------------------------------------------- images
@pytest.fixture(scope="module")
def images_dfr(tiny_images):
    X, y = tiny_images
    return DFRRetrainer(SmallCNN(n_classes=2), device="cpu", random_state=0, n_retrains=2, Cs=[1.0]).fit(X, y, groups=y)


@pytest.mark.parametrize("shape", [(4, 3, 10, 10), (4, 1, 12, 12), (4, 3, 12, 16)])
def test_images_of_another_shape_refused_naming_both(images_dfr, shape):
    with pytest.raises(ValueError, match=rf"\({', '.join(map(str, shape[1:]))}\).*\(3, 12, 12\)"):
        images_dfr.predict(np.zeros(shape, dtype="float32"))


def test_dataset_images_of_another_shape_refused(images_dfr, tiny_images):
    X, _ = tiny_images
    np.testing.assert_array_equal(images_dfr.predict(TensorDataset(torch.as_tensor(X))), images_dfr.predict(X))
    with pytest.raises(ValueError, match=r"shape \(3, 10, 10\) but DFRRetrainer was fitted on images of shape \(3, 12, 12\)"):
        images_dfr.predict(TensorDataset(torch.zeros(4, 3, 10, 10)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_images_refused_at_fit_and_predict(images_dfr, tiny_images, bad):
    X, y = tiny_images
    Xb = X.copy()
    Xb[5, 0, 3, 3] = bad
    with pytest.raises(ValueError, match="`X` contains NaN or infinity"):
        DFRRetrainer(SmallCNN(n_classes=2), device="cpu", Cs=[1.0], n_retrains=1).fit(Xb, y, groups=y)
    with pytest.raises(ValueError, match="`X` contains NaN or infinity"):
        images_dfr.predict(Xb)
    with pytest.raises(ValueError, match="embeddings of `X` contain NaN or infinity"):
        images_dfr.predict(TensorDataset(torch.as_tensor(Xb)))


def test_sparse_images_refused(images_dfr):
    with pytest.raises(TypeError, match="must be a dense array of images"):
        images_dfr.predict(scipy.sparse.csr_matrix(np.zeros((4, 432))))


@pytest.fixture(scope="module")
def fitted_erm(tiny_images):
    X, y = tiny_images
    return ERMClassifier(max_epochs=2, module__width=4, device="cpu", random_state=0).fit(X, y)


def test_cross_validate_keeps_a_frozen_base_model(fitted_erm, tiny_images):
    X, y = tiny_images
    g = 2 * y + (np.arange(len(y)) % 2)
    before = {k: v.clone() for k, v in fitted_erm.module_.state_dict().items()}
    dfr = DFRRetrainer(FrozenEstimator(fitted_erm), Cs=[1.0, 0.1], n_retrains=2, device="cpu", random_state=0)
    res = cross_validate(dfr, X, y, params={"groups": g}, cv=3, error_score="raise", return_estimator=True)
    assert len(res["test_score"]) == 3 and np.all(np.isfinite(res["test_score"]))
    assert all(est.balanced_on_ == "groups" for est in res["estimator"])
    # every fold embedded through the one fitted model, left unchanged
    assert all(est.base_model_.module is fitted_erm.module_ for est in res["estimator"])
    assert all(torch.equal(before[k], v) for k, v in fitted_erm.module_.state_dict().items())


def test_grid_search_over_C_with_a_frozen_base_model(fitted_erm, tiny_images, routing):
    X, y = tiny_images
    g = 2 * y + (np.arange(len(y)) % 2)
    dfr = DFRRetrainer(FrozenEstimator(fitted_erm), n_retrains=2, device="cpu", random_state=0)
    search = GridSearchCV(dfr, {"Cs": [[1.0], [0.01]]}, scoring=worst_group_scorer, cv=2, error_score="raise")
    search.fit(X, y, groups=g)
    assert search.best_params_["Cs"] in ([1.0], [0.01])
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.best_C_ == search.best_params_["Cs"][0]


def test_a_cloned_fitted_net_asks_for_frozen_estimator(fitted_erm, tiny_images):
    X, y = tiny_images
    with pytest.raises(TypeError, match=r"estimator=FrozenEstimator\(fitted_net\)"):
        DFRRetrainer(clone(fitted_erm), device="cpu").fit(X, y, groups=y)
    with pytest.raises(TypeError, match=r"FrozenEstimator\(fitted_net\)"):
        cross_validate(DFRRetrainer(fitted_erm, device="cpu", Cs=[1.0]), X, y, params={"groups": y}, cv=2, error_score="raise")
    with pytest.raises(TypeError, match="in the FrozenEstimator passed as `estimator` is not fitted"):
        DFRRetrainer(FrozenEstimator(clone(fitted_erm)), device="cpu").fit(X, y, groups=y)


# ---------------------------------------------------------------------------- GroupedData at predict
class _GroupsNotToBeRead(GroupedData):
    """A GroupedData whose groups must not be read (they may be costly to compute)."""

    @property
    def groups(self):
        raise AssertionError("the groups were read")

    @groups.setter
    def groups(self, value):
        self._groups = value


def test_predict_reads_only_the_samples_of_grouped_data():
    Z, y, g = shortcut_features(200, 1)
    dfr = DFRRetrainer(n_retrains=2, Cs=[1.0], random_state=0).fit(GroupedData(Z, g), y)
    lazy = _GroupsNotToBeRead(Z, g)
    np.testing.assert_array_equal(dfr.predict(lazy), dfr.predict(Z))
    np.testing.assert_array_equal(dfr.decision_function(lazy), dfr.decision_function(Z))
    np.testing.assert_array_equal(dfr.predict_proba(lazy), dfr.predict_proba(Z))


# ---------------------------------------------------------------------------- the L1 model
def test_l1_fit_is_sparse_at_small_C():
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(300, 64))
    y = (Z[:, 0] + 0.5 * Z[:, 1] > 0).astype(int)
    coef, _ = fit_l1_logistic(Z, y, C=0.02, n_classes=2)
    assert (coef == 0).sum() >= 56  # L2 would leave all 64 non-zero
    assert coef[0, 0] != 0


class _LogisticRegressionBefore18(LogisticRegression):
    """scikit-learn < 1.8's LogisticRegression: ``penalty`` (default "l2") selects the penalty."""

    def __init__(
        self,
        penalty="l2",
        *,
        dual=False,
        tol=1e-4,
        C=1.0,
        fit_intercept=True,
        intercept_scaling=1,
        class_weight=None,
        random_state=None,
        solver="lbfgs",
        max_iter=100,
        verbose=0,
        warm_start=False,
        n_jobs=None,
        l1_ratio=None,
    ):
        for name, value in dict(locals()).items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def fit(self, X, y, sample_weight=None):
        # as before 1.8: the penalty comes from `penalty`; `l1_ratio` is read only for "elasticnet"
        l1_ratio = {"l1": 1.0, "l2": 0.0}.get(self.penalty, self.l1_ratio)
        params = {k: v for k, v in self.get_params().items() if k != "penalty"}
        fitted = LogisticRegression(**{**params, "l1_ratio": l1_ratio}).fit(X, y, sample_weight)
        self.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_") and not k.startswith("_")})
        return self


def test_l1_fit_is_sparse_under_the_penalty_api_before_18(monkeypatch):
    """Where ``penalty`` still selects the penalty, ``l1_ratio=1`` alone would fit L2 (dense)."""
    module = sys.modules[fit_l1_logistic.__module__]
    monkeypatch.setattr(module, "LogisticRegression", _LogisticRegressionBefore18)
    assert l1_penalty_params(_LogisticRegressionBefore18) == {"penalty": "l1"}
    dense = _LogisticRegressionBefore18(C=0.02, l1_ratio=1.0, solver="liblinear")
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(300, 64))
    y = (Z[:, 0] + 0.5 * Z[:, 1] > 0).astype(int)
    assert (dense.fit(Z, y).coef_ != 0).all()  # the stand-in behaves as scikit-learn 1.7 did
    coef, _ = fit_l1_logistic(Z, y, C=0.02, n_classes=2)
    assert (coef == 0).sum() >= 56


def test_one_vs_rest_equals_one_binary_fit_per_class():
    rng = np.random.RandomState(1)
    y = rng.randint(0, 3, 300)
    Z = np.eye(3)[y] + rng.normal(0, 0.8, (300, 3))
    coef, intercept = fit_l1_logistic(Z, y, C=0.3, n_classes=3, random_state=5)
    for k in range(3):
        m = LogisticRegression(C=0.3, solver="liblinear", max_iter=1000, random_state=5, **L1).fit(Z, (y == k).astype(int))
        np.testing.assert_array_equal(coef[k], m.coef_[0])
        np.testing.assert_array_equal(intercept[k], m.intercept_[0])
    with pytest.raises(ValueError, match=r"must hold every class of range\(3\)"):
        fit_l1_logistic(Z[y < 2], y[y < 2], C=0.3, n_classes=3)


def test_tuning_matches_a_plain_transcription():
    """cv_scores_ equal a loop over seeded random halves (fit on the first half of a permutation)."""
    Z, y, g = shortcut_features(301, 3)
    Cs = [1.0, 0.05]
    dfr = DFRRetrainer(Cs=Cs, n_tuning_splits=3, n_retrains=1, random_state=4).fit(Z, y, groups=g)
    seeds = np.random.RandomState(4).randint(0, 2**31 - 1, size=3)
    expected = {}
    for C in Cs:
        total = 0.0
        for seed in seeds:
            perm = np.random.RandomState(seed).permutation(len(y))
            fit_half, score_half = np.sort(perm[: len(y) // 2]), np.sort(perm[len(y) // 2 :])
            idx = fit_half[balanced_indices(g[fit_half], np.random.RandomState(seed))]
            sc = StandardScaler().fit(Z[idx])
            m = LogisticRegression(C=C, solver="liblinear", max_iter=1000, random_state=seed, **L1)
            m.fit(sc.transform(Z[idx]), y[idx])
            total += worst_group_accuracy(y[score_half], m.predict(sc.transform(Z[score_half])), groups=g[score_half])
        expected[C] = total
    assert dfr.cv_scores_ == pytest.approx(expected, abs=1e-12)
    assert dfr.best_C_ == max(Cs, key=expected.get)


def test_fit_records_iterations():
    Z, y, g = shortcut_features(200, 2)
    dfr = DFRRetrainer(n_retrains=3, Cs=[1.0]).fit(Z, y, groups=g)
    assert dfr.n_iter_.shape == (3,) and np.all((dfr.n_iter_ >= 1) & (dfr.n_iter_ <= dfr.max_iter))


def test_decision_function_shapes():
    Z, y, g = shortcut_features(200, 2)
    assert DFRRetrainer(n_retrains=1, Cs=[1.0]).fit(Z, y, groups=g).decision_function(Z).shape == (200,)
    y3 = np.arange(200) % 3
    dfr = DFRRetrainer(n_retrains=1, Cs=[1.0]).fit(Z, y3, groups=y3)
    d = dfr.decision_function(Z)
    assert d.shape == (200, 3)
    np.testing.assert_array_equal(dfr.predict(Z), dfr.classes_[d.argmax(axis=1)])
