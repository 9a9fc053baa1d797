"""Shared test fixtures."""

import os

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import sklearn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The end-to-end tests assert numbers of trained models, which depend on torch's thread count
# (the order of float reductions): the suite runs on one thread, as its numbers were measured.
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def routing():
    """Enable scikit-learn metadata routing for one test."""
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.fixture(scope="session")
def tiny_images():
    """A small image set where class 1 is brighter in channel 0."""
    rng = np.random.RandomState(0)
    y = rng.randint(0, 2, 96)
    X = rng.rand(96, 3, 12, 12).astype("float32") * 0.5
    X[:, 0] += 0.5 * y[:, None, None]
    return X, y


@pytest.fixture(scope="session")
def default_benchmark():
    """Context of ``skshortcut benchmark``'s default data set at seed 0, with its ERM model trained.

    Session-scoped so that every end-to-end test on the default benchmark shares one ERM
    training. Methods registered in :mod:`skshortcut.bench` run on it as ``METHODS[name].run(ctx)``.
    """
    from skshortcut.bench import DATASETS, BenchmarkContext

    data = DATASETS["colored-digits"].make(0, 1.0)
    ctx = BenchmarkContext("colored-digits", data, seed=0, device="auto", out=None)
    ctx.erm  # noqa: B018 - trains the shared ERM model once
    return ctx
