"""The critics of Wasserstein disentanglement and the terms they give (D3S, Eqs. 8-10).

Kattakinda, Levine and Feizi, *Invariant Learning via Diffusion Dreamed
Distribution Shifts*, section 5. Two label-conditioned critics
(:class:`ProjectionCritic` by default) estimate Wasserstein distances between the
joint distributions ``P(z_fg, l_bg)``, ``P(z_bg, l_fg)`` and the products of
their marginals: the critics minimise Eq. 9 (:func:`critic_objective`), the
feature extractor minimises the estimates in Eq. 10
(:func:`extractor_wasserstein`). A background label ``< 0`` (unknown) leaves
a sample out of the foreground critic's terms.

Three choices here differ from a literal reading of Eq. 9, each because the
literal one leaves the extractor without a usable signal (measured in
docs/user_guide/wasserstein.rst):

* the gradient penalty is taken with respect to the features only. With the
  label inside the penalised gradient the critic is 1-Lipschitz along the
  label axis as well, so ``W <= sqrt(2) P(l != l')`` whatever the features: the
  estimate saturates as soon as the label is readable and its gradient
  vanishes;
* the critic sees the batch's features standardised (each feature to mean 0
  and standard deviation 1 over the batch, differentiably), so the extractor
  cannot lower a distance by shrinking the features, which a standardised
  probe undoes;
* the critic is conditioned on the label by projection (one output per label,
  :class:`ProjectionCritic`) rather than by a concatenated embedding, which
  learns the label interaction hundreds of steps slower.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..nets import Critic

__all__ = [
    "ProjectionCritic",
    "wasserstein_terms",
    "make_critics",
    "critic_objective",
    "extractor_wasserstein",
    "critic_updates",
    "frozen",
]

#: Label conditionings of the critics.
CONDITIONINGS = ("projection", "embedding")


class ProjectionCritic(nn.Module):
    """A label-conditioned critic ``D(z, l) = <l, F(z)>``: an MLP with one output per label.

    ``F`` has hidden widths halving from layer to layer and LeakyReLU
    activations (as :class:`~skshortcut.nets.Critic`); its ``n_labels``
    outputs are the scores of ``z`` under each label, and a (soft) one-hot
    label picks (mixes) them. Each label thus has its own function of ``z``,
    which a critic fed ``[z, embedding(l)]`` has to build from the
    interactions of its first layer.

    Parameters
    ----------
    in_features : int
    n_labels : int
    hidden_features : int, optional
        Width of the first hidden layer. Default: the input size rounded up to
        a power of two, between 16 and 512.
    n_layers : int, default=3
        Hidden layers (0: a linear critic).
    negative_slope : float, default=0.1

    Examples
    --------
    >>> import torch
    >>> from skshortcut.generative._critics import ProjectionCritic
    >>> critic = ProjectionCritic(8, n_labels=3)
    >>> critic(torch.zeros(4, 8), torch.tensor([0, 1, 2, 0])).shape
    torch.Size([4])
    >>> [m.out_features for m in critic.net if isinstance(m, torch.nn.Linear)]
    [16, 8, 4, 3]
    """

    def __init__(self, in_features, n_labels, *, hidden_features=None, n_layers=3, negative_slope=0.1):
        super().__init__()
        self.in_features, self.n_labels = int(in_features), int(n_labels)
        width = hidden_features or min(512, max(16, 1 << (self.in_features - 1).bit_length()))
        layers, n_in = [], self.in_features
        for _ in range(int(n_layers)):
            layers += [nn.Linear(n_in, width), nn.LeakyReLU(negative_slope)]
            n_in, width = width, max(1, width // 2)
        layers.append(nn.Linear(n_in, self.n_labels))
        self.net = nn.Sequential(*layers)

    def one_hot(self, labels):
        """Integer labels ``(n,)`` as float one-hot vectors ``(n, n_labels)``."""
        return nn.functional.one_hot(labels.long(), self.n_labels).to(self.net[0].weight.dtype)

    def forward(self, z, labels):
        """Scores ``D(z, l)`` of shape ``(n,)``; ``labels``: integers ``(n,)`` or (soft) one-hot ``(n, n_labels)``."""
        if labels.ndim == 1:
            labels = self.one_hot(labels)
        return (self.net(z) * labels).sum(1)


def standardize(z, eps=1e-5):
    """Each feature to mean 0 and standard deviation 1 over the batch (differentiable)."""
    return (z - z.mean(0, keepdim=True)) / (z.std(0, keepdim=True) + eps)



def wasserstein_terms(critic, z, labels, *, penalty=True, standardized=True):
    """A critic's Wasserstein estimate (Eq. 8) and gradient penalty (Eq. 9) on one batch.

    The joint sample is the batch ``(z_i, l_i)``; the product-of-marginals
    sample is ``(z_i, l_s(i))`` with the labels shuffled by a random
    permutation ``s``. The features are first standardised over the batch
    (``standardized=True``; differentiably, so that the extractor gains
    nothing by shrinking them). The gradient penalty (Gulrajani et al.) is
    evaluated at ``(eps z1 + (1 - eps) z2, eps l1 + (1 - eps) l2)``,
    ``eps ~ U(0, 1)`` per sample, between a product sample ``(z1, l1)`` and an
    independently drawn joint sample ``(z2, l2)`` (labels as one-hot
    vectors), with the gradient taken with respect to the features: the
    critic is 1-Lipschitz in ``z`` for every label. All three sets of inputs
    go through the critic in one pass.

    Parameters
    ----------
    critic : ProjectionCritic or skshortcut.nets.Critic
    z : Tensor of shape (n, d)
    labels : Tensor of shape (n,)
        Integer labels.
    penalty : bool, default=True
        Also compute the gradient penalty (the critic's step needs it, the
        feature extractor's does not).
    standardized : bool, default=True
        Standardise ``z`` over the batch first.

    Returns
    -------
    w : Tensor
        ``E_joint[D] - E_prod[D]``, a scalar.
    gp : Tensor or None
        ``mean((||grad_z D|| - 1)^2)``, differentiable with respect to the
        critic's parameters.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.generative._critics import ProjectionCritic
    >>> from skshortcut.generative.wasserstein import wasserstein_terms
    >>> _ = torch.manual_seed(0)
    >>> w, gp = wasserstein_terms(ProjectionCritic(4, 3), torch.randn(8, 4), torch.randint(0, 3, (8,)))
    >>> w.shape, bool(gp.detach() >= 0)
    (torch.Size([]), True)
    """
    if standardized:
        z = standardize(z)
    n = labels.shape[0]
    onehot = critic.one_hot(labels)
    shuffled = onehot[torch.randperm(n, device=labels.device)]
    feats, labs = [z, z], [onehot, shuffled]
    if penalty:
        other = torch.randperm(n, device=labels.device)  # an independent joint sample
        eps = torch.rand(n, 1, device=z.device, dtype=z.dtype)
        z_hat = (eps * z + (1 - eps) * z[other]).detach().requires_grad_(True)
        feats.append(z_hat)
        labs.append((eps * shuffled + (1 - eps) * onehot[other]).detach())
    scores = critic(torch.cat(feats), torch.cat(labs))
    w = scores[:n].mean() - scores[n : 2 * n].mean()
    if not penalty:
        return w, None
    (grad_z,) = torch.autograd.grad(scores[2 * n :].sum(), (z_hat,), create_graph=True)
    norm = torch.sqrt(grad_z.pow(2).sum(1) + 1e-12)
    return w, (norm - 1.0).pow(2).mean()


def make_critics(n_foreground_features, n_background_features, n_classes, n_background_classes, *,
                 conditioning="projection", **critic_params):
    """The two critics: ``D_fg(z_fg, l_bg)`` and ``D_bg(z_bg, l_fg)``.

    Parameters
    ----------
    n_foreground_features, n_background_features : int
        Sizes of ``z_fg`` and ``z_bg``.
    n_classes, n_background_classes : int
        Foreground and background label counts.
    conditioning : {"projection", "embedding"}, default="projection"
        :class:`ProjectionCritic`, or :class:`~skshortcut.nets.Critic` (the
        features concatenated with a label embedding, as in the authors' code).
    **critic_params
        ``hidden_features``, ``n_layers``, ``negative_slope``.

    Returns
    -------
    nn.ModuleDict
        ``{"fg": D_fg, "bg": D_bg}``.

    Examples
    --------
    >>> from skshortcut.generative._critics import make_critics
    >>> critics = make_critics(12, 4, n_classes=3, n_background_classes=2)
    >>> critics["fg"].in_features, critics["fg"].n_labels, critics["bg"].in_features, critics["bg"].n_labels
    (12, 2, 4, 3)
    """
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"`conditioning` must be one of {CONDITIONINGS}, got {conditioning!r}.")
    cls = ProjectionCritic if conditioning == "projection" else Critic
    return nn.ModuleDict(
        {
            "fg": cls(int(n_foreground_features), int(n_background_classes), **critic_params),
            "bg": cls(int(n_background_features), int(n_classes), **critic_params),
        }
    )


def _pairs(critics, z_fg, z_bg, y_true):
    """``(critic, features, labels)`` of both critics; unknown backgrounds leave ``D_fg``'s sample."""
    y_fg, y_bg = y_true[:, 0], y_true[:, 1]
    known = y_bg >= 0
    return (critics["fg"], z_fg[known], y_bg[known]), (critics["bg"], z_bg, y_fg)


def critic_objective(critics, z_fg, z_bg, y_true, *, lambda_gp):
    """Eq. 9 for both critics on fixed features: ``sum(E_prod[D] - E_joint[D] + lambda_gp GP)``.

    Parameters
    ----------
    critics : nn.ModuleDict
        As made by :func:`make_critics`.
    z_fg, z_bg : Tensor
        Features of the batch (detached: only the critics learn from this loss).
    y_true : Tensor of shape (n, 2)
        Encoded foreground and background labels (``-1``: unknown background).
    lambda_gp : float

    Returns
    -------
    loss : Tensor or None
        None when no critic has two samples to compare.
    gp : float
        The summed gradient penalties, for the record.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.generative._critics import critic_objective, make_critics
    >>> _ = torch.manual_seed(0)
    >>> critics = make_critics(3, 2, n_classes=2, n_background_classes=2)
    >>> y = torch.tensor([[0, 1], [1, -1], [1, 0], [0, 0]])
    >>> loss, gp = critic_objective(critics, torch.randn(4, 3), torch.randn(4, 2), y, lambda_gp=10.0)
    >>> loss.shape, gp >= 0
    (torch.Size([]), True)
    """
    total, gp_sum = None, 0.0
    for critic, feats, labels in _pairs(critics, z_fg, z_bg, y_true):
        if labels.shape[0] < 2:
            continue
        w, gp = wasserstein_terms(critic, feats, labels)
        term = -w + lambda_gp * gp
        total = term if total is None else total + term
        gp_sum += float(gp.detach())
    return total, gp_sum


def extractor_wasserstein(critics, z_fg, z_bg, y_true):
    """The Wasserstein estimates of Eq. 10, ``{"w_fg": ..., "w_bg": ...}``, differentiable in the features.

    The critics' parameters are frozen while the estimates are computed, so
    that the extractor's backward pass leaves them without gradients. A
    critic with fewer than two samples in the batch gives no term.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.generative._critics import extractor_wasserstein, make_critics
    >>> critics = make_critics(3, 2, n_classes=2, n_background_classes=2)
    >>> y = torch.tensor([[0, 1], [1, -1], [1, 0]])
    >>> sorted(extractor_wasserstein(critics, torch.randn(3, 3), torch.randn(3, 2), y))
    ['w_bg', 'w_fg']
    """
    terms = {}
    with frozen(critics):
        for name, (critic, feats, labels) in zip(("w_fg", "w_bg"), _pairs(critics, z_fg, z_bg, y_true)):
            if labels.shape[0] >= 2:
                terms[name] = wasserstein_terms(critic, feats, labels, penalty=False)[0]
    return terms


def critic_updates(net, z, y_true):
    """``net.critic_steps`` updates of both critics (Eq. 9) on a batch's detached features ``z``.

    Each update draws a fresh shuffle and fresh interpolates. Records the last
    critic loss and gradient penalty in ``net.history`` (``train_critic_loss``,
    ``train_gp``).
    """
    loss_c = None
    for _ in range(int(net.critic_steps)):
        loss_c, gp = net.critic_loss(z, y_true)
        if loss_c is None:
            return
        net.critic_optimizer_.zero_grad()
        loss_c.backward()
        net.critic_optimizer_.step()
    if loss_c is not None:
        net.history.record_batch("train_critic_loss", loss_c.item())
        net.history.record_batch("train_gp", gp)


@contextlib.contextmanager
def frozen(module):
    """Switch off ``requires_grad`` of a module's parameters for a block.

    Examples
    --------
    >>> from torch import nn
    >>> from skshortcut.generative._critics import frozen
    >>> layer = nn.Linear(2, 2)
    >>> with frozen(layer):
    ...     layer.weight.requires_grad
    False
    >>> layer.weight.requires_grad
    True
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
