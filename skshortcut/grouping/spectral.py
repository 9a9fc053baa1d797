"""Spectral clustering with the eigengap heuristic, in memory linear in n.

ExMap (Chakraborty et al., CVPR 2024, sec. 4.2 and supplement sec. 2.2),
after SPRAY (Lapuschkin et al., 2019): a nearest-neighbour affinity graph over
the heatmaps, the smallest eigenvalues of its normalised Laplacian, the number
of clusters where the gap between consecutive eigenvalues is largest, and
cluster-QR (Damle, Minden and Ying, 2019) on the spectral embedding.

Nothing here builds an ``n x n`` dense matrix: the affinity is a sparse
k-nearest-neighbour graph (``n * n_neighbors`` entries) and the eigenvalues
come from a sparse block eigensolver (LOBPCG) on that matrix. The neighbour
search is exact (chunked, scikit-learn) or, for large ``n``, approximate
(random-projection trees refined by neighbours of neighbours), whose time
grows near linearly in ``n``.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import lobpcg
from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.cluster import KMeans

# Cluster-QR (Damle, Minden and Ying, 2019) as scikit-learn's SpectralClustering
# (assign_labels="cluster_qr") runs it: column-pivoted QR picks one representative
# row per cluster, an SVD rotates the embedding onto them, each sample goes to its
# largest coordinate. scikit-learn keeps it in a private module; re-exported here.
from sklearn.cluster._spectral import cluster_qr
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["SpectralEigengap", "eigengap_n_clusters", "kneighbors_graph", "cluster_qr", "default_n_neighbors"]


def default_n_neighbors(n_samples: int) -> int:
    """The authors' neighbourhood size, ``int(ln n)`` (at least 2).

    Examples
    --------
    >>> from skshortcut.grouping.spectral import default_n_neighbors
    >>> default_n_neighbors(2000)
    7
    """
    return max(2, int(np.log(max(n_samples, 2))))


# --------------------------------------------------------------------------- neighbours
def _sq_norms(X):
    return np.einsum("ij,ij->i", X, X)


def _merge_candidates(idx, dist, k):
    """Keep, per row, the ``k`` nearest distinct candidates (``-1`` = no candidate)."""
    order = np.argsort(idx, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    dist = np.take_along_axis(dist, order, axis=1)
    dup = np.zeros_like(idx, dtype=bool)
    dup[:, 1:] = idx[:, 1:] == idx[:, :-1]
    dist = np.where(dup | (idx < 0), np.inf, dist)
    k = min(k, idx.shape[1])
    part = np.argpartition(dist, k - 1, axis=1)[:, :k]
    idx, dist = np.take_along_axis(idx, part, axis=1), np.take_along_axis(dist, part, axis=1)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1)


def _rp_leaves(X, leaf_size, rng):
    """Leaves of one random-projection tree: split at the median of a random direction."""
    leaves, stack = [], [np.arange(X.shape[0])]
    while stack:
        idx = stack.pop()
        if len(idx) <= leaf_size:
            leaves.append(idx)
            continue
        a, b = rng.choice(len(idx), 2, replace=False)
        direction = X[idx[a]] - X[idx[b]]
        if not np.any(direction):
            direction = rng.standard_normal(X.shape[1]).astype(X.dtype)
        proj = X[idx] @ direction
        half = len(idx) // 2
        order = np.argpartition(proj, half)
        stack += [idx[order[:half]], idx[order[half:]]]
    return leaves


def _approximate_neighbors(X, k, *, n_trees=6, leaf_size=128, n_refine=2, random_state=None, chunk=256):
    """Approximate k nearest neighbours: random-projection forest, then neighbours of neighbours.

    Each tree costs ``O(n log n * d + n * leaf_size * d)``; each refinement round
    ``O(n * k**2 * d)``: near linear in ``n``, with memory ``O(n * k)`` plus one
    leaf or chunk at a time.
    """
    # pynndescent (NN-descent on random-projection trees) does the same job, and is
    # kept out on purpose: it is no dependency of the package (only of the optional
    # umap-learn); its numba kernels compile for tens of seconds on first use; and
    # numba's OpenMP threading layer resets the process-wide thread count torch uses.
    # This numpy version is seeded by ``random_state`` like the rest of the clustering.
    rng = check_random_state(random_state)
    n = X.shape[0]
    sq = _sq_norms(X)
    cand_idx = np.full((n, n_trees * k), -1, dtype=np.int64)
    cand_dist = np.full((n, n_trees * k), np.inf, dtype=np.float64)
    for t in range(n_trees):
        for leaf in _rp_leaves(X, max(leaf_size, k + 1), rng):
            m = len(leaf)
            if m < 2:
                continue
            XL = X[leaf]
            d2 = sq[leaf][:, None] + sq[leaf][None, :] - 2.0 * (XL @ XL.T)
            np.fill_diagonal(d2, np.inf)
            kk = min(k, m - 1)
            part = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
            cand_idx[leaf, t * k : t * k + kk] = leaf[part]
            cand_dist[leaf, t * k : t * k + kk] = np.take_along_axis(d2, part, axis=1)
    nbr, dist = _merge_candidates(cand_idx, cand_dist, k)
    for _ in range(n_refine):
        # neighbours of neighbours, and reverse neighbours through them
        new_idx = np.empty((n, k + k * k), dtype=np.int64)
        new_dist = np.empty((n, k + k * k), dtype=np.float64)
        safe = np.where(nbr < 0, 0, nbr)
        for start in range(0, n, chunk):
            rows = np.arange(start, min(n, start + chunk))
            cands = np.concatenate([nbr[rows], safe[safe[rows]].reshape(len(rows), -1)], axis=1)
            valid = (cands >= 0) & (cands != rows[:, None])
            cands_safe = np.where(valid, cands, 0)
            d2 = sq[rows][:, None] + sq[cands_safe] - 2.0 * np.einsum("rd,rmd->rm", X[rows], X[cands_safe])
            new_idx[rows] = np.where(valid, cands, -1)
            new_dist[rows] = np.where(valid, d2, np.inf)
        nbr, dist = _merge_candidates(new_idx, new_dist, k)
    return nbr, np.sqrt(np.maximum(dist, 0.0))


@validate_params(
    {
        "X": ["array-like"],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "method": [StrOptions({"auto", "exact", "approximate"})],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def kneighbors_graph(X, n_neighbors, *, method="auto", random_state=None):
    """Symmetric sparse k-nearest-neighbour connectivity graph, ``A = (K + K.T) / 2``.

    The affinity of scikit-learn's ``SpectralClustering(affinity="nearest_neighbors")``,
    without self-loops, in ``O(n * n_neighbors)`` memory.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int
    method : {"auto", "exact", "approximate"}, default="auto"
        ``"exact"``: chunked brute-force search (time quadratic in ``n``);
        ``"approximate"``: random-projection forest + neighbour-of-neighbour
        refinement (time near linear); ``"auto"``: exact up to 10,000 samples.
    random_state : int, RandomState or None

    Returns
    -------
    A : scipy.sparse.csr_matrix of shape (n_samples, n_samples)

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.grouping.spectral import kneighbors_graph
    >>> A = kneighbors_graph(np.arange(10.0)[:, None], 2)
    >>> A.shape, A.nnz <= 2 * 10 * 2, bool((A != A.T).nnz == 0)
    ((10, 10), True, True)
    """
    X = np.asarray(X)
    n = X.shape[0]
    if n_neighbors >= n:
        raise ValueError(f"`n_neighbors` must be an int in [1, n_samples - 1] = [1, {n - 1}]; got {n_neighbors!r}.")
    if method == "auto":
        method = "exact" if n <= 10_000 else "approximate"
    if method == "exact":
        K = NearestNeighbors(n_neighbors=n_neighbors).fit(X).kneighbors_graph(mode="connectivity")
    else:
        nbr, _ = _approximate_neighbors(np.ascontiguousarray(X), n_neighbors, random_state=random_state)
        rows = np.repeat(np.arange(n), n_neighbors)
        cols = nbr.ravel()
        keep = cols >= 0
        K = sp.csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(n, n))
    K = K.tocsr().astype(np.float64)
    return ((K + K.T) * 0.5).tocsr()


# --------------------------------------------------------------------------- spectrum
def _normalized_adjacency(A):
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
    D = sp.diags(inv_sqrt)
    return (D @ A @ D).tocsr(), deg


def laplacian_spectrum(A, n_eigenvalues, *, random_state=None, tol=1e-5, maxiter=300):
    """Smallest eigenvalues and eigenvectors of the normalised Laplacian ``L = I - D^-1/2 A D^-1/2``.

    Computed as the largest eigenpairs of the sparse ``D^-1/2 A D^-1/2`` with
    LOBPCG, a block eigensolver (each of its iterations is a sparse product
    and a small dense Rayleigh-Ritz step), so memory stays
    ``O(nnz(A) + n * n_eigenvalues)``.

    Returns
    -------
    eigenvalues : ndarray of shape (n_eigenvalues,), ascending
    eigenvectors : ndarray of shape (n_samples, n_eigenvalues)
    degrees : ndarray of shape (n_samples,)
    """
    n = A.shape[0]
    M, deg = _normalized_adjacency(A)
    k = min(n_eigenvalues, n - 1)
    rng = check_random_state(random_state)
    if n <= 5 * (k + 1):  # tiny problems: the block solver needs n >> k
        mu, vec = np.linalg.eigh(M.toarray())
    else:
        # LOBPCG: a block method, so that repeated eigenvalues (one per connected
        # component of the graph) are all found, unlike single-vector Lanczos.
        X0 = rng.standard_normal((n, k))
        X0[:, 0] = np.sqrt(deg)  # the known top eigenvector speeds convergence
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "not reaching the requested tolerance"
            mu, vec = lobpcg(M, X0, largest=True, tol=tol, maxiter=maxiter)
    order = np.argsort(mu)[::-1][:k]
    mu, vec = mu[order], vec[:, order]
    return np.clip(1.0 - mu, 0.0, 2.0), vec, deg


def eigengap_n_clusters(eigenvalues, max_clusters=10):
    """The eigengap heuristic: the number of clusters before the largest gap.

    With ascending Laplacian eigenvalues ``l_0 <= l_1 <= ...``, the authors'
    rule is ``k = argmax(diff(l)[1:max_clusters]) + 2``, i.e. ``k`` in
    ``2 .. max_clusters`` (ExMap supplement sec. 2.2: "the largest gap among
    the first 10 eigenvalues").

    Examples
    --------
    >>> from skshortcut.grouping.spectral import eigengap_n_clusters
    >>> eigengap_n_clusters([0, 0, 0, 0.9, 0.95, 1.0])
    3
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=float))
    if lam.size < 3:
        return 2
    gaps = np.diff(lam)[1:max_clusters]
    return int(np.argmax(gaps)) + 2


