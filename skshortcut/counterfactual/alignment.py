"""Counterfactual alignment: find, quantify and repair spurious correlations.

Cohen, Blankemeier and Chaudhari, *Identifying Spurious Correlations using
Counterfactual Alignment* (2024). Counterfactuals made for a base classifier
``f_b`` with Latent Shift (Eqs. 1-2, :class:`~skshortcut.counterfactual.LatentShift`)
are fed to downstream classifiers ``f_i``; the relative change (Eq. 3)

.. math::

    \\frac{f_i(D(z_\\lambda)) - f_i(D(z_0))}{f_b(D(z_\\lambda)) - f_b(D(z_0))}

says how much of the base classifier's change the downstream classifier
shares. Averaged over samples whose base prediction changed by more than 0.3
it gives the alignment of a pair of classifiers (the matrix of figure 2a). A
classifier that leans on an attribute it should not use is aligned with that
attribute's classifier; composing it with the attribute classifier (Eq. 5)
and fitting the coefficient on the alignment (Eq. 6) repairs it (section 4.5).
"""

from __future__ import annotations

import contextlib
import numbers
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.validation import check_is_fitted

from .._torch import iter_batches, n_samples, resolve_device, restore_module_state
from .latent_shift import (
    ClassifierOutput,
    LatentShift,
    _check_int,
    _check_real,
    _named_specs,
    as_autoencoder,
    as_classifier_output,
)

__all__ = [
    "AdditiveClassifier",
    "Alignment",
    "AlignmentTable",
    "AlignmentScorer",
    "CFAlignmentScorer",
    "aggregate_alignment",
    "make_alignment_scorer",
    "rectify",
]


# --------------------------------------------------------------------------- tables
def aggregate_alignment(relative_changes, base_change, *, threshold=0.3):
    """Mean relative change per downstream classifier, with standard errors.

    Keeps the samples whose base change ``f_b(x_0) - f_b(x_lambda)`` exceeds
    ``threshold`` (0.3 in the paper and the authors' code), then takes the
    mean of each column and its standard error ``std(ddof=1) / sqrt(n)``.

    Parameters
    ----------
    relative_changes : array-like of shape (n, k)
    base_change : array-like of shape (n,)
    threshold : float, default=0.3

    Returns
    -------
    mean, stderr : ndarray of shape (k,)
        NaN where no sample is kept (standard error: where fewer than two are).
    count : ndarray of shape (k,)
        Samples kept per column (NaN relative changes are left out).

    Examples
    --------
    >>> from skshortcut.counterfactual import aggregate_alignment
    >>> mean, se, n = aggregate_alignment([[0.2], [0.4], [5.0]], [0.5, 0.7, 0.1])
    >>> mean.round(2).tolist(), n.tolist()
    ([0.3], [2])
    """
    rc = np.asarray(relative_changes, dtype=np.float64)
    if rc.ndim == 1:
        rc = rc[:, None]
    bc = np.asarray(base_change, dtype=np.float64)
    if rc.shape[0] != bc.shape[0]:
        raise ValueError(f"`relative_changes` has {rc.shape[0]} rows but `base_change` has {bc.shape[0]}.")
    keep = (bc > threshold)[:, None] & np.isfinite(rc)
    count = keep.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(keep, rc, 0.0).sum(0)
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        sq = np.where(keep, (rc - mean) ** 2, 0.0).sum(0)
        std = np.sqrt(sq / np.maximum(count - 1, 1))
        stderr = np.where(count > 1, std / np.sqrt(np.maximum(count, 1)), np.nan)
    return mean, stderr, count


