"""Figures people would rather look at than read.

Every function returns a matplotlib ``Figure`` and never calls ``show``, so
it works headless, in notebooks and in reports alike.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_group_accuracies",
    "plot_images",
    "plot_mask_and_combine",
    "plot_partial_reconstructions",
    "plot_latent_shift",
    "plot_alignment",
    "plot_alignment_matrix",
    "plot_counterfactuals",
    "plot_group_heatmaps",
    "plot_group_contingency",
    "plot_disentanglement",
]


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

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.plotting import plot_images
    >>> fig = plot_images(np.random.RandomState(0).rand(6, 3, 8, 8), labels=list("abcdef"), n_cols=3)
    >>> len([ax for ax in fig.axes if ax.images])
    6
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


def _as_hwc(img):
    img = np.asarray(img, dtype=float)
    if img.ndim == 3:
        img = np.moveaxis(img, 0, -1)
        if img.shape[-1] == 1:
            img = img[..., 0]
    return np.clip(img, 0, 1)


def _fraction_label(z_p):
    from fractions import Fraction

    frac = Fraction(float(z_p)).limit_denominator(16)
    return f"{frac.numerator}/{frac.denominator}" if abs(float(frac) - z_p) < 1e-9 else f"{z_p:g}"


def plot_partial_reconstructions(estimators, x, *, n_samples=6, random_state=0, title=None):
    """Partial reconstructions of one image for several ``(dim_z, z_p)``, as in Chroma-VAE's Table 3.

    Each cell shows, for one fitted :class:`~skshortcut.ChromaVAEClassifier`,
    ``n_samples`` samples of ``x~1 = D([mu(x)_1, eps])`` (top row, Eq. 3) and
    of ``x~2 = D([eps, mu(x)_2])`` (bottom row, Eq. 4). Rows are ``dim(z)``,
    columns ``z_p``. Where the shortcut is isolated, the top row keeps the
    shortcut and varies the rest, and the bottom row keeps the core feature
    with a varying shortcut.

    Parameters
    ----------
    estimators : dict or list
        Fitted ChromaVAEClassifier models, as ``{(dim_z, z_p): model}`` or a
        list (their ``dim_z`` and ``z_p`` place them).
    x : array of shape (channels, height, width)
        The image.
    n_samples : int, default=6
    random_state : int, default=0
        Seeds the noise (the same for every cell).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import ChromaVAEClassifier
    >>> from skshortcut.plotting import plot_partial_reconstructions
    >>> X = np.random.RandomState(0).rand(40, 3, 8, 8).astype("float32")
    >>> y = np.arange(40) % 2
    >>> models = [ChromaVAEClassifier(dim_z=d, z_p=0.5, max_epochs=1, random_state=0).fit(X, y) for d in (2, 4)]
    >>> fig = plot_partial_reconstructions(models, X[0], n_samples=2)
    >>> len(fig.axes)
    3
    """
    items = list(estimators.items()) if isinstance(estimators, dict) else [((m.dim_z, m.z_p), m) for m in estimators]
    if not items:
        raise ValueError("`estimators` holds no fitted models to plot.")
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"`x` must be one image of shape (channels, height, width); got shape {x.shape}.")
    dims = sorted({k[0] for k, _ in items})
    zps = sorted({k[1] for k, _ in items})
    fig = _figure((1.0 + 0.55 * n_samples * len(zps), 0.4 + 1.25 * len(dims) + (0.4 if title else 0)))
    grid = fig.add_gridspec(len(dims), len(zps) + 1, width_ratios=[0.22 * n_samples] + [n_samples] * len(zps))
    ax0 = fig.add_subplot(grid[:, 0])
    ax0.imshow(_as_hwc(x))
    ax0.set_title("original", fontsize=8)
    ax0.set_axis_off()
    for (dim_z, z_p), model in items:
        r, c = dims.index(dim_z), zps.index(z_p)
        x1 = model.partial_reconstructions(x[None], keep="z1", n_samples=n_samples, random_state=random_state)[0]
        x2 = model.partial_reconstructions(x[None], keep="z2", n_samples=n_samples, random_state=random_state)[0]
        rows = [np.concatenate([_as_hwc(s) for s in xs], axis=1) for xs in (x1, x2)]
        ax = fig.add_subplot(grid[r, c + 1])
        ax.imshow(np.concatenate(rows, axis=0), cmap="gray" if rows[0].ndim == 2 else None)
        ax.set_xticks([])
        ax.set_yticks([x.shape[1] / 2, 1.5 * x.shape[1]])
        ax.set_yticklabels(["x~1", "x~2"], fontsize=7)
        if r == 0:
            ax.set_title(f"z_p = {_fraction_label(z_p)}", fontsize=9)
        if c == len(zps) - 1:
            ax.yaxis.set_label_position("right")
            ax.set_ylabel(f"dim(z) = {dim_z}", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def plot_latent_shift(shift, n_z1, *, ax=None, title=None):
    """Bar plot of the per-dimension latent shift, ``z1`` and ``z2`` coloured apart (Chroma-VAE, figure 4c).

    Parameters
    ----------
    shift : array of shape (dim_z,)
        ``mean |mu(x)_d - mu(x')_d|`` from
        :meth:`~skshortcut.ChromaVAEClassifier.latent_shift`, where ``x'`` is
        ``x`` with the suspected shortcut changed.
    n_z1 : int
        Number of ``z1`` dimensions (the fitted model's ``dim_z1_``).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from skshortcut.plotting import plot_latent_shift
    >>> fig = plot_latent_shift([1.2, 0.9, 0.1, 0.05, 0.1, 0.2], n_z1=2)
    >>> len(fig.axes)
    1
    """
    shift = np.asarray(shift, dtype=float).ravel()
    if not 0 < n_z1 < len(shift):
        raise ValueError(f"`n_z1` must be between 1 and {len(shift) - 1} for {len(shift)} dimensions; got {n_z1}.")
    if ax is None:
        fig = _figure((max(4.0, 0.18 * len(shift) + 1.5), 2.8))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    idx = np.arange(len(shift))
    ax.bar(idx[:n_z1], shift[:n_z1], color="tab:red", label=f"z1 ({n_z1} dims)")
    ax.bar(idx[n_z1:], shift[n_z1:], color="tab:blue", label=f"z2 ({len(shift) - n_z1} dims)")
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("mean |mu(x) - mu(x')|")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_mask_and_combine(X, masks, y, *, n_samples=6, random_state=0, title=None):
    """Mask-and-Combine at a glance: original, mask, removed and combined images.

    One column per sample, one row per stage of Mask-and-Combine: the
    original image, its top-K XGradCAM mask, the removed image of Eq. 1 and
    the combined image of Eq. 2 (its core with the non-core part of a sample
    of another class). The shown samples form the batch: ``b`` is their
    per-channel mean and the partners are drawn among them.

    Parameters
    ----------
    X : ndarray or tensor of shape (n, channels, height, width)
        Images in [0, 1].
    masks : ndarray of shape (n, height, width)
        Their masks (for example :meth:`MaskAndCombineRetrainer.compute_masks`).
    y : array-like of shape (n,)
        Labels (partners of Eq. 2 are of another class).
    n_samples : int, default=6
        Columns; the samples alternate between classes where possible.
    random_state : int or None, default=0
        Which samples, and their partners.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.plotting import plot_mask_and_combine
    >>> X = np.random.RandomState(0).rand(4, 3, 8, 8)
    >>> masks = np.zeros((4, 8, 8), bool); masks[:, 2:6, 2:6] = True
    >>> fig = plot_mask_and_combine(X, masks, [0, 1, 0, 1], n_samples=4)
    >>> len(fig.axes)
    16
    """
    from sklearn.utils import check_random_state

    from .retraining._interventions import draw_partners, masked_combination, masked_removal

    X = np.asarray(X.detach().cpu() if hasattr(X, "detach") else X, dtype=np.float32)
    masks = np.asarray(masks).astype(bool)
    y = np.asarray(y)
    if X.ndim != 4 or masks.shape != (X.shape[0],) + X.shape[2:] or y.shape != (X.shape[0],):
        raise ValueError(
            "`X` (n, channels, height, width), `masks` (n, height, width) and `y` (n,) must be aligned; got "
            f"{X.shape}, {masks.shape} and {y.shape}."
        )
    if n_samples < 1:
        raise ValueError(f"`n_samples` must be >= 1, got {n_samples}.")
    rng = check_random_state(random_state)
    by_class = [rng.permutation(np.flatnonzero(y == c)).tolist() for c in np.unique(y)]
    chosen = []
    while len(chosen) < min(n_samples, len(y)):
        for members in by_class:
            if members and len(chosen) < n_samples:
                chosen.append(members.pop())
    idx = np.array(chosen)
    xb, mb, yb = X[idx], masks[idx], y[idx]
    partners = draw_partners(yb, rng)
    partners = np.where(partners >= 0, partners, np.arange(len(yb)))
    rows = [
        ("original", xb),
        ("mask", np.repeat(mb[:, None].astype(np.float32), 3, axis=1)),
        ("removed (Eq. 1)", masked_removal(xb, mb)),
        ("combined (Eq. 2)", masked_combination(xb, mb, partners)),
    ]
    n = len(idx)
    fig = _figure((1.3 * n + 1.2, 1.3 * 4 * X.shape[2] / max(X.shape[3], 1) * 0.8 + (0.4 if title else 0)))
    for r, (name, imgs) in enumerate(rows):
        for c in range(n):
            ax = fig.add_subplot(4, n, r * n + c + 1)
            img = np.moveaxis(np.clip(imgs[c], 0, 1), 0, -1)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=7)
            if r == 0:
                ax.set_title(f"y={yb[c]}", fontsize=7)
            if r == 3:
                ax.set_xlabel(f"+ non-core of y={yb[partners[c]]}", fontsize=6)
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- counterfactual alignment
def plot_alignment(result, *, sample=0, downstream=None, ax=None, title=None):
    """Counterfactual alignment plot (figure 5 of Cohen et al., 2024).

    Along the Latent Shift path of one image, every downstream classifier's
    prediction against the base classifier's. The path runs from the
    reconstruction (right, base prediction high) to the counterfactual
    (left); a classifier that moves with the base one is aligned with it,
    a flat line means it ignores the features the base classifier changed.

    Parameters
    ----------
    result : Bunch
        What :meth:`skshortcut.counterfactual.LatentShift.generate` or
        :meth:`skshortcut.CFAlignmentScorer.counterfactuals` return
        (``path_outputs``, ``base_name``, ``downstream_names``); use
        ``n_path > 2`` for a smooth curve.
    sample : int, default=0
        Which image.
    downstream : list of str, optional
        Classifiers to draw; default all.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.plotting import plot_alignment
    >>> result = {"base_name": "smiling", "downstream_names": ["eyebrows"],
    ...           "path_outputs": {"smiling": np.array([[0.9, 0.5, 0.2]]),
    ...                            "eyebrows": np.array([[0.8, 0.6, 0.4]])}}
    >>> len(plot_alignment(result).axes[0].lines)
    2
    """
    outputs = result["path_outputs"]
    base_name = result["base_name"]
    names = list(result["downstream_names"]) if downstream is None else list(downstream)
    n = len(outputs[base_name])
    if not 0 <= sample < n:
        raise ValueError(f"`sample` must be in [0, {n}); got {sample}.")
    if ax is None:
        fig = _figure((4.8, 3.6))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    base = np.asarray(outputs[base_name][sample])
    ax.plot(base, base, ls="--", color="grey", lw=1, label=f"{base_name} (base)")
    for name in names:
        ax.plot(base, np.asarray(outputs[name][sample]), marker="o", ms=3, label=name)
    if base[0] > base[-1]:
        ax.invert_xaxis()
    ax.set_xlabel(f"{base_name} prediction (base)")
    ax.set_ylabel("downstream prediction")
    ax.legend(fontsize="small")
    ax.set_title(title if title is not None else "counterfactual alignment")
    return fig


def plot_alignment_matrix(table, *, ax=None, annotate=True, vmin=-1.0, vmax=1.0, cmap="RdBu_r", title=None):
    """The alignment matrix as a heatmap (figure 2a of Cohen et al., 2024).

    Rows are base classifiers, columns downstream classifiers, cells the mean
    relative change (Eq. 3).

    Parameters
    ----------
    table : AlignmentTable or DataFrame
        Anything with ``values``, ``index`` and ``columns``, such as
        :meth:`skshortcut.CFAlignmentScorer.alignment_matrix` returns.
    ax : matplotlib Axes, optional
    annotate : bool, default=True
        Write each value in its cell.
    vmin, vmax : float, default=-1, 1
    cmap : str, default="RdBu_r"
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.counterfactual import AlignmentTable
    >>> from skshortcut.plotting import plot_alignment_matrix
    >>> t = AlignmentTable(np.eye(2), np.zeros((2, 2)), np.ones((2, 2), int), ["a", "b"], ["a", "b"])
    >>> len(plot_alignment_matrix(t).axes)  # the heatmap and its colour bar
    2
    """
    values = np.asarray(table.values, dtype=float)
    index, columns = [str(i) for i in table.index], [str(c) for c in table.columns]
    if ax is None:
        fig = _figure((1.0 + 0.9 * len(columns), 0.8 + 0.6 * len(index)))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, rotation=30, ha="right")
    ax.set_yticks(range(len(index)))
    ax.set_yticklabels(index)
    ax.set_xlabel("downstream classifier")
    ax.set_ylabel("base classifier")
    if annotate:
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values[i, j]
                text = "–" if not np.isfinite(v) else f"{v:.2f}"
                dark = np.isfinite(v) and abs(v) > 0.6 * max(abs(vmin), abs(vmax))
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="relative change")
    if title:
        ax.set_title(title)
    return fig


def plot_counterfactuals(result, *, max_samples=6, show_difference=True, title=None):
    """Counterfactual image strips: one row per image, from the reconstruction to the counterfactual.

    Parameters
    ----------
    result : Bunch
        What :meth:`skshortcut.counterfactual.LatentShift.generate` or
        :meth:`skshortcut.CFAlignmentScorer.counterfactuals` return: uses
        ``path_images`` when present (``return_path_images=True``), else
        ``reconstructions`` and ``counterfactuals``; captions show the base
        prediction.
    max_samples : int, default=6
    show_difference : bool, default=True
        Add a last column with ``|counterfactual - reconstruction|`` summed
        over channels.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.plotting import plot_counterfactuals
    >>> result = {"reconstructions": np.zeros((2, 3, 8, 8)), "counterfactuals": np.ones((2, 3, 8, 8)),
    ...           "base_name": "b", "path_outputs": {"b": np.array([[0.9, 0.2], [0.8, 0.1]])}}
    >>> len(plot_counterfactuals(result).axes)
    6
    """
    if "path_images" in result:
        strips = np.asarray(result["path_images"])
    else:
        strips = np.stack([np.asarray(result["reconstructions"]), np.asarray(result["counterfactuals"])], axis=1)
    strips = strips[:max_samples]
    n, n_path = strips.shape[:2]
    base = np.asarray(result["path_outputs"][result["base_name"]])[:n] if "path_outputs" in result else None
    if base is not None and base.shape[1] != n_path:
        base = base[:, [0, -1]] if n_path == 2 else None
    n_cols = n_path + int(show_difference)
    fig = _figure((1.3 * n_cols, 1.4 * n + (0.4 if title else 0)))
    for i in range(n):
        for j in range(n_path):
            ax = fig.add_subplot(n, n_cols, i * n_cols + j + 1)
            img = strips[i, j]
            img = np.moveaxis(img, 0, -1) if img.ndim == 3 else img
            if img.ndim == 3 and img.shape[-1] == 1:
                img = img[..., 0]
            ax.imshow(np.clip(img, 0, 1), cmap="gray" if img.ndim == 2 else None)
            ax.set_axis_off()
            label = "x0" if j == 0 else ("CF" if j == n_path - 1 else "")
            if base is not None:
                label = f"{label} {base[i, j]:.2f}".strip()
            ax.set_title(label, fontsize=7)
        if show_difference:
            ax = fig.add_subplot(n, n_cols, i * n_cols + n_cols)
            diff = np.abs(strips[i, -1] - strips[i, 0])
            ax.imshow(diff.sum(0) if diff.ndim == 3 else diff, cmap="magma")
            ax.set_axis_off()
            ax.set_title("|CF - x0|", fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def _heatmap_2d(h):
    h = np.asarray(h, dtype=float)
    return h.sum(axis=0) if h.ndim == 3 else h


def plot_group_heatmaps(X, heatmaps, groups, *, n_per_group=4, group_names=None, alpha=1.0, cmap="bwr",
                        random_state=0, title=None):
    """A few samples of every (pseudo-)group with their heatmaps over the images (ExMap, figure 5).

    Each row is a group; each cell shows an image and, over it, its heatmap
    (channels summed), red for positive relevance and blue for negative, on a
    symmetric colour scale per cell, more opaque where the relevance is larger.

    Parameters
    ----------
    X : array of shape (n, c, h, w) or (n, h, w)
        Images in [0, 1].
    heatmaps : array of shape (n, h', w') or (n, c, h', w')
        Heatmaps (for example :meth:`skshortcut.ExMapGrouper.heatmaps`); resized
        to the image size for display.
    groups : array-like of shape (n,)
        Group of each sample (for example ``ExMapGrouper.groups_``).
    n_per_group : int, default=4
        Samples drawn per group (fewer when a group is smaller).
    group_names : sequence or dict, optional
        Row labels: ``group_names[g]`` (``ExMapGrouper.group_names_``).
    alpha : float, default=1.0
        Opacity of the heatmap where its absolute value is largest (it falls
        with the square root of the relative relevance).
    cmap : str, default="bwr"
    random_state : int, default=0
        Which samples are drawn.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.plotting import plot_group_heatmaps
    >>> X = np.random.rand(6, 3, 8, 8)
    >>> fig = plot_group_heatmaps(X, X.sum(1) - 1.5, [0, 0, 0, 1, 1, 1], n_per_group=2)
    >>> len(fig.axes)
    4
    """
    X = np.asarray(X)
    H = np.asarray(heatmaps)
    groups = np.asarray(groups)
    if not (len(X) == len(H) == len(groups)):
        raise ValueError(f"`X`, `heatmaps` and `groups` must have the same length; got {len(X)}, {len(H)}, {len(groups)}.")
    if n_per_group < 1:
        raise ValueError(f"`n_per_group` must be >= 1; got {n_per_group}.")
    rng = np.random.RandomState(random_state)
    uniq = np.unique(groups)
    fig = _figure((1.3 * n_per_group + 1.2, 1.3 * len(uniq) + 0.4))
    axes = fig.subplots(len(uniq), n_per_group, squeeze=False)
    for r, g in enumerate(uniq):
        idx = np.flatnonzero(groups == g)
        pick = rng.choice(idx, min(n_per_group, len(idx)), replace=False)
        for c in range(n_per_group):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c >= len(pick):
                continue
            img = _as_hwc(X[pick[c]])
            h = _heatmap_2d(H[pick[c]])
            ax.imshow(img * 0.5, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)  # dimmed backdrop
            lim = float(np.abs(h).max()) or 1.0
            # opacity grows with |relevance|: the image shows where the heatmap is near zero
            ax.imshow(h, cmap=cmap, vmin=-lim, vmax=lim, alpha=alpha * np.sqrt(np.abs(h) / lim), interpolation="nearest",
                      extent=(-0.5, img.shape[1] - 0.5, img.shape[0] - 0.5, -0.5))
        name = group_names[g] if group_names is not None else f"group {g}"
        axes[r, 0].set_ylabel(f"{name}\n(n={len(idx)})", fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_group_contingency(pseudo_groups, true_groups, *, pseudo_names=None, true_names=None, ax=None, title=None):
    """Contingency table of pseudo-groups (rows) against true groups (columns), with the adjusted Rand index.

    Parameters
    ----------
    pseudo_groups : array-like of shape (n,)
        Inferred groups (for example ``ExMapGrouper.groups_``).
    true_groups : array-like of shape (n,)
        Known groups of the same samples.
    pseudo_names, true_names : sequence or dict, optional
        Labels: ``pseudo_names[g]`` and ``true_names[g]``.
    ax : matplotlib Axes, optional
    title : str, optional
        Default: the adjusted Rand index.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from skshortcut.plotting import plot_group_contingency
    >>> fig = plot_group_contingency([0, 0, 1, 1, 2], [0, 0, 1, 1, 1])
    >>> fig.axes[0].get_title()
    'adjusted Rand index 0.55'
    """
    from sklearn.metrics import adjusted_rand_score

    p = np.asarray(pseudo_groups)
    t = np.asarray(true_groups)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError(f"`pseudo_groups` and `true_groups` must be 1-D and aligned; got {p.shape} and {t.shape}.")
    rows, p_idx = np.unique(p, return_inverse=True)
    cols, t_idx = np.unique(t, return_inverse=True)
    table = np.zeros((len(rows), len(cols)), dtype=int)
    np.add.at(table, (p_idx, t_idx), 1)
    if ax is None:
        fig = _figure((1.0 + 0.9 * len(cols), 0.8 + 0.4 * len(rows)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ax.imshow(table / np.maximum(table.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            share = table[i, j] / max(table[i].sum(), 1)
            ax.text(j, i, str(table[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if share > 0.6 else "black")
    ax.set_xticks(range(len(cols)), [str(true_names[c]) if true_names is not None else str(c) for c in cols],
                  rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [str(pseudo_names[r]) if pseudo_names is not None else str(r) for r in rows],
                  fontsize=7)
    ax.set_xlabel("true group")
    ax.set_ylabel("pseudo-group")
    ax.set_title(title if title is not None else f"adjusted Rand index {adjusted_rand_score(t, p):.2f}")
    fig.tight_layout()
    return fig


_REPORT_BARS = (
    ("fg_from_fg", "fg from z_fg"),
    ("bg_from_bg", "bg from z_bg"),
    ("fg_from_bg", "fg from z_bg"),
    ("bg_from_fg", "bg from z_fg"),
)


def plot_disentanglement(results, *, ax=None, title=None):
    """Grouped bars of probe accuracies: D3S's tables 2 and 3 as a figure.

    Parameters
    ----------
    results : mapping
        Either what :meth:`~skshortcut.WassersteinDisentangler.disentanglement_report`
        returns (four bars: foreground / background from ``z_fg`` / ``z_bg``,
        with the chance levels drawn as ticks), or ``{row: {column:
        accuracy}}``, for example ``{"z_fg / z_bg": {"fg, correlated": 0.98,
        "fg, anti-correlated": 0.72}, "ERM": {...}}`` (one colour per row).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from skshortcut.plotting import plot_disentanglement
    >>> report = {"fg_from_fg": 0.9, "bg_from_bg": 1.0, "fg_from_bg": 0.1, "bg_from_fg": 0.5,
    ...           "chance_fg": 0.1, "chance_bg": 0.1}
    >>> [t.get_text() for t in plot_disentanglement(report).axes[0].get_xticklabels()]
    ['fg from z_fg', 'bg from z_bg', 'fg from z_bg', 'bg from z_fg']
    """
    if not hasattr(results, "items"):
        raise TypeError(f"`results` must be a mapping; got {type(results).__name__}.")
    chance = None
    if all(key in results for key, _ in _REPORT_BARS):
        table = {"probe accuracy": {label: float(results[key]) for key, label in _REPORT_BARS}}
        if "chance_fg" in results and "chance_bg" in results:
            chance = [float(results[f"chance_{key[:2]}"]) for key, _ in _REPORT_BARS]
    else:
        table = {str(row): dict(cols) for row, cols in results.items()}
        if not table or not all(hasattr(c, "items") for c in results.values()):
            raise ValueError("`results` must be a disentanglement report or a non-empty {row: {column: accuracy}}.")
    columns = list(dict.fromkeys(c for cols in table.values() for c in cols))
    rows = list(table)
    if ax is None:
        fig = _figure((1.2 + 1.1 * len(columns), 3.2))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    width = 0.8 / len(rows)
    x = np.arange(len(columns))
    for i, row in enumerate(rows):
        values = [table[row].get(c, np.nan) for c in columns]
        bars = ax.bar(x - 0.4 + width * (i + 0.5), values, width, label=row if len(rows) > 1 else None)
        for bar, v in zip(bars, values):
            if np.isfinite(v):
                ax.text(bar.get_x() + bar.get_width() / 2, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    if chance is not None:
        ax.scatter(x, chance, marker="_", s=400, color="black", zorder=3, label="chance")
        ax.legend(fontsize=7, loc="upper right")
    elif len(rows) > 1:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=min(len(rows), 4))
    ax.set_xticks(x, columns, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    if title is not None:
        ax.set_title(title)
    fig.tight_layout()
    return fig
