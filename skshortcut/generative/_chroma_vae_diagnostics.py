"""Chroma-VAE's diagnostics: which latent subspace holds the shortcut (Section 5).

Yang et al. (NeurIPS 2022) check the split of a fitted
:class:`~skshortcut.ChromaVAEClassifier` with the z1-classifier's accuracy
(Section 5.1), partial reconstructions ``x~1`` and ``x~2`` (Eqs. 3-4,
figure 3) and the change of each latent under a shortcut swap (figure 4c).
The functions below are methods of the estimator (their first argument is
the fitted estimator).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

from .._torch import _seed_from, restore_module_state
from .._validation import check_labels

__all__ = ["predict_z1", "z1_score", "partial_reconstructions", "latent_shift"]


def predict_z1(self, X):
    """Labels predicted by the z1-classifier ``C(mu(x)_1)``: the shortcut-reliant one."""
    logits = self._map_batches(X, lambda xb: self.module_.classify(self.module_.encode(xb)[0]))
    return self.classes_[logits.argmax(1)]


def z1_score(self, X, y):
    """Accuracy of the z1-classifier.

    Section 5.1: when the shortcut sits in ``z1``, this classifier is as
    accurate as ERM in distribution and as poor out of distribution.
    """
    from sklearn.metrics import accuracy_score

    return accuracy_score(check_labels(y, "y"), self.predict_z1(X))


def partial_reconstructions(self, X, *, keep="z2", n_samples=8, random_state=None):
    """Decode samples that keep one latent subspace of each image (Eqs. 3-4).

    ``keep="z1"`` decodes ``x~1 = D([mu(x)_1, eps])`` and ``keep="z2"``
    decodes ``x~2 = D([eps, mu(x)_2])``, ``eps ~ N(0, I)`` drawn afresh
    for each sample; ``keep="all"`` decodes ``D(mu(x))`` (the
    reconstruction; every sample is the same). If the shortcut was
    isolated, the ``x~1`` samples share the shortcut and vary the rest and
    the ``x~2`` samples keep the core feature with a varying shortcut.

    Parameters
    ----------
    X : images or Dataset
    keep : {"z1", "z2", "all"}, default="z2"
    n_samples : int, default=8
        Samples per image.
    random_state : int, RandomState or None, default=None
        Seeds the noise.

    Returns
    -------
    ndarray of shape (n_images, n_samples, channels, height, width)
        Means of ``p(x | z)`` (in [0, 1] for the Bernoulli likelihood).
    """
    validate_parameter_constraints(
        {"keep": [StrOptions({"z1", "z2", "all"})], "n_samples": [Interval(Integral, 1, None, closed="left")]},
        {"keep": keep, "n_samples": n_samples},
        caller_name="partial_reconstructions",
    )
    mu = torch.as_tensor(self._encode(X))
    gen = torch.Generator()
    seed = _seed_from(random_state)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    d1 = self.dim_z1_
    batch = len(mu) if self.batch_size == -1 else self.batch_size
    out = []
    with restore_module_state(self.module_), torch.no_grad():
        self.module_.eval()
        for m in mu.split(max(1, batch // n_samples)):
            z = m[:, None, :].repeat(1, n_samples, 1)
            noise = torch.randn(z.shape, generator=gen)
            if keep == "z1":
                z[..., d1:] = noise[..., d1:]
            elif keep == "z2":
                z[..., :d1] = noise[..., :d1]
            img = self.module_.mean_image(z.reshape(-1, z.shape[-1]).to(self.device))
            out.append(img.float().cpu().numpy().reshape(len(m), n_samples, *self.input_shape_))
    return np.concatenate(out)


def latent_shift(self, X, X_shifted):
    """Mean absolute change of each latent mean between X and a transformed copy (figure 4c).

    Pass X and the same images with the suspected shortcut changed (for
    example the colours swapped): the dimensions that move most hold the
    shortcut. If it was isolated, the ``z1`` dimensions (the first
    ``dim_z1_``) move and the ``z2`` ones barely do.

    Parameters
    ----------
    X, X_shifted : images or Datasets with the same number of samples

    Returns
    -------
    ndarray of shape (dim_z,)
        ``mean_i |mu(x_i)_d - mu(x'_i)_d|`` for every dimension ``d``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import ChromaVAEClassifier
    >>> X = np.random.RandomState(0).rand(40, 3, 8, 8).astype("float32")
    >>> clf = ChromaVAEClassifier(dim_z=4, max_epochs=1, random_state=0).fit(X, np.arange(40) % 2)
    >>> clf.latent_shift(X, X[:, [1, 0, 2]]).shape  # red and green swapped
    (4,)
    """
    a, b = self._encode(X), self._encode(X_shifted)
    if a.shape != b.shape:
        raise ValueError(f"`X` and `X_shifted` must hold the same number of samples; got {len(a)} and {len(b)}.")
    return np.abs(a - b).mean(axis=0)
