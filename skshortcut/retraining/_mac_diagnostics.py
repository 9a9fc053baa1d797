"""Where Mask-and-Combine's masks fall: the paper's table 1, and whether they can leave the shortcut out.

HosseiniNoohdani et al., *Mitigating Spurious Correlation in Images by
Intervention*, table 1: per group, how much of the top-K XGradCAM mask lies
on the core (foreground) and how much on the spurious part of the images
(:func:`mask_region_table`, for a known core region). Without a known region,
:func:`shortcut_mask_overlap` estimates the shortcut's pixels from group
labels (where the groups of one class differ) and measures how much of the
masks lies on them: when even the masks of the group the shortcut is absent
from (or contrary to) lie on those pixels, as with a colour on the strokes or
a tint over the image, no top-K mask can keep the core and drop the shortcut.
Both are importable from :mod:`skshortcut.retraining.mask_and_combine`.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch

from .._grouped import _take
from .._torch import iter_batches, n_samples
from .._validation import check_labels, check_same_length

__all__ = ["mask_region_table", "shortcut_mask_overlap"]

#: A validation worst-group gain over the base model below this is no gain (a few images of a minority group).
NO_GAIN = 0.01
#: ``fit`` warns when, for some class, the masks of one of two of its groups put at least this share of their
#: pixels where the two groups' validation images differ (the ``score`` of :func:`shortcut_mask_overlap`).
#: Chosen between the measured scores (``benchmarks/mask_shortcut_overlap.py``, see the user guide).
SHORTCUT_ON_MASKS = 0.5
#: Validation images per group the fit's diagnostic computes masks for (drawn at random beyond that).
DIAGNOSTIC_PER_GROUP = 256


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


def _group_moments(X, index, batch_size=256):
    """Per-pixel mean and unbiased variance, shape (channels, height, width), of the images ``X[index]``."""
    total = total_sq = None
    for batch in iter_batches(_take(X, index), batch_size, dtype=torch.float64):
        b = batch.cpu().numpy()
        s, q = b.sum(0), (b * b).sum(0)
        total, total_sq = (s, q) if total is None else (total + s, total_sq + q)
    n = len(index)
    mean = total / n
    var = np.maximum(total_sq - n * mean * mean, 0.0) / max(n - 1, 1)
    return mean, var


def shortcut_region(X, y, groups, *, t_min=4.0, min_group_size=5):
    """The pixels where two groups of one class differ: the shortcut's footprint, estimated from group labels.

    Within a class the groups differ only in the spurious attribute, so the
    pixels whose mean differs between two groups of the class are where the
    shortcut is (the core, drawn from the same distribution in both groups,
    averages out). A pixel belongs to the region when, in some channel, the
    two-sample t statistic of its values (pooled variance) is at least
    ``t_min``; where both groups are constant and differ, it is infinite.

    Parameters
    ----------
    X : ndarray, tensor or Dataset of images, shape (n, channels, height, width)
    y : array-like of shape (n,)
        Class labels.
    groups : array-like of shape (n,)
        Group labels (for example ``(class, spurious attribute)`` pairs).
    t_min : float, default=4.0
        Significance of a pixel's difference. With 4, a channel of a pixel
        whose mean does not differ passes with probability 2e-4 for two
        groups of 25 images (6e-5 for large groups).
    min_group_size : int, default=5
        Groups with fewer images in the class are left out.

    Returns
    -------
    regions : list of dict
        One per class and pair ``(largest group of the class, another
        group)``: ``{"class", "groups": (a, b), "n": (n_a, n_b), "region":
        bool (height, width)}``.
    """
    if isinstance(t_min, bool) or not isinstance(t_min, numbers.Real) or not t_min > 0:
        raise ValueError(f"`t_min` must be a positive number; got {t_min!r}.")
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, numbers.Integral) or min_group_size < 2:
        raise ValueError(f"`min_group_size` must be an int >= 2 (a variance needs two images); got {min_group_size!r}.")
    y = check_labels(y, "y")
    groups = check_labels(groups, "groups")
    check_same_length(X=np.empty(n_samples(X)), y=y, groups=groups)
    out = []
    for c in np.unique(y):
        in_c = y == c
        names, counts = np.unique(groups[in_c], return_counts=True)
        keep = counts >= min_group_size
        names, counts = names[keep], counts[keep]
        if len(names) < 2:
            continue
        order = np.argsort(-counts, kind="stable")
        moments = {g: _group_moments(X, np.flatnonzero(in_c & (groups == g))) for g in names}
        a = names[order[0]]
        for b in names[order[1:]]:
            (mu_a, v_a), (mu_b, v_b) = moments[a], moments[b]
            n_a, n_b = int((in_c & (groups == a)).sum()), int((in_c & (groups == b)).sum())
            pooled = ((n_a - 1) * v_a + (n_b - 1) * v_b) / (n_a + n_b - 2)
            se = np.sqrt(pooled * (1.0 / n_a + 1.0 / n_b))
            diff = np.abs(mu_a - mu_b)
            scale = max(float(np.abs(mu_a).max()), float(np.abs(mu_b).max()), 1e-12)
            real = diff > 1e-6 * scale  # above float rounding of the means
            t = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(real, np.inf, 0.0))
            region = ((t >= t_min) & real).any(axis=0)
            out.append({"class": c, "groups": (a, b), "n": (n_a, n_b), "region": region})
    return out


def shortcut_mask_overlap(masks, X, y, groups, *, t_min=4.0, min_group_size=5):
    """How much of the masks lies on the shortcut's pixels, the shortcut estimated from group labels.

    Mask-and-Combine's interventions keep the masked pixels of an image and
    replace the rest: they break the shortcut only where the shortcut lies
    outside the masks. For each class, :func:`shortcut_region` estimates the
    shortcut's pixels from two of its groups (the pixels where their mean
    images differ); this function measures, for each of the two groups, the
    share of its mask pixels that lie on them (``mask_on_shortcut``, the
    paper's table 1 with the shortcut region estimated instead of known) and
    the share of the region its masks cover (``shortcut_covered``).

    ``score`` is the larger ``mask_on_shortcut`` of the two groups (with
    balanced validation groups it is not known which one the training set
    is mostly made of). A patch or a second object next to the core: the
    shortcut's pixels are a small part of any mask, even of a mask that
    covers the whole patch (then choose ``top_k`` smaller), and ``score`` is
    low. A colour on the core's strokes or a tint over the whole image: the
    shortcut is on the pixels the masks must keep, most of each mask lies on
    them, ``score`` is high, and no top-K mask can keep the core without the
    shortcut.

    Parameters
    ----------
    masks : array-like of bool, shape (n, height, width)
        The top-K masks of the images (``MaskAndCombineRetrainer.compute_masks``).
    X : ndarray, tensor or Dataset of images, shape (n, channels, height, width)
    y : array-like of shape (n,)
    groups : array-like of shape (n,)
    t_min, min_group_size
        See :func:`shortcut_region`.

    Returns
    -------
    rows : list of dict
        One per class and pair of groups (classes with fewer than two groups
        of ``min_group_size`` images give none): ``{"class", "groups": (a,
        b), "n": (n_a, n_b), "shortcut_share": float (share of the image in
        the region), "mask_on_shortcut": (float, float), "shortcut_covered":
        (float, float), "score": float}``. With no pixel in the region (the
        groups do not differ anywhere) ``score`` is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.mask_and_combine import shortcut_mask_overlap
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 1, 4, 4) * 0.1
    >>> groups = np.repeat([0, 1], 20)           # one class, two groups
    >>> X[groups == 1, :, 0, 0] += 1.0            # the shortcut: the top-left pixel
    >>> masks = np.zeros((40, 4, 4), bool)
    >>> masks[:, 2:, :2] = True                   # the masks lie on the core, bottom left
    >>> row = shortcut_mask_overlap(masks, X, np.zeros(40), groups)[0]
    >>> row["shortcut_share"], row["score"]
    (0.0625, 0.0)
    """
    m = np.asarray(masks).astype(bool)
    if m.ndim != 3:
        raise ValueError(f"`masks` must have shape (n, height, width); got {m.shape}.")
    groups = check_labels(groups, "groups")
    check_same_length(masks=m, X=np.empty(n_samples(X)), groups=groups)
    rows = []
    for r in shortcut_region(X, y, groups, t_min=t_min, min_group_size=min_group_size):
        region = r["region"]
        if region.shape != m.shape[1:]:
            raise ValueError(f"`masks` must have the images' height and width {region.shape}; got {m.shape[1:]}.")
        y_arr = check_labels(y, "y")
        on, covered = [], []
        for g in r["groups"]:
            mg = m[(y_arr == r["class"]) & (groups == g)].reshape(-1, region.size)
            hit = (mg & region.ravel()).sum(1)
            on.append(float(np.mean(hit / np.maximum(mg.sum(1), 1))))
            covered.append(float(np.mean(hit / region.sum())) if region.any() else float("nan"))
        c = r["class"]
        rows.append({
            "class": c.item() if hasattr(c, "item") else c,
            "groups": tuple(g.item() if hasattr(g, "item") else g for g in r["groups"]),
            "n": r["n"],
            "shortcut_share": float(region.mean()),
            "mask_on_shortcut": tuple(on),
            "shortcut_covered": tuple(covered),
            "score": max(on) if region.any() else float("nan"),
        })
    return rows


def validation_overlap(est, X, y_enc, groups, seed, per_group=DIAGNOSTIC_PER_GROUP):
    """:func:`shortcut_mask_overlap` of a fitted retrainer's validation images, at most ``per_group`` per group."""
    rng = np.random.RandomState(None if seed is None else seed + 1)
    keep = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        keep.append(idx if len(idx) <= per_group else np.sort(rng.choice(idx, per_group, replace=False)))
    keep = np.concatenate(keep)
    X_keep, y_keep = _take(X, keep), y_enc[keep]
    target = est.base_logit_index_[y_keep] if est.cam_target == "label" else None
    maker = est._mask_maker()
    masks = maker.unpack(maker.packed(X_keep, target, rng))
    return shortcut_mask_overlap(masks, X_keep, est.classes_[y_keep], groups[keep])


