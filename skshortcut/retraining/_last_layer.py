"""What the last-layer retrainers share: their input, the base model's head, the linear output.

A last-layer retrainer fits a new linear head ``s(z) = W z + b`` on features
``z``. The features are either given (a 2-D matrix ``X``) or computed by a base
model passed as ``estimator=`` (images ``X`` embedded by everything before its
last linear layer, through :func:`~skshortcut.base_model.as_base_model`). This
module is the one place that

* turns ``X`` into features (:meth:`LastLayerRetrainer._fit_features`,
  :meth:`LastLayerRetrainer._features`), with scikit-learn's ``validate_data``
  for feature matrices (``n_features_in_``, ``feature_names_in_``);
* encodes the classes (``classes_``) and reads the base model's head ``W_0``,
  ``b_0`` in class order (``init_coef_``, ``init_intercept_``): one row per
  class, a one-logit binary head becoming the rows ``(0, w)``;
* gives the base model's class probabilities on the fit data (from the
  torch model's logits, a fitted scikit-learn classifier's ``predict_proba``,
  or logits passed as ``base_logits=``);
* fits a weighted, L2-penalised multinomial logistic head by full-batch
  L-BFGS (:func:`fit_linear_head`);
* predicts from ``coef_`` / ``intercept_`` (``decision_function`` 1-D for two
  classes, ``predict_proba``, ``predict``).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._grouped import GroupedData, unpack_grouped
from .._validation import check_same_length
from ..base_model import class_to_logit, unwrap_frozen
from ._inputs import _FeaturesOrImages

__all__ = ["LastLayerRetrainer", "fit_linear_head", "softmax"]


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, k)`` scores; a 1-D array is the binary score ``s_1 - s_0``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining._last_layer import softmax
    >>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]])).round(2).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = np.c_[np.zeros_like(scores), scores]
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)


def _is_torch_model(estimator) -> bool:
    est = unwrap_frozen(estimator)
    return isinstance(est, torch.nn.Module) or hasattr(est, "module_") or (
        hasattr(est, "module") and hasattr(est, "initialize")
    )


def fit_linear_head(
    Z,
    y,
    sample_weight=None,
    *,
    n_classes,
    coef_init=None,
    intercept_init=None,
    center=None,
    l2=0.0,
    max_iter=500,
    tol=1e-7,
    return_n_iter=False,
):
    """Weighted multinomial logistic head, penalised towards a centre, by full-batch L-BFGS.

    Minimises

    .. math:: \\sum_i w_i \\, \\mathrm{CE}(W z_i + b, y_i) + \\lambda (\\lVert W - W_c \\rVert^2 + \\lVert b - b_c \\rVert^2)

    with ``w`` normalised to sum to one (uniform when ``sample_weight`` is
    ``None``), in float64 with torch's L-BFGS and a strong-Wolfe line search:
    deterministic for given inputs. scikit-learn's ``LogisticRegression`` has
    no penalty centred away from zero (AFR's ``lambda ||W - W_0||^2``), hence
    this solver.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
    y : ndarray of int in ``range(n_classes)``
    sample_weight : ndarray of shape (n_samples,), optional
    n_classes : int
    coef_init, intercept_init : ndarray, optional
        Starting point (default zeros).
    center : tuple (W_c, b_c), optional
        Centre of the penalty (default zeros).
    l2 : float, default=0
        The penalty strength ``lambda``.
    max_iter : int, default=500
        L-BFGS iterations.
    tol : float, default=1e-7
        Gradient tolerance.
    return_n_iter : bool, default=False
        Also return the number of L-BFGS iterations run.

    Returns
    -------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    n_iter : int
        L-BFGS iterations (0 when the start already meets ``tol``); only
        with ``return_n_iter=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining._last_layer import fit_linear_head
    >>> Z = np.array([[-1.0], [-2.0], [1.0], [2.0]]); y = np.array([0, 0, 1, 1])
    >>> coef, intercept = fit_linear_head(Z, y, n_classes=2, l2=0.1)
    >>> bool(coef[1, 0] > coef[0, 0])
    True
    >>> *_, n_iter = fit_linear_head(Z, y, n_classes=2, l2=0.1, return_n_iter=True)
    >>> n_iter > 0
    True
    """
    Z = torch.as_tensor(np.asarray(Z, dtype=np.float64))
    n, d = Z.shape
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = torch.as_tensor(w / w.sum())
    W = torch.zeros(n_classes, d, dtype=torch.float64) if coef_init is None else torch.tensor(coef_init, dtype=torch.float64)
    b = torch.zeros(n_classes, dtype=torch.float64) if intercept_init is None else torch.tensor(intercept_init, dtype=torch.float64)
    if center is None:
        Wc, bc = torch.zeros_like(W), torch.zeros_like(b)
    else:
        Wc, bc = (torch.as_tensor(np.asarray(c, dtype=np.float64)) for c in center)
    W.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [W, b], lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12, history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        ce = torch.nn.functional.cross_entropy(Z @ W.T + b, yt, reduction="none")
        loss = (w * ce).sum()
        if l2 > 0:
            loss = loss + l2 * ((W - Wc).pow(2).sum() + (b - bc).pow(2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    coef, intercept = W.detach().numpy().copy(), b.detach().numpy().copy()
    if return_n_iter:
        # torch's L-BFGS keeps its iteration count in the state of the first parameter
        return coef, intercept, int(opt.state[W].get("n_iter", 0))
    return coef, intercept


class LastLayerRetrainer(_FeaturesOrImages, ClassifierMixin, BaseEstimator):
    """Shared base of the last-layer retrainers (not an estimator of its own).

    Subclasses store ``estimator``, ``head``, ``batch_size`` and ``device``
    among their parameters, call :meth:`_fit_inputs` in ``fit`` and set
    ``coef_`` of shape ``(n_classes, n_features)`` and ``intercept_`` of shape
    ``(n_classes,)``; prediction is shared.

    ``estimator`` may be

    * ``None``: ``X`` is a feature matrix;
    * a fitted skorch net or a ``torch.nn.Module`` (either possibly in a
      :class:`sklearn.frozen.FrozenEstimator`): ``X`` holds images, embedded by
      the base model; its head gives ``W_0``, its logits the base model's
      probabilities;
    * a scikit-learn classifier on the features (``predict_proba``): ``X``
      is a feature matrix; the classifier gives the base model's
      probabilities, and ``W_0`` when it is linear (``coef_``, ``intercept_``).
      A fitted one is used as it is; an unfitted one is cloned and fit on the
      fit data first (``estimator_``).

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining import AFRRetrainer
    >>> from skshortcut.retraining._last_layer import LastLayerRetrainer
    >>> issubclass(AFRRetrainer, LastLayerRetrainer)
    True
    """

    __metadata_request__fit = {"groups": True}

    # ------------------------------------------------------------------ inputs
    def _estimator_kind(self):
        if self.estimator is None:
            return "none"
        if _is_torch_model(self.estimator):
            return "torch"
        est = unwrap_frozen(self.estimator)
        if hasattr(est, "predict_proba") or hasattr(est, "decision_function") or hasattr(est, "predict"):
            return "sklearn"
        raise TypeError(
            "`estimator` must be None, a fitted skorch net or torch.nn.Module (images as X), or a "
            f"scikit-learn classifier on the features (fitted, or to be fit on the fit data); got {type(self.estimator).__name__}."
        )

    def _features(self, X, *, fitting, return_logits=False):
        """Embeddings of images through the base model, or the validated feature matrix.

        At predict only the samples of a GroupedData are read, never its groups.
        """
        if isinstance(X, GroupedData):
            X = X.X
        if self._estimator_kind() == "torch":
            X = self._check_images(X, reset=fitting)
            if fitting:
                self.base_model_ = self._base_model(X)
            return self._embed(X, return_logits=return_logits)
        if fitting:
            self.base_model_ = None
        X = self._check_not_images(X)
        return validate_data(self, X, reset=fitting, dtype=np.float64)

    def _fit_inputs(self, X, y, groups, *, base_logits=None, need_proba=False):
        """Validate the fit data; set ``classes_``, ``estimator_``, ``init_coef_``, ``init_intercept_``.

        A feature table and its labels go through scikit-learn's
        ``validate_data`` (its messages for a missing ``y``, a column ``y``,
        too few samples or features, NaN); images through the input mixin.
        An unfitted scikit-learn classifier as ``estimator`` is cloned and
        fit on the fit data (``estimator_``).

        Returns
        -------
        Z : ndarray (n_samples, n_features)
        y_idx : ndarray of int, the class index of each sample
        groups : ndarray or None
        proba : ndarray (n_samples, n_classes) or None
            The base model's class probabilities, when ``need_proba``.
        """
        X, groups = unpack_grouped(X, groups)
        kind = self._estimator_kind()
        logits = None
        if kind == "torch":
            y = self._class_labels(y)
            out = self._features(X, fitting=True, return_logits=need_proba)
            Z, logits = out if need_proba else (out, None)
        else:
            self.base_model_ = None
            Z, y = validate_data(self, self._check_not_images(X), y, dtype=np.float64)
            y = self._class_labels(y)
        check_same_length(X=Z, y=y, groups=groups)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"`y` holds one class ({self.classes_.tolist()}); {type(self).__name__} needs at least two.")
        y_idx = encoder.transform(y)
        k = len(self.classes_)
        d = Z.shape[1]
        self.init_coef_, self.init_intercept_ = np.zeros((k, d)), np.zeros(k)
        self.estimator_ = self._fitted_classifier(Z, y) if kind == "sklearn" else None
        proba = None
        if kind == "torch":
            logit_index = self.base_model_.class_to_logit(self.classes_)
            head = self.base_model_.head
            Wh = head.weight.detach().double().cpu().numpy()
            bh = head.bias.detach().double().cpu().numpy() if head.bias is not None else np.zeros(Wh.shape[0])
            if Wh.shape[0] == 1:  # one logit: the score of the second class against the first
                Wh, bh = np.vstack([np.zeros_like(Wh), Wh]), np.r_[0.0, bh]
            self.init_coef_, self.init_intercept_ = Wh[logit_index], bh[logit_index]
            if need_proba:
                proba = softmax(logits[:, 0] if logits.shape[1] == 1 else logits)[:, logit_index]
        elif kind == "sklearn":
            est = self.estimator_
            est_classes = est.classes_
            idx = class_to_logit(self.classes_, est_classes, n_logits=len(est_classes), what="`estimator`")
            coef, intercept = getattr(est, "coef_", None), getattr(est, "intercept_", None)
            if coef is not None and intercept is not None and np.ndim(coef) == 2 and np.shape(coef)[1] == d:
                coef, intercept = np.asarray(coef, float), np.atleast_1d(np.asarray(intercept, float))
                if coef.shape[0] == 1:
                    coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
                self.init_coef_, self.init_intercept_ = coef[idx], intercept[idx]
            if need_proba:
                if hasattr(est, "predict_proba"):
                    proba = np.asarray(est.predict_proba(Z), dtype=np.float64)
                else:
                    proba = softmax(np.asarray(est.decision_function(Z), dtype=np.float64))
                proba = proba[:, idx]
        if base_logits is not None:
            if kind == "torch":
                raise ValueError("`base_logits` was given together with a torch base model as `estimator`; pass one of them.")
            bl = check_array(base_logits, ensure_2d=False, dtype=np.float64, input_name="base_logits")
            if bl.ndim == 2 and bl.shape[1] == 1:
                bl = bl[:, 0]
            if len(bl) != len(y_idx) or (bl.ndim == 1 and k != 2) or (bl.ndim == 2 and bl.shape[1] != k):
                raise ValueError(
                    f"`base_logits` must have shape ({len(y_idx)}, {k}) (one column per class, in sorted class order)"
                    f"{' or (' + str(len(y_idx)) + ',) for two classes' if k == 2 else ''}; got {bl.shape}."
                )
            proba = softmax(bl)
        if need_proba and proba is None:
            raise ValueError(
                f"{type(self).__name__} needs the base model's predictions on the fit data: pass the base model as "
                "`estimator=` (a torch model with images as X, or a scikit-learn classifier on the features), "
                "or its logits as `fit(..., base_logits=)`."
            )
        return Z, y_idx, groups, proba

    def _fitted_classifier(self, Z, y):
        """The scikit-learn base classifier: as given when fitted, else a clone fit on ``(Z, y)``.

        A clone gets this estimator's ``random_state`` when it takes one. A
        FrozenEstimator must hold a fitted classifier: freezing says it is not
        to be fit here.
        """
        est = unwrap_frozen(self.estimator)
        try:
            check_is_fitted(est)
            fitted = getattr(est, "classes_", None) is not None
        except NotFittedError:
            fitted = False
        if fitted:
            return est
        if est is not self.estimator:
            raise TypeError(
                f"The {type(est).__name__} in the FrozenEstimator passed as `estimator` is not fitted (no `classes_`); "
                "fit it first, or pass it unfrozen to have a clone fit on the fit data."
            )
        est = clone(est)
        if "random_state" in est.get_params(deep=False):
            est.set_params(random_state=self.random_state)
        return est.fit(Z, y)

    # ------------------------------------------------------------------ predict
    def _scores(self, X):
        check_is_fitted(self, "coef_")
        Z = self._features(X, fitting=False)
        return Z @ self.coef_.T + self.intercept_

    def decision_function(self, X):
        """Scores of the retrained head: shape (n,) for two classes (``s_1 - s_0``), else (n, n_classes).

        Parameters
        ----------
        X : array-like, images, Dataset or GroupedData
            As in ``fit``.

        Returns
        -------
        ndarray
        """
        s = self._scores(X)
        return s[:, 1] - s[:, 0] if s.shape[1] == 2 else s

    def predict_proba(self, X):
        """Class probabilities: the softmax of the retrained head's scores.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return softmax(self._scores(X))

    def predict(self, X):
        """Predicted class labels.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        scores = self._scores(X)
        return self.classes_[scores.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None and _is_torch_model(self.estimator):
            tags.input_tags.two_d_array = False
        return tags
