"""Feature data with a shortcut, shared by the last-layer retrainers' tests."""

import numpy as np
from sklearn.linear_model import LogisticRegression


def shortcut_features(n, seed, agreement=0.95, n_noise=5):
    """Core feature weakly predictive, spurious feature strongly correlated with y; groups 2 y + s."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    s = np.where(rng.rand(n) < agreement, y, 1 - y)
    Z = np.c_[y + rng.normal(0, 0.6, n), 3 * s + rng.normal(0, 0.3, n), rng.normal(size=(n, n_noise))]
    return Z, y, 2 * y + s


def last_layer_split():
    """``(base, held, test)``: a logistic base model on train, held-out and test ``(Z, y, groups)``."""
    train = shortcut_features(2000, 0)
    held = shortcut_features(1000, 1)
    test = shortcut_features(2000, 2, agreement=0.5)
    return LogisticRegression().fit(train[0], train[1]), held, test
