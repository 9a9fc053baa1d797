"""``GroupedData``: samples travelling together with their (pseudo-)groups.

scikit-learn pipelines pass only ``X`` from one step to the next. A grouper
(for example :class:`~skshortcut.ExMapGrouper`) infers pseudo-groups that the
next step (for example :class:`~skshortcut.DFRRetrainer`) needs, so its
``transform`` returns a :class:`GroupedData` holding both. Every consumer calls
:func:`unpack_grouped`, the one place where the two are separated again.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._validation import check_labels

__all__ = ["GroupedData", "unpack_grouped"]


class GroupedData:
    """Samples together with the group of each sample.

    Parameters
    ----------
    X : array-like, tensor or torch Dataset
        What flows on to the next pipeline step, usually embeddings of shape
        ``(n_samples, n_features)``.
    groups : array-like of shape (n_samples,), or callable
        Group label of each sample. A callable without arguments returning
        them makes the groups lazy: they are computed on the first access of
        :attr:`groups` and kept. A grouper's ``transform`` uses this, so that
        a step that needs only ``X`` (a classifier's ``predict``) never pays
        for the groups.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import GroupedData
    >>> data = GroupedData(np.zeros((4, 2)), groups=[0, 0, 1, 1])
    >>> len(data), data[[0, 2]].groups.tolist()
    (4, [0, 1])
    >>> lazy = GroupedData(np.zeros((3, 2)), groups=lambda: [5, 5, 6])
    >>> lazy.groups_computed, lazy.groups.tolist(), lazy.groups_computed
    (False, [5, 5, 6], True)
    """

    def __init__(self, X, groups):
        self.X = X
        self._n = len(X)
        if callable(groups):
            self._groups, self._compute = None, groups
        else:
            self._groups, self._compute = self._checked(groups), None

    def _checked(self, groups):
        groups = check_labels(groups, "groups")
        if self._n != len(groups):
            raise ValueError(
                f"`X` has {self._n} samples but `groups` has {len(groups)}; they must be aligned."
            )
        return groups

    @property
    def groups(self) -> np.ndarray:
        """Group of each sample (computed now if it was given as a callable)."""
        if self._compute is not None:
            self._groups, self._compute = self._checked(self._compute()), None
        return self._groups

    @property
    def groups_computed(self) -> bool:
        """Whether :attr:`groups` holds its values (``False`` while lazy groups are not yet computed)."""
        return self._compute is None

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self):
        """Shape of ``X`` when it has one (arrays and tensors)."""
        return getattr(self.X, "shape", (len(self),))

    def __getitem__(self, index):
        if isinstance(index, numbers.Integral):
            return self.X[index], self.groups[index]
        index = _as_index(index, len(self))
        groups = self.groups[index] if self.groups_computed else _IndexedGroups(self, index)
        return GroupedData(_take(self.X, index), groups)

    def __repr__(self) -> str:
        n_groups = len(np.unique(self.groups)) if self.groups_computed else "not computed"
        return f"GroupedData(n_samples={len(self)}, n_groups={n_groups}, X={type(self.X).__name__})"


class _IndexedGroups:
    """The lazy groups of some rows of a GroupedData (a picklable callable)."""

    def __init__(self, parent, index):
        self.parent = parent
        self.index = index

    def __call__(self):
        return self.parent.groups[self.index]


def _as_index(index, n):
    if isinstance(index, slice):
        return np.arange(n)[index]
    index = np.asarray(index)
    if index.dtype == bool:
        if index.shape != (n,):
            raise IndexError(f"Boolean index of shape {index.shape} does not match {n} samples.")
        return np.flatnonzero(index)
    return index


def _take(X, index):
    """Row-index arrays, tensors and torch Datasets alike."""
    if hasattr(X, "shape") and hasattr(X, "__getitem__") and not _is_dataset(X):
        if hasattr(X, "detach"):  # torch tensor
            import torch

            return X[torch.as_tensor(index, dtype=torch.long)]
        return X[index]
    from torch.utils.data import Subset

    return Subset(X, index.tolist())


def _is_dataset(X) -> bool:
    try:
        from torch.utils.data import Dataset
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(X, Dataset)


def unpack_grouped(X, groups=None, *, need_groups=True):
    """Separate ``X`` and ``groups``, whether or not ``X`` is a :class:`GroupedData`.

    Parameters
    ----------
    X : GroupedData or any X
        The input given to ``fit`` or ``predict``.
    groups : array-like or None
        Groups passed explicitly.
    need_groups : bool, default=True
        ``False`` where only ``X`` is used (``predict``, ``transform``): the
        groups a :class:`GroupedData` carries are then left alone, so lazy
        ones are never computed, and the second value is the explicit
        ``groups`` (or ``None``).

    Returns
    -------
    X, groups
        The data and the groups (``None`` if neither source had any).

    Raises
    ------
    ValueError
        If ``X`` is a :class:`GroupedData` and ``groups`` is also given but differs
        from the groups it carries: a silent choice between the two would hide a bug.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import GroupedData, unpack_grouped
    >>> X, groups = unpack_grouped(GroupedData(np.zeros((4, 2)), groups=[0, 0, 1, 1]))
    >>> X.shape, groups.tolist()
    ((4, 2), [0, 0, 1, 1])
    >>> unpack_grouped(np.zeros((2, 2)))[1] is None
    True

    At predict, lazy groups stay uncomputed:

    >>> lazy = GroupedData(np.zeros((2, 2)), groups=lambda: [0, 1])
    >>> unpack_grouped(lazy, need_groups=False)[1] is None, lazy.groups_computed
    (True, False)
    """
    if isinstance(X, GroupedData):
        if groups is not None:
            groups = check_labels(groups, "groups")
            if len(groups) != len(X) or not np.array_equal(groups, X.groups):
                raise ValueError(
                    "`groups` was passed explicitly but differs from the groups carried by the "
                    "GroupedData input; pass only one of them."
                )
            return X.X, X.groups
        return X.X, (X.groups if need_groups else None)
    if groups is not None:
        groups = check_labels(groups, "groups")
    return X, groups
