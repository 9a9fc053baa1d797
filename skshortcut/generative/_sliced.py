"""A closed-form estimate of the distances of D3S's Eqs. 7-8: sliced Wasserstein between label-conditional batches.

For a discrete label ``l`` and a cost on the features alone (the critics'
gradient penalty constrains them in ``z`` only), the Wasserstein distance
between the joint ``P(z, l)`` and the product ``P(z) P(l)`` of Eq. 7 is
``sum_l P(l) W(P(z | l), P(z))``: each label's features against all the
features. :func:`sliced_wasserstein` estimates it on a batch with the sliced
Wasserstein distance (the mean over unit directions of the 1-D Wasserstein
distance of the projected samples, computed from quantiles): an alternative
estimator of the same distance that has no network to train, so that the
extractor cannot lower it by moving each label's cluster to where a stale
critic scores it low; only merging the clusters lowers it.

Two choices make it reach a linear probe's chance level (measured in
docs/user_guide/wasserstein.rst):

* the batch is *whitened* (:func:`whiten`), not only standardised. The
  extractor's features are strongly correlated (the eigenvalues of their
  correlation matrix span four orders of magnitude), and a label readable
  along a direction of small variance is nearly invisible to random or
  mean directions of standardised features, while a standardised logistic
  probe fit on a few thousand samples finds it. In whitened coordinates every
  direction has unit variance and each label's mean direction is its Fisher
  (linear discriminant) direction;
* the 1-D distances are *squared* (``p=2``, ``W_2^2``). The gradient of
  ``|gap|`` is the sign of the gap, which below the batch's sampling noise is
  a coin flip; the gradient of ``gap^2`` is the gap itself, whose noise
  averages out over the steps, so a dependence smaller than the noise floor
  of one batch still gets a consistent push towards zero.
"""

from __future__ import annotations

import torch

from ._critics import extractor_wasserstein, standardize

__all__ = ["sliced_wasserstein", "extractor_sliced_wasserstein", "whiten", "independence_terms"]


def whiten(z, ridge=1e-3):
    """Centre ``z`` and whiten it over the batch (identity covariance), differentiably.

    ``z (L^T)^-1`` with ``L`` the Cholesky factor of the batch covariance plus
    ``ridge`` times its mean variance on the diagonal (so that a batch smaller
    than the feature count stays invertible). A covariance that is not
    positive definite even so (constant features) falls back to
    standardisation.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.generative._sliced import whiten
    >>> _ = torch.manual_seed(0)
    >>> z = torch.randn(500, 3) @ torch.tensor([[1.0, 0.9, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 5.0]])
    >>> cov = torch.cov(whiten(z, ridge=0.0).T)
    >>> bool(torch.allclose(cov, torch.eye(3), atol=1e-4))
    True
    """
    zc = z - z.mean(0, keepdim=True)
    cov = zc.T @ zc / max(1, z.shape[0] - 1)
    scale = float(cov.diagonal().mean().detach())
    cov = cov + float(ridge) * scale * torch.eye(z.shape[1], device=z.device, dtype=z.dtype)
    chol, info = torch.linalg.cholesky_ex(cov)
    if scale <= 0 or int(info) != 0:
        return standardize(z)
    return torch.linalg.solve_triangular(chol, zc.T, upper=False).T


def sliced_wasserstein(z, labels, *, n_projections=64, standardized=True, whitened=False, p=1):
    """``sum_l p(l) SW_p^p(P(z | l), P(z))`` on one batch, differentiable in ``z``.

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
    whitened : bool, default=False
        Whiten ``z`` over the batch first (:func:`whiten`; replaces the
        standardisation): every direction of the features counts, and each
        label's mean direction becomes its Fisher direction.
    p : float, default=1
        Order of the 1-D distances: the mean of ``|gap|^p`` between the
        label's sorted projections and the batch's quantiles (``p=2``: the
        squared Wasserstein-2 distance, whose gradient does not vanish into
        sampling noise; see the module docstring).

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
    if whitened:
        z = whiten(z)
    elif standardized:
        z = standardize(z)
    directions = torch.randn(z.shape[1], int(n_projections), device=z.device, dtype=z.dtype)
    n, total = labels.shape[0], z.new_zeros(())
    present = [label for label in labels.unique() if 0 < int((labels == label).sum()) < n]
    if not present:
        return total
    # each label's mean direction joins the random ones: the direction that separates it most (linearly;
    # in whitened coordinates the Fisher direction)
    means = torch.stack([z[labels == label].mean(0) for label in present]).detach().T
    directions = torch.cat([directions, means + 1e-12], 1)
    proj = z @ (directions / directions.norm(dim=0, keepdim=True))
    for i, label in enumerate(present):
        mask = labels == label
        m = int(mask.sum())
        levels = (torch.arange(m, device=z.device, dtype=z.dtype) + 0.5) / m
        gaps = (torch.sort(proj[mask], dim=0).values - torch.quantile(proj, levels, dim=0)).abs().pow(p).mean(0)
        own = gaps[int(n_projections) + i]  # along the label's mean direction
        total = total + (m / n) * 0.5 * (gaps[: int(n_projections)].mean() + own)
    return total


def extractor_sliced_wasserstein(z_fg, z_bg, y_true, *, n_projections=64, **options):
    """``{"w_fg": SW(z_fg; l_bg), "w_bg": SW(z_bg; l_fg)}``; unknown backgrounds leave ``w_fg``'s sample.

    ``options`` (``standardized``, ``whitened``, ``p``) go to :func:`sliced_wasserstein`.
    """
    y_fg, y_bg = y_true[:, 0], y_true[:, 1]
    known = y_bg >= 0
    terms = {}
    for name, feats, labels in (("w_fg", z_fg[known], y_bg[known]), ("w_bg", z_bg, y_fg)):
        if labels.shape[0] >= 2:
            terms[name] = sliced_wasserstein(feats, labels, n_projections=n_projections, **options)
    return terms


def independence_terms(net, z_fg, z_bg, y_true):
    """The Wasserstein terms of Eq. 10 for a disentangler ``net``: sliced (``net.critic="sliced"``) or its critics'."""
    if net.critic == "sliced":
        return extractor_sliced_wasserstein(z_fg, z_bg, y_true, whitened=bool(net.sliced_whiten),
                                            p=float(net.sliced_power))
    return extractor_wasserstein(net.critic_, z_fg, z_bg, y_true)
