"""Grid searches over Chroma-VAE's z_p and dim(z): locally, and on a Dask cluster through joblib."""

import distributed
import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skshortcut import ChromaVAEClassifier, worst_group_scorer
from skshortcut.datasets import make_colored_digits

GRID = {"z_p": [0.25, 0.5], "dim_z": [4, 8]}


@pytest.fixture(scope="module")
def tiny_colored_digits():
    data = make_colored_digits(48, 10, 10, regime="arjovsky", image_size=8, random_state=0)
    return data.train.X, data.train.y, data.train.groups


def _search():
    est = ChromaVAEClassifier(max_epochs=1, batch_size=16, device="cpu", random_state=0)
    return GridSearchCV(est, GRID, scoring=worst_group_scorer, cv=2, n_jobs=2, error_score="raise")


def _check(search):
    params = [tuple(sorted(p.items())) for p in search.cv_results_["params"]]
    assert len(params) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_
    assert best.dim_z1_ + best.dim_z2_ == best.dim_z
    assert best.transform(np.zeros((2, 3, 8, 8), dtype="float32")).shape == (2, best.dim_z2_)


def test_grid_search_with_group_routing(routing, tiny_colored_digits):
    X, y, groups = tiny_colored_digits
    search = _search().set_params(n_jobs=None).fit(X, y, groups=groups)
    _check(search)


@pytest.mark.slow
def test_grid_search_on_a_dask_cluster(routing, tiny_colored_digits):
    X, y, groups = tiny_colored_digits
    search = _search()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
            search.fit(X, y, groups=groups)
        ran_on = {task["worker"] for task in stream.data}
        assert ran_on and ran_on <= set(client.scheduler_info()["workers"])
    _check(search)
