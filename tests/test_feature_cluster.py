"""Tests for FeatureClusterGrouper, the GEORGE baseline (clustered embeddings)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from skshortcut import DFRRetrainer, FeatureClusterGrouper, GroupedData
from skshortcut.grouping.feature_cluster import max_abs_normalize


class Split(nn.Module):
    """Embedding = (mean red, mean green, mean blue); the head reads the blue channel only."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]))
            self.fc.bias.copy_(torch.tensor([0.5, -0.5]))  # class 1 when blue > 0.5

    def forward(self, x):
        return self.fc(self.pool(x).flatten(1))


def data(n=120, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    colour = rng.randint(0, 2, n)
    X = np.zeros((n, 3, 6, 6), dtype=np.float32)
    X[np.arange(n), colour] = 0.6 + 0.1 * rng.rand(n, 6, 6)
    X[:, 2] = (0.2 + 0.6 * y)[:, None, None] + 0.05 * rng.rand(n, 6, 6)
    return X, y, colour


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=st.floats(-1e3, 1e3)))
def test_max_abs_normalize_law(Z):
    N = max_abs_normalize(Z)
    peak = np.abs(Z).max(axis=1)
    assert np.all(np.abs(N) <= 1 + 1e-6)
    np.testing.assert_allclose(np.abs(N).max(axis=1)[peak > 0], 1.0, rtol=1e-5)
    assert np.all(N[peak == 0] == 0)
    # scale invariance: each row keeps its direction
    np.testing.assert_allclose(max_abs_normalize(3.0 * Z), N, rtol=1e-5, atol=1e-6)


def test_kmeans_on_embeddings_finds_the_colour():
    X, y, colour = data()
    grouper = FeatureClusterGrouper(Split(), clustering="kmeans", n_clusters=2, random_state=0)
    out = grouper.fit_transform(X, y)
    assert isinstance(out, GroupedData) and out.X.shape == (120, 3)
    assert grouper.representation_shape_ == (3,)
    # normalised embeddings (r, g, b) / max: the colour channel dominates the clusters
    assert adjusted_rand_score(colour, grouper.cluster_labels_) == 1.0
    assert np.array_equal(grouper.groups_, 2 * y + grouper.cluster_labels_)
    X_new, y_new, colour_new = data(40, seed=1)
    new = grouper.transform(X_new)
    assert np.array_equal(new.groups // 2, y_new)  # the head reads blue = the class
    assert adjusted_rand_score(colour_new, new.groups % 2) == 1.0


def test_auto_clusters_and_local_scope():
    X, y, colour = data(200)
    grouper = FeatureClusterGrouper(Split(), clustering="kmeans", random_state=0).fit(X, y)
    assert grouper.n_clusters_ >= 2
    local = FeatureClusterGrouper(Split(), clustering="kmeans", n_clusters=2, scope="local", random_state=0).fit(X, y)
    assert local.n_clusters_.tolist() == [2, 2]
    assert len(np.unique(local.groups_)) == 4


def test_overclustering_feeds_dfr():
    X, y, _ = data(200)
    pipe = Pipeline([
        ("groups", FeatureClusterGrouper(Split(), clustering="kmeans", n_clusters=6, random_state=0)),
        ("clf", DFRRetrainer(n_retrains=2, Cs=[1.0], random_state=0)),
    ]).fit(X, y)
    assert pipe.named_steps["groups"].n_clusters_ == 6
    assert np.mean(pipe.predict(X) == y) > 0.9
    # a clone is unfitted and refits to the same pseudo-groups
    grouper = pipe.named_steps["groups"]
    again = clone(grouper)
    assert not hasattr(again, "groups_")
    np.testing.assert_array_equal(again.fit(X, y).groups_, grouper.groups_)


def test_umap_kmeans_default_is_umap_to_two_dims_then_kmeans():
    # The pipeline is checked as built; fitting UMAP compiles numba kernels for a minute or
    # more on first use, so its fit runs in `skshortcut benchmark` (george_dfr), not here.
    from sklearn.cluster import KMeans
    from umap import UMAP

    grouper = FeatureClusterGrouper(Split(), random_state=0)
    assert grouper.clustering == "umap_kmeans"
    R = np.random.RandomState(0).rand(400, 3)
    grouper.n_clusters = 4
    clusterer = grouper._make_clusterer(R, seed=7)
    umap, kmeans = (step for _, step in clusterer.steps)
    assert isinstance(umap, UMAP) and umap.n_components == 2 and umap.n_neighbors == int(np.log(400))
    assert umap.random_state == 7
    assert isinstance(kmeans, KMeans) and kmeans.n_clusters == 4 and kmeans.n_init == 10


def test_errors():
    X, y, _ = data(30)
    with pytest.raises(InvalidParameterError, match="'clustering' parameter"):
        FeatureClusterGrouper(Split(), clustering="hdbscan").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'scope' parameter"):
        FeatureClusterGrouper(Split(), scope="per-class").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'batch_size' parameter"):
        FeatureClusterGrouper(Split(), batch_size=0).fit(X, y)
    with pytest.raises(TypeError, match="`estimator`"):
        FeatureClusterGrouper("resnet").fit(X, y)


def test_images_of_another_size_or_non_finite_are_refused():
    # the embedding (a global average pool) accepts any size, so only the check can catch it
    X, y, _ = data(30)
    grouper = FeatureClusterGrouper(Split(), clustering="kmeans", n_clusters=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"\(3, 9, 9\).*\(3, 6, 6\)"):
        grouper.transform(np.zeros((4, 3, 9, 9), dtype=np.float32))
    X_bad = X.copy()
    X_bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        grouper.transform(X_bad)
    with pytest.raises(ValueError, match="NaN or infinity"):
        clone(grouper).fit(X_bad, y)


_UMAP_THREADS = """
import numpy as np, torch
before = torch.get_num_threads()
from skshortcut import FeatureClusterGrouper
from tests.test_feature_cluster import Split, data
X, y, _ = data(120)
grouper = FeatureClusterGrouper(Split(), n_clusters=2, random_state=0).fit(X, y)
after_fit = torch.get_num_threads()
groups = grouper.transform(X).groups
print(before, after_fit, torch.get_num_threads(), grouper.n_clusters_, len(groups))
"""


@pytest.mark.slow
def test_umap_kmeans_leaves_torch_thread_count_alone():
    # numba's threading layer starts with UMAP's first kernel and set torch's thread count 1 -> 2 for the
    # whole process. A fresh interpreter, so that the threading layer is not already running.
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", _UMAP_THREADS], capture_output=True, text=True, cwd=root, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    before, after_fit, after_transform, n_clusters, n_groups = map(int, out.stdout.split()[-5:])
    assert (before, after_fit, after_transform) == (1, 1, 1)
    assert n_clusters == 2 and n_groups == 120
