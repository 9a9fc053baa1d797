"""Labels of the group metrics: groups given as a table, labels of mixed types, comparable types.

The metrics take labels of any hashable type. numpy sorts labels of one type
only, so labels of mixed types (``[0, "a"]``, tuples of a class and an
attribute) are factorised here; and labels that can never compare equal
(numbers against strings) are refused rather than scored 0.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._validation import check_labels

__all__ = ["check_groups", "check_comparable", "unique_inverse", "correct"]


def check_groups(groups, name: str = "groups") -> np.ndarray:
    """Group labels as a 1-D array; a 2-D table is one group per row.

    A 2-D array of shape ``(n_samples, k)`` or a data frame with ``k`` columns,
    for example ``(class, spurious attribute)``, names each group by the tuple of
    its row, as fairlearn's ``MetricFrame(sensitive_features=...)`` does with
    several columns.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut._group_labels import check_groups
    >>> check_groups(np.array([[0, 1], [1, 0]])).tolist()
    [(0, 1), (1, 0)]
    >>> check_groups([(0, "red"), (1, "green")]).tolist()
    [(0, 'red'), (1, 'green')]
    """
    if groups is not None and not isinstance(groups, np.ndarray) and hasattr(groups, "detach"):
        groups = groups.detach().cpu().numpy()
    if groups is not None:
        # a table other than an array is rebuilt as objects, so that a mixed (int, str) row keeps its types
        table = groups if isinstance(groups, np.ndarray) else np.asarray(groups, dtype=object)
    if groups is not None and table.ndim == 2:
        if table.shape[1] > 1:
            if table.shape[0] == 0:
                raise ValueError(f"`{name}` is empty; at least one sample is needed.")
            rows = table.tolist()
            for row in rows:
                if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in row):
                    raise ValueError(f"`{name}` contains missing labels (None or NaN).")
            labels = np.empty(len(rows), dtype=object)
            labels[:] = [tuple(row) for row in rows]
            return labels
    return check_labels(groups, name)


def _label_kinds(values: np.ndarray) -> set:
    """Kinds of the labels in ``values``: numbers, strings, or other types by name."""
    kind = values.dtype.kind
    if kind in "biuf":
        return {"numbers"}
    if kind in "US":
        return {"strings"}
    kinds = set()
    for v in values:
        if isinstance(v, (numbers.Number, np.bool_)):
            kinds.add("numbers")
        elif isinstance(v, (str, bytes)):
            kinds.add("strings")
        else:
            kinds.add(type(v).__name__)
    return kinds


def check_comparable(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    """Refuse labels where no prediction can ever equal a true label (numbers vs strings)."""
    true_kinds, pred_kinds = _label_kinds(y_true), _label_kinds(y_pred)
    if true_kinds.isdisjoint(pred_kinds):
        raise ValueError(
            f"`y_true` holds {' and '.join(sorted(true_kinds))} but `y_pred` holds "
            f"{' and '.join(sorted(pred_kinds))}, so no prediction can equal a true label "
            f"(got y_true={y_true[:3].tolist()}... and y_pred={y_pred[:3].tolist()}...). "
            "Predict labels of the same type as y_true, for example the estimator's classes_."
        )


def _sort_key(value):
    """Order of labels of mixed types: numbers, then strings, then tuples, then the rest by type name."""
    if isinstance(value, (numbers.Real, np.bool_)):
        return (0, value)
    if isinstance(value, (str, bytes)):
        return (1, str(value))
    if isinstance(value, tuple):
        return (2, tuple(_sort_key(v) for v in value))
    return (3, type(value).__name__, repr(value))


def unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique labels and the index of each sample's label, for labels of any hashable types."""
    try:
        return np.unique(values, return_inverse=True)
    except TypeError:  # labels of mixed types, which numpy cannot sort
        pass
    index: dict = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values.tolist()), dtype=np.intp, count=len(values))
    keys = list(index)
    order = sorted(range(len(keys)), key=lambda i: _sort_key(keys[i]))
    rank = np.empty(len(keys), dtype=np.intp)
    rank[order] = np.arange(len(keys))
    uniq = np.empty(len(keys), dtype=object)
    uniq[:] = [keys[i] for i in order]
    return uniq, rank[codes]


def correct(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Whether each prediction equals its true label."""
    equal = y_true == y_pred
    if np.shape(equal) != y_true.shape:  # numpy gave up on an elementwise comparison
        equal = np.array([a == b for a, b in zip(y_true.tolist(), y_pred.tolist())], dtype=bool)
    return np.asarray(equal, dtype=bool)