class Alignment(Mapping):
    """Alignment of one base classifier with each downstream classifier.

    A read-only mapping ``{downstream name: mean relative change}`` with the
    standard errors and sample counts alongside.

    Attributes
    ----------
    mean : dict
        Mean relative change (Eq. 3) over the kept samples.
    stderr : dict
        Standard error of that mean.
    count : dict
        Number of samples kept (base change above the threshold).
    base : str
        Name of the base classifier.

    Examples
    --------
    >>> from skshortcut.counterfactual import Alignment
    >>> a = Alignment("smiling", {"eyebrows": 0.25}, {"eyebrows": 0.05}, {"eyebrows": 40})
    >>> a["eyebrows"], a.stderr["eyebrows"]
    (0.25, 0.05)
    """

    def __init__(self, base, mean, stderr, count):
        self.base = base
        self.mean = dict(mean)
        self.stderr = dict(stderr)
        self.count = dict(count)

    def __getitem__(self, name):
        try:
            return self.mean[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a downstream classifier; known: {list(self.mean)}.") from None

    def __iter__(self):
        return iter(self.mean)

    def __len__(self):
        return len(self.mean)

    def __repr__(self):
        items = ", ".join(f"{k!r}: {v:.3f}±{self.stderr[k]:.3f} (n={self.count[k]})" for k, v in self.mean.items())
        return f"Alignment(base={self.base!r}, {{{items}}})"


class AlignmentTable:
    """A small labelled table of alignments: rows are base classifiers, columns downstream ones.

    What :meth:`CFAlignmentScorer.alignment_matrix` returns. pandas is not a
    dependency of skshortcut, so the table is its own small object, the same
    whether or not pandas is installed; :meth:`to_pandas` converts it.

    Parameters
    ----------
    values, stderr, count : ndarray of shape (n_rows, n_cols)
    index, columns : list of str

    Attributes
    ----------
    values : ndarray
        Mean relative changes (Eq. 3).
    stderr : ndarray
        Their standard errors.
    count : ndarray
        Samples behind each mean.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.counterfactual import AlignmentTable
    >>> t = AlignmentTable(np.array([[1.0, 0.3], [0.0, 1.0]]), np.zeros((2, 2)), np.ones((2, 2), int),
    ...                    ["a", "b"], ["a", "b"])
    >>> float(t["a", "b"]), t["b"].tolist()
    (0.3, [0.3, 1.0])
    """

    def __init__(self, values, stderr, count, index, columns):
        self.values = np.asarray(values, dtype=np.float64)
        self.stderr = np.asarray(stderr, dtype=np.float64)
        self.count = np.asarray(count)
        self.index = list(index)
        self.columns = list(columns)
        if self.values.shape != (len(self.index), len(self.columns)):
            raise ValueError(f"`values` has shape {self.values.shape}, expected ({len(self.index)}, {len(self.columns)}).")

    @property
    def shape(self):
        return self.values.shape

    def _row(self, name):
        try:
            return self.index.index(name)
        except ValueError:
            raise KeyError(f"{name!r} is not a row; rows: {self.index}.") from None

    def _col(self, name):
        try:
            return self.columns.index(name)
        except ValueError:
            raise KeyError(f"{name!r} is not a column; columns: {self.columns}.") from None

    def __getitem__(self, key):
        """``table[column]``: the column over rows; ``table[row, column]``: one value."""
        if isinstance(key, tuple):
            row, col = key
            return self.values[self._row(row), self._col(col)]
        return self.values[:, self._col(key)]

    def to_pandas(self):
        """The means as a ``pandas.DataFrame`` (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("AlignmentTable.to_pandas needs pandas; `pip install pandas`.") from exc
        return pd.DataFrame(self.values, index=self.index, columns=self.columns)

    def to_dict(self):
        """A JSON-friendly dict: ``index``, ``columns``, ``values``, ``stderr``, ``count``."""
        clean = lambda a: [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in a]  # noqa: E731
        return {
            "index": self.index,
            "columns": self.columns,
            "values": clean(self.values),
            "stderr": clean(self.stderr),
            "count": self.count.astype(int).tolist(),
        }

    def format(self, *, stderr=True, precision=2, counts=True):
        """The table as text, rows = base classifiers, columns = downstream classifiers.

        With ``counts``, a last column ``n`` gives the number of samples behind
        each row (those whose base prediction dropped by more than the
        threshold); a row of ``nan`` with ``n = 0`` means that no counterfactual
        of that base classifier moved it far enough.
        """
        cells = [[f"{v:.{precision}f}" + (f"±{s:.{precision}f}" if stderr and np.isfinite(s) else "")
                  for v, s in zip(vr, sr)] for vr, sr in zip(self.values, self.stderr)]
        columns = list(self.columns)
        if counts:
            columns.append("n")
            for row, c in zip(cells, self.count):
                row.append(str(int(np.max(c))) if np.size(c) else "0")
        corner = "base \\ downstream"
        widths = [max(len(corner), *(len(r) for r in self.index))]
        widths += [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(columns)]
        line = lambda items: "  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(items, widths)))  # noqa: E731
        return "\n".join([line([corner, *columns])] + [line([r, *row]) for r, row in zip(self.index, cells)])

    def __str__(self):
        return self.format()

    def __repr__(self):
        return f"AlignmentTable({len(self.index)} x {len(self.columns)})\n{self.format()}"


# --------------------------------------------------------------------------- composed classifier
def _score_range(clf):
    return clf._score_range() if isinstance(clf, AdditiveClassifier) else (0.0, 1.0)


class AdditiveClassifier(ClassifierMixin, BaseEstimator):
    """The additive composition of two classifiers: ``f'(x) = f_target(x) + beta * f_spurious(x)``.

    Eq. 4 of Cohen et al. (2024) builds a classifier with a known spurious
    correlation this way (``beta = 0.3``); Eq. 5 repairs one with a fitted
    (usually negative) ``beta`` (see :func:`rectify`). Both terms are the
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
        May itself be an ``AdditiveClassifier`` (target ``None``).
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

    def __sklearn_clone__(self):
        # the parts are fitted classifiers: a clone keeps them as they are
        return AdditiveClassifier(**self.get_params(deep=False))

    def _check_spec(self, spec, name):
        if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
            raise TypeError(f"`{name}` must be a tuple (classifier, target); got {type(spec).__name__}.")

    def fit(self, X=None, y=None):
        """Check the two classifiers and set ``classes_``; nothing is trained.

        Parameters
        ----------
        X, y : ignored

        Returns
        -------
        self
        """
        self._check_spec(self.target, "target")
        self._check_spec(self.spurious, "spurious")
        _check_real(self.beta, "beta")
        _check_int(self.batch_size, "batch_size", 1)
        dev = resolve_device(self.device)
        self.device_ = dev
        self.target_output_ = as_classifier_output(self.target, outputs=self.outputs, device=dev, name="target")
        self.spurious_output_ = as_classifier_output(self.spurious, outputs=self.outputs, device=dev, name="spurious")
        clf, tgt = self.target[0], self.target[1]
        classes = getattr(clf, "classes_", None)
        if isinstance(clf, AdditiveClassifier):
            classes, tgt = clf.classes_, clf.positive_class_
        if classes is not None and len(classes) == 2:
            self.classes_ = np.asarray(classes)
            self.positive_class_ = tgt
        else:
            self.classes_ = np.array([False, True])
            self.positive_class_ = True
        return self

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

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "classes_")
        modules = {id(m): m for m in self.target_output_.modules + self.spurious_output_.modules}.values()
        out = []
        with contextlib.ExitStack() as stack, torch.no_grad():
            for m in modules:
                stack.enter_context(restore_module_state(m))
                m.eval()
            for xb in iter_batches(X, self.batch_size, device=self.device_):
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


