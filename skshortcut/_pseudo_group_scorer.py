"""Model selection without group labels: a group metric on a fitted grouper's pseudo-groups.

A grouper (ExMap, GEORGE, a clusterer) fitted once assigns pseudo-groups to
any data; scoring worst-group accuracy on the pseudo-groups of each validation
fold lets ``GridSearchCV`` and ``cross_validate`` tune without a single group
label.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.validation import check_is_fitted

from ._group_labels import check_groups
from ._grouped import GroupedData, unpack_grouped
from ._validation import check_labels, check_same_length

__all__ = ["PseudoGroupScorer", "make_pseudo_group_scorer"]


def _default_metric():
    from .metrics import worst_group_accuracy

    return worst_group_accuracy


class PseudoGroupScorer:
    """Scorer of a group metric on the pseudo-groups a fitted grouper gives the scored data.

    Use :func:`make_pseudo_group_scorer` to build one. Called as
    ``scorer(estimator, X, y)`` (what ``GridSearchCV`` and ``cross_validate``
    do on each validation fold), it computes the pseudo-groups of ``X`` with
    the grouper, predicts with the estimator on the same ``X``, and returns
    ``metric(y, estimator.predict(X), groups=pseudo_groups)``. It needs no
    group labels and no metadata routing.

    Parameters
    ----------
    grouper : fitted object
        A fitted grouper: with ``predict(X)``, the group of each sample is what
        it predicts (a fitted clusterer such as ``KMeans``: the cluster; its
        ``transform`` would give distances); otherwise ``transform(X)`` must
        return a :class:`~skshortcut.GroupedData` whose ``groups`` are used
        (``ExMapGrouper``, ``FeatureClusterGrouper``).
    metric : callable, optional
        ``metric(y_true, y_pred, *, groups) -> float``; default
        :func:`~skshortcut.worst_group_accuracy`.
    by_class : bool, default=False
        Cross the grouper's groups with the true class: each pseudo-group is
        then ``(y, grouper group)``. A grouper assigns a new sample through
        what it can see, for ExMap and GEORGE the base model's *predicted*
        class and a fitted cluster; crossing with the true class keeps the
        samples the base model got wrong apart from those it got right. It
        also makes many small groups, where one error moves the worst-group
        accuracy by a lot.
    sign : {1, -1}, default=1
        ``-1`` for metrics where lower is better.

    Notes
    -----
    The grouper and the estimator receive the same ``X``. That is the common
    case with image groupers: the searched estimator takes images too (an
    estimator with a base model inside, or a pipeline starting with the
    embedding). When the searched estimator takes embeddings, compute the
    pseudo-groups once, ``grouper.transform(images).groups``, and tune with
    :data:`worst_group_scorer` and ``fit(Z, y, groups=pseudo_groups)``
    through metadata routing instead.

    Examples
    --------
    A feature that agrees with the label for 90% of the samples; four
    clusters find the four (class, feature) groups without being told:

    >>> import numpy as np
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skshortcut.metrics import PseudoGroupScorer, worst_group_accuracy
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 400)
    >>> s = np.where(rng.rand(400) < 0.9, y, 1 - y)
    >>> X = np.c_[2 * y + rng.normal(0, 0.5, 400), 2 * s + rng.normal(0, 0.5, 400)]
    >>> scorer = PseudoGroupScorer(KMeans(4, n_init=10, random_state=0).fit(X))
    >>> clf = LogisticRegression(C=0.01).fit(X, y)
    >>> round(scorer(clf, X, y), 3), round(worst_group_accuracy(y, clf.predict(X), groups=2 * y + s), 3)
    (0.825, 0.68)
    """

    def __init__(self, grouper, metric=None, *, by_class: bool = False, sign: int = 1):
        self.grouper = grouper
        self.metric = _default_metric() if metric is None else metric
        self.by_class = by_class
        self.sign = sign

    def pseudo_groups(self, X, y_true=None) -> np.ndarray:
        """Pseudo-groups of ``X`` (crossed with ``y_true`` when ``by_class``).

        Parameters
        ----------
        X : what the grouper takes (images for ``ExMapGrouper``)
        y_true : array-like of shape (n_samples,), optional
            Needed with ``by_class=True``.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        _check_fitted_grouper(self.grouper)
        X, _ = unpack_grouped(X)
        if hasattr(self.grouper, "predict"):  # a clusterer: the cluster of each sample
            groups = check_labels(self.grouper.predict(X), "the grouper's predict(X)")
        else:
            out = self.grouper.transform(X)
            if not isinstance(out, GroupedData) and not hasattr(out, "groups"):
                raise TypeError(
                    f"{type(self.grouper).__name__}.transform(X) must return a GroupedData holding the groups; "
                    f"got {type(out).__name__}."
                )
            groups = check_groups(out.groups, "the grouper's groups")
        if self.by_class:
            if y_true is None:
                raise ValueError("`y_true` is needed to cross the pseudo-groups with the class (by_class=True).")
            y_true = check_labels(y_true, "y_true")
            check_same_length(y_true=y_true, groups=groups)
            crossed = np.empty(len(groups), dtype=object)
            crossed[:] = list(zip(y_true.tolist(), groups.tolist()))
            groups = crossed
        return groups

    def __call__(self, estimator, X, y_true, **kwargs):
        _check_fitted_grouper(self.grouper)
        _check_same_classes(self.grouper, estimator)
        groups = self.pseudo_groups(X, y_true)
        X, _ = unpack_grouped(X)
        y_pred = estimator.predict(X)
        return self.sign * self.metric(y_true, y_pred, groups=groups)

    def get_metadata_routing(self) -> MetadataRequest:
        """Metadata request: nothing (the groups come from the grouper)."""
        return MetadataRequest(owner=self.__class__.__name__)

    def __repr__(self) -> str:
        name = getattr(self.metric, "__name__", repr(self.metric))
        extra = (", by_class=True" if self.by_class else "") + ("" if self.sign == 1 else ", sign=-1")
        return f"make_pseudo_group_scorer({type(self.grouper).__name__}(...), metric={name}{extra})"


