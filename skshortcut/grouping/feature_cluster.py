"""``FeatureClusterGrouper``: pseudo-groups from clustered embeddings (the GEORGE baseline).

Sohoni et al., *No Subclass Left Behind: Fine-Grained Robustness in
Coarse-Grained Classification Problems* (NeurIPS 2020), as ExMap runs it
(supplement sec. 2.3, "GEORGE (DFR)").
"""

from __future__ import annotations

import numpy as np

from ._base import BaseGrouper

__all__ = ["FeatureClusterGrouper"]


def max_abs_normalize(Z):
    """Divide each row by its own maximum absolute value (all-zero rows stay zero).

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.grouping.feature_cluster import max_abs_normalize
    >>> max_abs_normalize(np.array([[2.0, -4.0], [0.0, 0.0]])).tolist()
    [[0.5, -1.0], [0.0, 0.0]]
    """
    Z = np.asarray(Z)
    if not np.issubdtype(Z.dtype, np.floating):
        Z = Z.astype(np.float64)
    scale = np.abs(Z).max(axis=1, keepdims=True) if Z.size else np.ones((len(Z), 1), Z.dtype)
    # divide in the input precision, then store as float32 (the clustering's dtype)
    return (Z / np.where(scale > 0, scale, 1.0)).astype(np.float32)


class FeatureClusterGrouper(BaseGrouper):
    """GEORGE-style pseudo-groups: cluster the base model's embeddings; group = class x cluster.

    The baseline ExMap compares against (supplement sec. 2.3): take the
    penultimate-layer features of the base model, max-normalise them (each
    sample divided by its own largest absolute value), reduce them with UMAP
    to two dimensions and cluster with KMeans; a pseudo-group is a class x a
    cluster, as in :class:`~skshortcut.ExMapGrouper`. Over-clustering (an
    ``n_clusters`` well above the true number of subgroups) is allowed, as
    GEORGE recommends.

    Parameters
    ----------
    estimator : fitted skorch net, nn.Module, FrozenEstimator or None, default=None
        The base model; ``None`` fits an :class:`~skshortcut.ERMClassifier` first.
        Wrap a fitted skorch net in :class:`sklearn.frozen.FrozenEstimator` to
        keep it through :func:`~sklearn.base.clone` (``GridSearchCV``).
    clustering : {"umap_kmeans", "kmeans", "spectral"} or scikit-learn clusterer, default="umap_kmeans"
        As in :class:`~skshortcut.ExMapGrouper`. UMAP runs on numba, whose
        threading layer would change torch's thread count for the whole
        process; the grouper restores torch's and numba's thread counts after
        every clustering call.
    n_clusters : "auto" or int, default="auto"
        ``"auto"``: the eigengap heuristic on the normalised embeddings, as
        ExMap does, so that the two differ only in what they cluster.
    scope : {"global", "local"}, default="global"
    output : {"embeddings", "inputs"}, default="embeddings"
    head : str, optional
    batch_size : int, default=256
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    classes_, n_clusters_, cluster_labels_, groups_, group_names_, group_offsets_, clusterers_, \
base_model_, estimator_, logit_index_, representation_shape_, input_shape_
        As in :class:`~skshortcut.ExMapGrouper`.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut import FeatureClusterGrouper
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 3, 8, 8).astype("float32")
    >>> y = rng.randint(0, 2, 40)
    >>> grouper = FeatureClusterGrouper(SmallCNN(n_blocks=2, width=4), clustering="kmeans", n_clusters=3,
    ...                                 random_state=0).fit(X, y)
    >>> grouper.n_clusters_, bool(grouper.groups_.max() < 2 * 3)
    (3, True)
    """

    def __init__(
        self,
        estimator=None,
        *,
        clustering="umap_kmeans",
        n_clusters="auto",
        scope="global",
        output="embeddings",
        head=None,
        batch_size=256,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.clustering = clustering
        self.n_clusters = n_clusters
        self.scope = scope
        self.output = output
        self.head = head
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit_representation(self, X, *, embeddings):
        """Max-abs-normalised penultimate-layer embeddings, and the embeddings themselves (one pass)."""
        Z = self.base_model_.embed(X, batch_size=self.batch_size, progress=bool(self.verbose))
        return max_abs_normalize(Z), Z

    def _new_representation(self, X, Z):
        return max_abs_normalize(Z)
