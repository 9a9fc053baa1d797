"""``JTTRetrainer``: Just Train Twice, on the last layer.

Liu, Haghgoo, Chen, Raghunathan, Koh, Sagawa, Liang and Finn, *Just Train
Twice: Improving Group Robustness without Training Group Information* (ICML 2021).
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import _fit_context, clone
from sklearn.utils._param_validation import Interval

from ..base_model import unwrap_frozen
from ._last_layer import LastLayerRetrainer, fit_linear_head

__all__ = ["JTTRetrainer"]


class JTTRetrainer(LastLayerRetrainer):
    """Just Train Twice on the last layer: up-weight what an identification model gets wrong.

    JTT (Liu et al., ICML 2021) trains twice. The first, *identification*
    model (ERM, stopped early) defines the error set

    .. math:: E = \\{ i : \\hat f_{\\mathrm{id}}(x_i) \\ne y_i \\},

    and the final model minimises the up-weighted loss (Eq. 2)

    .. math:: J(\\theta) = \\lambda_{\\mathrm{up}} \\sum_{i \\in E} \\ell(x_i, y_i; \\theta) + \\sum_{i \\notin E} \\ell(x_i, y_i; \\theta).

    Here the second model is a new linear head on the base model's features
    (the last-layer variant): a multinomial logistic head with an L2 penalty
    ``alpha (||W||^2 + ||b||^2)`` (weight decay), fit full-batch by L-BFGS on
    the weighted mean of the loss. No group labels are used.

    The identification model is the base model itself by default (its
    predictions on the fit data: its torch logits, a fitted scikit-learn
    classifier's ``predict``, or ``fit(..., base_logits=)``), or
    ``identifier=``, a scikit-learn classifier on the features: used as it is
    when fitted, else cloned and fit on the data. A strongly regularised one,
    for example ``LogisticRegression(C=0.01)``, plays the part of the paper's
    early-stopped ERM model.

    Parameters
    ----------
    estimator : torch model, scikit-learn classifier or None, default=None
        The base model, as for :class:`AFRRetrainer`: a torch model embeds
        images; a scikit-learn classifier works on a feature matrix (an
        unfitted one is cloned and fit on the fit data first, which makes it
        the paper's identification model: ERM on the training data).
    lambda_up : float >= 1, default=20
        Weight of the error set (the paper searches 20-100 when retraining
        the whole network; a last layer usually wants less, see the user guide).
    alpha : float >= 0, default=1e-3
        L2 penalty of the new head (on the weighted mean loss).
    identifier : scikit-learn classifier or None, default=None
        The identification model on the features; ``None``: the base model.
    head : str, optional
        Name of the base model's linear head, if it cannot be found in forward order.
    batch_size : int, default=256
        Batch size for embedding images.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    max_iter : int, default=500
        L-BFGS iterations.
    tol : float, default=1e-7
    random_state : int, RandomState or None, default=None
        Passed on to a cloned ``identifier`` that takes one.
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    error_set_ : ndarray of int
        Indices of the fit samples the identification model misclassified.
    sample_weight_ : ndarray of shape (n_samples,)
        ``lambda_up`` on the error set, 1 elsewhere.
    identifier_ : estimator or None
        The fitted identification model when ``identifier`` was given.
    n_iter_ : int
        L-BFGS iterations of the final head's fit.
    estimator_ : scikit-learn classifier or None
        The scikit-learn base classifier used (the fitted clone of an
        unfitted ``estimator``); None for a torch model or ``estimator=None``.
    init_coef_, init_intercept_ : ndarray
        The base head in class order (zeros without one).
    n_features_in_ : int
    base_model_ : BaseModel or None

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skshortcut.retraining import JTTRetrainer
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 600); s = np.where(rng.rand(600) < 0.95, y, 1 - y)
    >>> Z = np.c_[y + rng.normal(0, 0.6, 600), 3 * s + rng.normal(0, 0.3, 600)]
    >>> jtt = JTTRetrainer(identifier=LogisticRegression(C=0.01), lambda_up=10).fit(Z, y)
    >>> bool(0 < len(jtt.error_set_) < 600)
    True
    """

    _parameter_constraints: dict = {
        "estimator": "no_validation",
        "lambda_up": [Interval(numbers.Real, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "identifier": "no_validation",
        "head": [None, str],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": "no_validation",
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        lambda_up=20.0,
        alpha=1e-3,
        identifier=None,
        head=None,
        batch_size=256,
        device="auto",
        max_iter=500,
        tol=1e-7,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.lambda_up = lambda_up
        self.alpha = alpha
        self.identifier = identifier
        self.head = head
        self.batch_size = batch_size
        self.device = device
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    def _identify(self, Z, y_idx, y, proba):
        """Predicted class index of each fit sample by the identification model."""
        if self.identifier is None:
            self.identifier_ = None
            return proba.argmax(axis=1)
        ident = unwrap_frozen(self.identifier)
        if not hasattr(ident, "predict"):
            raise TypeError(f"`identifier` must be a scikit-learn classifier; got {type(self.identifier).__name__}.")
        if not hasattr(ident, "classes_"):
            ident = clone(ident)
            if "random_state" in ident.get_params():
                ident.set_params(random_state=self.random_state)
            ident.fit(Z, y)
        self.identifier_ = ident
        pred = np.asarray(ident.predict(Z))
        unknown = np.setdiff1d(pred, self.classes_)
        if unknown.size:
            raise ValueError(f"`identifier` predicts classes {unknown.tolist()} absent from `y`.")
        return np.searchsorted(self.classes_, pred)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, *, base_logits=None):
        """Find the error set, up-weight it and retrain the last layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), images, Dataset or GroupedData
        y : array-like of shape (n_samples,)
        groups : ignored
            Accepted (and not used) so that JTT drops into code that routes groups.
        base_logits : array-like of shape (n_samples, n_classes) or (n_samples,), optional
            The base model's logits on ``X``, when ``estimator`` is None.

        Returns
        -------
        self
        """
        need_proba = self.identifier is None
        Z, y_idx, _, proba = self._fit_inputs(X, y, groups, base_logits=base_logits, need_proba=need_proba)
        pred = self._identify(Z, y_idx, self.classes_[y_idx], proba)
        self.error_set_ = np.flatnonzero(pred != y_idx)
        held = np.unique(y_idx[self.error_set_])
        if len(held) < 2:
            raise ValueError(
                f"The error set holds {len(self.error_set_)} of {len(y_idx)} samples, of {len(held)} class(es) "
                f"({self.classes_[held].tolist()}); JTT needs misclassified samples of at least two classes to "
                "up-weight. Use an identification model that errs more (stopped earlier or more regularised), or "
                "a different method."
            )
        self.sample_weight_ = np.ones(len(y_idx))
        self.sample_weight_[self.error_set_] = self.lambda_up
        self.coef_, self.intercept_, self.n_iter_ = fit_linear_head(
            Z, y_idx, self.sample_weight_, n_classes=len(self.classes_), l2=self.alpha, max_iter=self.max_iter, tol=self.tol,
            return_n_iter=True,
        )
        return self
