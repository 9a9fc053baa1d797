"""A closed-form estimate of the distances of D3S's Eqs. 7-8: sliced Wasserstein-1 between label-conditional batches.

For a discrete label ``l`` and a cost on the features alone (the critics'
gradient penalty constrains them in ``z`` only), the Wasserstein-1 distance
between the joint ``P(z, l)`` and the product ``P(z) P(l)`` of Eq. 7 is
``sum_l P(l) W1(P(z | l), P(z))``: each label's features against all the
features. :func:`sliced_wasserstein` estimates it on a batch with the sliced
Wasserstein-1 distance (the mean over random unit directions of the 1-D
Wasserstein-1 distance of the projected samples, computed from quantiles):
an alternative estimator of the same distance that has no network to train,
so that the extractor cannot lower it by moving each label's cluster to where
a stale critic scores it low; only merging the clusters lowers it.
"""

from __future__ import annotations

import torch

from ._critics import standardize

__all__ = ["sliced_wasserstein", "extractor_sliced_wasserstein"]


def sliced_wasserstein(z, labels, *, n_projections=64, standardized=True):
    """``sum_l p(l) SW1(P(z | l), P(z))`` on one batch, differentiable in ``z``.

    Parameters
    ----------
    z : Tensor of shape (n, d)
    labels : Tensor of shape (n,)
        Integer labels.
    n_projections : int, default=64
        Random unit directions (fresh ones at every call).
    standardized : bool, default=True
        Standardise ``z`` over the batch first (so that shrinking the features
        does not lower the estimate).

    Returns
    -------
    Tensor
        A scalar, ``>= 0``.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.generative._sliced import sliced_wasserstein
    >>> _ = torch.manual_seed(0)
    >>> labels = torch.arange(200) % 2
    >>> apart = torch.randn(200, 4) + 3 * labels[:, None]
    >>> bool(sliced_wasserstein(apart, labels) > 5 * sliced_wasserstein(torch.randn(200, 4), labels))
    True
    """
    if standardized:
        z = standardize(z)
    directions = torch.randn(z.shape[1], int(n_projections), device=z.device, dtype=z.dtype)
    n, total = labels.shape[0], z.new_zeros(())
    present = [label for label in labels.unique() if 0 < int((labels == label).sum()) < n]
    if not present:
        return total
    # each label's mean direction joins the random ones: the direction that separates it most (linearly)
    means = torch.stack([z[labels == label].mean(0) for label in present]).detach().T
    directions = torch.cat([directions, means + 1e-12], 1)
    proj = z @ (directions / directions.norm(dim=0, keepdim=True))
    for i, label in enumerate(present):
        mask = labels == label
        m = int(mask.sum())
        levels = (torch.arange(m, device=z.device, dtype=z.dtype) + 0.5) / m
        gaps = (torch.sort(proj[mask], dim=0).values - torch.quantile(proj, levels, dim=0)).abs().mean(0)
        own = gaps[int(n_projections) + i]  # along the label's mean direction
        total = total + (m / n) * 0.5 * (gaps[: int(n_projections)].mean() + own)
    return total


def extractor_sliced_wasserstein(z_fg, z_bg, y_true, *, n_projections=64):
    """``{"w_fg": SW(z_fg; l_bg), "w_bg": SW(z_bg; l_fg)}``; unknown backgrounds leave ``w_fg``'s sample."""
    y_fg, y_bg = y_true[:, 0], y_true[:, 1]
    known = y_bg >= 0
    terms = {}
    for name, feats, labels in (("w_fg", z_fg[known], y_bg[known]), ("w_bg", z_bg, y_fg)):
        if labels.shape[0] >= 2:
            terms[name] = sliced_wasserstein(feats, labels, n_projections=n_projections)
    return terms
