"""Repairing a classifier's spurious correlation by additive composition (Cohen et al., 2024, section 4.5).

:class:`CFRectifier` learns the coefficient ``beta`` of
``f'(x) = f_target(x) + beta * f_spurious(x)`` (Eq. 5) from counterfactual
alignment alone (Eq. 6), without labels; :func:`rectify` builds and fits one.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .._torch import n_samples
from .additive import AdditiveClassifier
from .adapters import KeepsFittedParts, as_autoencoder, check_counterfactual_images
from .latent_shift import SEARCH_CONSTRAINTS, LatentShift
from .tables import aggregate_alignment

__all__ = ["CFRectifier", "rectify"]

_LS_PARAMS = ("outputs", "target_drop", "min_output", "max_image_change", "step_size", "max_steps", "device",
              "verbose")


class CFRectifier(KeepsFittedParts, ClassifierMixin, BaseEstimator):
    """A classifier repaired by additive composition, ``beta`` fitted on counterfactual alignment (Eqs. 5-6).

    Cohen, Blankemeier and Chaudhari (2024), section 4.5. ``fit`` builds
    ``f'(x) = f_target(x) + beta * f_spurious(x)`` (Eq. 5) and learns ``beta``
    by the pseudo-gradient descent of Eq. 6: the mean relative change ``psi``
    of ``f_spurious`` under Latent Shift counterfactuals of ``f'`` plays the
    gradient, with momentum,

    .. math::

        v_n = \\text{momentum}\\, v_{n-1} + \\psi_n, \\qquad \\beta_n = \\beta_{n-1} - \\text{lr}\\, v_n ,

    on minibatches of ``batch_size`` (10) training images, using only samples
    whose base change exceeds ``min_base_change`` (0.6). After every update
    the mean relative change on the validation images is measured; the
    ``beta`` with the smallest ``|psi|`` there is kept and training stops after
    ``patience`` updates without improvement (early stopping, figure 7). No
    label is used: ``y`` is ignored.

    The paper's Eq. 6 writes the rate 0.001 and momentum 0.1, the defaults
    here; with few, small images a larger ``learning_rate`` (0.1 - 1) reaches
    the minimum in a few dozen updates.

    ``batch_size`` counts images *before* the ``min_base_change`` filter.
    Where few counterfactuals drop the base prediction that far
    (``n_train_kept`` in ``history_``), a minibatch of 10 may keep one or two
    samples, and their ``psi`` says little; a larger ``batch_size`` costs
    little next to the validation pass of every update. ``psi`` can also sit
    on a plateau in ``beta`` before it falls: early stopping then ends the
    descent unless ``learning_rate`` crosses the plateau in fewer than
    ``patience`` updates (``val_psi`` in ``history_`` shows it).

    Once fitted it is the classifier ``f'`` (``predict``, ``predict_proba``,
    ``decision_function``, ``score``), and it can be the base classifier of
    :class:`~skshortcut.CFAlignmentScorer` as ``(rectifier, None)``. The
    classifiers and the autoencoder are used as they are (fitted); ``clone``
    keeps them.

    Parameters
    ----------
    target : tuple ``(classifier, target)``
        The classifier to repair (may be an :class:`AdditiveClassifier`).
    spurious : tuple ``(classifier, target)``
        The classifier of the attribute it should not use.
    autoencoder : fitted autoencoder, pair or object with ``encode``/``decode``
    validation_fraction : float, default=0.3
        Share of ``X`` held out for early stopping when ``fit`` gets no ``X_val``.
    beta_init : float, default=0.0
    learning_rate : float, default=0.001
    momentum : float, default=0.1
    batch_size : int, default=10
        Images per update (the minibatch of Eq. 6).
    min_base_change : float, default=0.6
    max_iter : int, default=100
        Updates at most.
    patience : int, default=10
    positives_only : bool, default=True
        Make counterfactuals only for images the initial classifier predicts
        positive (the paper's protocol); the others cannot drop by
        ``min_base_change`` anyway.
    outputs, target_drop, min_output, max_image_change, step_size, max_steps
        As in :class:`LatentShift`.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the validation split and the minibatch order.
    verbose : int, default=0
        ``>= 1`` prints one line per update.

    Attributes
    ----------
    beta_ : float
        The selected coefficient.
    classifier_ : AdditiveClassifier
        ``f_target + beta_ * f_spurious``, fitted; what predictions use.
    history_ : list of dict
        One dict per update: ``iteration``, ``beta``, ``train_psi``,
        ``val_psi``, ``n_train_kept``, ``n_val_kept`` (iteration 0: the start).
    best_iteration_ : int
        The update whose ``beta`` was selected.
    val_psi_ : float
        The validation ``psi`` of ``beta_``.
    classes_ : ndarray of shape (2,)
    positive_class_ : object
        As in :class:`AdditiveClassifier`.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import CFRectifier
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> enc, dec = torch.nn.Linear(6, 3), torch.nn.Linear(3, 6)
    >>> fa, fb = torch.nn.Linear(6, 2), torch.nn.Linear(6, 2)
    >>> X = torch.rand(40, 6).numpy()
    >>> fixed = CFRectifier((fa, 1), (fb, 1), (enc, dec), min_base_change=0.0, positives_only=False,
    ...                     max_iter=3, learning_rate=0.1, max_image_change=None, device="cpu",
    ...                     random_state=0).fit(X)
    >>> len(fixed.history_) <= 4, isinstance(fixed.beta_, float), fixed.predict(X).shape
    (True, True, (40,))
    """

    _parameter_constraints = {
        "target": [tuple, list],
        "spurious": [tuple, list],
        "autoencoder": "no_validation",  # resolved by as_autoencoder, with its own messages
        "validation_fraction": [Interval(Real, 0, 0.9, closed="right")],
        "beta_init": [Interval(Real, None, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "min_base_change": [Interval(Real, None, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "positives_only": ["boolean"],
        **{k: SEARCH_CONSTRAINTS[k] for k in _LS_PARAMS},
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        target=None,
        spurious=None,
        autoencoder=None,
        *,
        validation_fraction=0.3,
        beta_init=0.0,
        learning_rate=0.001,
        momentum=0.1,
        batch_size=10,
        min_base_change=0.6,
        max_iter=100,
        patience=10,
        positives_only=True,
        outputs="logits",
        target_drop=0.6,
        min_output=0.05,
        max_image_change=0.05,
        step_size="auto",
        max_steps=50,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.target = target
        self.spurious = spurious
        self.autoencoder = autoencoder
        self.validation_fraction = validation_fraction
        self.beta_init = beta_init
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.min_base_change = min_base_change
        self.max_iter = max_iter
        self.patience = patience
        self.positives_only = positives_only
        self.outputs = outputs
        self.target_drop = target_drop
        self.min_output = min_output
        self.max_image_change = max_image_change
        self.step_size = step_size
        self.max_steps = max_steps
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    def _composed(self, beta):
        return AdditiveClassifier(self.target, self.spurious, beta=float(beta), outputs=self.outputs,
                                  device=self.device).fit()

    def _psi(self, model, images):
        """The mean relative change of ``f_spurious`` under counterfactuals of ``model``, and its sample count."""
        params = {k: getattr(self, k) for k in _LS_PARAMS if k != "verbose"}
        res = LatentShift(self.autoencoder, (model, None), downstream={"spurious": self.spurious}, base_name="target",
                          batch_size=64, **params).generate(images, return_images=False)
        mean, _, count = aggregate_alignment(res.relative_changes, res.base_change, threshold=self.min_base_change)
        return float(mean[0]), int(count[0])

    def _split(self, X, X_val, rng):
        # float32 arrays, or Datasets whose batches are checked as they are read
        X = check_counterfactual_images(X, "X")
        if X_val is not None:
            return X, check_counterfactual_images(X_val, "X_val")
        n = n_samples(X)
        perm = rng.permutation(n)
        n_val = max(1, int(round(self.validation_fraction * n)))
        if n - n_val < 1:
            raise ValueError(f"`X` has {n} images: too few to hold out a validation split.")
        return _take(X, np.sort(perm[n_val:])), _take(X, np.sort(perm[:n_val]))

    def fit(self, X, y=None, *, X_val=None):
        """Learn ``beta`` on the alignment of counterfactuals of X (Eq. 6).

        Parameters
        ----------
        X : ndarray or tensor of shape (n, c, h, w), or torch Dataset
            Training images for the counterfactuals; NaN or infinite values
            are refused.
        y : ignored
            No label is needed.
        X_val : images, optional
            Validation images for early stopping; default: a random
            ``validation_fraction`` of X.

        Returns
        -------
        self
        """
        self._validate_params()
        rng = check_random_state(self.random_state)
        as_autoencoder(self.autoencoder, device=self.device)  # validates early
        X, X_val = self._split(X, X_val, rng)

        clf = self._composed(self.beta_init)
        if self.positives_only:
            X = _take(X, np.flatnonzero(clf.predict(X) == clf.positive_class_))
            X_val = _take(X_val, np.flatnonzero(clf.predict(X_val) == clf.positive_class_))
            if n_samples(X) == 0 or n_samples(X_val) == 0:
                raise ValueError("No training or validation image is predicted positive by `target`; nothing to rectify.")

        beta = float(self.beta_init)
        velocity = 0.0
        val_psi, n_val_kept = self._psi(clf, X_val)
        history = [dict(iteration=0, beta=beta, train_psi=float("nan"), val_psi=val_psi, n_train_kept=0,
                        n_val_kept=n_val_kept)]
        best = (abs(val_psi) if np.isfinite(val_psi) else np.inf, 0, beta, val_psi)
        n_train = n_samples(X)
        order = rng.permutation(n_train)
        pos = 0
        since_best = 0
        for it in range(1, self.max_iter + 1):
            if pos >= n_train:
                order, pos = rng.permutation(n_train), 0
            idx = np.sort(order[pos : pos + self.batch_size])
            pos += self.batch_size
            train_psi, n_kept = self._psi(clf, _take(X, idx))
            if n_kept and np.isfinite(train_psi):
                velocity = self.momentum * velocity + train_psi
                beta = beta - self.learning_rate * velocity
                clf = self._composed(beta)
            val_psi, n_val_kept = self._psi(clf, X_val)
            history.append(dict(iteration=it, beta=beta, train_psi=train_psi, val_psi=val_psi, n_train_kept=n_kept,
                                n_val_kept=n_val_kept))
            if self.verbose:
                print(f"rectify {it:3d}: beta={beta:+.4f} train psi={train_psi:+.3f} (n={n_kept}) "
                      f"val psi={val_psi:+.3f} (n={n_val_kept})")
            if np.isfinite(val_psi) and abs(val_psi) < best[0]:
                best = (abs(val_psi), it, beta, val_psi)
                since_best = 0
            else:
                since_best += 1
                if since_best >= self.patience:
                    break
        _, self.best_iteration_, self.beta_, self.val_psi_ = best
        self.history_ = history
        self.classifier_ = self._composed(self.beta_)
        self.classes_ = self.classifier_.classes_
        self.positive_class_ = self.classifier_.positive_class_
        return self

    # ------------------------------------------------------------------ the repaired classifier
    def decision_function(self, X):
        """The additive score ``f_target(x) + beta_ * f_spurious(x)`` (Eq. 5); see :class:`AdditiveClassifier`."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.decision_function(X)

    def predict_proba(self, X):
        """``[1 - s, s]`` in the order of ``classes_``; see :meth:`AdditiveClassifier.predict_proba`."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.predict_proba(X)

    def predict(self, X):
        """The positive class where the mapped score exceeds 0.5, the other class elsewhere."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.predict(X)

    def _score_range(self):
        check_is_fitted(self, "classifier_")
        return self.classifier_._score_range()

    def _latent_shift_output(self, target, *, device, outputs, name):
        check_is_fitted(self, "classifier_")
        return self.classifier_._latent_shift_output(target, device=device, outputs=outputs, name=name)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False  # beta is learned from counterfactuals, not from labels
        return tags


def rectify(X, target, spurious, autoencoder, *, X_val=None, **params):
    """Repair a classifier's spurious correlation by additive composition (section 4.5): a fitted :class:`CFRectifier`.

    A shorthand for ``CFRectifier(target, spurious, autoencoder, **params).fit(X, X_val=X_val)``.

    Parameters
    ----------
    X : images
        Training images for the counterfactuals.
    target : tuple ``(classifier, target)``
        The classifier to repair (may be an :class:`AdditiveClassifier`).
    spurious : tuple ``(classifier, target)``
        The classifier of the attribute it should not use.
    autoencoder : fitted autoencoder, pair or object with ``encode``/``decode``
    X_val : images, optional
        Validation images for early stopping; default: a random
        ``validation_fraction`` of X.
    **params
        The other :class:`CFRectifier` parameters (``learning_rate``,
        ``max_iter``, ``patience``, ``max_image_change``, ``device``,
        ``random_state``, ...).

    Returns
    -------
    CFRectifier
        Fitted: ``beta_``, ``history_``, ``best_iteration_``, ``val_psi_``,
        and ``predict`` / ``predict_proba`` / ``decision_function`` of the
        repaired classifier.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import rectify
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> enc, dec = torch.nn.Linear(6, 3), torch.nn.Linear(3, 6)
    >>> fa, fb = torch.nn.Linear(6, 2), torch.nn.Linear(6, 2)
    >>> fixed = rectify(torch.rand(40, 6).numpy(), (fa, 1), (fb, 1), (enc, dec), min_base_change=0.0,
    ...                 positives_only=False, max_iter=3, learning_rate=0.1, max_image_change=None,
    ...                 device="cpu", random_state=0)
    >>> len(fixed.history_) <= 4, isinstance(fixed.beta_, float)
    (True, True)
    """
    return CFRectifier(target, spurious, autoencoder, **params).fit(X, X_val=X_val)


def _take(X, idx):
    if isinstance(X, np.ndarray):
        return X[idx]
    return torch.utils.data.Subset(X, [int(i) for i in idx])
