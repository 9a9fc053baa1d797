"""Default architectures, sized to the input.

Every network here is a plain ``nn.Module`` so that users can swap in their
own; the estimators only rely on the contracts in DESIGN.md (a classifier
ends in a linear head; an encoder maps images to vectors).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["SmallCNN", "build_classifier", "ConvEncoder", "ConvDecoder"]


class SmallCNN(nn.Module):
    """A small convolutional classifier: conv blocks, global average pooling, a linear head.

    Parameters
    ----------
    in_channels : int, default=3
    n_classes : int, default=2
    width : int, default=32
        Channels of the first block; each further block doubles them.
    n_blocks : int, default=3
        Convolutional blocks; all but the last halve the resolution.

    Attributes
    ----------
    features : nn.Sequential
        The feature extractor ``f`` (ends with global average pooling and flatten).
    fc : nn.Linear
        The head ``g``.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import SmallCNN
    >>> SmallCNN(n_classes=3)(torch.zeros(2, 3, 28, 28)).shape
    torch.Size([2, 3])
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 2, width: int = 32, n_blocks: int = 3):
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"`n_blocks` must be >= 1, got {n_blocks}.")
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(n_blocks):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            if i < n_blocks - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, n_classes)
        self.n_features = c_in

    def forward(self, x):
        return self.fc(self.features(x))


_RESNETS = ("resnet18", "resnet34", "resnet50")


def build_classifier(architecture, input_shape, n_classes: int, *, weights=None, **kwargs) -> nn.Module:
    """Build a default classifier for inputs of ``input_shape`` with ``n_classes`` logits.

    Parameters
    ----------
    architecture : {"cnn", "resnet18", "resnet34", "resnet50"}
        ``"cnn"`` is :class:`SmallCNN`; the ResNets come from torchvision with
        ``weights=None`` and their ``fc`` replaced to output ``n_classes``.
    input_shape : tuple
        ``(channels, height, width)`` of one sample.
    n_classes : int
    weights : str or Path, optional
        A local state-dict file for the ResNet backbone (never downloaded). It
        is loaded with ``weights_only=True`` before ``fc`` is replaced.
    **kwargs
        Passed to :class:`SmallCNN`.
    """
    if len(input_shape) != 3:
        raise ValueError(f"Images must have shape (channels, height, width); got sample shape {tuple(input_shape)}.")
    if architecture == "cnn":
        if weights is not None:
            raise ValueError("`weights` applies to the ResNet architectures only.")
        return SmallCNN(in_channels=input_shape[0], n_classes=n_classes, **kwargs)
    if architecture in _RESNETS:
        import torchvision

        net = getattr(torchvision.models, architecture)(weights=None)
        if weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"`weights` file not found: {path}")
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        if input_shape[0] != 3:
            net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.fc = nn.Linear(net.fc.in_features, n_classes)
        return net
    raise ValueError(f"`architecture` must be one of ('cnn', {', '.join(map(repr, _RESNETS))}); got {architecture!r}.")


def _down_shape(image_size, n_down):
    h, w = image_size
    for _ in range(n_down):
        h, w = -(-h // 2), -(-w // 2)
    return h, w


class ConvEncoder(nn.Module):
    """Images to vectors: strided conv blocks, flatten, a linear layer.

    The encoder of the default VAE (Chroma-VAE) and autoencoder (Latent Shift).

    Parameters
    ----------
    in_channels : int
    image_size : tuple of int
        ``(height, width)`` of the input.
    out_features : int
        Size of the output vector (for a VAE: twice the latent size, mean and log-variance).
    width : int, default=32
        Channels of the first block; each further block doubles them.
    n_down : int, default=2
        Stride-2 blocks (each halves the resolution, rounding up).

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import ConvEncoder
    >>> ConvEncoder(3, (28, 28), 16)(torch.zeros(2, 3, 28, 28)).shape
    torch.Size([2, 16])
    """

    def __init__(self, in_channels, image_size, out_features, width=32, n_down=2):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(n_down):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.conv(torch.zeros(1, in_channels, *image_size)).numel()
        self.fc = nn.Linear(n_flat, out_features)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class ConvDecoder(nn.Module):
    """Vectors to images: a linear layer, transposed-conv blocks, an output activation.

    Parameters
    ----------
    in_features : int
    out_channels : int
    image_size : tuple of int
        ``(height, width)`` of the output.
    width : int, default=32
        Channels of the last block (mirrors :class:`ConvEncoder`).
    n_up : int, default=2
    output : {"logits", "sigmoid"}, default="logits"
        ``"logits"`` returns unbounded values (for a Bernoulli likelihood with
        logits); ``"sigmoid"`` maps them to [0, 1].

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import ConvDecoder
    >>> ConvDecoder(16, 3, (28, 28))(torch.zeros(2, 16)).shape
    torch.Size([2, 3, 28, 28])
    """

    def __init__(self, in_features, out_channels, image_size, width=32, n_up=2, output="logits"):
        super().__init__()
        if output not in ("logits", "sigmoid"):
            raise ValueError(f"`output` must be 'logits' or 'sigmoid'; got {output!r}.")
        self.image_size = tuple(image_size)
        self.output = output
        self.start_channels = width * 2 ** (n_up - 1)
        self.start_shape = _down_shape(self.image_size, n_up)
        self.fc = nn.Linear(in_features, self.start_channels * self.start_shape[0] * self.start_shape[1])
        layers: list[nn.Module] = [nn.LeakyReLU(0.2)]
        c_in = self.start_channels
        for i in reversed(range(n_up)):
            c_out = out_channels if i == 0 else width * 2 ** (i - 1)
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i:
                layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        self.deconv = nn.Sequential(*layers)

    def forward(self, z):
        h = self.fc(z).view(z.shape[0], self.start_channels, *self.start_shape)
        x = self.deconv(h)
        if tuple(x.shape[-2:]) != self.image_size:
            x = x[..., : self.image_size[0], : self.image_size[1]]
        return torch.sigmoid(x) if self.output == "sigmoid" else x
