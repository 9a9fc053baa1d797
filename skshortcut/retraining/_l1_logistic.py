"""L1-penalised logistic regression (liblinear), the classifier of DFR, on every supported scikit-learn.

scikit-learn changed how the penalty is chosen: before 1.8 ``penalty=`` selects
it (default ``"l2"``) and ``l1_ratio`` is read only with
``penalty="elasticnet"``, so ``l1_ratio=1`` alone fits an L2 model there; from
1.8 ``penalty`` is deprecated and ``l1_ratio=1`` means L1. :func:`l1_penalty_params`
reads the installed ``LogisticRegression``'s signature and returns what selects
L1 on it, so the model is L1 (sparse) on every version without a deprecation
warning.

liblinear is binary-only: more than two classes go through scikit-learn's
:class:`~sklearn.multiclass.OneVsRestClassifier` (one binary model per class
against the rest), as in the DFR authors' code.
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

__all__ = ["l1_penalty_params", "l1_logistic", "coef_and_intercept", "fit_l1_logistic"]


def l1_penalty_params(estimator_class=LogisticRegression) -> dict:
    """Keyword arguments that select a pure L1 penalty in ``estimator_class``.

    Parameters
    ----------
    estimator_class : type, default=LogisticRegression
        scikit-learn's ``LogisticRegression`` (or a class with its signature).

    Returns
    -------
    dict
        ``{"l1_ratio": 1.0}`` where ``penalty`` is deprecated (its default is
        ``"deprecated"``, scikit-learn >= 1.8) or gone; ``{"penalty": "l1"}``
        where it still selects the penalty (scikit-learn < 1.8, where
        ``l1_ratio`` alone is ignored and the model is L2).

    Examples
    --------
    >>> from skshortcut.retraining._l1_logistic import l1_penalty_params
    >>> l1_penalty_params() in ({"l1_ratio": 1.0}, {"penalty": "l1"})
    True
    """
    penalty = inspect.signature(estimator_class).parameters.get("penalty")
    if penalty is None or penalty.default == "deprecated":
        return {"l1_ratio": 1.0}
    return {"penalty": "l1"}


def l1_logistic(*, C, n_classes=2, max_iter=1000, tol=1e-4, random_state=None):
    """An unfitted L1 logistic regression with liblinear; one-vs-rest beyond two classes.

    Parameters
    ----------
    C : float
        Inverse regularisation strength.
    n_classes : int, default=2
    max_iter : int, default=1000
        liblinear iterations.
    tol : float, default=1e-4
    random_state : int, RandomState or None
        liblinear's shuffling of the data.

    Returns
    -------
    LogisticRegression or OneVsRestClassifier

    Examples
    --------
    >>> from skshortcut.retraining._l1_logistic import l1_logistic
    >>> type(l1_logistic(C=0.1)).__name__, type(l1_logistic(C=0.1, n_classes=3)).__name__
    ('LogisticRegression', 'OneVsRestClassifier')
    """
    model = LogisticRegression(
        C=C,
        solver="liblinear",
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        **l1_penalty_params(LogisticRegression),
    )
    return model if n_classes == 2 else OneVsRestClassifier(model)


def _binary_models(model):
    return model.estimators_ if isinstance(model, OneVsRestClassifier) else [model]


def coef_and_intercept(model):
    """``(coef, intercept)`` of a fitted :func:`l1_logistic` model, one row per class beyond two.

    Returns
    -------
    coef : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept : ndarray of shape (1,) or (n_classes,)

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining._l1_logistic import coef_and_intercept, l1_logistic
    >>> Z = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]]); y = np.array([0, 0, 1, 1, 2, 2])
    >>> coef, intercept = coef_and_intercept(l1_logistic(C=1.0, n_classes=3).fit(Z, y))
    >>> coef.shape, intercept.shape
    ((3, 1), (3,))
    """
    models = _binary_models(model)
    return np.vstack([m.coef_ for m in models]), np.concatenate([m.intercept_ for m in models])


def n_iter(model) -> int:
    """The largest number of liblinear iterations over the binary models of a fitted :func:`l1_logistic`."""
    return int(max(np.max(m.n_iter_) for m in _binary_models(model)))


def fit_l1_logistic(Z, y, *, C, n_classes, max_iter=1000, tol=1e-4, random_state=None):
    """L1-penalised logistic regression with liblinear (one-vs-rest beyond two classes).

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
    y : ndarray of int in ``range(n_classes)``
        Every class must be present.
    C : float
        Inverse regularisation strength.
    n_classes : int
    max_iter : int, default=1000
    tol : float, default=1e-4
    random_state : int, RandomState or None

    Returns
    -------
    coef : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept : ndarray of shape (1,) or (n_classes,)

    Raises
    ------
    ValueError
        If ``y`` does not hold every class of ``range(n_classes)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.dfr import fit_l1_logistic
    >>> rng = np.random.RandomState(0)
    >>> Z = rng.normal(size=(200, 20)); y = (Z[:, 0] > 0).astype(int)
    >>> coef, intercept = fit_l1_logistic(Z, y, C=0.05, n_classes=2)
    >>> coef.shape, int((coef != 0).sum()) < 5
    ((1, 20), True)
    """
    present = np.unique(y)
    if not np.array_equal(present, np.arange(n_classes)):
        raise ValueError(
            f"`y` must hold every class of range({n_classes}) (the classes' indices); it holds {present.tolist()}."
        )
    model = l1_logistic(C=C, n_classes=n_classes, max_iter=max_iter, tol=tol, random_state=random_state)
    return coef_and_intercept(model.fit(Z, y))
