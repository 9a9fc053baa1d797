"""The additive composition of two classifiers (Cohen et al., 2024, Eqs. 4-5).

``f'(x) = f_target(x) + beta * f_spurious(x)``: with ``beta = 0.3`` it builds a
classifier with a known spurious correlation (Eq. 4), with a fitted, usually
negative ``beta`` it repairs one (Eq. 5, :class:`~skshortcut.counterfactual.CFRectifier`).
"""

from __future__ import annotations

import contextlib
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._skorch import DeviceConstraint
from .._torch import is_dataset, iter_batches, resolve_device, restore_module_state
from .adapters import (
    OUTPUTS,
    ClassifierOutput,
    KeepsFittedParts,
    as_classifier_output,
    check_counterfactual_images,
    check_finite_batch,
)

__all__ = ["AdditiveClassifier"]


def _score_range(clf):
    # a composed classifier (an AdditiveClassifier, a fitted CFRectifier) spans its own range; probabilities [0, 1]
    return clf._score_range() if hasattr(clf, "_score_range") else (0.0, 1.0)


class AdditiveClassifier(KeepsFittedParts, ClassifierMixin, BaseEstimator):
    """The additive composition of two classifiers: ``f'(x) = f_target(x) + beta * f_spurious(x)``.

    Eq. 4 of Cohen et al. (2024) builds a classifier with a known spurious
    correlation this way (``beta = 0.3``); Eq. 5 repairs one with a fitted
    (usually negative) ``beta`` (see :class:`CFRectifier`, which fits it). Both terms are the
    probabilities of the given target classes. The classifiers are used as
    they are (fitted); ``fit`` only checks them.

    As a classifier, the score is mapped affinely onto [0, 1],
    ``s(x) = (f'(x) - low) / (high - low)`` where ``[low, high]`` is the range
    ``f'`` can take (``[min(0, beta), 1 + max(0, beta)]`` for two probabilities),
    so that ``predict_proba`` and ``predict`` behave like the original
    classifier's; ``decision_function`` returns ``f'`` itself, which is also
    what counterfactual alignment uses.

    Parameters
    ----------
    target : tuple ``(classifier, target)``
        The classifier being composed and the class whose probability it
        contributes (see :func:`~skshortcut.counterfactual.as_classifier_output`).
        May itself be an ``AdditiveClassifier`` or a fitted
        :class:`CFRectifier` (target ``None``).
    spurious : tuple ``(classifier, target)``
        The classifier of the spurious attribute.
    beta : float, default=0.0
    outputs : {"logits", "sigmoid", "probabilities"}, default="logits"
        How raw modules' outputs become probabilities.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    batch_size : int, default=256
        Batch size of ``predict`` and friends.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The target classifier's classes when it has two; otherwise
        ``[False, True]`` (True: the target class).
    positive_class_ : object
        The class whose probability is ``s(x)``.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import AdditiveClassifier
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> fa = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    >>> fb = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    >>> biased = AdditiveClassifier((fa, 1), (fb, 1), beta=0.3, device="cpu").fit()
    >>> X = torch.rand(4, 3, 2, 2).numpy()
    >>> biased.predict_proba(X).shape, biased.predict(X).shape
    ((4, 2), (4,))
    """

    def __init__(self, target, spurious, beta=0.0, *, outputs="logits", device="auto", batch_size=256):
        self.target = target
        self.spurious = spurious
        self.beta = beta
        self.outputs = outputs
        self.device = device
        self.batch_size = batch_size

    _parameter_constraints = {
        "target": [tuple, list],
        "spurious": [tuple, list],
        "beta": [Interval(Real, None, None, closed="neither")],
        "outputs": [StrOptions(set(OUTPUTS))],
        "device": [DeviceConstraint()],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def fit(self, X=None, y=None):
        """Check the two classifiers and set ``classes_``; nothing is trained.

        Parameters
        ----------
        X, y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        dev = resolve_device(self.device)
        self.device_ = dev
        self._resolve_outputs()
        clf, tgt = self.target[0], self.target[1]
        classes = getattr(clf, "classes_", None)
        if hasattr(clf, "_score_range"):  # composed: its own classes and positive class
            check_is_fitted(clf, "positive_class_")
            classes, tgt = clf.classes_, clf.positive_class_
        if classes is not None and len(classes) == 2:
            self.classes_ = np.asarray(classes)
            self.positive_class_ = tgt
        else:
            self.classes_ = np.array([False, True])
            self.positive_class_ = True
        return self

    def _resolve_outputs(self):
        dev = self.device_
        self.target_output_ = as_classifier_output(self.target, outputs=self.outputs, device=dev, name="target")
        self.spurious_output_ = as_classifier_output(self.spurious, outputs=self.outputs, device=dev, name="spurious")

    # the two outputs are closures over the classifiers: a pickle holds the
    # classifiers (parameters) and rebuilds the outputs from them when loaded
    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("target_output_", None)
        state.pop("spurious_output_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "device_" in state:
            self._resolve_outputs()

    def _score_range(self):
        lo_t, hi_t = _score_range(self.target[0])
        lo_s, hi_s = _score_range(self.spurious[0])
        ends = (self.beta * lo_s, self.beta * hi_s)
        return lo_t + min(ends), hi_t + max(ends)

    def _score_tensor(self, x):
        return self.target_output_(x) + float(self.beta) * self.spurious_output_(x)

    def _latent_shift_output(self, target, *, device, outputs, name):
        check_is_fitted(self, "classes_")
        if target is not None and not (target == self.positive_class_):
            raise ValueError(f"target of `{name}` (an AdditiveClassifier) must be None or {self.positive_class_!r}; got {target!r}.")
        fitted = self if resolve_device(device) == self.device_ else _clone_to(self, device)
        return ClassifierOutput(
            fitted._score_tensor,
            differentiable=fitted.target_output_.differentiable and fitted.spurious_output_.differentiable,
            modules=fitted.target_output_.modules + fitted.spurious_output_.modules,
            description=f"`{name}` (AdditiveClassifier, beta={self.beta:.3g})",
        )

    def decision_function(self, X):
        """The additive score ``f'(x) = f_target(x) + beta * f_spurious(x)`` (Eq. 5).

        Parameters
        ----------
        X : ndarray or tensor of shape (n, c, h, w), or torch Dataset
            Images in [0, 1]; NaN or infinite values are refused.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "classes_")
        X = check_counterfactual_images(X)
        modules = {id(m): m for m in self.target_output_.modules + self.spurious_output_.modules}.values()
        out = []
        with contextlib.ExitStack() as stack, torch.no_grad():
            for m in modules:
                stack.enter_context(restore_module_state(m))
                m.eval()
            for xb in iter_batches(X, self.batch_size, device=self.device_):
                if is_dataset(X):
                    check_finite_batch(xb)
                out.append(self._score_tensor(xb).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty(0, dtype=np.float32)

    def predict_proba(self, X):
        """``[1 - s, s]`` in the order of ``classes_``, ``s`` the score mapped onto [0, 1]."""
        lo, hi = self._score_range()
        s = np.clip((self.decision_function(X) - lo) / (hi - lo), 0.0, 1.0)
        pos = int(np.flatnonzero(self.classes_ == self.positive_class_)[0])
        proba = np.empty((len(s), 2), dtype=np.float64)
        proba[:, pos] = s
        proba[:, 1 - pos] = 1.0 - s
        return proba

    def predict(self, X):
        """The positive class where ``s(x) > 0.5``, the other class elsewhere."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


def _clone_to(clf, device):
    """A fitted copy of an :class:`AdditiveClassifier` computing on another device."""
    new = AdditiveClassifier(**{**clf.get_params(deep=False), "device": device})
    return new.fit()
