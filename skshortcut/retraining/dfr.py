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
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import ShuffleSplit
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options

from .._balance import balanced_indices
from .._grouped import unpack_grouped
from .._skorch import DeviceConstraint
from .._validation import check_same_length
from ..base_model import predicted_index
from ..metrics import worst_group_accuracy
from ._inputs import _FeaturesOrImages
from ._l1_logistic import coef_and_intercept, fit_l1_logistic, l1_logistic, n_iter

__all__ = ["DFRRetrainer", "fit_l1_logistic"]

DEFAULT_CS = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)


class _PositiveFloats(Options):
    """A scikit-learn parameter constraint: a non-empty 1-D sequence of finite positive reals."""

    # scikit-learn takes only its own constraint classes: an ``Options`` whose
    # membership test checks the sequence instead of a fixed set.
    def __init__(self):
        super().__init__(object, set())

    def is_satisfied_by(self, val):
        if isinstance(val, (str, bytes)) or not np.iterable(val):
            return False
        if any(isinstance(v, (bool, np.bool_)) for v in val):
            return False
        try:
            arr = np.asarray(val, dtype=float)
        except (TypeError, ValueError):
            return False
        return arr.ndim == 1 and arr.size > 0 and bool(np.all(np.isfinite(arr) & (arr > 0)))

    def __str__(self):
        return "a non-empty sequence of positive floats"


def _decision(Z, mean, scale, coef, intercept):
    return ((Z - mean) / scale) @ coef.T + intercept


def _fit_balanced(Z, y, groups, idx_pool, C, n_classes, seed, min_group_size, max_iter, tol):
    """Group-balance ``idx_pool``, standardise, fit; return (mean, scale, coef, intercept, n_iter).

    Balancing keeps a member of every group of ``idx_pool``, so every class of
    ``idx_pool`` is in the balanced set.
    """
    rng = np.random.RandomState(seed)
    idx = idx_pool[balanced_indices(groups[idx_pool], rng, min_group_size=min_group_size)]
    scaler = StandardScaler().fit(Z[idx])
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = l1_logistic(C=C, n_classes=n_classes, max_iter=max_iter, tol=tol, random_state=seed)
    model.fit((Z[idx] - scaler.mean_) / scale, y[idx])
    coef, intercept = coef_and_intercept(model)
    return scaler.mean_, scale, coef, intercept, n_iter(model)


def _tuning_score(Z, y, groups, train_idx, test_idx, C, n_classes, seed, min_group_size, max_iter, tol):
    mean, scale, coef, intercept, _ = _fit_balanced(
        Z, y, groups, train_idx, C, n_classes, seed, min_group_size, max_iter, tol
    )
    pred = predicted_index(_decision(Z[test_idx], mean, scale, coef, intercept))
    return worst_group_accuracy(y[test_idx], pred, groups=groups[test_idx])


