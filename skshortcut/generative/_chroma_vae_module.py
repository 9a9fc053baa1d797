"""The network of Chroma-VAE: encoder, decoder, z1-classifier and the latent split.

Yang, Kirichenko, Goldblum and Wilson, *Chroma-VAE: Mitigating Shortcut
Learning with Generative Classifiers* (NeurIPS 2022), Section 3 and Eq. 2.
:class:`~skshortcut.ChromaVAEClassifier` builds it with
:func:`build_chroma_vae_module` and trains it through skorch.
"""

from __future__ import annotations

import copy
import math
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, validate_parameter_constraints
from torch import nn

from .._torch import restore_module_state
from ..nets import ConvDecoder, ConvEncoder

__all__ = ["ChromaVAEModule", "latent_split", "default_n_down", "build_chroma_vae_module", "kl_standard_normal"]

_LOG_2PI = math.log(2 * math.pi)


_SPLIT_CONSTRAINTS = {"dim_z": [Interval(Integral, 2, None, closed="left")], "z_p": [Interval(Real, 0, 1, closed="neither")]}


def latent_split(dim_z, z_p):
    """Sizes ``(dim(z1), dim(z2))`` of the two latent subspaces.

    ``dim(z1) = round(z_p * dim_z)`` (halves rounded up), kept between 1 and
    ``dim_z - 1`` so that both subspaces exist (Section 3.3: ``z_p`` is the
    partition fraction ``dim(z1) / dim(z)``).

    Parameters
    ----------
    dim_z : int
        Latent size, at least 2.
    z_p : float in (0, 1)
        Partition fraction.

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> from skshortcut.generative.chroma_vae import latent_split
    >>> latent_split(32, 0.25), latent_split(4, 0.01), latent_split(4, 0.99)
    ((8, 24), (1, 3), (3, 1))
    """
    # checked here rather than with sklearn's ``validate_params`` decorator, whose
    # wrapper hides this docstring's example from doctest
    validate_parameter_constraints(_SPLIT_CONSTRAINTS, {"dim_z": dim_z, "z_p": z_p}, caller_name="latent_split")
    dim_z = int(dim_z)
    d1 = int(math.floor(z_p * dim_z + 0.5))
    d1 = min(max(d1, 1), dim_z - 1)
    return d1, dim_z - d1


def default_n_down(image_size):
    """Stride-2 blocks of the default encoder for images of ``(height, width)``.

    Halve the resolution until the smaller side is about 4 to 7 pixels: 2 blocks
    up to 31 pixels, then one more per doubling, at most 5.

    Examples
    --------
    >>> from skshortcut.generative.chroma_vae import default_n_down
    >>> default_n_down((28, 28)), default_n_down((56, 28)), default_n_down((64, 64)), default_n_down((224, 224))
    (2, 2, 4, 5)
    """
    side = min(image_size)
    return int(min(5, max(2, math.floor(math.log2(max(side, 1) / 4)))))


def kl_standard_normal(mu, logvar):
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per sample (the KL term of Eq. 2).

    Examples
    --------
    >>> import torch
    >>> from skshortcut.generative._chroma_vae_module import kl_standard_normal
    >>> kl_standard_normal(torch.zeros(1, 3), torch.zeros(1, 3))
    tensor([0.])
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


