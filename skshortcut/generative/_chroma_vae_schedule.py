"""The training schedule of Chroma-VAE: the length of training and the KL warm-up.

:class:`~skshortcut.ChromaVAEClassifier` trains for a number of optimisation
steps rather than of epochs by default (``n_steps``), so that a small data
set is trained as long as a large one, and decays the KL weight of Eq. 2
from ``beta_start`` to ``beta`` over the first ``beta_warmup`` share of the
epochs.
"""

from __future__ import annotations

import math

__all__ = ["resolve_epochs", "epoch_beta"]


def resolve_epochs(max_epochs, n_steps, n_train, batch_size):
    """Epochs of training: ``max_epochs`` when set, else ``n_steps`` optimisation steps in whole epochs.

    Parameters
    ----------
    max_epochs : int or None
    n_steps : int
        Optimisation steps wanted when ``max_epochs`` is None.
    n_train : int
        Training samples.
    batch_size : int
        Samples per step; ``-1``: all of them.

    Returns
    -------
    int
        ``max_epochs``, or ``ceil(n_steps / ceil(n_train / batch_size))``.

    Examples
    --------
    >>> from skshortcut.generative._chroma_vae_schedule import resolve_epochs
    >>> resolve_epochs(None, 960, 4000, 128), resolve_epochs(None, 960, 2000, 128), resolve_epochs(5, 960, 2000, 128)
    (30, 60, 5)
    """
    if max_epochs is not None:
        return int(max_epochs)
    batch = n_train if batch_size == -1 else min(int(batch_size), n_train)
    return int(math.ceil(n_steps / math.ceil(n_train / max(batch, 1))))


def epoch_beta(epoch, *, beta, beta_start, beta_warmup, n_epochs):
    """KL weight of epoch ``epoch`` (0-based): linear decay from ``beta_start``, then ``beta``.

    Examples
    --------
    >>> from skshortcut.generative._chroma_vae_schedule import epoch_beta
    >>> [epoch_beta(e, beta=1.0, beta_start=9.0, beta_warmup=0.5, n_epochs=8) for e in range(5)]
    [9.0, 7.0, 5.0, 3.0, 1.0]
    """
    if beta_start is None or not beta_warmup:
        return float(beta)
    span = beta_warmup * n_epochs
    return float(beta + (beta_start - beta) * max(0.0, 1.0 - epoch / span))
