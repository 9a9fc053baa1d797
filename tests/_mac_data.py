"""The blob toy the Mask-and-Combine tests share: class and shortcut are squares in separate halves."""

import numpy as np


def blob_toy(n=96, seed=0):
    """``X`` (n, 3, 12, 12), ``y`` and ``spurious``: class = a light square on the left, a
    spurious light square on the right that agrees with it for about 90 % of the images."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    spurious = np.where(rng.rand(n) < 0.9, y, 1 - y)
    X = rng.rand(n, 3, 12, 12).astype("float32") * 0.2
    X[:, :, 4:8, 1:5] += 0.7 * y[:, None, None, None]
    X[:, :, 4:8, 7:11] += 0.7 * spurious[:, None, None, None]
    return X, y, spurious
