"""Tests for ExMapGrouper: heatmap clusters, class x cluster pseudo-groups, composition with sklearn."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from torch.utils.data import TensorDataset

from skshortcut import DFRRetrainer, ERMClassifier, ExMapGrouper, GroupedData, worst_group_scorer
from skshortcut.nets import SmallCNN


def coloured(n, n_classes=2, seed=0, size=8):
    """A stroke pattern with random intensities, drawn in the red or the green channel.

    The class is independent of the colour.
    """
    rng = np.random.RandomState(seed)
    y = rng.randint(0, n_classes, n)
    colour = rng.randint(0, 2, n)
    X = np.zeros((n, 3, size, size), dtype=np.float32)
    strokes = np.random.RandomState(99).rand(size, size) > 0.5
    X[np.arange(n), colour] = (0.5 + 0.5 * rng.rand(n, size, size)) * strokes
    return X, y, colour


def net(n_classes=2, seed=0):
    torch.manual_seed(seed)
    return SmallCNN(n_classes=n_classes, n_blocks=2, width=4)


def test_global_exmap_clusters_heatmaps_by_where_the_relevance_is():
    # LRP relevance lives on the pixels that carry the input: red and green images have
    # heatmaps in different channels, so the eigengap finds two clusters, the two colours.
    X, y, colour = coloured(120)
    grouper = ExMapGrouper(net(), random_state=0)
    data = grouper.fit_transform(X, y)
    assert grouper.n_clusters_ == 2
    assert adjusted_rand_score(colour, grouper.cluster_labels_) == 1.0
    assert np.array_equal(grouper.groups_, y * 2 + grouper.cluster_labels_)
    assert np.array_equal(data.groups, grouper.groups_)
    assert isinstance(data, GroupedData) and data.X.shape == (120, 8)
    assert grouper.representation_shape_ == (3, 8, 8)
    assert grouper.heatmaps(X[:5]).shape == (5, 3, 8, 8)


def test_three_classes_with_string_labels_and_new_samples():
    X, y, colour = coloured(150, n_classes=3)
    labels = np.array(["cat", "dog", "eel"])[y]
    grouper = ExMapGrouper(net(3), clustering="kmeans", n_clusters=2, random_state=0).fit(X, labels)
    assert grouper.classes_.tolist() == ["cat", "dog", "eel"]
    assert len(grouper.group_names_) == 6 and grouper.group_names_[5] == "eel / cluster 1"
    assert len(np.unique(grouper.groups_)) == 6
    assert np.array_equal(grouper.groups_ // 2, y)
    # new samples: predicted class x fitted cluster
    X_new, _, colour_new = coloured(40, n_classes=3, seed=1)
    out = grouper.transform(X_new)
    pred = grouper.base_model_.predict_index(X_new)
    assert np.array_equal(out.groups // 2, pred)
    assert adjusted_rand_score(colour_new, out.groups % 2) == 1.0
    # the cluster ids mean the same colour on fitted and new samples
    red_cluster = grouper.cluster_labels_[colour == 0][0]
    assert np.all(out.groups[colour_new == 0] % 2 == red_cluster)


def test_local_scope_clusters_each_class():
    X, y, colour = coloured(160)
    grouper = ExMapGrouper(net(), scope="local", clustering="kmeans", n_clusters=2, random_state=0).fit(X, y)
    assert grouper.n_clusters_.tolist() == [2, 2]
    assert grouper.group_offsets_.tolist() == [0, 2]
    for c in (0, 1):
        assert adjusted_rand_score(colour[y == c], grouper.cluster_labels_[y == c]) == 1.0
    out = grouper.transform(X)
    assert set(np.unique(out.groups)) <= {0, 1, 2, 3}


@pytest.mark.parametrize("clustering", [KMeans(n_init=3), AgglomerativeClustering()])
def test_any_sklearn_clusterer(clustering):
    X, y, colour = coloured(80)
    grouper = ExMapGrouper(net(), clustering=clustering, n_clusters=2, heatmap_size=4, random_state=0).fit(X, y)
    assert grouper.n_clusters_ == 2
    assert adjusted_rand_score(colour, grouper.cluster_labels_) == 1.0
    # AgglomerativeClustering has no predict: new samples go to their nearest fitted heatmaps
    assert adjusted_rand_score(colour, grouper.transform(X).groups % 2) == 1.0
    assert clustering.get_params().get("n_clusters") != "changed"  # the user's clusterer is cloned, not fit
    assert not hasattr(clustering, "labels_")


def test_output_inputs_and_datasets():
    X, y, colour = coloured(60)
    grouper = ExMapGrouper(net(), output="inputs", clustering="kmeans", n_clusters=2, random_state=0)
    data = grouper.fit_transform(X, y)
    assert data.X is X
    ds = TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    from_ds = clone(grouper).fit(ds, y)
    assert np.array_equal(from_ds.groups_, grouper.groups_)
    assert np.array_equal(grouper.transform(ds).groups, grouper.transform(X).groups)


def test_random_state_makes_fits_reproducible():
    X, y, _ = coloured(60)
    a = ExMapGrouper(net(), clustering="kmeans", n_clusters=3, random_state=3).fit(X, y)
    b = ExMapGrouper(net(), clustering="kmeans", n_clusters=3, random_state=3).fit(X, y)
    assert np.array_equal(a.groups_, b.groups_)


def test_other_attribution_methods():
    X, y, colour = coloured(60)
    grouper = ExMapGrouper(net(), method="saliency", heatmap_channels="sum", clustering="kmeans", n_clusters=2,
                           random_state=0).fit(X, y)
    assert grouper.representation_shape_ == (8, 8)
    grouper = ExMapGrouper(net(), method="xgradcam", clustering="kmeans", n_clusters=2, random_state=0).fit(X, y)
    assert grouper.representation_shape_ == (4, 4)


def test_skorch_base_model_and_estimator_none(tiny_images):
    X, y = tiny_images
    labels = np.array(["no", "yes"])[y]
    erm = ERMClassifier(max_epochs=2, module__width=4, module__n_blocks=2, random_state=0, device="cpu").fit(X, labels)
    grouper = ExMapGrouper(erm, clustering="kmeans", n_clusters=2, random_state=0).fit(X, labels)
    assert grouper.estimator_ is erm and grouper.logit_index_.tolist() == [0, 1]
    # no estimator: an ERMClassifier is fit on the data first
    fitted = ExMapGrouper(clustering="kmeans", n_clusters=2, random_state=0).fit(X, labels)
    assert isinstance(fitted.estimator_, ERMClassifier)
    assert set(fitted.estimator_.classes_) == {"no", "yes"}


def test_pipeline_with_dfr_papers_workflow_and_users_words(tiny_images):
    X, y, colour = coloured(200, seed=2)
    pipe = Pipeline([("groups", ExMapGrouper(net(), random_state=0)), ("clf", DFRRetrainer(n_retrains=2, random_state=0))])
    pipe.fit(X, y)
    assert pipe.predict(X[:10]).shape == (10,)
    assert pipe.named_steps["clf"].balanced_on_ == "groups"
    # the user's own words: no arguments at all (an ERMClassifier is trained first)
    Xt, yt = tiny_images
    Pipeline([("groups", ExMapGrouper()), ("clf", DFRRetrainer())]).fit(Xt, yt)


def test_grid_search_over_grouper_parameters_scored_by_true_groups(routing):
    X, y, colour = coloured(160, seed=4)
    groups = 2 * y + colour
    pipe = Pipeline([
        ("groups", ExMapGrouper(net(), clustering="kmeans", random_state=0)),
        # the true groups are for scoring only: DFR must balance on the pseudo-groups
        ("clf", DFRRetrainer(n_retrains=2, Cs=[1.0], random_state=0).set_fit_request(groups=False)),
    ])
    search = GridSearchCV(pipe, {"groups__n_clusters": [2, 3], "groups__heatmap_size": [None, 4]},
                          scoring=worst_group_scorer, cv=2)
    search.fit(X, y, groups=groups)
    assert set(search.best_params_) == {"groups__n_clusters", "groups__heatmap_size"}
    assert 0.0 <= search.best_score_ <= 1.0
    assert len(search.cv_results_["mean_test_score"]) == 4


def test_clone_and_not_fitted():
    grouper = ExMapGrouper(net(), heatmap_size=(4, 4), n_clusters=3)
    assert clone(grouper).get_params()["heatmap_size"] == (4, 4)
    with pytest.raises(NotFittedError):
        grouper.transform(np.zeros((2, 3, 8, 8), dtype=np.float32))


@pytest.mark.parametrize(
    ("params", "exc", "match"),
    [
        ({"scope": "both"}, ValueError, "`scope`"),
        ({"output": "heatmaps"}, ValueError, "`output`"),
        ({"n_clusters": 0}, ValueError, "`n_clusters`"),
        ({"n_clusters": "many"}, ValueError, "`n_clusters`"),
        ({"n_clusters": 500}, ValueError, "exceeds"),
        ({"clustering": "dbscan"}, ValueError, "`clustering`"),
        ({"clustering": 3}, TypeError, "`clustering`"),
        ({"method": "shap"}, ValueError, "`method`"),
        ({"heatmap_channels": "mean"}, ValueError, "`heatmap_channels`"),
        ({"heatmap_size": -1}, ValueError, "`heatmap_size`"),
        ({"batch_size": 0}, ValueError, "`batch_size`"),
    ],
)
def test_bad_parameters(params, exc, match):
    X, y, _ = coloured(30)
    with pytest.raises(exc, match=match):
        ExMapGrouper(net(), **params).fit(X, y)


def test_bad_data():
    X, y, _ = coloured(30)
    with pytest.raises(ValueError, match="Inconsistent numbers of samples"):
        ExMapGrouper(net()).fit(X, y[:-1])
    with pytest.raises(ValueError, match="images"):
        ExMapGrouper(net()).fit(X.reshape(30, -1), y)
    with pytest.raises(ValueError, match="`y` is required"):
        ExMapGrouper(net()).fit_transform(X)
    with pytest.raises(ValueError, match="logits"):
        ExMapGrouper(net(n_classes=3)).fit(X, y)
    grouper = ExMapGrouper(net(), clustering="kmeans", n_clusters=2).fit(X, y)
    with pytest.raises(ValueError, match="representations of shape"):
        grouper.transform(np.zeros((4, 3, 12, 12), dtype=np.float32))