class ChromaVAEModule(nn.Module):
    """The VAE classifier of Chroma-VAE: encoder, decoder and z1-classifier.

    Parameters
    ----------
    encoder : nn.Module
        Maps images ``(n, c, h, w)`` to ``(n, 2 * dim_z)``: the posterior mean
        ``mu(x)`` followed by the log-variance.
    decoder : nn.Module
        Maps ``(n, dim_z)`` to images ``(n, c, h, w)``: Bernoulli logits, or
        the Gaussian mean.
    z1_head : nn.Module
        The z1-classifier: maps ``mu(x)_1`` of shape ``(n, dim_z1)`` to class logits.
    dim_z : int
    dim_z1 : int
        The z1-classifier sees ``mu(x)[:, :dim_z1]``.
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
        ``"gaussian"`` adds a learned scalar log standard deviation ``log_sigma``.
    z1_input : {"mean", "sample"}, default="mean"
        What the z1-classifier reads in :meth:`forward` (the training
        objective): the posterior mean ``mu(x)_1`` (Eq. 2 as written) or the
        reparameterised sample ``z1`` that the decoder reads too. Predictions
        (:meth:`classify`) always use the mean.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skshortcut.generative.chroma_vae import ChromaVAEModule
    >>> from skshortcut.nets import ConvDecoder, ConvEncoder
    >>> m = ChromaVAEModule(ConvEncoder(3, (16, 16), 8), ConvDecoder(4, 3, (16, 16)), nn.Linear(1, 2), 4, 1)
    >>> [t.shape[1] for t in m(torch.zeros(2, 3, 16, 16))]
    [2, 4, 4, 3]
    """

    def __init__(self, encoder, decoder, z1_head, dim_z, dim_z1, likelihood="bernoulli", z1_input="mean"):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.z1_head = z1_head
        self.dim_z = int(dim_z)
        self.dim_z1 = int(dim_z1)
        self.likelihood = likelihood
        self.z1_input = z1_input
        if likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.zeros(()))

    def encode(self, x):
        """Posterior mean ``mu(x)`` and log-variance, each ``(n, dim_z)``."""
        h = self.encoder(x)
        if h.ndim != 2 or h.shape[1] != 2 * self.dim_z:
            raise ValueError(
                f"`encoder` must output (n, 2 * dim_z) = (n, {2 * self.dim_z}) values; got shape {tuple(h.shape)}."
            )
        mu, logvar = h[:, : self.dim_z], h[:, self.dim_z :]
        return mu, logvar.clamp(-20.0, 10.0)

    def decode(self, z):
        """Decoder output for latents ``z``: Bernoulli logits or the Gaussian mean."""
        return self.decoder(z)

    def mean_image(self, z):
        """Mean of ``p(x | z)``: ``sigmoid(logits)`` (Bernoulli) or the decoded mean (Gaussian)."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def classify(self, mu):
        """z1-classifier logits ``C(mu(x)_1)``."""
        return self.z1_head(mu[:, : self.dim_z1])

    def forward(self, x):
        """One-sample ELBO pieces: ``(z1 logits, mu, logvar, decoder output)``.

        ``z`` is drawn with the reparameterisation trick in train and eval
        mode alike, so that the validation loss estimates the same objective.
        The logits are those of ``mu(x)_1``, or of the drawn ``z1`` when
        ``z1_input="sample"``.
        """
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        # modules pickled before ``z1_input`` existed read the mean
        return self.classify(z if getattr(self, "z1_input", "mean") == "sample" else mu), mu, logvar, self.decode(z)

    def negative_log_likelihood(self, out, x):
        """``-log p(x | z)`` per sample, summed over pixels."""
        if self.likelihood == "bernoulli":
            nll = nn.functional.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            log_sigma = self.log_sigma
            nll = 0.5 * ((x - out) * torch.exp(-log_sigma)) ** 2 + log_sigma + 0.5 * _LOG_2PI
        return nll.flatten(1).sum(1)


def build_chroma_vae_module(
    input_shape, n_classes, *, dim_z, dim_z1, likelihood="bernoulli", encoder=None, decoder=None, z1_hidden=0,
    z1_input="mean",
):
    """A :class:`ChromaVAEModule` for images of ``input_shape`` (copies of the user's modules, or the defaults).

    The default encoder is a :class:`~skshortcut.nets.ConvEncoder` to
    ``2 * dim_z`` values and the default decoder a
    :class:`~skshortcut.nets.ConvDecoder` returning logits, both with
    :func:`default_n_down` blocks. The z1-classifier is linear
    (``z1_hidden=0``) or a one-hidden-layer ReLU MLP. A user's encoder and
    decoder are deep-copied (the ones passed stay untrained) and checked on
    a dummy batch.

    Raises
    ------
    ValueError
        If the encoder does not map the images to ``2 * dim_z`` values or the
        decoder does not map ``dim_z`` latents to images of ``input_shape``.

    Examples
    --------
    >>> from skshortcut.generative._chroma_vae_module import build_chroma_vae_module
    >>> m = build_chroma_vae_module((3, 8, 8), 2, dim_z=4, dim_z1=1)
    >>> type(m.encoder).__name__, m.z1_head
    ('ConvEncoder', Linear(in_features=1, out_features=2, bias=True))
    """
    c, h, w = input_shape
    dim_z = int(dim_z)
    n_down = default_n_down((h, w))
    encoder = ConvEncoder(c, (h, w), 2 * dim_z, n_down=n_down) if encoder is None else copy.deepcopy(encoder)
    decoder = ConvDecoder(dim_z, c, (h, w), n_up=n_down, output="logits") if decoder is None else copy.deepcopy(decoder)
    if z1_hidden:
        head = nn.Sequential(nn.Linear(dim_z1, z1_hidden), nn.ReLU(), nn.Linear(z1_hidden, n_classes))
    else:
        head = nn.Linear(dim_z1, n_classes)
    module = ChromaVAEModule(encoder, decoder, head, dim_z, dim_z1, likelihood, z1_input)
    _check_module_shapes(module, tuple(input_shape))
    return module


def _check_module_shapes(module, input_shape):
    with restore_module_state(module), torch.no_grad():
        module.eval()
        x = torch.zeros(2, *input_shape)
        try:
            h = module.encoder(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with the argument named
            raise ValueError(f"`encoder` failed on inputs of shape {tuple(x.shape)}: {exc}") from exc
        if h.ndim != 2 or h.shape[1] != 2 * module.dim_z:
            raise ValueError(
                f"`encoder` must map images to (n, 2 * dim_z) = (n, {2 * module.dim_z}) values "
                f"(mean and log-variance); got shape {tuple(h.shape)}."
            )
        try:
            out = module.decoder(torch.zeros(2, module.dim_z))
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"`decoder` failed on latents of shape (2, {module.dim_z}): {exc}") from exc
        if tuple(out.shape[1:]) != input_shape:
            raise ValueError(
                f"`decoder` must map (n, dim_z) latents to images of shape (n, {', '.join(map(str, input_shape))}); "
                f"got shape {tuple(out.shape)}."
            )
