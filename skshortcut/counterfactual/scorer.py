"""Counterfactual alignment of classifiers, as an estimator and as a model-selection scorer.

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
attribute's classifier.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .adapters import KeepsFittedParts, as_autoencoder, check_counterfactual_images
from .latent_shift import SEARCH_CONSTRAINTS, LatentShift, _named_specs, stop_summary
from .tables import Alignment, AlignmentTable, aggregate_alignment

__all__ = ["AlignmentScorer", "CFAlignmentScorer", "make_alignment_scorer"]


_LS_PARAMS = ("outputs", "target_drop", "min_output", "max_image_change", "step_size", "max_steps", "n_path",
              "batch_size", "device", "verbose")


class CFAlignmentScorer(KeepsFittedParts, BaseEstimator):
    """Counterfactual alignment of a base classifier with downstream classifiers.

    ``fit(X)`` makes Latent Shift counterfactuals (Eqs. 1-2) of every image
    for the ``base`` classifier, feeds them to the ``downstream`` classifiers
    and stores the relative change (Eq. 3) of each; the alignment with each
    downstream classifier is the mean relative change over the samples whose
    base prediction dropped by more than ``base_change_threshold`` (Cohen et
    al., 2024, section 4.1). :meth:`alignment_matrix` does this for every
    classifier as base against every other (figure 2a), :meth:`score` turns
    the alignment with the classifiers named ``spurious`` into a number where
    greater is better, as scikit-learn expects (minus the mean absolute
    relative change; 0 is best), and :meth:`counterfactuals` returns images
    to look at.

    The classifiers and the autoencoder given are used as they are (fitted):
    ``clone`` keeps them instead of re-creating them unfitted, so the scorer
    works inside ``GridSearchCV`` and ``cross_validate``.

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

    _parameter_constraints = {
        **{k: SEARCH_CONSTRAINTS[k] for k in _LS_PARAMS},
        "autoencoder": "no_validation",  # resolved by as_autoencoder, with its own messages
        "base": [tuple, list, None],
        "downstream": [dict, None],
        "spurious": [str, list, tuple, None],
        "base_name": [str],
        "base_change_threshold": [Interval(Real, None, None, closed="neither")],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "autoencoder_epochs": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    # ------------------------------------------------------------------ helpers
    def _ls_params(self):
        return {k: getattr(self, k) for k in _LS_PARAMS}

    def _resolve_autoencoder(self, X):
        if self.autoencoder is not None:
            as_autoencoder(self.autoencoder, device=self.device)  # validates
            return self.autoencoder
        from .autoencoder import Autoencoder

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
        self._validate_params()
        if self.base is None:
            raise ValueError("`base` is required: a tuple (classifier, target).")
        names = _named_specs(self.downstream)
        if not names:
            raise ValueError("`downstream` must name at least one classifier: {name: (classifier, target)}.")
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
            Images in [0, 1]; NaN or infinite values are refused.
        y : ignored

        Returns
        -------
        self
        """
        names = self._validate()
        X = check_counterfactual_images(X)
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
                f"undefined (NaN). {stop_summary(self.stop_reasons_, self._shift_limits())}",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def _shift_limits(self):
        return {"max_image_change": self.max_image_change, "max_steps": self.max_steps, "min_output": self.min_output}

    def _spurious_score(self, relative_changes, base_change):
        """Minus the mean ``|relative change|`` towards the ``spurious`` classifiers (greater is better)."""
        spurious = self._spurious_names(self.downstream_names_)
        cols = [self.downstream_names_.index(s) for s in spurious]
        keep = base_change > self.base_change_threshold
        vals = np.abs(relative_changes[keep][:, cols])
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            warnings.warn("No sample is above the base-change threshold; the score is NaN.", RuntimeWarning, stacklevel=3)
            return float("nan")
        return -float(vals.mean())

    def score(self, X, y=None):
        """Minus the mean absolute relative change towards the ``spurious`` classifiers on X.

        Counterfactuals of X for the base classifier; over the samples whose
        base change exceeds the threshold, the mean of ``|relative change|``
        (Eq. 3) with every classifier named in ``spurious``, negated so that
        greater is better, as scikit-learn's ``score`` and ``GridSearchCV``
        expect: 0 (the best) means the base classifier's counterfactuals leave
        the spurious attributes alone, -1 that the spurious classifiers move
        as much as the base one. :func:`make_alignment_scorer` returns the
        same number for a candidate model.

        Parameters
        ----------
        X : images
        y : ignored

        Returns
        -------
        float
            ``<= 0``; NaN (with a ``RuntimeWarning``) when no sample's base
            prediction dropped by more than the threshold.
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
        self._validate_params()
        X = check_counterfactual_images(X)
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
    and returns what its :meth:`~CFAlignmentScorer.score` returns on X:
    minus the mean absolute relative change, so that greater is better as
    sklearn expects.

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
        # the counterfactuals of fit are those score(X) would make again: use them
        return scorer._spurious_score(scorer.relative_changes_, scorer.base_changes_)

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
    CFAlignmentScorer(**params)._validate_params()  # unknown or bad parameters fail here, not in a search
    return AlignmentScorer(autoencoder, names, target, dict(params))
