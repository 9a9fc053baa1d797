"""``AFRRetrainer``: Automatic Feature Reweighting of the last layer.

Qiu, Potapczynski, Izmailov and Wilson, *Simple and Fast Group Robustness by
Automatic Feature Reweighting* (ICML 2023).
"""

from __future__ import annotations

import numbers

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import _fit_context
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from .._grouped import unpack_grouped
from .._validation import check_labels
from ..metrics import worst_group_accuracy
from ._last_layer import LastLayerRetrainer, fit_linear_head

__all__ = ["AFRRetrainer", "afr_weights"]

DEFAULT_GAMMAS = (0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 14.0, 20.0)
DEFAULT_LAMBDAS = (0.0, 0.01, 0.1, 0.2, 0.4)


def afr_weights(proba_true, y, gamma):
    """AFR's per-sample weights (Qiu et al., Eq. 3).

    .. math:: w_i = \\beta_{y_i} \\exp(-\\gamma \\, \\hat p_i), \\qquad
              \\beta_c = \\frac{1}{C \\sum_{j: y_j = c} \\exp(-\\gamma \\, \\hat p_j)}

    ``hat p_i`` is the base model's probability of the true class of sample
    ``i``; ``beta`` gives every one of the ``C`` classes present the same
    total weight ``1 / C``, so the weights sum to one.

    Parameters
    ----------
    proba_true : array-like of shape (n_samples,)
        The base model's probability of each sample's true class.
    y : array-like of shape (n_samples,)
        Class of each sample (any labels).
    gamma : float
        Temperature; ``0`` gives class-balanced uniform weights.

    Returns
    -------
    ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.afr import afr_weights
    >>> w = afr_weights(np.array([0.9, 0.1, 0.5, 0.5]), np.array([0, 0, 1, 1]), gamma=2.0)
    >>> float(w[:2].sum()), float(w[2:].sum()), bool(w[1] > w[0])
    (0.5, 0.5, True)
    """
    p = np.asarray(proba_true, dtype=np.float64)
    y = np.asarray(y)
    classes, inv = np.unique(y, return_inverse=True)
    # exp(-gamma p) scaled per class by exp(gamma min_c p): the same weights after the per-class
    # normalisation, without overflow or a class total of zero at large gamma
    p_min = np.full(len(classes), np.inf)
    np.minimum.at(p_min, inv, p)
    raw = np.exp(-gamma * (p - p_min[inv]))
    totals = np.bincount(inv, weights=raw, minlength=len(classes))
    return raw / (len(classes) * totals[inv])


def _fit_one(Z, y, proba_true, gamma, lam, n_classes, W0, b0, max_iter, tol):
    w = afr_weights(proba_true, y, gamma)
    return fit_linear_head(
        Z, y, w, n_classes=n_classes, coef_init=W0, intercept_init=b0, center=(W0, b0), l2=lam, max_iter=max_iter, tol=tol,
        return_n_iter=True,
    )


