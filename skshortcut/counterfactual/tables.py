"""Result tables of counterfactual alignment: per-pair means and the matrix of figure 2a.

Cohen, Blankemeier and Chaudhari, *Identifying Spurious Correlations using
Counterfactual Alignment* (2024), section 4.1: the alignment of a base
classifier with a downstream one is the mean relative change (Eq. 3) over
the samples whose base prediction dropped by more than 0.3.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["Alignment", "AlignmentTable", "aggregate_alignment"]


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