# --------------------------------------------------------------------------- estimator
class SpectralEigengap(ClusterMixin, BaseEstimator):
    """Spectral clustering on a sparse nearest-neighbour graph, choosing k by the eigengap.

    The clustering module of ExMap (sec. 4.2; supplement sec. 2.2):

    1. affinity: the symmetric k-nearest-neighbour connectivity graph with
       ``n_neighbors = int(ln n)`` (sparse, ``O(n * n_neighbors)``);
    2. the ``max_clusters + 1`` smallest eigenvalues of the normalised
       Laplacian, by a sparse block eigensolver (LOBPCG);
    3. ``n_clusters="auto"``: the eigengap heuristic
       (:func:`eigengap_n_clusters`, ``k`` in ``2 .. max_clusters``);
    4. labels by cluster-QR on the first ``k`` eigenvectors (or KMeans).

    New samples (``predict``) go to the majority cluster of their nearest
    fitted samples.

    Parameters
    ----------
    n_clusters : "auto" or int, default="auto"
    max_clusters : int, default=10
        Largest ``k`` the eigengap may pick.
    n_neighbors : int or None, default=None
        ``None``: ``int(ln n)`` (at least 2).
    neighbors : {"auto", "exact", "approximate"}, default="auto"
        Neighbour search (:func:`kneighbors_graph`).
    assign_labels : {"cluster_qr", "kmeans"}, default="cluster_qr"
    random_state : int, RandomState or None, default=None
        Seeds the eigensolver's start vector, the approximate neighbour
        search and KMeans.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
    n_clusters_ : int
    eigenvalues_ : ndarray of shape (max_clusters + 1,)
        Smallest normalised-Laplacian eigenvalues, ascending.
    affinity_matrix_ : scipy.sparse.csr_matrix
    n_neighbors_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.grouping import SpectralEigengap
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 0.1, (30, 2)), rng.normal(3, 0.1, (30, 2)), rng.normal(-3, 0.1, (30, 2))]
    >>> sc = SpectralEigengap(n_neighbors=10, random_state=0).fit(X)
    >>> sc.n_clusters_, len(set(sc.labels_[:30])), len(set(sc.labels_))
    (3, 1, 3)
    """

    _parameter_constraints: dict = {
        "n_clusters": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "max_clusters": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_neighbors": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "neighbors": [StrOptions({"auto", "exact", "approximate"})],
        "assign_labels": [StrOptions({"cluster_qr", "kmeans"})],
        "random_state": ["random_state"],
    }

    def __init__(self, n_clusters="auto", *, max_clusters=10, n_neighbors=None, neighbors="auto",
                 assign_labels="cluster_qr", random_state=None):
        self.n_clusters = n_clusters
        self.max_clusters = max_clusters
        self.n_neighbors = n_neighbors
        self.neighbors = neighbors
        self.assign_labels = assign_labels
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the graph, find the spectrum, choose ``k`` and assign labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        n = X.shape[0]
        if n < 3:
            raise ValueError(f"`X` needs at least 3 samples for spectral clustering; got n_samples = {n}.")
        rng = check_random_state(self.random_state)
        k_nn = default_n_neighbors(n) if self.n_neighbors is None else int(self.n_neighbors)
        k_nn = min(k_nn, n - 1)
        self.n_neighbors_ = k_nn
        self.affinity_matrix_ = kneighbors_graph(X, k_nn, method=self.neighbors, random_state=rng)
        n_eig = max(self.max_clusters, 2 if self.n_clusters == "auto" else int(self.n_clusters)) + 1
        lam, vec, deg = laplacian_spectrum(self.affinity_matrix_, n_eig, random_state=rng)
        self.eigenvalues_ = lam
        if self.n_clusters == "auto":
            k = eigengap_n_clusters(lam, self.max_clusters)
        else:
            k = int(self.n_clusters)
        k = max(1, min(k, vec.shape[1], n))
        self.n_clusters_ = k
        if k == 1:
            labels = np.zeros(n, dtype=np.int64)
        else:
            maps = vec[:, :k] / np.sqrt(np.where(deg > 0, deg, 1.0))[:, None]
            if self.assign_labels == "cluster_qr":
                labels = cluster_qr(maps)
            else:
                labels = KMeans(k, n_init=10, random_state=rng).fit_predict(maps)
        # consecutive labels 0..k'-1 (cluster-QR may leave a cluster empty)
        _, labels = np.unique(labels, return_inverse=True)
        self.labels_ = labels.astype(np.int64)
        self.n_clusters_ = int(self.labels_.max()) + 1
        self._assigner = KNeighborsClassifier(n_neighbors=min(k_nn, n)).fit(X, self.labels_)
        return self

    def predict(self, X):
        """Cluster of new samples: the majority label of their nearest fitted samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "labels_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return self._assigner.predict(X)
