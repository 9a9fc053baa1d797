"""The feature extractor ``h`` of Wasserstein disentanglement and its two linear heads (D3S, section 5).

:class:`DisentanglerModule` holds ``h``, ``w_fg`` and ``w_bg``;
:func:`build_extractor` turns what a user passes (a name, a ``SmallCNN``, a
torchvision ResNet, any module) into ``h``; :func:`split_sizes` sizes
``z_fg`` and ``z_bg``.
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from .._torch import restore_module_state
from ..base_model import find_last_layer
from ..nets import SmallCNN, build_classifier

__all__ = ["DisentanglerModule", "build_extractor", "split_sizes"]


class DisentanglerModule(nn.Module):
    """Feature extractor ``h`` with the linear heads ``w_fg`` and ``w_bg`` of D3S (section 5).

    ``z = h(x)`` is split into ``z_fg = z[:, :n_foreground_features]`` and
    ``z_bg`` (the remaining ``n_background_features``); the forward pass
    returns ``(w_fg z_fg, w_bg z_bg, z)``. ``z`` is the extractor's output
    after a batch normalisation without affine parameters (``norm``): each
    feature has mean 0 and variance 1 over the training batches, so neither
    the heads nor the critics see features whose scale drifts under the
    Wasserstein terms.

    Parameters
    ----------
    extractor : nn.Module
        Maps images to ``(n, n_features)`` (or ``(n, n_features, 1, 1)``).
    n_features : int
    n_background_features : int
        Between 1 and ``n_features - 1``.
    n_classes : int
        Foreground classes.
    n_background_classes : int

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skshortcut.generative.wasserstein import DisentanglerModule
    >>> h = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    >>> m = DisentanglerModule(h, 10, 3, n_classes=4, n_background_classes=2)
    >>> [t.shape[1] for t in m(torch.zeros(5, 3, 8, 8))]
    [4, 2, 10]
    """

    def __init__(self, extractor, n_features, n_background_features, n_classes, n_background_classes):
        super().__init__()
        self.extractor = extractor
        self.n_features = int(n_features)
        self.n_background_features = int(n_background_features)
        self.n_foreground_features = self.n_features - self.n_background_features
        self.norm = nn.BatchNorm1d(self.n_features, affine=False)
        self.head_fg = nn.Linear(self.n_foreground_features, int(n_classes))
        self.head_bg = nn.Linear(self.n_background_features, int(n_background_classes))

    def features(self, x):
        """``z = h(x)`` as ``(n, n_features)``."""
        z = self.extractor(x)
        if isinstance(z, (tuple, list)):
            z = z[0]
        z = z.flatten(1)
        if self.training and z.shape[0] == 1:  # a batch of one has no variance: use the running statistics
            return nn.functional.batch_norm(z, self.norm.running_mean, self.norm.running_var, training=False,
                                            eps=self.norm.eps)
        return self.norm(z)

    def split(self, z):
        """``(z_fg, z_bg)``."""
        return z[:, : self.n_foreground_features], z[:, self.n_foreground_features :]

    def forward(self, x):
        z = self.features(x)
        z_fg, z_bg = self.split(z)
        return self.head_fg(z_fg), self.head_bg(z_bg), z


def build_extractor(extractor, input_shape, *, weights=None, params=None):
    """The feature extractor ``h`` and its output size.

    Parameters
    ----------
    extractor : str or nn.Module
        A name of :func:`~skshortcut.nets.build_classifier` (sized to
        ``input_shape``, its last linear layer in forward order removed), or a
        module, which is copied (the one passed is never trained). A
        ``SmallCNN`` is cut to its ``features``, a torchvision ResNet loses its
        ``fc``; any other module must map images to ``(n, n_features)``.
    input_shape : tuple (channels, height, width)
    weights : str, weights enum or Path, optional
        Weights of a named backbone (see :func:`~skshortcut.nets.build_classifier`).
    params : dict, optional
        Options of a named architecture.

    Returns
    -------
    extractor : nn.Module
    n_features : int

    Examples
    --------
    >>> from skshortcut.generative._extractor import build_extractor
    >>> h, n = build_extractor("cnn", (3, 8, 8), params={"width": 4})
    >>> n
    16
    """
    if isinstance(extractor, str):
        net = build_classifier(extractor, tuple(input_shape), 2, weights=weights, **dict(params or {}))
    else:
        net = copy.deepcopy(extractor)
    if isinstance(net, SmallCNN):
        net = net.features
    elif isinstance(extractor, str):
        # a named backbone (any torchvision or timm architecture, with its normalisation inside):
        # its head is the last linear layer reached in forward order
        name, _ = find_last_layer(net, torch.zeros(2, *input_shape), nn.Linear)
        parent, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, attr, nn.Identity())
    else:
        import torchvision

        if isinstance(net, torchvision.models.ResNet):
            net.fc = nn.Identity()
    return net, _count_features(net, input_shape)


def _count_features(extractor, input_shape) -> int:
    with restore_module_state(extractor), torch.no_grad():
        extractor.eval()
        x = torch.zeros(2, *input_shape)
        try:
            z = extractor(x)
        except Exception as exc:  # noqa: BLE001 - re-raised naming the argument
            raise ValueError(f"`extractor` failed on inputs of shape {tuple(x.shape)}: {exc}") from exc
    if isinstance(z, (tuple, list)):
        z = z[0]
    if not isinstance(z, torch.Tensor) or z.ndim < 2 or z.shape[0] != 2:
        raise ValueError("`extractor` must map images (n, c, h, w) to features (n, n_features).")
    n_features = int(z[0].numel())
    if n_features < 2:
        raise ValueError(f"`extractor` must output at least 2 features to split; it outputs {n_features}.")
    return n_features


def split_sizes(n_background_features, n_features):
    """``(n_foreground, n_background)``: a count, or a fraction of ``n_features``, at least one on each side.

    Examples
    --------
    >>> from skshortcut.generative._extractor import split_sizes
    >>> split_sizes(250 / 2048, 2048), split_sizes(4, 16)
    ((1798, 250), (12, 4))
    """
    nb = n_background_features
    if isinstance(nb, numbers.Integral):
        if nb >= n_features:
            raise ValueError(
                f"`n_background_features={nb}` leaves no foreground feature: the extractor outputs {n_features}."
            )
        nb = int(nb)
    else:
        nb = int(min(max(int(round(nb * n_features)), 1), n_features - 1))
    return n_features - nb, nb