class AFRRetrainer(LastLayerRetrainer):
    """Automatic Feature Reweighting: retrain the last layer on the base model's hard examples.

    The second stage of AFR (Qiu et al., ICML 2023). On held-out data (the
    data given to ``fit``, not used to train the base model), each sample gets
    the weight

    .. math:: w_i = \\beta_{y_i} \\exp(-\\gamma \\, \\hat p_i)

    where ``hat p_i`` is the base model's probability of the true class and
    ``beta`` gives each class the same total weight (Eq. 3, :func:`afr_weights`).
    The head ``(W, b)``, started at the base model's head ``(W_0, b_0)``, minimises

    .. math:: \\sum_i w_i \\, \\mathrm{CE}(W z_i + b, y_i) + \\lambda (\\lVert W - W_0 \\rVert^2 + \\lVert b - b_0 \\rVert^2)

    by full-batch L-BFGS (the authors train full-batch too), deterministic.
    Samples the base model gets right and confidently (the majority groups)
    weigh little, so the head shifts towards features that also serve the
    minority groups. No group labels are used for training.

    ``gamma`` and ``lambda`` are chosen on the grid ``gammas x lambdas`` by
    validation worst-group accuracy when groups are given, else by worst-class
    accuracy (Yang et al., ICML 2023, found it a good proxy). The validation
    data is ``fit(..., validation_data=)`` when given; otherwise a stratified
    ``validation_fraction`` of the fit data is held out for the choice and the
    final head is refit on all of it. Groups only ever score the validation data.

    Parameters
    ----------
    estimator : torch model, scikit-learn classifier or None, default=None
        The base model. A fitted skorch net or ``nn.Module`` (or either in a
        ``FrozenEstimator``): ``X`` holds images, embedded by everything
        before the last linear layer; ``W_0`` is that layer. A scikit-learn
        classifier on the features: its ``predict_proba`` gives ``hat p``, its
        ``coef_`` / ``intercept_`` (when linear) ``W_0``; a fitted one is used
        as it is, an unfitted one is cloned and first fit on the data given
        to ``fit`` (``estimator_``). The authors' protocol trains the base
        model on *other* data than the reweighted set, so that ``hat p`` is
        honest on it; a base model fit on the same data is more confident
        there (``hat p`` near 1, smaller weights for its errors), a
        convenience for pipelines and checks rather than the method as
        published. ``None``: ``X`` is a feature matrix and ``fit(...,
        base_logits=)`` gives ``hat p`` (without ``base_logits``, an error);
        ``W_0 = 0``.
    gammas : sequence of float >= 0, default=(0, 1, 2, 4, 6, 8, 10, 14, 20)
        Weight temperatures to choose from (the authors picked 14 on
        Waterbirds, 1.8 on CelebA).
    lambdas : sequence of float >= 0, default=(0, 0.01, 0.1, 0.2, 0.4)
        Strengths of the pull towards the base head (the authors: 0.2, 0).
    validation_fraction : float in (0, 1), default=0.3
        Share of the fit data held out to choose ``gamma`` and ``lambda``
        when no ``validation_data`` is given and the grid has more than one point.
    head : str, optional
        Name of the base model's linear head, if it cannot be found in forward order.
    batch_size : int, default=256
        Batch size for embedding images.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    max_iter : int, default=500
        L-BFGS iterations per fit.
    tol : float, default=1e-7
        L-BFGS gradient tolerance.
    n_jobs : int or None, default=None
        Parallel grid fits through joblib; the result does not depend on it.
    random_state : int, RandomState or None, default=None
        Seeds the validation split.
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    init_coef_, init_intercept_ : ndarray
        The base head ``W_0``, ``b_0`` in class order.
    best_gamma_, best_lambda_ : float
    cv_scores_ : dict
        ``{(gamma, lambda): validation score}`` (empty for a one-point grid).
    selected_on_ : {"worst-group", "worst-class", None}
    sample_weight_ : ndarray of shape (n_samples,)
        The final AFR weights of the fit data.
    n_iter_ : int
        L-BFGS iterations of the final head's fit.
    estimator_ : scikit-learn classifier or None
        The scikit-learn base classifier used (the fitted clone of an
        unfitted ``estimator``); None for a torch model or ``estimator=None``.
    n_features_in_ : int
    feature_names_in_ : ndarray, only for feature matrices with column names
    base_model_ : BaseModel or None

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skshortcut.retraining import AFRRetrainer
    >>> rng = np.random.RandomState(0)
    >>> def data(n, agree):
    ...     y = rng.randint(0, 2, n); s = np.where(rng.rand(n) < agree, y, 1 - y)
    ...     return np.c_[y + rng.normal(0, 0.6, n), 3 * s + rng.normal(0, 0.3, n)], y, 2 * y + s
    >>> Z_tr, y_tr, _ = data(1000, 0.95); Z_ho, y_ho, g_ho = data(600, 0.95)
    >>> base = LogisticRegression().fit(Z_tr, y_tr)
    >>> afr = AFRRetrainer(base, random_state=0).fit(Z_ho, y_ho, groups=g_ho)
    >>> afr.best_gamma_ in afr.gammas, afr.selected_on_
    (True, 'worst-group')

    An unfitted classifier is fit on the same data first (a convenience: its
    probabilities there are overconfident):

    >>> afr = AFRRetrainer(LogisticRegression(), gammas=(4.0,), lambdas=(0.0,)).fit(Z_ho, y_ho)
    >>> afr.estimator_.classes_.tolist(), afr.n_iter_ > 0
    ([0, 1], True)
    """

    _parameter_constraints: dict = {
        "estimator": "no_validation",
        "gammas": ["array-like"],
        "lambdas": ["array-like"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
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
        gammas=DEFAULT_GAMMAS,
        lambdas=DEFAULT_LAMBDAS,
        validation_fraction=0.3,
        head=None,
        batch_size=256,
        device="auto",
        max_iter=500,
        tol=1e-7,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.gammas = gammas
        self.lambdas = lambdas
        self.validation_fraction = validation_fraction
        self.head = head
        self.batch_size = batch_size
        self.device = device
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @staticmethod
    def _grid(values, name):
        arr = np.asarray(values, dtype=float).ravel() if np.ndim(values) else np.asarray([values], dtype=float)
        if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"`{name}` must be a non-empty sequence of finite floats >= 0; got {values!r}.")
        return arr

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, *, base_logits=None, validation_data=None):
        """Weight the fit data by the base model's confidence, choose ``gamma`` and ``lambda``, retrain.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), images, Dataset or GroupedData
            Held-out data: features, or images when ``estimator`` is a torch model.
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Groups of ``X``, used only to score the internal validation split
            (worst-group accuracy). Ignored for the choice when
            ``validation_data`` is given.
        base_logits : array-like of shape (n_samples, n_classes) or (n_samples,), optional
            The base model's logits on ``X`` (classes in sorted order; one
            column: the score of the second class), when ``estimator`` is None.
        validation_data : tuple ``(X_val, y_val)`` or ``(X_val, y_val, groups_val)``, optional
            Data to choose ``gamma`` and ``lambda`` on (worst-group accuracy
            with ``groups_val``, worst-class accuracy without).

        Returns
        -------
        self
        """
        gammas = self._grid(self.gammas, "gammas")
        lambdas = self._grid(self.lambdas, "lambdas")
        Z, y_idx, groups, proba = self._fit_inputs(X, y, groups, base_logits=base_logits, need_proba=True)
        p_true = proba[np.arange(len(y_idx)), y_idx]
        k = len(self.classes_)
        W0, b0 = self.init_coef_, self.init_intercept_
        common = dict(n_classes=k, W0=W0, b0=b0, max_iter=self.max_iter, tol=self.tol)
        grid = [(float(g), float(lam)) for g in gammas for lam in lambdas]
        self.cv_scores_ = {}
        self.selected_on_ = None
        final = None

        if len(grid) > 1:
            if validation_data is not None:
                Zv, yv, gv = self._validation_split(validation_data)
                tr = np.arange(len(y_idx))
            else:
                strat = groups if groups is not None else y_idx
                _, counts = np.unique(strat, return_counts=True)
                tr, va = train_test_split(
                    np.arange(len(y_idx)), test_size=self.validation_fraction, random_state=check_random_state(self.random_state),
                    stratify=strat if counts.min() >= 2 else None,
                )
                if len(np.unique(y_idx[tr])) < k:
                    raise ValueError(
                        f"The training part of the validation split holds {len(np.unique(y_idx[tr]))} of {k} classes; "
                        "use more data, a smaller `validation_fraction`, or pass `validation_data`."
                    )
                Zv, yv, gv = Z[va], y_idx[va], None if groups is None else groups[va]
            fits = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_one)(Z[tr], y_idx[tr], p_true[tr], g, lam, **common) for g, lam in grid
            )
            on_groups = gv is not None
            scores = []
            for coef, intercept, _ in fits:
                pred = (Zv @ coef.T + intercept).argmax(axis=1)
                scores.append(worst_group_accuracy(yv, pred, groups=gv if on_groups else yv))
            self.cv_scores_ = dict(zip(grid, map(float, scores)))
            best = int(np.argmax(scores))
            self.selected_on_ = "worst-group" if on_groups else "worst-class"
            self.best_gamma_, self.best_lambda_ = grid[best]
            if validation_data is not None:  # the grid was fit on all of X already
                final = fits[best]
        else:
            self.best_gamma_, self.best_lambda_ = grid[0]
        if final is None:
            final = _fit_one(Z, y_idx, p_true, self.best_gamma_, self.best_lambda_, **common)
        self.coef_, self.intercept_, self.n_iter_ = final
        self.sample_weight_ = afr_weights(p_true, y_idx, self.best_gamma_)
        return self

    def _validation_split(self, validation_data):
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "`validation_data` must be a tuple (X_val, y_val) or (X_val, y_val, groups_val); "
                f"got {type(validation_data).__name__}."
            )
        Xv, yv, *rest = validation_data
        Xv, gv = unpack_grouped(Xv, rest[0] if rest and rest[0] is not None else None)
        yv = check_labels(yv, "y_val")
        unknown = np.setdiff1d(yv, self.classes_)
        if unknown.size:
            raise ValueError(f"`validation_data` holds classes {unknown.tolist()} absent from `y`.")
        Zv = self._features(Xv, fitting=False)
        if len(Zv) != len(yv) or (gv is not None and len(gv) != len(yv)):
            raise ValueError("The arrays of `validation_data` have different numbers of samples.")
        return Zv, np.searchsorted(self.classes_, yv), gv
