"""Group balancing: the one place where samples are subsampled or weighted by group."""

from __future__ import annotations

import numpy as np

__all__ = ["balanced_indices", "balanced_sampling_weights"]


def balanced_indices(groups, random_state, *, min_group_size: int = 6) -> np.ndarray:
    """Indices of a group-balanced subsample: every group cut to the smallest group's size.

    Groups with fewer than ``min_group_size`` members do not count when the
    smallest size is taken (they keep all their members), so a tiny
    (pseudo-)group cannot starve the others. If every group is that small,
    the smallest of them sets the size.

    Parameters
    ----------
    groups : ndarray of shape (n_samples,)
        Group label of each sample.
    random_state : numpy RandomState
        Source of randomness for the subsample.
    min_group_size : int, default=6
        Groups smaller than this are left out when the target size is taken.

    Returns
    -------
    ndarray of int
        Sorted indices into ``groups``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut._balance import balanced_indices
    >>> g = np.array([0] * 10 + [1] * 7 + [2] * 2)
    >>> idx = balanced_indices(g, np.random.RandomState(0))
    >>> np.bincount(g[idx]).tolist()
    [7, 7, 2]
    """
    groups = np.asarray(groups)
    uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    large = counts[counts >= min_group_size]
    target = int(large.min()) if large.size else int(counts.min())
    chosen = []
    for g in range(len(uniq)):
        members = np.flatnonzero(inverse == g)
        if len(members) > target:
            members = random_state.choice(members, size=target, replace=False)
        chosen.append(members)
    return np.sort(np.concatenate(chosen))


def balanced_sampling_weights(labels) -> np.ndarray:
    """Per-sample weights that give every label the same total weight (summing to 1)."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    weights = 1.0 / (len(counts) * counts[inverse])
    return weights
