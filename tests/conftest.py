"""Shared test fixtures."""

import os

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import sklearn

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
