"""The second stage of Chroma-VAE: the z2-classifier (Algorithm 1).

Yang et al. (NeurIPS 2022) train a classifier on the fixed ``mu(x)_2`` -- a
k-nearest-neighbour classifier with ``k = round(sqrt(N))`` is their best on
ColoredMNIST, an MLP the other choice -- or, in the x~2-classifier of Eq. 4,
a CNN on partial reconstructions ``x~2 = D([N(0, I), mu(x)_2])``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import clone

__all__ = ["BUILTIN_Z2", "build_z2_classifier", "fit_second_stage", "reconstruction_inputs", "second_stage_proba"]

#: Names of the built-in z2-classifiers.
BUILTIN_Z2 = ("knn", "mlp", "reconstruction")


def build_z2_classifier(z2_classifier, z2_params=None, *, n_train, random_state=None, erm_params=None):
    """An unfitted z2-classifier.

    Parameters
    ----------
    z2_classifier : {"knn", "mlp", "reconstruction"} or scikit-learn classifier
        ``"knn"``: :class:`~sklearn.neighbors.KNeighborsClassifier` with
        ``n_neighbors = round(sqrt(n_train))``; ``"mlp"``: standardisation and
        a one-hidden-layer :class:`~sklearn.neural_network.MLPClassifier`;
        ``"reconstruction"``: an :class:`~skshortcut.ERMClassifier` for the
        partial reconstructions. Any other estimator is cloned.
    z2_params : dict, optional
        Parameters that override the built-in's defaults.
    n_train : int
        Training samples of the second stage (sets ``k`` of the kNN).
    random_state : int or None
        Seed of the MLP or the ERM classifier.
    erm_params : dict, optional
        Defaults of the ERM classifier (``max_epochs``, ``batch_size``,
        ``device``, ``verbose`` of the VAE classifier).

    Returns
    -------
    estimator

    Examples
    --------
    >>> from skshortcut.generative._chroma_vae_z2 import build_z2_classifier
    >>> build_z2_classifier("knn", n_train=64).n_neighbors
    8
    >>> build_z2_classifier("knn", {"n_neighbors": 3}, n_train=64).n_neighbors
    3
    """
    params = dict(z2_params or {})
    if z2_classifier == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        knn = {"n_neighbors": max(1, int(round(math.sqrt(n_train))))}
        knn.update(params)
        return KNeighborsClassifier(**knn)
    if z2_classifier == "mlp":
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        mlp = dict(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=300, early_stopping=True, random_state=random_state)
        mlp.update(params)
        return make_pipeline(StandardScaler(), MLPClassifier(**mlp))
    if z2_classifier == "reconstruction":
        from ..erm import ERMClassifier

        erm = {**(erm_params or {}), "random_state": random_state}
        erm.update(params)
        return ERMClassifier(**erm)
    return clone(z2_classifier)


# The functions below are methods of ChromaVAEClassifier (their first argument
# is the estimator), kept here with the rest of the second stage.
def fit_second_stage(self, X, y_enc):
    """Fit the z2-classifier on ``mu(x)_2`` (or on partial reconstructions) of the checked images X."""
    erm = dict(max_epochs=self.n_epochs_, batch_size=self.batch_size, device=self.device, verbose=self.verbose)
    z2 = build_z2_classifier(
        self.z2_classifier, self.z2_params, n_train=len(y_enc), random_state=self.seeds_["z2"], erm_params=erm
    )
    if self.z2_classifier == "reconstruction":
        z2.fit(self._reconstruction_inputs(X, self.seeds_["noise"]), np.tile(y_enc, self.n_reconstructions))
    else:
        z2.fit(self._encode(X, checked=True)[:, self.dim_z1_ :], y_enc)
    self.z2_classifier_ = z2


def reconstruction_inputs(self, X, seed):
    """Partial reconstructions x~2, ``n_reconstructions`` per image, sample-major blocks."""
    rec = self.partial_reconstructions(X, keep="z2", n_samples=self.n_reconstructions, random_state=seed)
    return np.ascontiguousarray(np.swapaxes(rec, 0, 1).reshape(-1, *self.input_shape_))


def second_stage_proba(self, X):
    """The fitted z2-classifier's probabilities on the checked images X, in its own class order."""
    z2 = self.z2_classifier_
    if self.z2_classifier == "reconstruction":
        noise = None if self.seeds_["noise"] is None else self.seeds_["noise"] + 1
        proba = z2.predict_proba(self._reconstruction_inputs(X, noise))
        return proba.reshape(self.n_reconstructions, -1, len(z2.classes_)).mean(0)
    return z2.predict_proba(self._encode(X, checked=True)[:, self.dim_z1_ :])
