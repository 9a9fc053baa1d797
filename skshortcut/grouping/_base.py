"""What ExMap and the GEORGE baseline share: representation -> clusters -> class x cluster pseudo-groups."""

from __future__ import annotations

import contextlib
import copy
import sys
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.cluster import KMeans
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._grouped import GroupedData
from .._skorch import DeviceConstraint
from .._torch import n_samples
from .._validation import ImageInputMixin, check_labels, check_same_length
from ..base_model import predicted_index, resolve_base_model
from .spectral import SpectralEigengap, default_n_neighbors

CLUSTERINGS = ("spectral", "kmeans", "umap_kmeans")


@validate_params(
    {
        "R": ["array-like"],
        "max_clusters": [Interval(Integral, 2, None, closed="left")],
        "n_neighbors": [None, StrOptions({"log", "sqrt"}), Interval(Integral, 1, None, closed="left")],
        "n_clusters_rule": [StrOptions({"stability", "eigengap"})],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def estimate_n_clusters(R, *, max_clusters=10, n_neighbors="log", n_clusters_rule="stability", random_state=None):
    """The number of clusters of ``R``, as :class:`SpectralEigengap` chooses it on a sparse neighbour graph.

    Parameters
    ----------
    R : ndarray of shape (n_samples, n_features)
    max_clusters : int, default=10
    n_neighbors : int, "log" or "sqrt", default="log"
        Neighbours per sample; ``"log"``, ``int(ln n)``, is the ExMap authors'
        setting (``None`` means the same).
    n_clusters_rule : {"stability", "eigengap"}, default="stability"
        ``"stability"``: the ``k`` whose clusterings of random subsamples agree
        best with the clustering of all samples; ``"eigengap"``: the authors'
        largest gap among the smallest Laplacian eigenvalues.
    random_state : int, RandomState or None

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.grouping import estimate_n_clusters
    >>> rng = np.random.RandomState(0)
    >>> R = np.r_[rng.normal(0, 0.1, (40, 3)), rng.normal(5, 0.1, (40, 3))]
    >>> estimate_n_clusters(R, random_state=0)
    2

    On the sparse ``int(ln 80) = 4``-neighbour graph of these two blobs the
    authors' eigengap splits each blob further:

    >>> estimate_n_clusters(R, n_clusters_rule="eigengap", random_state=0)
    8
    """
    R = np.asarray(R)
    sc = SpectralEigengap(
        max_clusters=max_clusters, n_neighbors="log" if n_neighbors is None else n_neighbors,
        n_clusters_rule=n_clusters_rule, random_state=random_state,
    )
    return int(sc.fit(R).n_clusters_)


def _numba_threads():
    """numba's thread count if its threading layer runs (asking before would launch it), else None."""
    if "numba" not in sys.modules:
        return None
    from numba.np.ufunc import parallel

    if not getattr(parallel, "_is_initialized", False):
        return None
    import numba

    return numba.get_num_threads()


@contextlib.contextmanager
def keep_thread_settings():
    """Run a block, then restore torch's and numba's thread counts as they were before it.

    UMAP's kernels run on numba, whose OpenMP threading layer, launched by the
    first parallel kernel, sets the process-wide OpenMP thread count that torch
    reads as its own (measured: 1 -> 2 threads for everything after it).

    Examples
    --------
    >>> import torch
    >>> from skshortcut.grouping._base import keep_thread_settings
    >>> before = torch.get_num_threads()
    >>> with keep_thread_settings():
    ...     torch.set_num_threads(before + 1)
    >>> torch.get_num_threads() == before
    True
    """
    import torch

    torch_threads = torch.get_num_threads()
    numba_threads = _numba_threads()
    try:
        yield
    finally:
        if numba_threads is not None and _numba_threads() != numba_threads:
            import numba

            numba.set_num_threads(numba_threads)
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)


class _NearestAssigner:
    """Cluster of new samples for clusterers without ``predict``: their nearest fitted samples' majority."""

    def __init__(self, clusterer, n_neighbors):
        self.clusterer = clusterer
        self.n_neighbors = n_neighbors

    def fit_predict(self, R):
        if hasattr(self.clusterer, "fit_predict"):
            labels = np.asarray(self.clusterer.fit_predict(R))
        else:
            labels = np.asarray(self.clusterer.fit(R).labels_)
        self.knn_ = KNeighborsClassifier(n_neighbors=min(self.n_neighbors, len(R))).fit(R, labels)
        return labels

    def predict(self, R):
        return self.knn_.predict(R)


class _Constant:
    """One cluster (a class with fewer than three samples)."""

    def fit_predict(self, R):
        return np.zeros(len(R), dtype=np.int64)

    def predict(self, R):
        return np.zeros(len(R), dtype=np.int64)


class _PseudoGroups:
    """The pseudo-groups of new samples, computed when a GroupedData's ``groups`` is first read.

    Holds a shallow copy of the fitted grouper, so that a later ``fit`` or
    ``set_params`` of the grouper does not change what these groups mean.
    """

    def __init__(self, grouper, X, Z, cls):
        self.grouper = grouper
        self.X = X
        self.Z = Z
        self.cls = cls

    def __call__(self):
        g = self.grouper
        R = g._new_representation(self.X, self.Z)
        if R.shape[1:] != g.representation_shape_:
            raise ValueError(
                f"`X` gives representations of shape {R.shape[1:]}, but the grouper was fit on {g.representation_shape_}."
            )
        return g._assign(R, self.cls)


class BaseGrouper(ImageInputMixin, TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Pseudo-groups = class x cluster of a per-sample representation (subclasses define it).

    ``transform`` returns a :class:`~skshortcut.GroupedData`, not an array, so
    scikit-learn's output wrapping (``set_output``) is off: ``"default"`` is
    accepted, data-frame outputs are refused.
    """

    _parameter_constraints: dict = {
        # a fitted skorch net, nn.Module, FrozenEstimator or None: as_base_model checks it (and says to use
        # FrozenEstimator where clone turned a fitted net into an unfitted copy)
        "estimator": "no_validation",
        "clustering": [StrOptions(set(CLUSTERINGS)), HasMethods(["fit_predict"]), HasMethods(["fit"])],
        "n_clusters": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "scope": [StrOptions({"global", "local"})],
        "output": [StrOptions({"embeddings", "inputs"})],
        "head": [None, str],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [DeviceConstraint()],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ representation (subclasses)
    def _fit_representation(self, X, *, embeddings):  # pragma: no cover - abstract
        """``(R, Z)``: the representation of the fitted samples and, if asked, their embeddings."""
        raise NotImplementedError

    def _new_representation(self, X, Z):  # pragma: no cover - abstract
        """The representation of new samples ``X`` whose embeddings ``Z`` are already known."""
        raise NotImplementedError

    def _resolve_base_model(self, X, y, seed):
        """``(base_model_, estimator_)``: the given model, or an ERMClassifier fit on ``(X, y)``."""
        return resolve_base_model(
            self.estimator, X, y, head=self.head, device=self.device, random_state=seed, verbose=self.verbose
        )

    # ------------------------------------------------------------------ checks
    def _make_clusterer(self, R, seed):
        """A fresh clusterer for representation ``R`` (one class, or all samples)."""
        n = len(R)
        c = self.clustering
        k = self.n_clusters
        if isinstance(c, str):
            if k != "auto" and k > n:
                raise ValueError(f"`n_clusters={k}` exceeds the {n} samples to cluster.")
            if c == "spectral":
                return SpectralEigengap(n_clusters=k, random_state=seed)
            if k == "auto":
                k = 1 if n < 3 else estimate_n_clusters(R, random_state=seed)
                k = min(k, n)
            if c == "kmeans":
                return KMeans(n_clusters=k, n_init=10, random_state=seed)
            from sklearn.pipeline import make_pipeline

            try:
                from umap import UMAP
            except ImportError as exc:  # pragma: no cover - umap-learn is an optional extra
                raise ImportError(
                    "`clustering='umap_kmeans'` needs umap-learn: pip install 'skshortcut[umap]'."
                ) from exc

            umap = UMAP(n_components=2, n_neighbors=max(2, min(default_n_neighbors(n), n - 1)), random_state=seed,
                        n_jobs=1)
            return make_pipeline(umap, KMeans(n_clusters=k, n_init=10, random_state=seed))
        model = clone(c)
        if k != "auto" and "n_clusters" in model.get_params():
            model.set_params(n_clusters=int(k))
        if "random_state" in model.get_params() and model.get_params()["random_state"] is None:
            model.set_params(random_state=seed)
        if hasattr(model, "predict"):
            return model
        return _NearestAssigner(model, default_n_neighbors(n))

    @staticmethod
    def _fit_predict(clusterer, R):
        if hasattr(clusterer, "fit_predict"):
            labels = clusterer.fit_predict(R)
        else:
            labels = clusterer.fit(R).labels_
        return np.asarray(labels)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Fit the base model if needed, compute the representation, cluster it.

        Parameters
        ----------
        X : ndarray, tensor or torch Dataset of images ``(n, c, h, w)``
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.

        Returns
        -------
        self
        """
        self._fit(X, y, embeddings=False)
        return self

    def _fit(self, X, y, *, embeddings):
        """Fit; return the embeddings of ``X`` when ``embeddings`` (from the representation's own pass)."""
        self._validate_params()
        X = self._check_images(X, reset=True)
        y = check_labels(y, "y")
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise ValueError(f"`y` must hold class labels: {exc}") from exc
        check_same_length(X=range(n_samples(X)), y=y)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        y_idx = encoder.transform(y)
        self.base_model_, self.estimator_ = self._resolve_base_model(X, y, seed)
        self.logit_index_ = self.base_model_.class_to_logit(self.classes_)
        R, Z = self._fit_representation(X, embeddings=embeddings)
        self.representation_shape_ = R.shape[1:]
        R = R.reshape(len(R), -1)

        units = [np.arange(len(y_idx))] if self.scope == "global" else [np.flatnonzero(y_idx == c) for c in range(len(self.classes_))]
        self.clusterers_, n_clusters, cluster_labels = [], [], np.zeros(len(y_idx), dtype=np.int64)
        with keep_thread_settings():
            for u, idx in enumerate(units):
                clusterer = _Constant() if len(idx) < 3 else self._make_clusterer(R[idx], seed + u)
                labels = self._fit_predict(clusterer, R[idx])
                uniq, labels = np.unique(labels, return_inverse=True)
                self.clusterers_.append((clusterer, uniq))
                cluster_labels[idx] = labels
                n_clusters.append(len(uniq))
        self.cluster_labels_ = cluster_labels
        if self.scope == "global":
            self.n_clusters_ = int(n_clusters[0])
            self.group_offsets_ = np.arange(len(self.classes_)) * self.n_clusters_
            sizes = [self.n_clusters_] * len(self.classes_)
        else:
            self.n_clusters_ = np.asarray(n_clusters)
            self.group_offsets_ = np.r_[0, np.cumsum(n_clusters)[:-1]]
            sizes = n_clusters
        self.groups_ = self.group_offsets_[y_idx] + cluster_labels
        self.group_names_ = np.array(
            [f"{label} / cluster {k}" for label, size in zip(self.classes_.tolist(), sizes) for k in range(size)]
        )
        return Z

    def _assign(self, R, cls):
        """Pseudo-groups of new representations ``R`` with (predicted) class indices ``cls``."""
        R = R.reshape(len(R), -1)
        groups = np.empty(len(R), dtype=np.int64)
        with keep_thread_settings():
            for u, (clusterer, uniq) in enumerate(self.clusterers_):
                idx = np.arange(len(R)) if self.scope == "global" else np.flatnonzero(cls == u)
                if not len(idx):
                    continue
                raw = np.asarray(clusterer.predict(R[idx]))
                k = np.searchsorted(uniq, raw)
                k = np.clip(k, 0, len(uniq) - 1)
                if self.scope == "global":
                    groups[idx] = self.group_offsets_[cls[idx]] + k
                else:
                    groups[idx] = self.group_offsets_[u] + k
        return groups

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then return the fitted samples with their pseudo-groups (classes from ``y``).

        The embeddings come from the forward pass that computes the
        representation (no second pass over ``X``).

        Parameters
        ----------
        X : ndarray, tensor or torch Dataset of images
        y : array-like of shape (n_samples,)

        Returns
        -------
        GroupedData
            ``X``: the base model's embeddings (or the inputs, ``output="inputs"``);
            ``groups``: :attr:`groups_`.
        """
        if y is None:
            raise ValueError("`y` is required: pseudo-groups are class x cluster.")
        Z = self._fit(X, y, embeddings=self.output == "embeddings")
        return GroupedData(X if self.output == "inputs" else Z, self.groups_.copy())

    def transform(self, X):
        """New samples with their pseudo-groups: their fitted cluster and their predicted class.

        Only the embeddings (one forward pass) are computed here; the
        pseudo-groups (for ExMap: heatmaps, then the fitted clusters) are
        computed when the result's ``groups`` is first read. A classifier's
        ``predict`` after the grouper in a pipeline reads only ``X``.

        Parameters
        ----------
        X : ndarray, tensor or torch Dataset of images

        Returns
        -------
        GroupedData
            ``X``: the base model's embeddings (or the inputs, ``output="inputs"``);
            ``groups``: pseudo-group of each sample, computed on first access.
        """
        check_is_fitted(self, "groups_")
        X_checked = self._check_images(X, reset=False)
        Z, logits = self.base_model_.embed(
            X_checked, batch_size=self.batch_size, progress=bool(self.verbose), return_logits=True
        )
        cls = predicted_index(logits, self.logit_index_)
        groups = _PseudoGroups(copy.copy(self), X_checked, Z, cls)
        return GroupedData(X if self.output == "inputs" else Z, groups)

    def set_output(self, *, transform=None):
        """Accept the default output only: ``transform`` returns a GroupedData, not a table.

        ``Pipeline.set_output(transform="default")`` (or ``None``) passes
        through; ``"pandas"`` and ``"polars"`` are refused, because the
        samples and their pseudo-groups have no data-frame form.

        Parameters
        ----------
        transform : {"default"} or None, default=None

        Returns
        -------
        self
        """
        if transform is None or transform == "default":
            return self
        raise ValueError(
            f"{type(self).__name__}.set_output(transform={transform!r}): the grouper's transform returns a "
            "GroupedData (samples and their pseudo-groups), which has no data-frame form; only 'default' is supported."
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