def _check_fitted_grouper(grouper) -> None:
    if not (hasattr(grouper, "transform") or hasattr(grouper, "predict")):
        raise TypeError(
            f"`grouper` must have transform(X) (returning GroupedData or groups) or predict(X); "
            f"got {type(grouper).__name__}."
        )
    if isinstance(grouper, BaseEstimator):
        try:
            check_is_fitted(grouper)
            return
        except NotFittedError:
            fitted = False
    else:  # the same rule for other objects with fit: a fitted attribute ends in "_"
        fitted = not hasattr(grouper, "fit") or any(
            k.endswith("_") and not k.startswith("__") for k in getattr(grouper, "__dict__", {})
        )
    if not fitted:
        raise NotFittedError(
            f"The pseudo-group scorer needs a fitted grouper, but this {type(grouper).__name__} is not fitted: "
            "fit it first (for example on the training split), then build the scorer."
        )


def _check_same_classes(grouper, estimator) -> None:
    g_classes, e_classes = getattr(grouper, "classes_", None), getattr(estimator, "classes_", None)
    if g_classes is None or e_classes is None:
        return
    g_list, e_list = np.asarray(g_classes).tolist(), np.asarray(e_classes).tolist()
    if sorted(map(repr, g_list)) != sorted(map(repr, e_list)):
        raise ValueError(
            f"The grouper was fit on classes {g_list} but the scored estimator predicts classes {e_list}; "
            "pseudo-groups are class x cluster, so both must be fit on the same labels."
        )


def make_pseudo_group_scorer(grouper, metric=None, *, by_class: bool = False,
                             greater_is_better: bool = True) -> PseudoGroupScorer:
    """Scorer of a group metric on a fitted grouper's pseudo-groups: model selection without group labels.

    On each validation fold the grouper (for example a fitted
    :class:`~skshortcut.ExMapGrouper`) assigns pseudo-groups to the fold's
    samples and the metric, worst-group accuracy by default, is computed on
    them. Use it as ``GridSearchCV(..., scoring=make_pseudo_group_scorer(g))``
    or in ``cross_validate``.

    Parameters
    ----------
    grouper : fitted object
        See :class:`PseudoGroupScorer`.
    metric : callable, optional
        ``metric(y_true, y_pred, *, groups) -> float``; default
        :func:`~skshortcut.worst_group_accuracy`.
    by_class : bool, default=False
        Cross the grouper's groups with the true class.
    greater_is_better : bool, default=True
        Whether a higher value is better; if not, the score is negated.

    Returns
    -------
    PseudoGroupScorer

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the grouper is not fitted.
    TypeError
        If ``grouper`` has neither ``transform`` nor ``predict``, or ``metric``
        is not callable.

    Notes
    -----
    The grouper receives the ``X`` the scored estimator receives, so an image
    grouper needs an estimator over images (see :class:`PseudoGroupScorer`);
    a grouper fit on other classes than the estimator is an error at scoring.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skshortcut.metrics import make_pseudo_group_scorer
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 400)
    >>> s = np.where(rng.rand(400) < 0.9, y, 1 - y)
    >>> X = np.c_[2 * y + rng.normal(0, 0.5, 400), 2 * s + rng.normal(0, 0.5, 400)]
    >>> scorer = make_pseudo_group_scorer(KMeans(4, n_init=10, random_state=0).fit(X))
    >>> search = GridSearchCV(LogisticRegression(), {"C": [0.001, 0.01, 1.0]}, scoring=scorer, cv=3).fit(X, y)
    >>> search.cv_results_["mean_test_score"].round(3).tolist()
    [0.25, 0.696, 0.879]
    >>> search.best_params_
    {'C': 1.0}
    """
    metric = _default_metric() if metric is None else metric
    if not callable(metric):
        raise TypeError(f"`metric` must be callable, got {type(metric).__name__}.")
    _check_fitted_grouper(grouper)
    return PseudoGroupScorer(grouper, metric, by_class=by_class, sign=1 if greater_is_better else -1)

