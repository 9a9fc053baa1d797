"""What ExMap and the GEORGE baseline share: representation -> clusters -> class x cluster pseudo-groups."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.cluster import KMeans
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._grouped import GroupedData
from .._torch import input_shape, n_samples
from ..base_model import resolve_base_model
from .._validation import check_labels, check_same_length
from .spectral import SpectralEigengap, default_n_neighbors, kneighbors_graph, laplacian_spectrum, eigengap_n_clusters

CLUSTERINGS = ("spectral", "kmeans", "umap_kmeans")


def estimate_n_clusters(R, *, max_clusters=10, n_neighbors=None, random_state=None):
    """The eigengap estimate of the number of clusters of ``R``, on a sparse nearest-neighbour graph.

    Parameters
    ----------
    R : ndarray of shape (n_samples, n_features)
    max_clusters : int, default=10
    n_neighbors : int, optional
        Neighbours per sample; default ``int(ln n)`` (the ExMap authors').
    random_state : int, RandomState or None

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.grouping import estimate_n_clusters
    >>> rng = np.random.RandomState(0)
    >>> R = np.r_[rng.normal(0, 0.1, (40, 3)), rng.normal(5, 0.1, (40, 3))]
    >>> estimate_n_clusters(R, n_neighbors=10, random_state=0)
    2
    """
    n = len(R)
    k = default_n_neighbors(n) if n_neighbors is None else int(n_neighbors)
    A = kneighbors_graph(R, min(k, n - 1), random_state=random_state)
    lam, _, _ = laplacian_spectrum(A, max_clusters + 1, random_state=random_state)
    return eigengap_n_clusters(lam, max_clusters)


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


class BaseGrouper(TransformerMixin, BaseEstimator):
    """Pseudo-groups = class x cluster of a per-sample representation (subclasses define it)."""

    def _representation(self, X, *, base, batch_size, progress):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ checks
    def _check_params(self, X):
        if self.scope not in ("global", "local"):
            raise ValueError(f"`scope` must be 'global' or 'local'; got {self.scope!r}.")
        if self.output not in ("embeddings", "inputs"):
            raise ValueError(f"`output` must be 'embeddings' or 'inputs'; got {self.output!r}.")
        n_clusters = self.n_clusters
        if not (isinstance(n_clusters, str) and n_clusters == "auto") and not (
            isinstance(n_clusters, numbers.Integral) and not isinstance(n_clusters, bool) and n_clusters >= 1
        ):
            raise ValueError(f"`n_clusters` must be 'auto' or an int >= 1; got {n_clusters!r}.")
        c = self.clustering
        if isinstance(c, str):
            if c not in CLUSTERINGS:
                raise ValueError(f"`clustering` must be one of {CLUSTERINGS} or a scikit-learn clusterer; got {c!r}.")
        elif not (hasattr(c, "fit_predict") or hasattr(c, "fit")):
            raise TypeError(
                "`clustering` must be one of " f"{CLUSTERINGS} or a scikit-learn clusterer (with fit_predict); "
                f"got {type(c).__name__}."
            )
        if not isinstance(self.batch_size, numbers.Integral) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ValueError(f"`batch_size` must be an int >= 1; got {self.batch_size!r}.")
        if len(input_shape(X)) != 3:
            raise ValueError(f"`X` must hold images (channels, height, width); got sample shape {input_shape(X)}.")

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
    def _class_map(self, base):
        """Which logit belongs to each class of ``classes_``."""
        n_logits = max(base.n_outputs, 2)
        if base.classes is not None:
            pos = {label: j for j, label in enumerate(base.classes.tolist())}
            missing = [c for c in self.classes_.tolist() if c not in pos]
            if missing:
                raise ValueError(f"`y` holds classes {missing} that the base model does not predict.")
            return np.array([pos[c] for c in self.classes_.tolist()])
        if n_logits != len(self.classes_):
            raise ValueError(
                f"The base model has {n_logits} logits but `y` holds {len(self.classes_)} classes; with a plain "
                "nn.Module the logits must be the sorted classes of `y`."
            )
        return np.arange(n_logits)

    def _predicted_class(self, logits):
        if logits.shape[1] == 1:
            logits = np.c_[-logits, logits]
        return logits[:, self.logit_index_].argmax(axis=1)

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
        self._fit(X, y)
        return self

    def _fit(self, X, y):
        self._check_params(X)
        y = check_labels(y, "y")
        check_same_length(X=range(n_samples(X)), y=y)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        self._encoder = LabelEncoder().fit(y)
        self.classes_ = self._encoder.classes_
        y_idx = self._encoder.transform(y)
        self.base_model_, self.estimator_ = resolve_base_model(
            self.estimator, X, y, head=self.head, device=self.device, random_state=seed, verbose=self.verbose
        )
        self.logit_index_ = self._class_map(self.base_model_)
        R = self._representation(X, base=self.base_model_, batch_size=self.batch_size, progress=bool(self.verbose))
        self.representation_shape_ = R.shape[1:]
        R = R.reshape(len(R), -1)

        units = [np.arange(len(y_idx))] if self.scope == "global" else [np.flatnonzero(y_idx == c) for c in range(len(self.classes_))]
        self.clusterers_, n_clusters, cluster_labels = [], [], np.zeros(len(y_idx), dtype=np.int64)
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
        return R

    def _assign(self, R, cls):
        """Pseudo-groups of new representations ``R`` with (predicted) class indices ``cls``."""
        R = R.reshape(len(R), -1)
        groups = np.empty(len(R), dtype=np.int64)
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
        self._fit(X, y)
        if self.output == "inputs":
            return GroupedData(X, self.groups_.copy())
        Z = self.base_model_.embed(X, batch_size=self.batch_size, progress=bool(self.verbose))
        return GroupedData(Z, self.groups_.copy())

    def transform(self, X):
        """Pseudo-groups of new samples: their fitted cluster and their predicted class.

        Parameters
        ----------
        X : ndarray, tensor or torch Dataset of images

        Returns
        -------
        GroupedData
            ``X``: the base model's embeddings (or the inputs, ``output="inputs"``);
            ``groups``: pseudo-group of each sample.
        """
        check_is_fitted(self, "groups_")
        if len(input_shape(X)) != 3:
            raise ValueError(f"`X` must hold images (channels, height, width); got sample shape {input_shape(X)}.")
        Z, logits = self.base_model_.embed(X, batch_size=self.batch_size, progress=bool(self.verbose), return_logits=True)
        cls = self._predicted_class(logits)
        R = self._representation(X, base=self.base_model_, batch_size=self.batch_size, progress=bool(self.verbose))
        if R.shape[1:] != self.representation_shape_:
            raise ValueError(
                f"`X` gives representations of shape {R.shape[1:]}, but the grouper was fit on {self.representation_shape_}."
            )
        groups = self._assign(R, cls)
        return GroupedData(X if self.output == "inputs" else Z, groups)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
