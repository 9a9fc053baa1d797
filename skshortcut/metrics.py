"""Group metrics and scorers for shortcut learning.

A model that learned a shortcut is accurate on average and fails on the groups
where the shortcut breaks. These metrics split accuracy by group (usually a
``(class, spurious attribute)`` pair) so that the failure shows.

The scorers request ``groups`` through scikit-learn's metadata routing, so that
model selection can tune on worst-group accuracy::

    import sklearn
    sklearn.set_config(enable_metadata_routing=True)
    GridSearchCV(est, grid, scoring=worst_group_scorer).fit(X, y, groups=g)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils.metadata_routing import MetadataRequest

from ._grouped import unpack_grouped
from ._validation import check_labels, check_same_length

__all__ = [
    "GroupAccuracies",
    "group_accuracies",
    "worst_group_accuracy",
    "group_balanced_accuracy",
    "GroupScorer",
    "make_group_scorer",
    "worst_group_scorer",
    "group_balanced_scorer",
]


@dataclass(frozen=True)
class GroupAccuracies:
    """Accuracy and number of samples per group.

    Attributes
    ----------
    groups : ndarray of shape (n_groups,)
        The group labels, sorted.
    accuracy : ndarray of shape (n_groups,)
        Accuracy within each group.
    count : ndarray of shape (n_groups,)
        Number of samples in each group.

    Examples
    --------
    >>> from skshortcut.metrics import group_accuracies
    >>> res = group_accuracies([0, 0, 1, 1], [0, 1, 1, 1], groups=["a", "a", "b", "b"])
    >>> res.groups.tolist(), res.accuracy.tolist(), res.count.tolist()
    (['a', 'b'], [0.5, 1.0], [2, 2])
    >>> float(res.worst)
    0.5
    """

    groups: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def worst(self) -> float:
        """Lowest accuracy over the groups."""
        return float(self.accuracy.min())

    @property
    def worst_group(self):
        """Label of the group with the lowest accuracy (the first one on ties)."""
        return self.groups[int(np.argmin(self.accuracy))]

    @property
    def balanced(self) -> float:
        """Mean of the per-group accuracies (every group weighs the same)."""
        return float(self.accuracy.mean())

    def as_dict(self) -> dict:
        """Return ``{group: {"accuracy": float, "count": int}}``."""
        return {
            (g.item() if hasattr(g, "item") else g): {"accuracy": float(a), "count": int(c)}
            for g, a, c in zip(self.groups, self.accuracy, self.count)
        }

    def __str__(self) -> str:
        width = max(5, *(len(str(g)) for g in self.groups))
        lines = [f"{'group':>{width}}  accuracy  count"]
        for g, a, c in zip(self.groups, self.accuracy, self.count):
            lines.append(f"{str(g):>{width}}  {a:8.3f}  {c:5d}")
        lines.append(f"worst-group accuracy {self.worst:.3f}; group-balanced accuracy {self.balanced:.3f}")
        return "\n".join(lines)


def group_accuracies(y_true, y_pred, *, groups) -> GroupAccuracies:
    """Accuracy and sample count of every group.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    groups : array-like of shape (n_samples,)
        Group of each sample, for example ``(class, spurious attribute)`` ids.

    Returns
    -------
    GroupAccuracies
        Per-group accuracies and counts, groups sorted.

    Raises
    ------
    ValueError
        If the inputs are empty, have different lengths or contain NaN labels.

    Examples
    --------
    >>> from skshortcut.metrics import group_accuracies
    >>> res = group_accuracies([0, 0, 1, 1], [0, 1, 1, 1], groups=["a", "a", "b", "b"])
    >>> res.as_dict()
    {'a': {'accuracy': 0.5, 'count': 2}, 'b': {'accuracy': 1.0, 'count': 2}}
    """
    y_true = check_labels(y_true, "y_true")
    y_pred = check_labels(y_pred, "y_pred")
    groups = check_labels(groups, "groups")
    check_same_length(y_true=y_true, y_pred=y_pred, groups=groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    correct = (y_true == y_pred).astype(float)
    count = np.bincount(inverse, minlength=len(uniq))
    acc = np.bincount(inverse, weights=correct, minlength=len(uniq)) / count
    return GroupAccuracies(groups=uniq, accuracy=acc, count=count.astype(int))


def worst_group_accuracy(y_true, y_pred, *, groups) -> float:
    """Lowest accuracy over the groups.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    groups : array-like of shape (n_samples,)
        Group of each sample.

    Returns
    -------
    float

    Examples
    --------
    >>> from skshortcut.metrics import worst_group_accuracy
    >>> worst_group_accuracy([0, 0, 1, 1], [0, 1, 1, 1], groups=[0, 0, 1, 1])
    0.5
    """
    return group_accuracies(y_true, y_pred, groups=groups).worst


def group_balanced_accuracy(y_true, y_pred, *, groups) -> float:
    """Mean of the per-group accuracies, every group weighing the same.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    groups : array-like of shape (n_samples,)
        Group of each sample.

    Returns
    -------
    float

    Examples
    --------
    >>> from skshortcut.metrics import group_balanced_accuracy
    >>> group_balanced_accuracy([0, 0, 0, 1], [0, 0, 0, 0], groups=[0, 0, 0, 1])
    0.5
    """
    return group_accuracies(y_true, y_pred, groups=groups).balanced


class GroupScorer:
    """A scikit-learn scorer for a group metric; requests ``groups`` by routing.

    Use :func:`make_group_scorer` to build one. The scorer calls
    ``estimator.predict(X)`` and evaluates ``metric(y, y_pred, groups=groups)``.
    It tells scikit-learn's metadata routing that it needs ``groups``, so
    ``GridSearchCV(..., scoring=scorer).fit(X, y, groups=g)`` delivers the
    groups of each validation fold (metadata routing must be enabled with
    ``sklearn.set_config(enable_metadata_routing=True)``).

    If ``X`` is a :class:`~skshortcut.GroupedData` and no ``groups`` are
    passed, its groups are used.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred, *, groups) -> float``.
    sign : {1, -1}, default=1
        ``-1`` for metrics where lower is better.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from skshortcut.metrics import GroupScorer, worst_group_accuracy
    >>> X, y = np.zeros((4, 1)), np.array([0, 0, 0, 1])
    >>> clf = DummyClassifier(strategy="most_frequent").fit(X, y)
    >>> scorer = GroupScorer(worst_group_accuracy)
    >>> float(scorer(clf, X, y, groups=[0, 0, 0, 1]))
    0.0
    """

    def __init__(self, metric, sign: int = 1):
        self.metric = metric
        self.sign = sign

    def __call__(self, estimator, X, y_true, groups=None, **kwargs):
        X, groups = unpack_grouped(X, groups)
        if groups is None:
            raise ValueError(
                f"{self!r} needs `groups`. Pass `groups=` to the search's fit and enable "
                "metadata routing with sklearn.set_config(enable_metadata_routing=True), "
                "or call the scorer with groups=."
            )
        y_pred = estimator.predict(X)
        return self.sign * self.metric(y_true, y_pred, groups=groups)

    def get_metadata_routing(self) -> MetadataRequest:
        """Metadata request: the scorer's ``score`` consumes ``groups``."""
        request = MetadataRequest(owner=self.__class__.__name__)
        request.score.add_request(param="groups", alias=True)
        return request

    def __repr__(self) -> str:
        name = getattr(self.metric, "__name__", repr(self.metric))
        sign = "" if self.sign == 1 else ", sign=-1"
        return f"make_group_scorer({name}{sign})"


def make_group_scorer(metric, *, greater_is_better: bool = True) -> GroupScorer:
    """Build a scorer from a group metric.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred, *, groups) -> float``.
    greater_is_better : bool, default=True
        Whether a higher value is better; if not, the score is negated as
        scikit-learn scorers do.

    Returns
    -------
    GroupScorer

    Examples
    --------
    >>> from skshortcut.metrics import make_group_scorer, worst_group_accuracy
    >>> scorer = make_group_scorer(worst_group_accuracy)
    >>> scorer
    make_group_scorer(worst_group_accuracy)
    """
    if not callable(metric):
        raise TypeError(f"`metric` must be callable, got {type(metric).__name__}.")
    return GroupScorer(metric, sign=1 if greater_is_better else -1)


#: Scorer for worst-group accuracy; requests ``groups`` through metadata routing.
worst_group_scorer = make_group_scorer(worst_group_accuracy)

#: Scorer for group-balanced accuracy; requests ``groups`` through metadata routing.
group_balanced_scorer = make_group_scorer(group_balanced_accuracy)