def _tuning_halves(n, seeds):
    """``(fit half, scoring half)`` of ``n`` samples for each seed, both sorted.

    One ``ShuffleSplit`` per seed, because the seed of a split also seeds the
    balancing and the fits on it. ``ShuffleSplit(test_size=n // 2)`` returns
    ``(permutation[n // 2:], permutation[:n // 2])``; DFR fits on the first
    ``n // 2`` samples of the permutation, that is on ShuffleSplit's *test*
    part, which keeps the results of the earlier hand-written permutation
    bit for bit.
    """
    halves = []
    for seed in seeds:
        split = ShuffleSplit(n_splits=1, test_size=n // 2, random_state=seed)
        score_half, fit_half = next(split.split(np.empty((n, 1))))
        halves.append((np.sort(fit_half), np.sort(score_half), seed))
    return halves


class DFRRetrainer(_FeaturesOrImages, ClassifierMixin, BaseEstimator):
    """Deep Feature Reweighting: retrain the last layer on group-balanced data.

    The procedure of the DFR authors' code (Kirichenko et al., ICLR 2023),
    as ExMap uses it (supplement sec. 2.3):

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
    More than two classes are fit one-vs-rest (liblinear is binary-only).

    Parameters
    ----------
    estimator : fitted skorch net, nn.Module, FrozenEstimator or None, default=None
        The base model whose head is retrained. ``None``: ``X`` is a feature
        matrix (for example embeddings from a grouper). Otherwise ``X`` holds
        images ``(n, channels, height, width)`` (or a torch Dataset of them),
        embedded by the model's feature extractor (the input of its last
        linear layer) in batches. :func:`~sklearn.base.clone` (and so
        ``cross_validate`` and ``GridSearchCV``) replaces a fitted skorch net
        by an unfitted copy; pass ``FrozenEstimator(fitted_net)``
        (:class:`sklearn.frozen.FrozenEstimator`) to keep it.
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
        Where images are embedded.
    max_iter : int, default=1000
        liblinear iterations.
    tol : float, default=1e-4
        liblinear's stopping tolerance.
    n_jobs : int or None, default=None
        Parallel fits through joblib (tuning fits and final retrains); the
        result does not depend on it.
    random_state : int, RandomState or None, default=None
        Seeds the half splits, the balanced subsamples and liblinear.
    verbose : int, default=0
        ``>= 1`` shows progress bars.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Averaged weights, on standardised features (embeddings, with ``estimator``).
    intercept_ : ndarray of shape (1,) or (n_classes,)
    scaler_mean_, scaler_scale_ : ndarray of shape (n_features,)
        Averaged standardisation.
    best_C_ : float
    cv_scores_ : dict
        ``{C: summed worst-group accuracy over the tuning splits}``; a split
        whose fit half misses a class is left out (with a warning).
    balanced_on_ : {"groups", "classes"}
    n_iter_ : ndarray of shape (n_retrains,)
        liblinear iterations of each final retrain (the most over its
        one-vs-rest models); ``max_iter`` means it did not converge.
    n_features_in_ : int
        Number of features of ``X`` (without ``estimator``).
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Column names of ``X``, when it is a data frame with string column names.
    input_shape_ : tuple (channels, height, width)
        Shape of one image of ``X`` (with ``estimator``).
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

    A fitted base model kept through ``clone``, as in a cross-validation:

    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.model_selection import cross_val_score
    >>> from skshortcut import ERMClassifier
    >>> X = rng.rand(120, 3, 8, 8).astype("float32"); X[:, 0] += y[:120, None, None]
    >>> erm = ERMClassifier(max_epochs=1, module__width=4, device="cpu", random_state=0).fit(X, y[:120])
    >>> dfr = DFRRetrainer(FrozenEstimator(erm), Cs=[1.0], n_retrains=2, device="cpu", random_state=0)
    >>> cross_val_score(dfr, X, y[:120], cv=2, params={"groups": y[:120]}).shape
    (2,)
    """

    __metadata_request__fit = {"groups": True}

    _parameter_constraints: dict = {
        # `as_base_model` checks it at fit, naming the kinds of model it takes
        "estimator": "no_validation",
        "Cs": [_PositiveFloats()],
        "n_tuning_splits": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_retrains": [Interval(numbers.Integral, 1, None, closed="left")],
        "min_group_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "head": [None, str],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [DeviceConstraint()],
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # with a base model, X holds images (4-D) or a Dataset, not a feature table
        tags.input_tags.two_d_array = self.estimator is None
        return tags

    def _usable_halves(self, halves, y_idx, n_classes):
        """The tuning splits whose fit half holds every class; a warning for the others.

        A split left out scores no ``C``, so it does not bias the choice of ``best_C_``.
        """
        usable = [h for h in halves if len(np.unique(y_idx[h[0]])) == n_classes]
        if not usable:
            counts = dict(zip(self.classes_.tolist(), np.bincount(y_idx, minlength=n_classes).tolist()))
            raise ValueError(
                f"In each of the {len(halves)} random halves of the tuning splits a class is missing, so no C can "
                f"be scored (samples per class: {counts}). Use more retraining data, more `n_tuning_splits`, or "
                "a single C (`Cs=[C]`), which skips tuning."
            )
        if len(usable) < len(halves):
            warnings.warn(
                f"{len(halves) - len(usable)} of {len(halves)} random tuning halves miss a class; `best_C_` is "
                f"chosen on the other {len(usable)}. A class has few samples: consider more retraining data.",
                UserWarning,
                stacklevel=4,
            )
        return usable

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
            Features, or images ``(n, channels, height, width)`` when ``estimator`` is given.
        y : array-like of shape (n_samples,)
            Class labels.
        groups : array-like of shape (n_samples,), optional
            Group of each sample. Taken from ``X`` when it is a GroupedData.

        Returns
        -------
        self
        """
        X, groups = unpack_grouped(X, groups)
        Cs = np.asarray(self.Cs, dtype=float).ravel()
        Z, y = self._fit_inputs(X, y)
        check_same_length(X=Z, y=y, groups=groups)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"`y` holds one class ({self.classes_.tolist()}); DFRRetrainer needs at least two.")
        y_idx = encoder.transform(y)
        if groups is None:
            warnings.warn(
                "No groups given: balancing classes instead (class-balanced DFR). Pass `groups=` or a "
                "GroupedData (e.g. from ExMapGrouper) for group-balanced retraining.",
                UserWarning,
                stacklevel=3,
            )
            g = y_idx
            self.balanced_on_ = "classes"
        else:
            g = np.unique(groups, return_inverse=True)[1]
            self.balanced_on_ = "groups"
        rng = check_random_state(self.random_state)
        n = len(y_idx)
        split_seeds = rng.randint(0, 2**31 - 1, size=self.n_tuning_splits)
        retrain_seeds = rng.randint(0, 2**31 - 1, size=self.n_retrains)
        common = dict(n_classes=n_classes, min_group_size=self.min_group_size, max_iter=self.max_iter, tol=self.tol)

        self.cv_scores_ = {}
        if len(Cs) > 1:
            halves = self._usable_halves(_tuning_halves(n, split_seeds), y_idx, n_classes)
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
        self.n_iter_ = np.array([f[4] for f in fits], dtype=np.int64)
        return self

    # ------------------------------------------------------------------ predict
    def decision_function(self, X):
        """Scores of the averaged linear model.

        Parameters
        ----------
        X : array-like, images, Dataset or GroupedData
            As in ``fit``; of a GroupedData only the samples are read.

        Returns
        -------
        ndarray of shape (n_samples,) for two classes (the score of ``classes_[1]``), else (n_samples, n_classes)
        """
        Z = self._predict_features(X)
        scores = _decision(Z, self.scaler_mean_, self.scaler_scale_, self.coef_, self.intercept_)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities: logistic, normalised over the one-vs-rest models beyond two classes.

        Parameters
        ----------
        X : array-like, images, Dataset or GroupedData

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        # computed from the averaged coefficients, the normalisation of
        # OneVsRestClassifier.predict_proba (which needs the fitted models)
        scores = self.decision_function(X)
        p = expit(scores)
        if scores.ndim == 1:
            return np.c_[1 - p, p]
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like, images, Dataset or GroupedData

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        index = predicted_index(self.decision_function(X))
        return self.classes_[index]