# --------------------------------------------------------------------------- the scorer
_LS_PARAMS = ("outputs", "target_drop", "min_output", "max_image_change", "step_size", "max_steps", "n_path",
              "batch_size", "device", "verbose")


class CFAlignmentScorer(BaseEstimator):
    """Counterfactual alignment of a base classifier with downstream classifiers.

    ``fit(X)`` makes Latent Shift counterfactuals (Eqs. 1-2) of every image
    for the ``base`` classifier, feeds them to the ``downstream`` classifiers
    and stores the relative change (Eq. 3) of each; the alignment with each
    downstream classifier is the mean relative change over the samples whose
    base prediction dropped by more than ``base_change_threshold`` (Cohen et
    al., 2024, section 4.1). :meth:`alignment_matrix` does this for every
    classifier as base against every other (figure 2a), :meth:`score` turns
    the alignment with the classifiers named ``spurious`` into a number to
    minimise, and :meth:`counterfactuals` returns images to look at.

    Parameters
    ----------
    autoencoder : object with ``encode``/``decode``, pair ``(encoder, decoder)``, fitted :class:`Autoencoder` or None
        ``None`` trains an :class:`Autoencoder` on the images given to ``fit``
        (``latent_dim``, ``autoencoder_epochs``, ``random_state``).
    base : tuple ``(classifier, target)``
        The classifier explained and the class whose probability the
        counterfactuals lower (see :func:`as_classifier_output`).
    downstream : dict ``{name: (classifier, target)}``
        Classifiers of other attributes, evaluated on the counterfactuals.
    spurious : list of str, optional
        Downstream names whose alignment :meth:`score` measures; default all.
    base_name : str, default="base"
        Name of the base classifier in tables.
    base_change_threshold : float, default=0.3
        Samples whose base prediction dropped by less are left out of the
        means (the paper's 0.3).
    outputs : {"logits", "sigmoid", "probabilities"}, default="logits"
        How raw modules' outputs become probabilities.
    target_drop, min_output, max_image_change, step_size, max_steps, n_path
        The lambda search of :class:`LatentShift` (defaults 0.6, 0.05, 0.05,
        "auto", 50, 2). ``max_image_change=0.05`` is the authors' stop for
        photographs; digits on a black background need it raised or ``None``.
    latent_dim : int, default=32
        Code size of the autoencoder trained when ``autoencoder=None``.
    autoencoder_epochs : int, default=20
        Its epochs.
    batch_size : int, default=64
        Images searched together.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the autoencoder's training.
    verbose : int, default=0

    Attributes
    ----------
    autoencoder_ : object
        The autoencoder used (trained when ``autoencoder=None``).
    downstream_names_ : list of str
    relative_changes_ : ndarray of shape (n_samples, n_downstream)
        Eq. 3 for every sample and downstream classifier (NaN where the base did not change).
    base_changes_ : ndarray of shape (n_samples,)
        ``f_b(x_0) - f_b(x_lambda)``.
    base_outputs_ : ndarray of shape (n_samples,)
        ``f_b(x_0)`` on the reconstructions.
    lambdas_ : ndarray of shape (n_samples,)
    stop_reasons_ : ndarray of shape (n_samples,)
    alignment_ : :class:`Alignment`
        Mean relative change per downstream name (``alignment_["colour"]``),
        with ``alignment_.stderr`` and ``alignment_.count``.
    n_kept_ : int
        Samples above the base-change threshold.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import CFAlignmentScorer
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> enc, dec = torch.nn.Linear(6, 3), torch.nn.Linear(3, 6)
    >>> fa, fb = torch.nn.Linear(6, 2), torch.nn.Linear(6, 2)
    >>> scorer = CFAlignmentScorer((enc, dec), (fa, 1), {"b": (fb, 1)}, max_image_change=None,
    ...                            device="cpu").fit(torch.rand(20, 6))
    >>> scorer.relative_changes_.shape, list(scorer.alignment_)
    ((20, 1), ['b'])
    """

    def __init__(
        self,
        autoencoder=None,
        base=None,
        downstream=None,
        *,
        spurious=None,
        base_name="base",
        base_change_threshold=0.3,
        outputs="logits",
        target_drop=0.6,
        min_output=0.05,
        max_image_change=0.05,
        step_size="auto",
        max_steps=50,
        n_path=2,
        latent_dim=32,
        autoencoder_epochs=20,
        batch_size=64,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.autoencoder = autoencoder
        self.base = base
        self.downstream = downstream
        self.spurious = spurious
        self.base_name = base_name
        self.base_change_threshold = base_change_threshold
        self.outputs = outputs
        self.target_drop = target_drop
        self.min_output = min_output
        self.max_image_change = max_image_change
        self.step_size = step_size
        self.max_steps = max_steps
        self.n_path = n_path
        self.latent_dim = latent_dim
        self.autoencoder_epochs = autoencoder_epochs
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ helpers
    def _ls_params(self):
        return {k: getattr(self, k) for k in _LS_PARAMS}

    def _resolve_autoencoder(self, X):
        if self.autoencoder is not None:
            as_autoencoder(self.autoencoder, device=self.device)  # validates
            return self.autoencoder
        from .autoencoder import Autoencoder

        _check_int(self.latent_dim, "latent_dim", 1)
        _check_int(self.autoencoder_epochs, "autoencoder_epochs", 1)
        ae = Autoencoder(
            latent_dim=self.latent_dim,
            max_epochs=self.autoencoder_epochs,
            batch_size=max(self.batch_size, 32),
            device=self.device,
            random_state=self.random_state,
            verbose=self.verbose,
        )
        return ae.fit(X)

    def _spurious_names(self, names):
        if self.spurious is None:
            return list(names)
        spurious = [self.spurious] if isinstance(self.spurious, str) else list(self.spurious)
        unknown = [s for s in spurious if s not in names]
        if unknown:
            raise ValueError(f"`spurious` names {unknown} are not `downstream` names {list(names)}.")
        return spurious

    def _validate(self):
        if self.base is None:
            raise ValueError("`base` is required: a tuple (classifier, target).")
        names = _named_specs(self.downstream)
        if not names:
            raise ValueError("`downstream` must name at least one classifier: {name: (classifier, target)}.")
        _check_real(self.base_change_threshold, "base_change_threshold")
        self._spurious_names(names)
        return names

    def _shift(self, autoencoder, base, downstream, base_name=None, n_path=None):
        params = self._ls_params()
        if n_path is not None:
            params["n_path"] = n_path
        return LatentShift(autoencoder, base, downstream=downstream, base_name=base_name or self.base_name, **params)

    # ------------------------------------------------------------------ API
    def fit(self, X, y=None):
        """Counterfactuals of X for the base classifier, and the relative changes they cause.

        Parameters
        ----------
        X : ndarray or tensor of shape (n, c, h, w), or torch Dataset
            Images in [0, 1].
        y : ignored

        Returns
        -------
        self
        """
        names = self._validate()
        self.autoencoder_ = self._resolve_autoencoder(X)
        result = self._shift(self.autoencoder_, self.base, names).generate(X, return_images=False)
        self.downstream_names_ = list(names)
        self.relative_changes_ = result.relative_changes
        self.base_changes_ = result.base_change
        self.base_outputs_ = result.path_outputs[self.base_name][:, 0]
        self.lambdas_ = result.lambdas
        self.stop_reasons_ = result.stop_reason
        mean, stderr, count = aggregate_alignment(self.relative_changes_, self.base_changes_, threshold=self.base_change_threshold)
        self.alignment_ = Alignment(
            self.base_name,
            dict(zip(names, mean.tolist())),
            dict(zip(names, stderr.tolist())),
            dict(zip(names, count.astype(int).tolist())),
        )
        self.n_kept_ = int(np.sum(self.base_changes_ > self.base_change_threshold))
        if self.n_kept_ == 0:
            warnings.warn(
                f"No sample's base prediction dropped by more than {self.base_change_threshold}; the alignment is "
                "undefined (NaN). Use samples the base classifier predicts positive, or check the autoencoder.",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def _spurious_score(self, relative_changes, base_change):
        spurious = self._spurious_names(self.downstream_names_)
        cols = [self.downstream_names_.index(s) for s in spurious]
        keep = base_change > self.base_change_threshold
        vals = np.abs(relative_changes[keep][:, cols])
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            warnings.warn("No sample is above the base-change threshold; the score is NaN.", RuntimeWarning, stacklevel=3)
            return float("nan")
        return float(vals.mean())

    def score(self, X, y=None):
        """Mean absolute relative change towards the ``spurious`` classifiers on X.

        Counterfactuals of X for the base classifier; over the samples whose
        base change exceeds the threshold, the mean of ``|relative change|``
        (Eq. 3) with every classifier named in ``spurious``. Lower is better:
        0 means the base classifier's counterfactuals leave the spurious
        attributes alone. Note the sign convention: unlike sklearn's
        ``score`` this is a number to *minimise*; :func:`make_alignment_scorer`
        negates it for model selection.

        Parameters
        ----------
        X : images
        y : ignored

        Returns
        -------
        float
        """
        check_is_fitted(self, "alignment_")
        names = _named_specs(self.downstream)
        result = self._shift(self.autoencoder_, self.base, names).generate(X, return_images=False)
        return self._spurious_score(result.relative_changes, result.base_change)

    def counterfactuals(self, X, *, n_path=None, return_path_images=False):
        """Counterfactual images of X, their lambdas and every classifier's outputs along the path.

        Parameters
        ----------
        X : images
        n_path : int, optional
            Points on each path (default: the ``n_path`` parameter).
        return_path_images : bool, default=False
            Also return the images along each path.

        Returns
        -------
        :class:`~sklearn.utils.Bunch`
            See :meth:`LatentShift.generate`.
        """
        check_is_fitted(self, "alignment_")
        names = _named_specs(self.downstream)
        return self._shift(self.autoencoder_, self.base, names, n_path=n_path).generate(
            X, return_images=True, return_path_images=return_path_images
        )

    def alignment_matrix(self, X, classifiers=None):
        """Every classifier as base against every other as downstream (figure 2a of the paper).

        Parameters
        ----------
        X : images
        classifiers : dict ``{name: (classifier, target)}``, optional
            Default: the base (as ``base_name``) and the downstream classifiers.

        Returns
        -------
        AlignmentTable
            Rows: base classifiers; columns: downstream classifiers; values:
            mean relative change over the samples whose base change exceeds
            the threshold, with standard errors (``.stderr``) and counts
            (``.count``). The diagonal is 1 by definition.

        Notes
        -----
        Uses the fitted autoencoder when the scorer is fitted; otherwise the
        ``autoencoder`` parameter (one is trained on X when it is ``None``,
        without being stored).
        """
        if classifiers is None:
            check_is_fitted(self, "alignment_")
            classifiers = {self.base_name: self.base, **_named_specs(self.downstream)}
        if not isinstance(classifiers, dict) or len(classifiers) < 2:
            raise ValueError("`classifiers` must be a dict of at least two {name: (classifier, target)}.")
        names = list(_named_specs(classifiers))
        autoencoder = self.autoencoder_ if hasattr(self, "autoencoder_") else self._resolve_autoencoder(X)
        k = len(names)
        values, stderr, count = np.full((k, k), np.nan), np.full((k, k), np.nan), np.zeros((k, k), dtype=int)
        for i, name in enumerate(names):
            others = {o: classifiers[o] for o in names if o != name}
            res = self._shift(autoencoder, classifiers[name], others, base_name=name).generate(X, return_images=False)
            mean, se, cnt = aggregate_alignment(res.relative_changes, res.base_change, threshold=self.base_change_threshold)
            kept = int(np.sum(res.base_change > self.base_change_threshold))
            values[i, i], stderr[i, i], count[i, i] = (1.0 if kept else np.nan), (0.0 if kept > 1 else np.nan), kept
            for j_other, other in enumerate(res.downstream_names):
                j = names.index(other)
                values[i, j], stderr[i, j], count[i, j] = mean[j_other], se[j_other], cnt[j_other]
        return AlignmentTable(values, stderr, count, names, names)


# --------------------------------------------------------------------------- model selection
class AlignmentScorer:
    """An sklearn scorer: minus the mean absolute relative change of an estimator towards spurious classifiers.

    Built by :func:`make_alignment_scorer`; ``scorer(estimator, X, y=None)``
    fits a :class:`CFAlignmentScorer` with ``base=(estimator, target)`` on X
    and returns ``-score``, so that greater is better as sklearn expects.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import AlignmentScorer
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> identity = (torch.nn.Identity(), torch.nn.Identity())
    >>> scorer = AlignmentScorer(identity, {"b": (torch.nn.Linear(3, 2), 1)}, 1,
    ...                          {"max_image_change": None, "base_change_threshold": 0.0, "device": "cpu"})
    >>> float(scorer(torch.nn.Linear(3, 2), torch.rand(8, 3))) <= 0
    True
    """

    def __init__(self, autoencoder, spurious, target, params):
        self.autoencoder = autoencoder
        self.spurious = spurious
        self.target = target
        self.params = params

    def __call__(self, estimator, X, y=None, **kwargs):
        scorer = CFAlignmentScorer(self.autoencoder, (estimator, self.target), self.spurious, **self.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scorer.fit(X)
        return -scorer._spurious_score(scorer.relative_changes_, scorer.base_changes_)

    def __repr__(self):
        return f"make_alignment_scorer(spurious={list(self.spurious)}, target={self.target!r})"


def make_alignment_scorer(autoencoder, spurious, *, target=1, **params):
    """An sklearn scorer that prefers models whose counterfactuals leave spurious attributes alone.

    For use as ``scoring=`` in ``GridSearchCV``, ``cross_validate`` and the
    like: on each validation fold it makes Latent Shift counterfactuals for
    the candidate model (class ``target``), measures the relative change
    (Eq. 3) of each classifier in ``spurious``, and returns minus the mean
    absolute relative change over samples whose base change exceeds the
    threshold. Higher is better.

    Parameters
    ----------
    autoencoder : fitted autoencoder, pair or object with ``encode``/``decode``
        Shared by every fold; train it once beforehand (``None`` would train
        one per call).
    spurious : dict ``{name: (classifier, target)}``
        Classifiers of the attributes the model should not use.
    target : object, default=1
        The class of the candidate model whose probability is lowered.
    **params
        Other :class:`CFAlignmentScorer` parameters (``base_change_threshold``,
        ``max_image_change``, ``device``, ...).

    Returns
    -------
    AlignmentScorer
        A callable ``scorer(estimator, X, y=None) -> float``.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import make_alignment_scorer
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> enc, dec = torch.nn.Linear(6, 3), torch.nn.Linear(3, 6)
    >>> scorer = make_alignment_scorer((enc, dec), {"b": (torch.nn.Linear(6, 2), 1)},
    ...                                base_change_threshold=0.0, max_image_change=None, device="cpu")
    >>> value = scorer(torch.nn.Linear(6, 2), torch.rand(10, 6))
    >>> value <= 0
    True
    """
    names = _named_specs(spurious)
    if not names:
        raise ValueError("`spurious` must name at least one classifier: {name: (classifier, target)}.")
    bad = {"autoencoder", "base", "downstream", "spurious"} & set(params)
    if bad:
        raise TypeError(f"make_alignment_scorer got {sorted(bad)} in **params; pass them as its own arguments.")
    CFAlignmentScorer(**params)  # unknown parameters fail here, not in the middle of a search
    return AlignmentScorer(autoencoder, names, target, dict(params))


# --------------------------------------------------------------------------- rectification
def rectify(
    X,
    target,
    spurious,
    autoencoder,
    *,
    X_val=None,
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
    """Repair a classifier's spurious correlation by additive composition (section 4.5).

    Builds ``f'(x) = f_target(x) + beta * f_spurious(x)`` (Eq. 5) and fits
    ``beta`` by the pseudo-gradient descent of Eq. 6: the mean relative change
    ``psi`` of ``f_spurious`` under counterfactuals of ``f'`` plays the
    gradient, with momentum,

    .. math::

        v_n = \\text{momentum}\\, v_{n-1} + \\psi_n, \\qquad \\beta_n = \\beta_{n-1} - \\text{lr}\\, v_n ,

    on minibatches of ``batch_size`` (10) training images, using only samples
    whose base change exceeds ``min_base_change`` (0.6). After every update
    the mean relative change on the validation images is measured; the
    ``beta`` with the smallest ``|psi|`` there is kept and training stops after
    ``patience`` updates without improvement (early stopping, figure 7).

    The paper's Eq. 6 writes the rate 0.001 and momentum 0.1, the defaults
    here; with few, small images a larger ``learning_rate`` (0.1 - 1) reaches
    the minimum in a few dozen updates.

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
    validation_fraction : float, default=0.3
    beta_init : float, default=0.0
    learning_rate : float, default=0.001
    momentum : float, default=0.1
    batch_size : int, default=10
        Minibatch size of the updates.
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

    Returns
    -------
    AdditiveClassifier
        Fitted, with ``beta`` the selected coefficient and the attributes
        ``history_`` (one dict per update: ``iteration``, ``beta``,
        ``train_psi``, ``val_psi``, ``n_train_kept``, ``n_val_kept``),
        ``best_iteration_`` and ``val_psi_`` (the selected ``psi``).

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
    >>> len(fixed.history_) <= 4, isinstance(fixed.beta, float)
    (True, True)
    """
    _check_real(validation_fraction, "validation_fraction", low=0, low_open=True, high=0.9)
    _check_real(beta_init, "beta_init")
    _check_real(learning_rate, "learning_rate", low=0, low_open=True)
    _check_real(momentum, "momentum", low=0, high=1)
    _check_int(batch_size, "batch_size", 1)
    _check_real(min_base_change, "min_base_change")
    _check_int(max_iter, "max_iter", 1)
    _check_int(patience, "patience", 1)
    rng = check_random_state(random_state)
    as_autoencoder(autoencoder, device=device)  # validates early

    X = _as_indexable(X, "X")
    if X_val is None:
        n = n_samples(X)
        perm = rng.permutation(n)
        n_val = max(1, int(round(validation_fraction * n)))
        if n - n_val < 1:
            raise ValueError(f"`X` has {n} images: too few to hold out a validation split.")
        X_val, X = _take(X, np.sort(perm[:n_val])), _take(X, np.sort(perm[n_val:]))
    else:
        X_val = _as_indexable(X_val, "X_val")

    def make(beta):
        return AdditiveClassifier(target, spurious, beta=float(beta), outputs=outputs, device=device).fit()

    clf = make(beta_init)
    if positives_only:
        X = _take(X, np.flatnonzero(clf.predict(X) == clf.positive_class_))
        X_val = _take(X_val, np.flatnonzero(clf.predict(X_val) == clf.positive_class_))
        if n_samples(X) == 0 or n_samples(X_val) == 0:
            raise ValueError("No training or validation image is predicted positive by `target`; nothing to rectify.")

    ls_params = dict(outputs=outputs, target_drop=target_drop, min_output=min_output, max_image_change=max_image_change,
                     step_size=step_size, max_steps=max_steps, device=device)

    def psi(model, images):
        res = LatentShift(autoencoder, (model, None), downstream={"spurious": spurious}, base_name="target",
                          batch_size=64, **ls_params).generate(images, return_images=False)
        mean, _, count = aggregate_alignment(res.relative_changes, res.base_change, threshold=min_base_change)
        return float(mean[0]), int(count[0])

    beta = float(beta_init)
    velocity = 0.0
    val_psi, n_val_kept = psi(clf, X_val)
    history = [dict(iteration=0, beta=beta, train_psi=float("nan"), val_psi=val_psi, n_train_kept=0, n_val_kept=n_val_kept)]
    best = (abs(val_psi) if np.isfinite(val_psi) else np.inf, 0, beta, val_psi)
    n_train = n_samples(X)
    order = rng.permutation(n_train)
    pos = 0
    since_best = 0
    for it in range(1, max_iter + 1):
        if pos >= n_train:
            order, pos = rng.permutation(n_train), 0
        idx = np.sort(order[pos : pos + batch_size])
        pos += batch_size
        train_psi, n_kept = psi(clf, _take(X, idx))
        if n_kept and np.isfinite(train_psi):
            velocity = momentum * velocity + train_psi
            beta = beta - learning_rate * velocity
            clf = make(beta)
        val_psi, n_val_kept = psi(clf, X_val)
        history.append(dict(iteration=it, beta=beta, train_psi=train_psi, val_psi=val_psi, n_train_kept=n_kept,
                            n_val_kept=n_val_kept))
        if verbose:
            print(f"rectify {it:3d}: beta={beta:+.4f} train psi={train_psi:+.3f} (n={n_kept}) "
                  f"val psi={val_psi:+.3f} (n={n_val_kept})")
        if np.isfinite(val_psi) and abs(val_psi) < best[0]:
            best = (abs(val_psi), it, beta, val_psi)
            since_best = 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    _, best_it, best_beta, best_psi = best
    result = make(best_beta)
    result.history_ = history
    result.best_iteration_ = best_it
    result.val_psi_ = best_psi
    return result


def _as_indexable(X, name):
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    if isinstance(X, torch.utils.data.Dataset):
        return X
    X = np.asarray(X, dtype=np.float32)
    if X.ndim < 2:
        raise ValueError(f"`{name}` must be a batch of images; got shape {X.shape}.")
    return X


def _take(X, idx):
    if isinstance(X, np.ndarray):
        return X[idx]
    return torch.utils.data.Subset(X, [int(i) for i in idx])
