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

__all__ = ["check_cv_splits", "out_of_fold"]


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
    compute : callable ``compute(model, X_test) -> ndarray`` of shape ``(len(X_test), ...)``

    Returns
    -------
    values : ndarray of shape (n_samples, ...)
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
    values, models = None, []
    for k, (train, test) in enumerate(splits):
        model = fit(_take(X, train), y[train], k)
        out = np.asarray(compute(model, _take(X, test)))
        if values is None:
            values = np.empty((len(y), *out.shape[1:]), dtype=out.dtype)
        values[test] = out
        models.append(model)
    return values, models
