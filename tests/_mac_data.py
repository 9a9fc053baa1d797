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


def tint_toy(agreement, tint_strength, core_strength=0.0, n=160, seed=0):
    """``X`` (n, 3, 8, 8), ``y`` and ``tint``: a red tint over the whole image that agrees with
    ``y`` for about ``agreement`` of the images, and optionally a light central square for class 1."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    tint = np.where(rng.rand(n) < agreement, y, 1 - y)
    X = rng.rand(n, 3, 8, 8).astype(np.float32) * 0.2
    if core_strength:
        X[:, :, 2:6, 2:6] += core_strength * y[:, None, None, None]
    X[:, 0] += tint_strength * tint[:, None, None]
    return X, y, tint
