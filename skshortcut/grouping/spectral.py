"""Spectral clustering that chooses its number of clusters, in memory linear in n.

ExMap (Chakraborty et al., CVPR 2024, sec. 4.2 and supplement sec. 2.2),
after SPRAY (Lapuschkin et al., 2019): a nearest-neighbour affinity graph over
the heatmaps, the smallest eigenvalues of its normalised Laplacian and
cluster-QR (Damle, Minden and Ying, 2019) on the spectral embedding. The number
of clusters is the one whose clusterings agree best across random subsamples
(the default), or, the authors' rule, where the gap between consecutive
eigenvalues is largest.

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
from sklearn.metrics import adjusted_rand_score

# Cluster-QR (Damle, Minden and Ying, 2019) as scikit-learn's SpectralClustering
# (assign_labels="cluster_qr") runs it: column-pivoted QR picks one representative
# row per cluster, an SVD rotates the embedding onto them, each sample goes to its
# largest coordinate. scikit-learn keeps it in a private module; re-exported here.
from sklearn.cluster._spectral import cluster_qr
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "SpectralEigengap",
    "eigengap_n_clusters",
    "kneighbors_graph",
    "cluster_qr",
    "default_n_neighbors",
    "resolve_n_neighbors",
]


def default_n_neighbors(n_samples: int) -> int:
    """The authors' neighbourhood size, ``int(ln n)`` (at least 2).

    Examples
    --------
    >>> from skshortcut.grouping.spectral import default_n_neighbors
    >>> default_n_neighbors(2000)
    7
    """
    return max(2, int(np.log(max(n_samples, 2))))


#: Neighbour-count rules of :class:`SpectralEigengap` (``n_neighbors=<name>``).
#: ``"log"`` is the ExMap authors' ``int(ln n)``; ``"sqrt"`` is ``int(sqrt(n) / 2)``.
NEIGHBOR_RULES = ("log", "sqrt")


def resolve_n_neighbors(n_neighbors, n_samples: int) -> int:
    """The neighbour count for ``n_samples`` samples: an int as given, or a rule's value.

    ``"log"``: ``int(ln n)``, the ExMap authors' setting (:func:`default_n_neighbors`);
    ``"sqrt"``: ``int(sqrt(n) / 2)``, at least ``int(ln n)``. Either is capped at
    ``n - 1``.

    Examples
    --------
    >>> from skshortcut.grouping.spectral import resolve_n_neighbors
    >>> resolve_n_neighbors("log", 1000), resolve_n_neighbors("sqrt", 1000), resolve_n_neighbors(5, 1000)
    (6, 15, 5)
    """
    if isinstance(n_neighbors, str):
        if n_neighbors not in NEIGHBOR_RULES:
            raise ValueError(f"`n_neighbors` must be an int >= 1 or one of {NEIGHBOR_RULES}; got {n_neighbors!r}.")
        k = default_n_neighbors(n_samples)
        if n_neighbors == "sqrt":
            k = max(k, int(np.sqrt(n_samples) / 2))
    else:
        k = int(n_neighbors)
    return max(1, min(k, n_samples - 1))


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


# --------------------------------------------------------------------------- spectral embedding, labels, stability
def _spectral_maps(X, n_neighbors, n_eigenvalues, *, method, random_state):
    """Graph, eigenvalues and the degree-normalised spectral embedding ``D^-1/2 V`` of ``X``."""
    k_nn = resolve_n_neighbors(n_neighbors, X.shape[0])
    A = kneighbors_graph(X, k_nn, method=method, random_state=random_state)
    lam, vec, deg = laplacian_spectrum(A, n_eigenvalues, random_state=random_state)
    maps = vec / np.sqrt(np.where(deg > 0, deg, 1.0))[:, None]
    return A, lam, maps, k_nn


def _assign_labels(maps, k, method, random_state):
    """Labels of ``k`` clusters from the first ``k`` spectral coordinates (cluster-QR or KMeans)."""
    if k <= 1:
        return np.zeros(maps.shape[0], dtype=np.int64)
    if method == "cluster_qr":
        return np.asarray(cluster_qr(maps[:, :k]))
    return KMeans(k, n_init=10, random_state=random_state).fit_predict(maps[:, :k])


def _stability_scores(X, full_labels, *, n_neighbors, n_resamples, subsample, method, assign_labels, random_state):
    """Mean adjusted Rand index, per ``k``, between the clustering of all of ``X`` and of random subsamples.

    Each resample draws ``subsample * n`` samples without replacement, builds
    their own neighbour graph and spectrum (the neighbour rule applied to the
    subsample's size), clusters them into each ``k`` and compares, on those
    samples, with the clustering of the whole data into the same ``k``
    (Ben-Hur, Elisseeff and Guyon, 2002; Lange et al., 2004).
    """
    rng = check_random_state(random_state)
    n = X.shape[0]
    m = min(n - 1, max(3, int(round(subsample * n))))
    ks = sorted(full_labels)
    scores = np.zeros((n_resamples, len(ks)))
    for b in range(n_resamples):
        idx = np.sort(rng.choice(n, m, replace=False))
        _, _, maps, _ = _spectral_maps(X[idx], n_neighbors, max(ks) + 1, method=method, random_state=rng)
        for j, k in enumerate(ks):
            sub = _assign_labels(maps, min(k, maps.shape[1]), assign_labels, rng)
            scores[b, j] = adjusted_rand_score(full_labels[k][idx], sub)
    return scores.mean(axis=0)


# --------------------------------------------------------------------------- estimator
class SpectralEigengap(ClusterMixin, BaseEstimator):
    """Spectral clustering on a sparse nearest-neighbour graph, choosing k from the data.

    The clustering module of ExMap (sec. 4.2; supplement sec. 2.2):

    1. affinity: the symmetric k-nearest-neighbour connectivity graph
       (sparse, ``O(n * n_neighbors)``);
    2. the ``max_clusters + 1`` smallest eigenvalues of the normalised
       Laplacian and their eigenvectors, by a sparse block eigensolver (LOBPCG);
    3. ``n_clusters="auto"``: the number of clusters ``k`` in ``2 .. max_clusters``,
       by ``n_clusters_rule``:

       - ``"stability"`` (default): cluster the whole data into each ``k``, and
         ``n_resamples`` random subsamples (a share ``subsample`` of the
         samples, each with its own graph and spectrum) into the same ``k``;
         ``k`` is the one whose subsample clusterings agree best with the
         whole-data clustering (mean adjusted Rand index on the subsampled
         samples, :attr:`stability_`; Ben-Hur, Elisseeff and Guyon, 2002;
         Lange et al., 2004). Ties go to the smaller ``k``.
       - ``"eigengap"``: the authors' rule, the largest gap among the
         smallest eigenvalues (:func:`eigengap_n_clusters`);
    4. labels by cluster-QR on the first ``k`` eigenvectors (or KMeans).

    The authors' setting is ``n_neighbors="log"`` (``int(ln n)``, the default)
    with ``n_clusters_rule="eigengap"``. On the LRP heatmaps of a small CNN
    on coloured digits the eigengap's count moved between data seeds where
    the stability rule kept the colour's two clusters (user guide page
    *ExMap's number of clusters*, ``benchmarks/exmap_cluster_stability.py``).

    New samples (``predict``) go to the majority cluster of their nearest
    fitted samples.

    Parameters
    ----------
    n_clusters : "auto" or int, default="auto"
    max_clusters : int, default=10
        Largest ``k`` that ``"auto"`` may pick.
    n_neighbors : int, "log" or "sqrt", default="log"
        Neighbours per sample in the affinity graph (:func:`resolve_n_neighbors`):
        ``"log"``, ``int(ln n)``, is the ExMap authors' setting; ``"sqrt"`` is
        ``int(sqrt(n) / 2)`` (at least ``int(ln n)``). The subsamples of the
        ``"stability"`` rule apply the same rule to their own size.
    n_clusters_rule : {"stability", "eigengap"}, default="stability"
        How ``n_clusters="auto"`` picks ``k`` (see above).
    n_resamples : int, default=10
        Subsamples of the ``"stability"`` rule; each costs one more graph and
        spectrum on ``subsample * n`` samples.
    subsample : float in (0, 1), default=0.8
        Share of the samples in each subsample of the ``"stability"`` rule.
    neighbors : {"auto", "exact", "approximate"}, default="auto"
        Neighbour search (:func:`kneighbors_graph`).
    assign_labels : {"cluster_qr", "kmeans"}, default="cluster_qr"
    random_state : int, RandomState or None, default=None
        Seeds the eigensolver's start vectors, the approximate neighbour
        search, the subsamples and KMeans.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
    n_clusters_ : int
    eigenvalues_ : ndarray of shape (max_clusters + 1,)
        Smallest normalised-Laplacian eigenvalues, ascending.
    stability_ : ndarray of shape (max_clusters - 1,) or None
        With ``n_clusters="auto"`` and the ``"stability"`` rule: the mean
        adjusted Rand index of ``k = 2 .. max_clusters``; else None.
    affinity_matrix_ : scipy.sparse.csr_matrix
    n_neighbors_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.grouping import SpectralEigengap
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 0.1, (30, 2)), rng.normal(3, 0.1, (30, 2)), rng.normal(-3, 0.1, (30, 2))]
    >>> sc = SpectralEigengap(random_state=0).fit(X)
    >>> sc.n_clusters_, len(set(sc.labels_[:30])), len(set(sc.labels_))
    (3, 1, 3)
    >>> SpectralEigengap(n_clusters_rule="eigengap", random_state=0).fit(X).n_clusters_  # the authors' rule
    3
    >>> int(np.argmax(sc.stability_)) + 2  # the k of the most stable clustering
    3
    """

    _parameter_constraints: dict = {
        "n_clusters": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "max_clusters": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_neighbors": [StrOptions(set(NEIGHBOR_RULES)), Interval(numbers.Integral, 1, None, closed="left")],
        "n_clusters_rule": [StrOptions({"stability", "eigengap"})],
        "n_resamples": [Interval(numbers.Integral, 1, None, closed="left")],
        "subsample": [Interval(numbers.Real, 0, 1, closed="neither")],
        "neighbors": [StrOptions({"auto", "exact", "approximate"})],
        "assign_labels": [StrOptions({"cluster_qr", "kmeans"})],
        "random_state": ["random_state"],
    }

    def __init__(self, n_clusters="auto", *, max_clusters=10, n_neighbors="log", n_clusters_rule="stability",
                 n_resamples=10, subsample=0.8, neighbors="auto", assign_labels="cluster_qr", random_state=None):
        self.n_clusters = n_clusters
        self.max_clusters = max_clusters
        self.n_neighbors = n_neighbors
        self.n_clusters_rule = n_clusters_rule
        self.n_resamples = n_resamples
        self.subsample = subsample
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
        auto = self.n_clusters == "auto"
        n_eig = max(self.max_clusters, 2 if auto else int(self.n_clusters)) + 1
        A, lam, maps, k_nn = _spectral_maps(X, self.n_neighbors, n_eig, method=self.neighbors, random_state=rng)
        self.n_neighbors_ = k_nn
        self.affinity_matrix_ = A
        self.eigenvalues_ = lam
        self.stability_ = None
        if auto and self.n_clusters_rule == "stability":
            ks = range(2, min(self.max_clusters, maps.shape[1], n) + 1)
            full = {k: _assign_labels(maps, k, self.assign_labels, rng) for k in ks}
            self.stability_ = _stability_scores(
                X, full, n_neighbors=self.n_neighbors, n_resamples=self.n_resamples, subsample=self.subsample,
                method=self.neighbors, assign_labels=self.assign_labels, random_state=rng,
            )
            k = list(ks)[int(np.argmax(self.stability_))]  # first maximum: ties go to the smaller k
            labels = full[k]
        else:
            k = eigengap_n_clusters(lam, self.max_clusters) if auto else int(self.n_clusters)
            k = max(1, min(k, maps.shape[1], n))
            labels = _assign_labels(maps, k, self.assign_labels, rng)
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
