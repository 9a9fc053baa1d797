"""The interventions of Mask-and-Combine (Eqs. 1 and 2) and the top-K masks they use.

HosseiniNoohdani, Samiei, Hosseini and Soleymani Baghshah, *Mitigating
Spurious Correlation in Images by Intervention*, section 3.2. The top-K
pixels of a heatmap form a binary mask ``m`` of the core of an image
(:func:`top_k_mask`); two interventions on the rest of the image break its
link with the label:

* **removal** (Eq. 1, :func:`masked_removal`): ``m * x + (1 - m) * b``,
  where ``b`` is the per-channel mean of the batch;
* **combination** (Eq. 2, :func:`masked_combination`): the core of ``x_i``
  with the non-core part of an image ``x_j`` of another class of the batch
  (:func:`draw_partners`),
  ``m_i x_i + (1 - m_i)(1 - m_j) x_j + (1 - m_i) m_j b``, labelled ``y_i``.

Each function works on numpy arrays and torch tensors alike and returns the
kind it was given. The public names are importable from
:mod:`skshortcut.retraining.mask_and_combine`.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._torch import _seed_from

__all__ = ["top_k_mask", "draw_partners", "masked_removal", "masked_combination"]


def _as_tensor(a, dtype=None):
    """``(tensor, was_numpy)`` for an array-like or tensor."""
    if isinstance(a, torch.Tensor):
        return (a if dtype is None else a.to(dtype)), False
    return torch.as_tensor(np.asarray(a), dtype=dtype), True


def _resolve_k(k, n_pixels: int, name: str = "top_k") -> int:
    """K as a pixel count: an int is a count, a float in (0, 1] a fraction of the image."""
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise TypeError(f"`{name}` must be an int (pixel count) or a float in (0, 1] (fraction); got {k!r}.")
    if isinstance(k, numbers.Integral):
        if not 1 <= k <= n_pixels:
            raise ValueError(f"`{name}` as a pixel count must be in [1, {n_pixels}] for these images; got {k}.")
        return int(k)
    if not 0.0 < float(k) <= 1.0:
        raise ValueError(f"`{name}` as a fraction of the image must be in (0, 1]; got {k}.")
    return max(1, int(round(float(k) * n_pixels)))


def top_k_mask(scores, k, *, random_state=None):
    """Binary masks of the ``K`` highest-scoring pixels of each heatmap.

    The mask of Mask-and-Combine (section 3.2): "a H x W x 1 binary mask is
    made by selecting the top-K pixels with the highest scores". Every mask
    has exactly ``K`` ones. Ties (for example the zeros of a rectified CAM)
    are broken at random, so that they do not favour one corner of the image.

    Parameters
    ----------
    scores : ndarray or tensor of shape (n, height, width)
        Heatmaps, for example XGradCAM upsampled to the image.
    k : int or float
        An int is the number of pixels ``K``; a float in (0, 1] is a fraction
        of the ``height * width`` pixels (rounded, at least one).
    random_state : int, RandomState or None, default=None
        Seeds the tie-breaking.

    Returns
    -------
    masks : ndarray or tensor of bool, shape (n, height, width)
        Same kind (numpy or torch) as ``scores``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.mask_and_combine import top_k_mask
    >>> top_k_mask(np.array([[[0.1, 0.9], [0.5, 0.2]]]), 2).astype(int)
    array([[[0, 1],
            [1, 0]]])
    """
    t, was_numpy = _as_tensor(scores)
    if t.ndim != 3:
        raise ValueError(f"`scores` must have shape (n, height, width); got {tuple(t.shape)}.")
    if not torch.is_floating_point(t):
        t = t.float()
    n, h, w = t.shape
    kk = _resolve_k(k, h * w, "k")
    flat = t.reshape(n, h * w)
    seed = _seed_from(check_random_state(random_state)) if random_state is not None else None
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    # random pixel order first, then a stable sort: equal scores keep a random order
    perm = torch.randperm(h * w, generator=gen).to(flat.device)
    order = torch.argsort(flat[:, perm], dim=1, descending=True, stable=True)[:, :kk]
    masks = torch.zeros(n, h * w, dtype=torch.bool, device=flat.device)
    masks.scatter_(1, perm[order], True)
    masks = masks.reshape(n, h, w)
    return masks.cpu().numpy() if was_numpy else masks


def draw_partners(y, random_state=None) -> np.ndarray:
    """For each sample, a random sample of another class (the ``j`` of Eq. 2).

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels of the batch.
    random_state : int, RandomState or None, default=None

    Returns
    -------
    partners : ndarray of int, shape (n,)
        ``partners[i]`` is an index ``j`` with ``y[j] != y[i]``, drawn
        uniformly among them; ``-1`` where the batch holds no other class.

    Examples
    --------
    >>> from skshortcut.retraining.mask_and_combine import draw_partners
    >>> draw_partners([0, 0, 1], random_state=0).tolist()
    [2, 2, 0]
    """
    y = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)
    if y.ndim != 1:
        raise ValueError(f"`y` must be one-dimensional; got shape {y.shape}.")
    rng = check_random_state(random_state)
    partners = np.full(len(y), -1, dtype=np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        others = np.flatnonzero(y != c)
        if len(others):
            partners[members] = others[rng.randint(len(others), size=len(members))]
    return partners


def _check_aug_inputs(X, masks, fill):
    x, was_numpy = _as_tensor(X)
    if x.ndim != 4:
        raise ValueError(f"`X` must have shape (n, channels, height, width); got {tuple(x.shape)}.")
    if not torch.is_floating_point(x):
        x = x.float()
    m, _ = _as_tensor(masks)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3 or tuple(m.shape) != (x.shape[0], x.shape[2], x.shape[3]):
        raise ValueError(
            f"`masks` must have shape (n, height, width) = {(x.shape[0], x.shape[2], x.shape[3])}; "
            f"got {tuple(m.shape)}."
        )
    m = m.to(device=x.device, dtype=x.dtype)[:, None]
    if fill is None:
        b = x.mean(dim=(0, 2, 3))
    else:
        b, _ = _as_tensor(fill)
        b = b.to(device=x.device, dtype=x.dtype).reshape(-1)
        if b.numel() not in (1, x.shape[1]):
            raise ValueError(f"`fill` must be a scalar or hold one value per channel ({x.shape[1]}); got {b.numel()}.")
    return x, m, b.reshape(1, -1, 1, 1).expand(1, x.shape[1], 1, 1), was_numpy


def _removal(x, m, b):
    """Eq. 1 on tensors: ``m * x + (1 - m) * b`` (``m`` of shape (n, 1, H, W))."""
    return m * x + (1 - m) * b


def _combination(x, m, partners, b):
    """Eq. 2 on tensors: ``m_i x_i + (1 - m_i)(1 - m_j) x_j + (1 - m_i) m_j b``."""
    xj, mj = x[partners], m[partners]
    return m * x + (1 - m) * (1 - mj) * xj + (1 - m) * mj * b


def masked_removal(X, masks, *, fill=None):
    """Remove the non-core part of images (Eq. 1 of Mask-and-Combine).

    ``X_rm = m * X + (1 - m) * b``: pixels outside the mask are set to ``b``,
    by default the batch's per-channel mean "to change the statistics of the
    batch as insignificantly as possible".

    Parameters
    ----------
    X : ndarray or tensor of shape (n, channels, height, width)
        The batch.
    masks : ndarray or tensor of shape (n, height, width)
        Binary (or soft) masks, 1 on the core.
    fill : scalar or sequence of float (one per channel), optional
        ``b``; default: ``X.mean(axis=(0, 2, 3))``.

    Returns
    -------
    ndarray or tensor of shape (n, channels, height, width)
        Same kind as ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.mask_and_combine import masked_removal
    >>> X = np.array([[[[1.0, 3.0]]]])             # one 1x2 image, one channel
    >>> masked_removal(X, np.array([[[1, 0]]])).tolist()   # b = mean = 2
    [[[[1.0, 2.0]]]]
    """
    x, m, b, was_numpy = _check_aug_inputs(X, masks, fill)
    out = _removal(x, m, b)
    return out.cpu().numpy() if was_numpy else out


def masked_combination(X, masks, partners, *, fill=None):
    """Combine the core of each image with the non-core part of another (Eq. 2 of Mask-and-Combine).

    ``X_ij = m_i X_i + (1 - m_i)(1 - m_j) X_j + (1 - m_i) m_j b``: the core of
    ``X_i``, the non-core part of its partner ``X_j`` where it does not cover
    the core of ``X_i``, and ``b`` where the core of ``X_j`` would have been.
    The combined image keeps the label of ``X_i``.

    Parameters
    ----------
    X : ndarray or tensor of shape (n, channels, height, width)
        The batch.
    masks : ndarray or tensor of shape (n, height, width)
        Masks of the batch, 1 on the core.
    partners : array-like of int, shape (n,)
        ``partners[i] = j``, an index into the batch (usually of another
        class, see :func:`draw_partners`).
    fill : scalar or sequence of float (one per channel), optional
        ``b``; default: ``X.mean(axis=(0, 2, 3))``.

    Returns
    -------
    ndarray or tensor of shape (n, channels, height, width)
        Same kind as ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.mask_and_combine import masked_combination
    >>> X = np.array([[[[1.0, 1.0, 1.0]]], [[[5.0, 5.0, 5.0]]]])  # two 1x3 images
    >>> masks = np.array([[[1, 0, 0]], [[0, 1, 0]]])
    >>> masked_combination(X, masks, [1, 0])[0].tolist()        # b = mean = 3
    [[[1.0, 3.0, 5.0]]]
    """
    x, m, b, was_numpy = _check_aug_inputs(X, masks, fill)
    p = np.asarray(partners.detach().cpu() if hasattr(partners, "detach") else partners)
    if p.shape != (x.shape[0],) or p.dtype.kind not in "iu":
        raise ValueError(f"`partners` must be {x.shape[0]} integer indices into the batch; got {p!r}.")
    if len(p) and (p.min() < 0 or p.max() >= x.shape[0]):
        raise ValueError(f"`partners` must index the batch (0 to {x.shape[0] - 1}); got values {p.min()} to {p.max()}.")
    out = _combination(x, m, torch.as_tensor(p, device=x.device), b)
    return out.cpu().numpy() if was_numpy else out
