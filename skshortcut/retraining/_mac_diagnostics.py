"""Where Mask-and-Combine's masks fall: the paper's table 1 for a known core region.

HosseiniNoohdani et al., *Mitigating Spurious Correlation in Images by
Intervention*, table 1: per group, how much of the top-K XGradCAM mask lies
on the core (foreground) and how much on the spurious part of the images.
:func:`mask_region_table` is importable from
:mod:`skshortcut.retraining.mask_and_combine`.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_labels, check_same_length

__all__ = ["mask_region_table"]


def mask_region_table(masks, region, groups, *, heatmaps=None, group_names=None):
    """Where the masks fall, per group: the paper's table 1 for a known core region.

    For data sets where the core region is known (dominoes: the bottom half;
    Waterbirds: the bird segmentation), this measures how much of each mask
    covers the core. The paper's table 1 reports, per group, the mean
    normalised XGradCAM score on the foreground and the background (FGS,
    BGS) and the share of foreground and background pixels covered by the
    mask (Mask/FG, Mask/BG).

    Parameters
    ----------
    masks : array-like of bool, shape (n, height, width)
    region : array-like of bool, shape (height, width) or (n, height, width)
        True on the core region.
    groups : array-like of shape (n,)
    heatmaps : array-like of shape (n, height, width), optional
        The scores the masks came from; adds the mean score on each region,
        each heatmap divided by its own max ``|value|``.
    group_names : sequence of str, optional
        Names indexed by the (integer) group labels.

    Returns
    -------
    table : dict
        ``{group: {"n": int, "mask_on_core": float, "mask_on_spurious": float,
        "core_covered": float, "spurious_covered": float[, "core_score": float,
        "spurious_score": float]}}``. ``mask_on_core`` is the share of mask
        pixels on the core region (``mask_on_spurious = 1 - mask_on_core``);
        ``core_covered`` / ``spurious_covered`` are the paper's Mask/FG and
        Mask/BG (share of the region's pixels inside the mask).

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.mask_and_combine import mask_region_table
    >>> region = np.array([[False, False], [True, True]])        # bottom row is core
    >>> masks = np.array([[[0, 0], [1, 1]], [[1, 0], [1, 0]]], bool)
    >>> t = mask_region_table(masks, region, groups=[0, 1])
    >>> t[0]["mask_on_core"], t[1]["mask_on_core"], t[1]["core_covered"]
    (1.0, 0.5, 0.5)
    """
    m = np.asarray(masks).astype(bool)
    if m.ndim != 3:
        raise ValueError(f"`masks` must have shape (n, height, width); got {m.shape}.")
    r = np.asarray(region).astype(bool)
    if r.shape == m.shape[1:]:
        r = np.broadcast_to(r, m.shape)
    if r.shape != m.shape:
        raise ValueError(f"`region` must have shape {m.shape[1:]} or {m.shape}; got {r.shape}.")
    groups = check_labels(groups, "groups")
    check_same_length(masks=m, groups=groups)
    n = len(m)
    flat_m, flat_r = m.reshape(n, -1), r.reshape(n, -1)
    on_core = (flat_m & flat_r).sum(1)
    mask_size = np.maximum(flat_m.sum(1), 1)
    core_size, spur_size = flat_r.sum(1), (~flat_r).sum(1)
    per_sample = {
        "mask_on_core": on_core / mask_size,
        "mask_on_spurious": (flat_m & ~flat_r).sum(1) / mask_size,
        "core_covered": np.where(core_size > 0, on_core / np.maximum(core_size, 1), np.nan),
        "spurious_covered": np.where(spur_size > 0, (flat_m & ~flat_r).sum(1) / np.maximum(spur_size, 1), np.nan),
    }
    if heatmaps is not None:
        h = np.asarray(heatmaps, dtype=np.float64)
        if h.shape != m.shape:
            raise ValueError(f"`heatmaps` must have the shape of `masks` {m.shape}; got {h.shape}.")
        h = h.reshape(n, -1)
        h = h / np.maximum(np.abs(h).max(1, keepdims=True), 1e-12)
        per_sample["core_score"] = np.where(core_size > 0, (h * flat_r).sum(1) / np.maximum(core_size, 1), np.nan)
        per_sample["spurious_score"] = np.where(
            spur_size > 0, (h * ~flat_r).sum(1) / np.maximum(spur_size, 1), np.nan
        )
    table = {}
    for g in np.unique(groups):
        sel = groups == g
        key = group_names[int(g)] if group_names is not None else (g.item() if hasattr(g, "item") else g)
        row = {"n": int(sel.sum())}
        row.update({k: float(np.nanmean(v[sel])) for k, v in per_sample.items()})
        table[key] = row
    return table
