"""Figures people would rather look at than read.

Every function returns a matplotlib ``Figure`` and never calls ``show``, so
it works headless, in notebooks and in reports alike.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_group_accuracies", "plot_images"]


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def plot_group_accuracies(report, *, ax=None, title=None):
    """Grouped bars: test accuracy of every group for every method.

    Parameters
    ----------
    report : dict or list of dict
        The dict :func:`skshortcut.bench.run_benchmark` returns (or its
        ``"results"`` list): each result has ``"method"`` and a
        ``"group_accuracy"`` mapping group names to accuracies.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from skshortcut.plotting import plot_group_accuracies
    >>> fig = plot_group_accuracies([
    ...     {"method": "erm", "group_accuracy": {"a": 0.9, "b": 0.1}},
    ...     {"method": "dfr", "group_accuracy": {"a": 0.8, "b": 0.7}},
    ... ])
    >>> len(fig.axes)
    1
    """
    results = report["results"] if isinstance(report, dict) else list(report)
    if not results:
        raise ValueError("`report` holds no results to plot.")
    groups = list(results[0]["group_accuracy"])
    if ax is None:
        fig = _figure((max(6.0, 1.2 * len(groups) * max(1, len(results)) / 2), 3.6))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    width = 0.8 / len(results)
    x = np.arange(len(groups))
    for i, r in enumerate(results):
        acc = [r["group_accuracy"].get(g, np.nan) for g in groups]
        bars = ax.bar(x + (i - (len(results) - 1) / 2) * width, acc, width, label=r["method"])
        worst = int(np.nanargmin(acc))
        bars[worst].set_edgecolor("black")
        bars[worst].set_linewidth(1.5)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=15, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.legend(ncol=min(4, len(results)), fontsize="small", loc="lower right")
    if title is None and isinstance(report, dict) and "dataset" in report:
        title = f"{report['dataset']}: accuracy per group (worst group outlined)"
    if title:
        ax.set_title(title)
    return fig


def plot_images(X, *, labels=None, n_cols=8, max_images=32, title=None):
    """A grid of images ``(n, c, h, w)`` in [0, 1], with optional captions.

    Parameters
    ----------
    X : ndarray or tensor of shape (n, c, h, w) or (n, h, w)
    labels : sequence of str, optional
        Caption of each image.
    n_cols : int, default=8
    max_images : int, default=32
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X.detach().cpu() if hasattr(X, "detach") else X)[:max_images]
    if X.ndim == 4:
        X = np.moveaxis(X, 1, -1)
        if X.shape[-1] == 1:
            X = X[..., 0]
    n = len(X)
    n_cols = max(1, min(n_cols, n))
    n_rows = -(-n // n_cols)
    fig = _figure((1.4 * n_cols, 1.5 * n_rows + (0.4 if title else 0)))
    for i in range(n):
        ax = fig.add_subplot(n_rows, n_cols, i + 1)
        ax.imshow(np.clip(X[i], 0, 1), cmap="gray" if X[i].ndim == 2 else None)
        ax.set_axis_off()
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
