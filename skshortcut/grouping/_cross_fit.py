"""Cross-fitting: per-sample values from models that did not see the sample.

A model fit on some samples describes them differently from unseen ones: a
network that has memorised its training images explains and embeds them by
whatever it memorised, not by the shortcut it applies to new images. When a
grouper must fit its own base model on the data it then explains, the
explanation of each sample therefore comes from a model fit on the other
folds (the out-of-fold scheme of :func:`sklearn.model_selection.cross_val_predict`).
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.model_selection import StratifiedKFold, check_cv

from .._grouped import _take

__all__ = ["CrossFittedModel", "check_cv_splits", "out_of_fold"]


def check_cv_splits(cv, y, *, random_state=None, name="cv"):
    """The ``(train, test)`` index pairs of ``cv`` over labels ``y``; the test parts must partition the samples.

    Parameters
    ----------
    cv : int, cross-validation generator, iterable of (train, test) or None
        An int ``k`` (``None``: 5) means :class:`~sklearn.model_selection.StratifiedKFold`
        with ``k`` folds, shuffled with ``random_state`` (data sets are often
        ordered by class or group); anything else goes through
        :func:`sklearn.model_selection.check_cv`.
    y : ndarray of shape (n_samples,)
        Class labels: stratify the folds, and every training part must hold every class.
    random_state : int or None
        Seeds the shuffling of an int ``cv``.
    name : str
        The parameter's name in error messages.

    Returns
    -------
    list of (ndarray, ndarray)
        Sorted train and test indices of each fold.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.grouping._cross_fit import check_cv_splits
    >>> splits = check_cv_splits(3, np.arange(12) % 2, random_state=0)
    >>> [len(test) for _, test in splits], sorted(np.concatenate([t for _, t in splits]).tolist()) == list(range(12))
    ([4, 4, 4], True)
    """
    y = np.asarray(y)
    n = len(y)
    if cv is None:
        cv = 5
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv > n:
            raise ValueError(f"`{name}={cv}` folds exceed the {n} samples; use fewer folds.")
        splitter = StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    else:
        splitter = check_cv(cv, y, classifier=True)
    splits = [(np.sort(np.asarray(tr, dtype=np.int64)), np.sort(np.asarray(te, dtype=np.int64)))
              for tr, te in splitter.split(np.zeros((n, 1)), y)]
    if len(splits) < 2:
        raise ValueError(f"`{name}` gave {len(splits)} split; cross-fitting needs at least 2 folds.")
    counts = np.bincount(np.concatenate([te for _, te in splits]), minlength=n)
    if counts.shape[0] != n or not np.all(counts == 1):
        raise ValueError(
            f"The test parts of `{name}` must partition the samples (each sample in exactly one test part), as in "
            f"cross_val_predict; {int(np.sum(counts == 0))} samples are in none and {int(np.sum(counts > 1))} in "
            "several. Use a KFold-like splitter."
        )
    classes = np.unique(y)
    for k, (train, test) in enumerate(splits):
        if np.intersect1d(train, test).size:
            raise ValueError(f"Fold {k} of `{name}` has samples in both its train and its test part.")
        missing = np.setdiff1d(classes, y[train])
        if missing.size:
            raise ValueError(
                f"The training part of fold {k} of `{name}` holds no sample of class(es) {missing.tolist()}, so its "
                "model could not explain them; every class needs at least two samples, and more samples than "
                "folds to be in every training part. Use fewer folds, or pass a base model trained on other data "
                "as `estimator`."
            )
    return splits


def out_of_fold(X, y, splits, fit, compute):
    """Per-sample values, each computed by a model fit without that sample.

    Parameters
    ----------
    X : ndarray, tensor or torch Dataset
    y : ndarray of shape (n_samples,)
    splits : list of (train, test) index arrays, the test parts a partition
    fit : callable ``fit(X_train, y_train, fold) -> model``
    compute : callable ``compute(model, X_test) -> ndarray`` of shape ``(len(X_test), ...)``, or a tuple of them

    Returns
    -------
    values : ndarray of shape (n_samples, ...), or a tuple of them
        ``values[test]`` is ``compute(model_k, X[test])`` for the fold ``k`` holding the sample.
    models : list
        The fold models, in fold order.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.grouping._cross_fit import check_cv_splits, out_of_fold
    >>> y = np.arange(6) % 2
    >>> X = np.arange(6.0)[:, None]
    >>> splits = check_cv_splits(3, y, random_state=0)
    >>> values, models = out_of_fold(X, y, splits, lambda X, y, k: set(X[:, 0].tolist()),
    ...                              lambda seen, X: np.array([x in seen for x in X[:, 0]]))
    >>> values.any(), len(models)
    (np.False_, 3)
    """
    values, models, single = None, [], False
    for k, (train, test) in enumerate(splits):
        model = fit(_take(X, train), y[train], k)
        out = compute(model, _take(X, test))
        if not isinstance(out, tuple):
            out, single = (out,), True
        out = [np.asarray(o) for o in out]
        if values is None:
            values = [np.empty((len(y), *o.shape[1:]), dtype=o.dtype) for o in out]
        for v, o in zip(values, out):
            v[test] = o
        models.append(model)
    return (values[0] if single else tuple(values)), models


class CrossFittedModel:
    """The fold models of a cross-fitting as one base model, for a linear head fit on held-out embeddings.

    Every sample is embedded at fit by the one fold model that did not see it,
    ``f_k``; a head fit on embeddings from a model that trained on the same
    samples learns what that model memorised of them instead. Embeddings of
    different models live in different spaces, so the features are the fold
    models' embeddings side by side, ``K * d`` columns:

    * at fit (:meth:`fit_features`), a sample of fold ``k`` has its held-out
      embedding ``f_k(x)`` in block ``k`` and, in every other block ``j``,
      the mean ``m_j`` of block ``j`` over fold ``j``'s held-out samples;
    * for new samples (:meth:`embed`), block ``j`` is
      ``m_j + (f_j(x) - m_j) / K``.

    For any head affine in its input, ``a . z + c`` (a standardised logistic
    regression such as DFR's included), the output on a new sample is then
    exactly the average over folds of ``a_k . (f_k(x) - m_k) + const``: the
    head as it was fit on each fold's held-out embeddings, ensembled. The
    logits are the fold models' mean.

    Parameters
    ----------
    models : list of BaseModel
        The fold models, in fold order, all with the same logits.
    means : ndarray of shape (n_folds, n_features_per_model)
        ``m_k``: the mean embedding of fold ``k``'s held-out samples under its model.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skshortcut.base_model import as_base_model
    >>> from skshortcut.grouping._cross_fit import CrossFittedModel
    >>> from skshortcut.nets import SmallCNN
    >>> X = torch.rand(6, 3, 8, 8)
    >>> models = [as_base_model(SmallCNN(n_classes=2, width=4, n_blocks=2), X, device="cpu") for _ in range(2)]
    >>> folds = np.array([0, 1, 0, 1, 0, 1])
    >>> Z = np.stack([models[k].embed(X[i:i + 1])[0] for i, k in enumerate(folds)])
    >>> model = CrossFittedModel.from_out_of_fold(models, Z, folds)
    >>> model.fit_features(Z, folds).shape, model.embed(X).shape
    ((6, 16), (6, 16))
    """

    def __init__(self, models, means):
        self.models = list(models)
        self.means = np.asarray(means, dtype=np.float32)
        self.device = self.models[0].device
        self.classes = self.models[0].classes

    @classmethod
    def from_out_of_fold(cls, models, Z, folds):
        """From the held-out embeddings ``Z`` of the samples and the fold ``folds[i]`` of each."""
        means = np.stack([Z[folds == k].mean(axis=0) for k in range(len(models))])
        return cls(models, means)

    @property
    def n_folds(self) -> int:
        return len(self.models)

    @property
    def n_features(self) -> int:
        """``K * d``: the fold models' embeddings side by side."""
        return self.n_folds * self.models[0].n_features

    @property
    def n_outputs(self) -> int:
        return self.models[0].n_outputs

    def fit_features(self, Z, folds):
        """The features of the fitted samples: held-out embedding ``Z[i]`` in block ``folds[i]``, ``m_j`` elsewhere."""
        d = self.models[0].n_features
        F = np.repeat(self.means.reshape(1, -1), len(Z), axis=0)
        for k in range(self.n_folds):
            rows = np.flatnonzero(folds == k)
            F[rows, k * d : (k + 1) * d] = Z[rows]
        return F

    def embed(self, X, *, batch_size: int = 256, progress: bool = False, return_logits: bool = False,
              num_workers: int = 0, check_finite: bool = False):
        """Features of new samples, block ``j`` = ``m_j + (f_j(x) - m_j) / K``, and the mean logits."""
        blocks, logits = [], 0.0
        for m, model in zip(self.means, self.models):
            Z, out = model.embed(X, batch_size=batch_size, progress=progress, return_logits=True,
                                 num_workers=num_workers, check_finite=check_finite)
            blocks.append(m + (Z - m) / self.n_folds)
            logits = logits + out / self.n_folds
        F = np.concatenate(blocks, axis=1).astype(np.float32, copy=False)
        return (F, np.asarray(logits, dtype=np.float32)) if return_logits else F

    def logits(self, X, *, batch_size: int = 256) -> np.ndarray:
        """The fold models' mean logits."""
        return self.embed(X, batch_size=batch_size, return_logits=True)[1]

    def predict_index(self, X, *, batch_size: int = 256) -> np.ndarray:
        """Index of the largest mean logit."""
        from ..base_model import predicted_index

        return predicted_index(self.logits(X, batch_size=batch_size))

    def class_to_logit(self, classes) -> np.ndarray:
        """The logit of each class (the same in every fold model)."""
        index = self.models[0].class_to_logit(classes)
        for model in self.models[1:]:
            if not np.array_equal(model.class_to_logit(classes), index):
                raise ValueError("The fold models order their logits differently; they cannot be averaged.")
        return index