def warn_if_no_use(est, stacklevel=3):
    """The warnings of ``MaskAndCombineRetrainer.fit``: no validation gain; masks on the shortcut's pixels."""
    if est.best_score_ is not None and est.best_score_ <= est.base_valid_score_ + NO_GAIN:
        warnings.warn(
            f"Mask-and-Combine did not lift the validation worst-group accuracy above the base model's "
            f"({est.best_score_:.3f} at epoch {est.best_epoch_} vs {est.base_valid_score_:.3f}). Its masks cannot "
            "separate a shortcut that covers the core pixels (a tint, a colour, a patch the model looks at): "
            "check where the top-K masks lie with mask_region_table (the paper's table 1) before using the model.",
            UserWarning,
            stacklevel=stacklevel,
        )
    rows = [r for r in est.shortcut_overlap_ or [] if r["score"] >= SHORTCUT_ON_MASKS]
    if rows:
        r = max(rows, key=lambda row: row["score"])
        (a, b), (on_a, on_b) = r["groups"], r["mask_on_shortcut"]
        warnings.warn(
            f"Mask-and-Combine's masks lie on the shortcut's pixels: in class {r['class']!r}, the validation images of "
            f"groups {a!r} and {b!r} differ on {r['shortcut_share']:.0%} of the pixels (the shortcut's footprint, "
            f"t >= 4), and {on_a:.0%} and {on_b:.0%} of their top-K mask pixels lie there (warned from "
            f"{SHORTCUT_ON_MASKS:.0%} in either group; all classes in shortcut_overlap_). The shortcut covers the "
            "pixels the masks keep (a colour on the core, a tint over the image), so the removed and combined images "
            "keep it with the label and cannot break it. Retrain the last layer with group labels instead "
            "(DFRRetrainer), or use a method that separates colour from shape (ChromaVAEClassifier).",
            UserWarning,
            stacklevel=stacklevel,
        )
