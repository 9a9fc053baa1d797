"""Default architectures, sized to the input.

Every network here is a plain ``nn.Module`` so that users can swap in their
own; the estimators only rely on the contracts in DESIGN.md (a classifier
ends in a linear head; an encoder maps images to vectors).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["SmallCNN", "build_classifier", "ConvEncoder", "ConvDecoder", "Critic"]


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

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import build_classifier
    >>> net = build_classifier("cnn", (3, 28, 28), n_classes=2)
    >>> net(torch.zeros(4, 3, 28, 28)).shape
    torch.Size([4, 2])
    >>> build_classifier("resnet18", (3, 64, 64), n_classes=5).fc.out_features
    5
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


class Critic(nn.Module):
    """A label-conditioned critic ``D(z, l)``: an MLP whose widths halve from layer to layer.

    The critic of Wasserstein disentanglement (D3S, Eqs. 8-9): its input is a
    feature vector ``z`` concatenated with an embedding of a label ``l``, its
    output one score per sample; hidden layers use LeakyReLU(0.1), as in the
    authors' code. Labels enter as one-hot (or interpolated, soft one-hot)
    vectors times a learned embedding matrix, so that the gradient penalty of
    Eq. 9 can be evaluated at interpolated labels.

    Parameters
    ----------
    in_features : int
        Size of ``z``.
    n_labels : int
        Number of label values.
    hidden_features : int, optional
        Width of the first hidden layer; each further layer has half as many
        units (at least 1). Default: the input size (``in_features`` plus the
        embedding size) rounded up to a power of two, between 16 and 512.
    n_layers : int, default=3
        Hidden layers.
    embedding_dim : int, optional
        Size of the label embedding. Default: ``min(n_labels, 32)``.
    negative_slope : float, default=0.1
        Slope of the LeakyReLU activations.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import Critic
    >>> critic = Critic(8, n_labels=3)
    >>> critic(torch.zeros(4, 8), torch.tensor([0, 1, 2, 0])).shape
    torch.Size([4])
    >>> [m.out_features for m in critic.net if isinstance(m, torch.nn.Linear)]
    [16, 8, 4, 1]
    """

    def __init__(self, in_features, n_labels, *, hidden_features=None, n_layers=3, embedding_dim=None,
                 negative_slope=0.1):
        super().__init__()
        for name, value, minimum in (("in_features", in_features, 1), ("n_labels", n_labels, 1),
                                     ("n_layers", n_layers, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
        self.in_features = in_features
        self.n_labels = n_labels
        self.embedding_dim = int(embedding_dim) if embedding_dim is not None else min(n_labels, 32)
        if self.embedding_dim < 1:
            raise ValueError(f"`embedding_dim` must be >= 1, got {embedding_dim!r}.")
        n_in = in_features + self.embedding_dim
        if hidden_features is None:
            hidden_features = min(512, max(16, 1 << (n_in - 1).bit_length()))
        if not isinstance(hidden_features, int) or hidden_features < 1:
            raise ValueError(f"`hidden_features` must be an integer >= 1, got {hidden_features!r}.")
        # the embedding of label l is row l of this matrix: a linear map of the one-hot vector
        self.embedding = nn.Linear(n_labels, self.embedding_dim, bias=False)
        layers: list[nn.Module] = []
        width = hidden_features
        for _ in range(n_layers):
            layers += [nn.Linear(n_in, width), nn.LeakyReLU(negative_slope)]
            n_in, width = width, max(1, width // 2)
        layers.append(nn.Linear(n_in, 1))
        self.net = nn.Sequential(*layers)

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """Integer labels ``(n,)`` as float one-hot vectors ``(n, n_labels)``."""
        return nn.functional.one_hot(labels.long(), self.n_labels).to(self.embedding.weight.dtype)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scores ``D(z, l)`` of shape ``(n,)``.

        ``labels`` holds integer labels ``(n,)`` or (soft) one-hot vectors
        ``(n, n_labels)``.
        """
        if labels.ndim == 1:
            labels = self.one_hot(labels)
        return self.net(torch.cat([z, self.embedding(labels)], dim=1)).squeeze(1)
