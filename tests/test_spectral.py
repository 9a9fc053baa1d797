"""Tests for the sparse spectral clustering with the eigengap heuristic."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import InvalidParameterError

from skshortcut.grouping import SpectralEigengap, estimate_n_clusters
from skshortcut.grouping.spectral import (
    _approximate_neighbors,
    cluster_qr,
    default_n_neighbors,
    eigengap_n_clusters,
    kneighbors_graph,
    laplacian_spectrum,
    resolve_n_neighbors,
)


def _blobs(n_per, centers, dim=5, noise=0.3, seed=0):
    rng = np.random.RandomState(seed)
    C = rng.normal(0, 3, (centers, dim))
    labels = np.repeat(np.arange(centers), n_per)
    return (C[labels] + rng.normal(0, noise, (len(labels), dim))).astype(np.float32), labels


@settings(max_examples=40, deadline=None)
@given(k=st.integers(2, 10), seed=st.integers(0, 1000))
def test_eigengap_picks_the_number_of_small_eigenvalues(k, seed):
    rng = np.random.RandomState(seed)
    small = np.sort(rng.uniform(0, 0.01, k))
    small[0] = 0.0
    large = np.sort(rng.uniform(0.5, 0.55, 11 - k))
    assert eigengap_n_clusters(np.r_[large, small], max_clusters=10) == k  # order does not matter


def test_eigengap_range_is_two_to_max_clusters():
    assert eigengap_n_clusters([0, 0.5, 0.51, 0.52]) == 2  # a single small eigenvalue still means 2
    assert eigengap_n_clusters(np.r_[np.zeros(11), 1.0], max_clusters=10) in range(2, 11)
    assert eigengap_n_clusters([0.0, 0.1]) == 2


def test_default_n_neighbors_is_log_n():
    assert [default_n_neighbors(n) for n in (2, 100, 2000, 20000)] == [2, 4, 7, 9]


def test_kneighbors_graph_is_sparse_symmetric_without_self_loops():
    X, _ = _blobs(50, 3)
    for method in ("exact", "approximate"):
        A = kneighbors_graph(X, 5, method=method, random_state=0)
        assert sp.issparse(A) and A.shape == (150, 150)
        assert (A != A.T).nnz == 0
        assert A.diagonal().sum() == 0
        assert A.nnz <= 2 * 150 * 5
        assert set(np.unique(A.data)) <= {0.5, 1.0}


def test_approximate_neighbors_recall_on_clustered_data():
    X, _ = _blobs(400, 4, dim=40, noise=1.0)
    approx, dist = _approximate_neighbors(X, 8, random_state=0)
    exact = NearestNeighbors(n_neighbors=8).fit(X).kneighbors(return_distance=False)
    recall = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(approx, exact)])
    assert recall > 0.8
    assert (approx != np.arange(len(X))[:, None]).all()  # never itself
    assert np.all(np.diff(dist, axis=1) >= -1e-6)  # sorted by distance


def test_kneighbors_graph_rejects_bad_arguments():
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="`n_neighbors`"):
        kneighbors_graph(X, 5)
    with pytest.raises(InvalidParameterError, match="'method' parameter"):
        kneighbors_graph(X, 2, method="ball_tree")
    with pytest.raises(InvalidParameterError, match="'n_neighbors' parameter"):
        kneighbors_graph(X, 2.5)
    with pytest.raises(InvalidParameterError, match="'max_clusters' parameter"):
        estimate_n_clusters(X, max_clusters=1)


def test_sparse_spectrum_matches_dense_eigendecomposition():
    X, _ = _blobs(80, 3, noise=1.0)
    A = kneighbors_graph(X, 6)
    lam, _, _ = laplacian_spectrum(A, 6, random_state=0)
    d = np.asarray(A.sum(1)).ravel()
    L = np.eye(len(d)) - A.toarray() / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(L)[:6], atol=1e-4)


def test_spectrum_finds_one_zero_eigenvalue_per_connected_component():
    X, _ = _blobs(60, 4, noise=0.05)  # well separated: the 5-NN graph has 4 components
    lam, _, _ = laplacian_spectrum(kneighbors_graph(X, 5), 6, random_state=0)
    np.testing.assert_allclose(lam[:4], 0, atol=1e-5)
    assert lam[4] > 1e-3


@pytest.mark.parametrize("centers", [2, 3, 5])
def test_spectral_eigengap_recovers_blobs(centers):
    X, labels = _blobs(100, centers)
    sc = SpectralEigengap(random_state=0).fit(X)
    assert sc.n_clusters_ == centers
    assert adjusted_rand_score(labels, sc.labels_) == 1.0
    assert sp.issparse(sc.affinity_matrix_) and sc.affinity_matrix_.nnz <= 2 * len(X) * sc.n_neighbors_
    assert sc.n_neighbors_ == int(np.log(len(X)))


def test_spectral_eigengap_predicts_new_samples_by_nearest_fitted_samples():
    X, labels = _blobs(100, 3)
    X_new, labels_new = _blobs(20, 3, seed=0)  # same centres, fresh noise below
    X_new = X_new + np.random.RandomState(1).normal(0, 0.1, X_new.shape).astype(np.float32)
    sc = SpectralEigengap(random_state=0).fit(X)
    assert adjusted_rand_score(labels_new, sc.predict(X_new)) == 1.0
    with pytest.raises(ValueError, match="features"):
        sc.predict(X_new[:, :2])


def test_spectral_eigengap_fixed_k_kmeans_assignment_and_clone():
    X, labels = _blobs(60, 3)
    sc = SpectralEigengap(n_clusters=3, assign_labels="kmeans", random_state=0)
    assert adjusted_rand_score(labels, sc.fit_predict(X)) == 1.0
    assert clone(sc).get_params() == sc.get_params()
    again = clone(sc).fit(X)
    assert np.array_equal(again.labels_, sc.labels_)


def test_spectral_eigengap_approximate_neighbors_agree_with_exact():
    X, labels = _blobs(300, 4, dim=30, noise=1.0)
    exact = SpectralEigengap(neighbors="exact", random_state=0).fit(X)
    approx = SpectralEigengap(neighbors="approximate", random_state=0).fit(X)
    assert exact.n_clusters_ == approx.n_clusters_ == 4
    assert adjusted_rand_score(exact.labels_, approx.labels_) == 1.0


def test_spectral_eigengap_errors():
    with pytest.raises(ValueError, match="at least 3 samples"):
        SpectralEigengap().fit(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="n_clusters"):
        SpectralEigengap(n_clusters="many").fit(np.random.rand(10, 2))
    with pytest.raises(ValueError, match="assign_labels"):
        SpectralEigengap(assign_labels="discretize").fit(np.random.rand(10, 2))
    with pytest.raises(NotFittedError):
        SpectralEigengap().predict(np.zeros((2, 2)))


def test_cluster_qr_is_scikit_learns():
    from sklearn.cluster._spectral import cluster_qr as sklearn_cluster_qr

    assert cluster_qr is sklearn_cluster_qr


def test_cluster_qr_separates_orthogonal_directions():
    rng = np.random.RandomState(0)
    V = np.zeros((30, 3))
    V[np.arange(30), np.repeat([0, 1, 2], 10)] = 1.0
    V += rng.normal(0, 0.05, V.shape)
    Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]  # any rotation of the embedding
    assert adjusted_rand_score(np.repeat([0, 1, 2], 10), cluster_qr(V @ Q)) == 1.0


def test_estimate_n_clusters():
    X, _ = _blobs(100, 4)
    assert estimate_n_clusters(X, random_state=0) == 4


# --------------------------------------------------------------------------- the number of clusters
def _two_tight_blobs(n_per=40, seed=0):
    rng = np.random.RandomState(seed)
    return np.r_[rng.normal(0, 0.1, (n_per, 3)), rng.normal(5, 0.1, (n_per, 3))], np.repeat([0, 1], n_per)


def test_stability_rule_keeps_two_blobs_that_the_eigengap_splits_on_a_sparse_graph():
    # int(ln 80) = 4 neighbours: each blob's sparse random graph has no clear spectral gap, so the
    # authors' eigengap finds its largest gap at k = 8; the subsample clusterings agree only at k = 2
    X, labels = _two_tight_blobs()
    for seed in range(5):
        sc = SpectralEigengap(random_state=seed).fit(X)
        assert sc.n_neighbors_ == 4
        assert sc.n_clusters_ == 2 and adjusted_rand_score(labels, sc.labels_) == 1.0
        assert sc.stability_[0] == pytest.approx(1.0) and sc.stability_[1:].max() < 0.9
        authors = SpectralEigengap(n_neighbors="log", n_clusters_rule="eigengap", random_state=seed).fit(X)
        assert authors.n_clusters_ == 8 and authors.stability_ is None


@pytest.mark.parametrize("rule", ["stability", "eigengap"])
@pytest.mark.parametrize("centers", [2, 4, 6])
def test_both_rules_recover_separated_blobs(rule, centers):
    X, labels = _blobs(60, centers, noise=0.2)
    sc = SpectralEigengap(n_neighbors=10, n_clusters_rule=rule, random_state=0).fit(X)
    assert sc.n_clusters_ == centers
    assert adjusted_rand_score(labels, sc.labels_) == 1.0


def test_stability_scores_are_the_mean_agreement_per_k():
    X, _ = _blobs(60, 3, noise=0.2)
    sc = SpectralEigengap(max_clusters=6, n_resamples=4, random_state=0).fit(X)
    assert sc.stability_.shape == (5,)  # k = 2 .. 6
    assert np.all(sc.stability_ <= 1.0 + 1e-12) and np.all(sc.stability_ >= -1.0)
    assert sc.n_clusters_ == int(np.argmax(sc.stability_)) + 2 == 3
    again = SpectralEigengap(max_clusters=6, n_resamples=4, random_state=0).fit(X)
    np.testing.assert_array_equal(again.stability_, sc.stability_)
    np.testing.assert_array_equal(again.labels_, sc.labels_)
    assert SpectralEigengap(n_clusters=3, random_state=0).fit(X).stability_ is None  # no choice to make


def test_stability_rule_with_kmeans_labels():
    X, labels = _blobs(50, 3, noise=0.2)
    sc = SpectralEigengap(n_neighbors=8, assign_labels="kmeans", n_resamples=3, random_state=0).fit(X)
    assert sc.n_clusters_ == 3 and adjusted_rand_score(labels, sc.labels_) == 1.0


def test_neighbour_rules():
    assert resolve_n_neighbors("log", 2000) == default_n_neighbors(2000) == 7  # the ExMap authors' int(ln n)
    assert resolve_n_neighbors("sqrt", 2000) == 22
    assert resolve_n_neighbors("sqrt", 20) == default_n_neighbors(20)  # never below int(ln n)
    assert resolve_n_neighbors(50, 10) == 9  # capped at n - 1
    with pytest.raises(ValueError, match="`n_neighbors`"):
        resolve_n_neighbors("cube", 10)
    X, _ = _blobs(100, 2)
    assert SpectralEigengap(n_neighbors="sqrt", random_state=0).fit(X).n_neighbors_ == 7


@pytest.mark.parametrize(
    "params, name",
    [({"n_neighbors": "cube"}, "n_neighbors"), ({"n_neighbors": None}, "n_neighbors"),
     ({"n_clusters_rule": "silhouette"}, "n_clusters_rule"), ({"n_resamples": 0}, "n_resamples"),
     ({"subsample": 1.0}, "subsample"), ({"subsample": 0}, "subsample")],
)
def test_stability_parameters_are_validated(params, name):
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        SpectralEigengap(**params).fit(np.random.RandomState(0).rand(20, 2))


@settings(max_examples=12, deadline=None)
@given(centers=st.integers(2, 5), seed=st.integers(0, 10_000), rule=st.sampled_from(["stability", "eigengap"]))
def test_chosen_count_and_partition_do_not_depend_on_sample_order(centers, seed, rule):
    X, labels = _blobs(40, centers, noise=0.1, seed=seed)
    perm = np.random.RandomState(seed).permutation(len(X))
    a = SpectralEigengap(n_neighbors=8, n_clusters_rule=rule, n_resamples=4, random_state=0).fit(X)
    b = SpectralEigengap(n_neighbors=8, n_clusters_rule=rule, n_resamples=4, random_state=1).fit(X[perm])
    assert a.n_clusters_ == b.n_clusters_
    assert adjusted_rand_score(a.labels_[perm], b.labels_) == 1.0


def test_estimate_n_clusters_rules():
    X, _ = _two_tight_blobs()
    assert estimate_n_clusters(X, random_state=0) == 2
    assert estimate_n_clusters(X, n_clusters_rule="eigengap", random_state=0) == 8
    assert estimate_n_clusters(X, n_neighbors=None, n_clusters_rule="eigengap", random_state=0) == 8  # None = "log"
    with pytest.raises(InvalidParameterError, match="'n_clusters_rule' parameter"):
        estimate_n_clusters(X, n_clusters_rule="gap")
