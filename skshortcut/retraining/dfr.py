"""``DFRRetrainer``: Deep Feature Reweighting, last-layer retraining on group-balanced data.

Kirichenko et al., *Last Layer Re-Training is Sufficient for Robustness to
Spurious Correlations* (ICLR 2023), as used by ExMap (Chakraborty et al.,
CVPR 2024, supplement sec. 2.3) and as the oracle of Mask-and-Combine.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._balance import balanced_indices
from .._grouped import unpack_grouped
from ..base_model import as_base_model
from .._validation import check_labels, check_same_length
from ..metrics import worst_group_accuracy

__all__ = ["DFRRetrainer", "fit_l1_logistic"]

DEFAULT_CS = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)


def fit_l1_logistic(Z, y, *, C, n_classes, max_iter=1000, tol=1e-4, random_state=None):
    """L1-penalised logistic regression with liblinear (one-vs-rest beyond two classes).

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
    y : ndarray of int in ``range(n_classes)``
    C : float
        Inverse regularisation strength.
    n_classes : int

    Returns
    -------
    coef : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept : ndarray of shape (1,) or (n_classes,)
    """

    def one(target):
        model = LogisticRegression(
            C=C, l1_ratio=1.0, solver="liblinear", max_iter=max_iter, tol=tol, random_state=random_state
        )
        model.fit(Z, target)
        return model.coef_[0], model.intercept_[0]

    if n_classes == 2:
        coef, intercept = one(y)
        return coef[None, :], np.array([intercept])
    pairs = [one((y == k).astype(int)) for k in range(n_classes)]
    return np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def _decision(Z, mean, scale, coef, intercept):
    return ((Z - mean) / scale) @ coef.T + intercept


def _predict_index(scores):
    if scores.shape[1] == 1:
        return (scores[:, 0] > 0).astype(np.int64)
    return scores.argmax(axis=1)


def _fit_balanced(Z, y, groups, idx_pool, C, n_classes, seed, min_group_size, max_iter, tol):
    """Group-balance ``idx_pool``, standardise, fit; return (mean, scale, coef, intercept)."""
    rng = np.random.RandomState(seed)
    idx = idx_pool[balanced_indices(groups[idx_pool], rng, min_group_size=min_group_size)]
    present = np.unique(y[idx])
    if len(present) < 2:
        raise ValueError(
            "After group balancing the retraining set holds a single class "
            f"({present.tolist()}); each class needs at least one group with samples. "
            "Check the groups, or use more retraining data."
        )
    scaler = StandardScaler().fit(Z[idx])
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    coef, intercept = fit_l1_logistic(
        (Z[idx] - scaler.mean_) / scale, y[idx], C=C, n_classes=n_classes, max_iter=max_iter, tol=tol, random_state=seed
    )
    return scaler.mean_, scale, coef, intercept


def _tuning_score(Z, y, groups, train_idx, test_idx, C, n_classes, seed, min_group_size, max_iter, tol):
    mean, scale, coef, intercept = _fit_balanced(Z, y, groups, train_idx, C, n_classes, seed, min_group_size, max_iter, tol)
    pred = _predict_index(_decision(Z[test_idx], mean, scale, coef, intercept))
    return worst_group_accuracy(y[test_idx], pred, groups=groups[test_idx])


class DFRRetrainer(ClassifierMixin, BaseEstimator):
    """Deep Feature Reweighting: retrain the last layer on group-balanced data.

    The procedure of the DFR authors' code, as ExMap uses it:

    1. **Tuning.** For each inverse L1 strength ``C`` in ``Cs``, split the
       retraining data ``n_tuning_splits`` times in random halves; group-balance
       one half (every group cut to the size of the smallest group, groups with
       fewer than ``min_group_size`` members left out of that minimum), fit a
       standard scaler and an L1 logistic regression on it, and score the
       worst-group accuracy on the other half. ``best_C_`` has the best summed
       score.
    2. **Final model.** ``n_retrains`` times, draw a fresh group-balanced
       subsample of all retraining data, standardise and fit with ``best_C_``;
       average ``coef_``, ``intercept_`` and the standardisation.

    Groups come from ``fit(..., groups=)`` or from a :class:`~skshortcut.GroupedData`
    input (for example the pseudo-groups of :class:`~skshortcut.ExMapGrouper`).
    Without groups it balances classes instead ("class-balanced DFR") and warns.

    Parameters
    ----------
    estimator : fitted skorch net, nn.Module or None, default=None
        The base model whose head is retrained. ``None``: ``X`` is already a
        feature matrix (for example embeddings from a grouper). Otherwise
        ``X`` holds images, embedded by the model's feature extractor (the
        input of its last linear layer) in batches.
    Cs : sequence of float, default=(1, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
        Inverse L1 strengths to tune over (the DFR grid).
    n_tuning_splits : int, default=5
        Random half splits per ``C``.
    n_retrains : int, default=20
        Balanced subsamples averaged in the final model.
    min_group_size : int, default=6
        Groups smaller than this do not set the balanced size (ExMap's rule:
        groups of 5 or fewer members are left out when the minimum is taken).
    head : str, optional
        Name of the base model's linear head, if it cannot be found in forward order.
    batch_size : int, default=256
        Batch size for embedding images.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    max_iter : int, default=1000
        liblinear iterations.
    tol : float, default=1e-4
    n_jobs : int or None, default=None
        Parallel fits through joblib (tuning fits and final retrains).
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        ``>= 1`` shows progress bars.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Averaged weights, on standardised features.
    intercept_ : ndarray of shape (1,) or (n_classes,)
    scaler_mean_, scaler_scale_ : ndarray of shape (n_features,)
        Averaged standardisation.
    best_C_ : float
    cv_scores_ : dict
        ``{C: summed worst-group accuracy over the tuning splits}``.
    balanced_on_ : {"groups", "classes"}
    n_features_in_ : int
    base_model_ : BaseModel or None
        The adapter used to embed images, when ``estimator`` is given.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import DFRRetrainer
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 400)
    >>> spurious = np.where(rng.rand(400) < 0.9, y, 1 - y)
    >>> Z = np.c_[y + rng.normal(0, 0.8, 400), 3 * spurious + rng.normal(0, 0.3, 400)]
    >>> dfr = DFRRetrainer(random_state=0).fit(Z, y, groups=2 * y + spurious)
    >>> dfr.best_C_ in dfr.Cs
    True
    """

    __metadata_request__fit = {"groups": True}

    _parameter_constraints: dict = {
        "estimator": "no_validation",
        "Cs": ["array-like"],
        "n_tuning_splits": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_retrains": [Interval(numbers.Integral, 1, None, closed="left")],
        "min_group_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "head": [None, str],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": "no_validation",
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_jobs": [None, numbers.Integral],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        Cs=DEFAULT_CS,
        n_tuning_splits=5,
        n_retrains=20,
        min_group_size=6,
        head=None,
        batch_size=256,
        device="auto",
        max_iter=1000,
        tol=1e-4,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.Cs = Cs
        self.n_tuning_splits = n_tuning_splits
        self.n_retrains = n_retrains
        self.min_group_size = min_group_size
        self.head = head
        self.batch_size = batch_size
        self.device = device
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ helpers
    def _features(self, X, *, fitting):
        """Embeddings of images through the base model, or the validated feature matrix."""
        if self.estimator is not None:
            if fitting:
                self.base_model_ = as_base_model(self.estimator, X, head=self.head, device=self.device)
            return self.base_model_.embed(X, batch_size=self.batch_size, progress=bool(self.verbose))
        if fitting:
            self.base_model_ = None
        if getattr(X, "ndim", 2) != 2 and not hasattr(X, "__len__"):
            raise TypeError(f"`X` must be a 2-D feature matrix; got {type(X).__name__}.")
        arr = np.asarray(X) if not hasattr(X, "detach") else X.detach().cpu().numpy()
        if arr.ndim != 2:
            raise ValueError(
                f"`X` has shape {arr.shape}; without `estimator`, DFRRetrainer expects a 2-D feature "
                "matrix (n_samples, n_features). To retrain on images, pass the base model as `estimator=`."
            )
        return check_array(arr, dtype=np.float64)

    def _parallel(self, tasks, desc):
        from tqdm.auto import tqdm

        tasks = list(tasks)
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks)
        return list(tqdm(results, total=len(tasks), desc=desc, disable=not self.verbose, leave=False))

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None):
        """Tune ``C`` on half splits, then average retrains on balanced subsamples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), images, Dataset or GroupedData
            Features, or images when ``estimator`` is given.
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Group of each sample. Taken from ``X`` when it is a GroupedData.

        Returns
        -------
        self
        """
        X, groups = unpack_grouped(X, groups)
        Cs = np.asarray(self.Cs, dtype=float).ravel()
        if Cs.size == 0 or np.any(Cs <= 0):
            raise ValueError(f"`Cs` must be a non-empty sequence of positive floats; got {self.Cs!r}.")
        y = check_labels(y, "y")
        Z = self._features(X, fitting=True)
        check_same_length(X=Z, y=y, groups=groups)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError("`y` has a single class; DFR needs at least two.")
        y_idx = encoder.transform(y)
        n_classes = len(self.classes_)
        if groups is None:
            warnings.warn(
                "No groups given: balancing classes instead (class-balanced DFR). Pass `groups=` or a "
                "GroupedData (e.g. from ExMapGrouper) for group-balanced retraining.",
                UserWarning,
                stacklevel=2,
            )
            g = y_idx
            self.balanced_on_ = "classes"
        else:
            g = np.unique(groups, return_inverse=True)[1]
            self.balanced_on_ = "groups"
        self.n_features_in_ = Z.shape[1]
        rng = check_random_state(self.random_state)
        n = len(y_idx)
        split_seeds = rng.randint(0, 2**31 - 1, size=self.n_tuning_splits)
        retrain_seeds = rng.randint(0, 2**31 - 1, size=self.n_retrains)
        common = dict(n_classes=n_classes, min_group_size=self.min_group_size, max_iter=self.max_iter, tol=self.tol)

        self.cv_scores_ = {}
        if len(Cs) > 1:
            halves = []
            for seed in split_seeds:
                perm = np.random.RandomState(seed).permutation(n)
                halves.append((np.sort(perm[: n // 2]), np.sort(perm[n // 2 :]), seed))
            tasks = (
                delayed(_tuning_score)(Z, y_idx, g, tr, te, C, seed=seed, **common) for C in Cs for tr, te, seed in halves
            )
            scores = np.asarray(self._parallel(tasks, "tuning C")).reshape(len(Cs), len(halves))
            self.cv_scores_ = {float(C): float(s) for C, s in zip(Cs, scores.sum(axis=1))}
            self.best_C_ = float(Cs[int(np.argmax(scores.sum(axis=1)))])
        else:
            self.best_C_ = float(Cs[0])

        all_idx = np.arange(n)
        tasks = (delayed(_fit_balanced)(Z, y_idx, g, all_idx, self.best_C_, seed=seed, **common) for seed in retrain_seeds)
        fits = self._parallel(tasks, "retraining")
        self.scaler_mean_ = np.mean([f[0] for f in fits], axis=0)
        self.scaler_scale_ = np.mean([f[1] for f in fits], axis=0)
        self.coef_ = np.mean([f[2] for f in fits], axis=0)
        self.intercept_ = np.mean([f[3] for f in fits], axis=0)
        return self

    # ------------------------------------------------------------------ predict
    def decision_function(self, X):
        """Scores of the averaged linear model: shape (n,) for two classes, else (n, n_classes)."""
        check_is_fitted(self, "coef_")
        X, _ = unpack_grouped(X)
        Z = self._features(X, fitting=False)
        if Z.shape[1] != self.n_features_in_:
            raise ValueError(f"`X` has {Z.shape[1]} features; the model was fit on {self.n_features_in_}.")
        scores = _decision(Z, self.scaler_mean_, self.scaler_scale_, self.coef_, self.intercept_)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities (logistic; one-vs-rest normalised beyond two classes)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-scores))
            return np.c_[1 - p, p]
        p = 1.0 / (1.0 + np.exp(-scores))
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted class labels."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]
