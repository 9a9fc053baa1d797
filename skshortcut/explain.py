"""Heatmaps: one place where every method gets its attributions.

:func:`attribute` streams X (an array, a tensor or a torch ``Dataset``) through
the base model in batches and returns one small heatmap per sample. The
attribution ideas themselves are classes with the interface captum and zennit
use, ``.attribute(x_batch, target) -> Tensor``:

================================  ==============================================  ===================
class                              idea                                             output per batch
================================  ==============================================  ===================
:class:`LRP`                       layer-wise relevance propagation (zennit, with   ``(n, c, h, w)``
                                   canonizers for BatchNorm and ResNet skips)
:class:`XGradCAM`                  axiom-based Grad-CAM on a convolutional layer    ``(n, h', w')``
:class:`GradCAM`                   Grad-CAM on a convolutional layer (captum)       ``(n, h', w')``
:class:`IntegratedGradients`       integrated gradients from a baseline (captum)    ``(n, c, h, w)``
:class:`Saliency`                  plain input gradients (captum)                   ``(n, c, h, w)``
================================  ==============================================  ===================

None of them changes the user's module: train/eval flags, hooks and
``requires_grad`` flags are restored after every batch, and no ``.grad`` is
accumulated on its parameters.

References
----------
- S. Bach et al., "On pixel-wise explanations for non-linear
  classifier decisions by layer-wise relevance propagation", PLOS ONE, 2015.
- G. Montavon et al., "Layer-wise relevance propagation: an
  overview", 2019 (LRP-epsilon for dense layers, LRP-gamma for convolutions).
- R. Fu et al., "Axiom-based Grad-CAM: towards accurate
  visualization and explanation of CNNs", BMVC 2020 (XGradCAM).
- R. R. Selvaraju et al., "Grad-CAM", ICCV 2017.
- M. Sundararajan et al., "Axiomatic attribution for deep
  networks", ICML 2017 (integrated gradients).
"""

from __future__ import annotations

import contextlib
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._torch import input_shape, iter_batches, n_samples, restore_module_state
from .base_model import BaseModel, as_base_model, find_last_layer, predicted_index

__all__ = [
    "attribute",
    "find_last_conv",
    "LRP",
    "XGradCAM",
    "GradCAM",
    "IntegratedGradients",
    "Saliency",
    "METHODS",
]


# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def frozen_module(module: nn.Module):
    """Run a block with ``module`` in eval mode, restoring train flags and ``requires_grad`` after.

    Hooks registered inside the block are the block's own business (every
    attribution class removes its hooks in a ``finally``).
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    grads = [(p, p.grad) for p in module.parameters()]
    with restore_module_state(module):
        module.eval()
        try:
            yield module
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)
            for p, g in grads:
                p.grad = g


class _Logits(nn.Module):
    """View of a classifier that returns a 2-D logit tensor.

    Tuple outputs are reduced to their first element; a single-logit binary
    classifier ``z`` is seen as the two logits ``(-z, z)`` so that targets are
    class indices in every case. The user's module is a child, not a copy:
    nothing in it is changed.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.inner = module

    def forward(self, x):
        out = self.inner(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.ndim == 1:
            out = out[:, None]
        if out.shape[1] == 1:
            out = torch.cat([-out, out], dim=1)
        return out


def _as_module(model) -> nn.Module:
    if isinstance(model, BaseModel):
        return model.module
    if isinstance(model, nn.Module):
        return model
    raise TypeError(f"`model` must be a torch.nn.Module or a BaseModel; got {type(model).__name__}.")


def _check_target(target: torch.Tensor, n: int) -> torch.Tensor:
    target = torch.as_tensor(target)
    if target.ndim != 1 or target.shape[0] != n:
        raise ValueError(f"`target` must hold one class index per sample ({n}); got shape {tuple(target.shape)}.")
    return target.long()


def find_last_conv(module: nn.Module, example) -> tuple[str, nn.Conv2d]:
    """The last ``nn.Conv2d`` reached in a forward pass: the default layer of the CAM methods.

    "Last" is in forward (execution) order, not in the order modules were
    declared, so that architectures that declare layers out of order are
    handled.

    Parameters
    ----------
    module : nn.Module
    example : Tensor
        A small input batch (one or two samples).

    Returns
    -------
    name : str
        Dotted name of the layer inside ``module``.
    layer : nn.Conv2d

    Raises
    ------
    ValueError
        If no ``nn.Conv2d`` is reached.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut.explain import find_last_conv
    >>> find_last_conv(SmallCNN(n_blocks=2), torch.zeros(1, 3, 8, 8))[0]
    'features.4'
    """
    return find_last_layer(_as_module(module), example, nn.Conv2d, hint="; pass `layer=` for the CAM methods.")


def _resolve_layer(module: nn.Module, layer, example) -> nn.Module:
    if layer is None:
        return find_last_conv(module, example[:2])[1]
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in module.modules()):
            raise ValueError("`layer` is a module that is not part of the model.")
        return layer
    if isinstance(layer, str):
        try:
            return module.get_submodule(layer)
        except AttributeError as exc:
            raise ValueError(f"`layer={layer!r}` names no submodule of {type(module).__name__}.") from exc
    raise TypeError(f"`layer` must be None, a dotted module name or an nn.Module; got {type(layer).__name__}.")


class _Attribution:
    """Common part: the model (seen through :class:`_Logits`) and the no-mutation guarantee."""

    def __init__(self, model):
        self.model = _as_module(model)
        self._logits = _Logits(self.model)

    def attribute(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        """Attributions of batch ``x`` for the class indices ``target`` (``None``: the predicted classes)."""
        raise NotImplementedError

    def _prepare(self, x, target):
        x = torch.as_tensor(x)
        if target is None:
            with frozen_module(self.model), torch.no_grad():
                return x, self._logits(x).argmax(dim=1)
        return x, _check_target(target, x.shape[0]).to(x.device)


# --------------------------------------------------------------------------- LRP
def _auto_canonizers(module: nn.Module):
    """Canonizers for ``module``: torchvision ResNets get zennit's ResNet canonizer, others merge BatchNorm."""
    from zennit.canonizers import SequentialMergeBatchNorm

    try:
        from torchvision.models.resnet import BasicBlock, Bottleneck

        is_resnet = any(isinstance(m, (BasicBlock, Bottleneck)) for m in module.modules())
    except ImportError:  # pragma: no cover - torchvision is a dependency
        is_resnet = False
    if is_resnet:
        from zennit.torchvision import ResNetCanonizer

        return [ResNetCanonizer()]
    return [SequentialMergeBatchNorm()]


def _epsilon_gamma_composite(canonizers, gamma, epsilon, zero_params, conv_rule=None):
    """ExMap's composite: LRP-epsilon on dense layers, LRP-gamma on convolutions.

    ``conv_rule`` defaults to :class:`~skshortcut._lrp_rules.ClosedFormGamma`, zennit's Gamma
    with a closed-form backward pass (same relevance, a fraction of the cost); zennit's own
    ``Gamma`` gives the reference the tests and ``benchmarks/bench_heatmaps.py`` compare with.
    """
    from zennit.composites import LayerMapComposite, layer_map_base
    from zennit.rules import Epsilon
    from zennit.types import Convolution

    from ._lrp_rules import ClosedFormGamma

    rule = ClosedFormGamma if conv_rule is None else conv_rule
    layer_map = layer_map_base() + [
        (Convolution, rule(gamma=float(gamma), zero_params=zero_params)),
        (nn.Linear, Epsilon(epsilon=float(epsilon), zero_params=zero_params)),
    ]
    return LayerMapComposite(layer_map=layer_map, canonizers=canonizers)


_COMPOSITES = ("epsilon_gamma", "epsilon", "epsilon_plus", "epsilon_alpha2_beta1")


class LRP(_Attribution):
    """Layer-wise relevance propagation through zennit (Bach et al., 2015).

    The relevance of the target logit is propagated back to the pixels, layer
    by layer. With the default composite (ExMap's setup, after
    Montavon et al. (2019)), dense layers use LRP-epsilon, ExMap Eq. (3),

    .. math:: R_k = \\sum_l \\frac{z_{kl}}{z_l + \\varepsilon\\,\\mathrm{sign}(z_l)} R_l,

    and convolutions the (generalised, sign-symmetric) LRP-gamma rule with
    ``gamma=4`` as in the ExMap authors' code (zennit's ``Gamma`` rule, computed
    in closed form: :class:`~skshortcut._lrp_rules.ClosedFormGamma`, the same
    relevance at a fraction of the cost). Average pooling and the sums
    of residual connections use the normalised (``Norm``) rule, activations
    pass relevance through. Canonizers first merge BatchNorm into the
    preceding convolution and rewrite torchvision ResNet blocks so that the
    skip connections are explicit sums; both are undone after every batch.

    Relevance starts at the target logit (``R = logit * one_hot(target)``),
    so each heatmap sums to the target logit minus what the biases absorb
    (exactly to it with ``zero_params=["bias"]``).

    Parameters
    ----------
    model : nn.Module or BaseModel
        The classifier (images to logits).
    composite : {"epsilon_gamma", "epsilon", "epsilon_plus", "epsilon_alpha2_beta1"} or zennit Composite, \
default="epsilon_gamma"
        Which rules: ``"epsilon_gamma"`` (epsilon on dense layers, gamma on
        convolutions; ExMap's setup), ``"epsilon"`` (Eq. 3 everywhere),
        ``"epsilon_plus"`` and ``"epsilon_alpha2_beta1"`` (zennit's
        composites). A zennit ``Composite`` instance is used as given (with
        its own canonizers).
    epsilon : float, default=1e-6
        The epsilon of Eq. (3).
    gamma : float, default=4.0
        The gamma of the convolution rule.
    canonizers : "auto" or list of zennit canonizers, default="auto"
        ``"auto"``: zennit's ``ResNetCanonizer`` when the model contains
        torchvision ResNet blocks, ``SequentialMergeBatchNorm`` otherwise.
    zero_params : list of str, optional
        Parameter names the rules treat as zero (e.g. ``["bias"]``).

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut.explain import LRP
    >>> net = SmallCNN(n_blocks=2, width=4)
    >>> LRP(net).attribute(torch.rand(2, 3, 8, 8), torch.tensor([0, 1])).shape
    torch.Size([2, 3, 8, 8])
    """

    cam = False

    def __init__(self, model, composite="epsilon_gamma", *, epsilon=1e-6, gamma=4.0, canonizers="auto", zero_params=None):
        super().__init__(model)
        self.composite = composite
        self.epsilon = epsilon
        self.gamma = gamma
        self.canonizers = canonizers
        self.zero_params = zero_params

    def _make_composite(self):
        from zennit.core import Composite

        if isinstance(self.composite, Composite):
            return self.composite
        from zennit.composites import EpsilonAlpha2Beta1, EpsilonPlus, LayerMapComposite, layer_map_base
        from zennit.rules import Epsilon
        from zennit.types import Convolution

        if not isinstance(self.epsilon, numbers.Real) or self.epsilon < 0:
            raise ValueError(f"`epsilon` must be a float >= 0; got {self.epsilon!r}.")
        if not isinstance(self.gamma, numbers.Real) or self.gamma < 0:
            raise ValueError(f"`gamma` must be a float >= 0; got {self.gamma!r}.")
        canonizers = _auto_canonizers(self.model) if isinstance(self.canonizers, str) and self.canonizers == "auto" else self.canonizers
        if canonizers is not None and not isinstance(canonizers, (list, tuple)):
            raise TypeError("`canonizers` must be 'auto', None or a list of zennit canonizers.")
        canonizers = list(canonizers) if canonizers is not None else None
        kw = {"zero_params": self.zero_params}
        if self.composite == "epsilon_gamma":
            return _epsilon_gamma_composite(canonizers, self.gamma, self.epsilon, self.zero_params)
        if self.composite == "epsilon":
            layer_map = layer_map_base() + [((Convolution, nn.Linear), Epsilon(epsilon=float(self.epsilon), **kw))]
            return LayerMapComposite(layer_map=layer_map, canonizers=canonizers)
        if self.composite == "epsilon_plus":
            return EpsilonPlus(epsilon=float(self.epsilon), zero_params=self.zero_params, canonizers=canonizers)
        if self.composite == "epsilon_alpha2_beta1":
            return EpsilonAlpha2Beta1(epsilon=float(self.epsilon), zero_params=self.zero_params, canonizers=canonizers)
        raise ValueError(f"`composite` must be one of {_COMPOSITES} or a zennit Composite; got {self.composite!r}.")

    def attribute(self, x, target=None):
        """Relevance of each input value for ``target``: a tensor shaped like ``x``."""
        from zennit.attribution import Gradient

        x = torch.as_tensor(x)
        if target is not None:
            target = _check_target(target, x.shape[0]).to(x.device)
        composite = self._make_composite()

        def attr_output(out):
            # the predicted class is read off the same forward pass
            t = out.detach().argmax(dim=1) if target is None else target
            onehot = torch.zeros_like(out)
            onehot.scatter_(1, t[:, None], 1.0)
            return onehot * out.detach()

        with frozen_module(self.model), torch.enable_grad():
            with Gradient(model=self._logits, composite=composite) as attributor:
                _, relevance = attributor(x.detach().clone().requires_grad_(True), attr_output)
        return relevance.detach()


# --------------------------------------------------------------------------- CAMs
class _CAM(_Attribution):
    cam = True

    def __init__(self, model, layer=None, relu=True):
        super().__init__(model)
        self.layer = layer
        self.relu = relu

    def _layer(self, x):
        return _resolve_layer(self.model, self.layer, x)


class XGradCAM(_CAM):
    """XGradCAM (Fu et al., BMVC 2020): a class-activation map with axiom-derived channel weights.

    For the activations :math:`A^k` of channel ``k`` of a convolutional layer
    and the target logit :math:`y^c`, the channel weight is the
    activation-weighted mean gradient

    .. math:: \\alpha_k = \\sum_{i,j} \\frac{A^k_{ij}}{\\sum_{i,j} A^k_{ij}}\\,
              \\frac{\\partial y^c}{\\partial A^k_{ij}},
       \\qquad L^c = \\mathrm{ReLU}\\Big(\\sum_k \\alpha_k A^k\\Big).

    Gradients and activations come from captum's
    ``compute_layer_gradients_and_eval``. This is the map Mask-and-Combine
    masks with.

    Parameters
    ----------
    model : nn.Module or BaseModel
    layer : str, nn.Module or None, default=None
        The convolutional layer; ``None`` is the last ``nn.Conv2d`` reached in
        forward order (:func:`find_last_conv`).
    relu : bool, default=True
        Keep only the positive part of the map, as in the paper.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut.explain import XGradCAM
    >>> net = SmallCNN(n_blocks=2, width=4)
    >>> XGradCAM(net).attribute(torch.rand(2, 3, 8, 8), torch.tensor([0, 1])).shape
    torch.Size([2, 4, 4])
    """

    def attribute(self, x, target=None):
        """The class-activation map at the layer's resolution, shape ``(n, h', w')``."""
        from captum._utils.gradient import compute_layer_gradients_and_eval

        x, target = self._prepare(x, target)
        with frozen_module(self.model), torch.enable_grad():
            layer = self._layer(x)
            grads, acts = compute_layer_gradients_and_eval(
                self._logits, layer, x.detach().clone().requires_grad_(True), target
            )
        grads, acts = grads[0].detach(), acts[0].detach()
        if acts.ndim != 4:
            raise ValueError(f"The CAM layer must output (n, c, h, w) feature maps; got shape {tuple(acts.shape)}.")
        denom = acts.sum(dim=(2, 3), keepdim=True)
        denom = torch.where(denom.abs() < 1e-7, torch.full_like(denom, 1e-7), denom)
        alpha = (grads * acts / denom).sum(dim=(2, 3), keepdim=True)
        cam = (alpha * acts).sum(dim=1)
        return F.relu(cam) if self.relu else cam


class GradCAM(_CAM):
    """Grad-CAM (Selvaraju et al., ICCV 2017) through captum's ``LayerGradCam``.

    .. math:: \\alpha_k = \\frac{1}{Z}\\sum_{i,j}\\frac{\\partial y^c}{\\partial A^k_{ij}},
       \\qquad L^c = \\mathrm{ReLU}\\Big(\\sum_k \\alpha_k A^k\\Big).

    Parameters
    ----------
    model : nn.Module or BaseModel
    layer : str, nn.Module or None, default=None
        As in :class:`XGradCAM`.
    relu : bool, default=True

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut.explain import GradCAM
    >>> GradCAM(SmallCNN(n_blocks=2, width=4)).attribute(torch.rand(2, 3, 8, 8), torch.tensor([0, 1])).shape
    torch.Size([2, 4, 4])
    """

    def attribute(self, x, target=None):
        """The class-activation map at the layer's resolution, shape ``(n, h', w')``."""
        from captum.attr import LayerGradCam

        x, target = self._prepare(x, target)
        with frozen_module(self.model), torch.enable_grad():
            layer = self._layer(x)
            cam = LayerGradCam(self._logits, layer).attribute(
                x.detach().clone().requires_grad_(True), target=target, relu_attributions=self.relu
            )
        cam = cam.detach()
        if cam.ndim != 4:
            raise ValueError(f"The CAM layer must output (n, c, h, w) feature maps; got shape {tuple(cam.shape)}.")
        return cam[:, 0]


# --------------------------------------------------------------------------- gradients
class IntegratedGradients(_Attribution):
    """Integrated gradients (Sundararajan et al., ICML 2017) through captum.

    .. math:: \\mathrm{IG}_i(x) = (x_i - x'_i)\\int_0^1
              \\frac{\\partial y^c(x' + t(x - x'))}{\\partial x_i}\\,dt

    Parameters
    ----------
    model : nn.Module or BaseModel
    baseline : float, default=0.0
        The reference image :math:`x'` (a constant image).
    n_steps : int, default=32
        Steps of the Riemann (Gauss-Legendre) approximation of the integral.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut.explain import IntegratedGradients
    >>> IntegratedGradients(SmallCNN(n_blocks=1, width=4), n_steps=4).attribute(
    ...     torch.rand(2, 3, 8, 8), torch.tensor([0, 1])).shape
    torch.Size([2, 3, 8, 8])
    """

    cam = False

    def __init__(self, model, baseline=0.0, n_steps=32):
        super().__init__(model)
        self.baseline = baseline
        self.n_steps = n_steps

    def attribute(self, x, target=None):
        """Integrated gradients, shaped like ``x``."""
        from captum.attr import IntegratedGradients as _IG

        if not isinstance(self.n_steps, numbers.Integral) or self.n_steps < 1:
            raise ValueError(f"`n_steps` must be an int >= 1; got {self.n_steps!r}.")
        x, target = self._prepare(x, target)
        with frozen_module(self.model), torch.enable_grad():
            attr = _IG(self._logits).attribute(
                x.detach().clone().requires_grad_(True),
                baselines=float(self.baseline),
                target=target,
                n_steps=int(self.n_steps),
                internal_batch_size=x.shape[0],
            )
        return attr.detach()


class Saliency(_Attribution):
    """Plain input gradients :math:`\\partial y^c / \\partial x` through captum's ``Saliency``.

    Parameters
    ----------
    model : nn.Module or BaseModel
    abs : bool, default=True
        Absolute values (captum's default, Simonyan et al. 2014).

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut.explain import Saliency
    >>> Saliency(SmallCNN(n_blocks=1, width=4)).attribute(torch.rand(2, 3, 8, 8), torch.tensor([0, 1])).shape
    torch.Size([2, 3, 8, 8])
    """

    cam = False

    def __init__(self, model, abs=True):  # noqa: A002 - captum's name
        super().__init__(model)
        self.abs = abs

    def attribute(self, x, target=None):
        """Input gradients, shaped like ``x``."""
        from captum.attr import Saliency as _Saliency

        x, target = self._prepare(x, target)
        with frozen_module(self.model), torch.enable_grad():
            attr = _Saliency(self._logits).attribute(
                x.detach().clone().requires_grad_(True), target=target, abs=bool(self.abs)
            )
        return attr.detach()


METHODS = {
    "lrp": LRP,
    "xgradcam": XGradCAM,
    "gradcam": GradCAM,
    "integrated_gradients": IntegratedGradients,
    "saliency": Saliency,
}


# --------------------------------------------------------------------------- streaming
def _check_size(size):
    if size is None:
        return None
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"`size` must be None, an int >= 1 or a pair (height, width) of them; got {size!r}.")
    return (int(size[0]), int(size[1]))


def _resize(maps: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize of (n, c, h, w) maps; anti-aliased when shrinking."""
    if size is None or tuple(maps.shape[-2:]) == tuple(size):
        return maps
    shrink = size[0] < maps.shape[-2] or size[1] < maps.shape[-1]
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _normalize_max_abs(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.reshape(maps.shape[0], -1)
    scale = flat.abs().amax(dim=1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return maps / scale.reshape((-1,) + (1,) * (maps.ndim - 1))


def _targets(target, n):
    if isinstance(target, str):
        if target != "predicted":
            raise ValueError(f"`target` must be 'predicted' or an array of class indices; got {target!r}.")
        return None
    arr = np.asarray(target)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"`target` must be 'predicted' or one class index per sample ({n}); got shape {arr.shape}.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"`target` must hold integer class indices; got dtype {arr.dtype}.")
    if arr.size and arr.min() < 0:
        raise ValueError("`target` must hold class indices >= 0.")
    return arr.astype(np.int64)


def attribute(
    model,
    X,
    *,
    method="lrp",
    target="predicted",
    layer=None,
    head=None,
    size=None,
    channels="sum",
    normalize="max_abs",
    batch_size=64,
    device="auto",
    progress=False,
    method_params=None,
    return_embeddings=False,
):
    """Heatmaps of X for a classifier, computed in batches.

    The first stage of ExMap (Algorithm 1, lines 4-12): for each batch, the
    predicted class, then the relevance of the pixels for it; each heatmap is
    then downsized (bilinear) and divided by its own max absolute value.
    Only the downsized heatmaps are kept, so memory is bounded by
    ``batch_size`` plus the output.

    Parameters
    ----------
    model : BaseModel, fitted skorch net or nn.Module
        The classifier (anything :func:`~skshortcut.base_model.as_base_model` accepts).
    X : ndarray, tensor or torch Dataset of images ``(n, c, h, w)``
    method : {"lrp", "xgradcam", "gradcam", "integrated_gradients", "saliency"}, default="lrp"
        The attribution class (:class:`LRP`, :class:`XGradCAM`, ...).
    target : "predicted" or array-like of int, default="predicted"
        The class explained for each sample: the argmax of the logits, or
        given class indices (logit order).
    layer : str or nn.Module, optional
        CAM methods only: the convolutional layer (default: the last
        ``nn.Conv2d`` in forward order, :func:`find_last_conv`).
    head : str, optional
        Name of the linear head, passed to ``as_base_model``.
    size : None, int or (int, int), default=None
        Output resolution: ``None`` keeps the input size (pixel methods) or
        the layer's feature-map size (CAM methods); ``d`` means ``d x d``.
    channels : {"sum", "keep"}, default="sum"
        ``"sum"`` returns ``(n, h, w)``; ``"keep"`` returns ``(n, c, h, w)``
        for pixel methods (CAM maps have no channels: always ``(n, h, w)``).
    normalize : {"max_abs", None}, default="max_abs"
        Divide each heatmap by its own maximum absolute value (all-zero maps
        stay zero).
    batch_size : int, default=64
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    progress : bool, default=False
        Show a progress bar.
    method_params : dict, optional
        Extra parameters of the attribution class (e.g. ``{"gamma": 0.25}``
        for LRP, ``{"n_steps": 16}`` for integrated gradients).
    return_embeddings : bool, default=False
        Also return the embeddings ``f(x)`` (the input of the linear head),
        read off the forward pass the heatmaps already make: LRP's own pass,
        or, for the other methods, the pass that finds the predicted class.
        No extra forward pass is made.

    Returns
    -------
    heatmaps : ndarray of float32, shape ``(n, h, w)`` or ``(n, c, h, w)``
    embeddings : ndarray of float32, shape ``(n, n_features)``
        Only with ``return_embeddings=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut.explain import attribute
    >>> X = np.random.default_rng(0).random((5, 3, 8, 8), dtype=np.float32)
    >>> H = attribute(SmallCNN(n_blocks=2, width=4), X, size=4, batch_size=2)
    >>> H.shape, bool(np.abs(H).max() <= 1)
    ((5, 4, 4), True)
    >>> attribute(SmallCNN(n_blocks=2, width=4), X, method="xgradcam", size=(8, 8)).shape
    (5, 8, 8)
    >>> H, Z = attribute(SmallCNN(n_blocks=2, width=4), X, return_embeddings=True)
    >>> H.shape, Z.shape
    ((5, 8, 8), (5, 8))
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"`method` must be one of {tuple(METHODS)}; got {method!r}.")
    if channels not in ("sum", "keep"):
        raise ValueError(f"`channels` must be 'sum' or 'keep'; got {channels!r}.")
    if normalize not in ("max_abs", None):
        raise ValueError(f"`normalize` must be 'max_abs' or None; got {normalize!r}.")
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1; got {batch_size!r}.")
    if method_params is not None and not isinstance(method_params, dict):
        raise TypeError(f"`method_params` must be a dict or None; got {type(method_params).__name__}.")
    size = _check_size(size)
    n = n_samples(X)
    targets = _targets(target, n)
    if len(input_shape(X)) != 3:
        raise ValueError(f"`X` must hold images (channels, height, width); got sample shape {input_shape(X)}.")

    base = model if isinstance(model, BaseModel) else as_base_model(model, X, head=head, device=device)
    cls = METHODS[method]
    params = dict(method_params or {})
    if cls.cam:
        params.setdefault("layer", layer)
    elif layer is not None:
        raise ValueError(f"`layer` applies to the CAM methods ('xgradcam', 'gradcam') only, not {method!r}.")
    explainer = cls(base.module, **params)

    out, feats = None, []
    batches = iter_batches(X, int(batch_size), device=base.device)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=-(-n // int(batch_size)), desc=f"heatmaps ({method})", leave=False)
    start = 0
    for xb in batches:
        m = xb.shape[0]
        if targets is None:
            tb = None  # the attribution class takes the argmax of the logits
        else:
            tb = torch.as_tensor(targets[start : start + m], device=xb.device)
            n_logits = max(base.n_outputs, 2)
            if tb.numel() and int(tb.max()) >= n_logits:
                raise ValueError(f"`target` holds class index {int(tb.max())}, but the model has {n_logits} classes.")
        if not return_embeddings:
            maps = explainer.attribute(xb, tb)
        elif cls is LRP:
            maps, z = _attribute_reading_head_input(explainer, base, xb, tb)
            feats.append(z)
        else:
            # the forward pass that finds the predicted class also gives the embeddings
            with frozen_module(base.module), torch.no_grad():
                z, logits = base.features_and_logits(xb)
            feats.append(z.float().cpu().numpy())
            if tb is None:
                tb = torch.as_tensor(predicted_index(logits), device=xb.device)
            maps = explainer.attribute(xb, tb)
        maps = maps[:, None] if maps.ndim == 3 else maps
        maps = _resize(maps.float(), size)
        if channels == "sum" or cls.cam:
            maps = maps.sum(dim=1)
        if normalize == "max_abs":
            maps = _normalize_max_abs(maps)
        maps = maps.cpu().numpy()
        if out is None:
            out = np.empty((n,) + maps.shape[1:], dtype=np.float32)
        out[start : start + m] = maps
        start += m
    if out is None:
        raise ValueError("`X` is empty.")
    if return_embeddings:
        return out, np.concatenate(feats)
    return out


def _attribute_reading_head_input(explainer, base: BaseModel, xb, tb):
    """LRP of one batch, and the embeddings ``f(x)`` captured from the same forward pass."""
    captured = []

    def hook(_mod, inputs):
        if not captured:  # the first call of the head in this batch: the pass on ``xb``
            captured.append(inputs[0].detach())

    handle = base.head.register_forward_pre_hook(hook)
    try:
        maps = explainer.attribute(xb, tb)
    finally:
        handle.remove()
    z = captured[0]
    return maps, z.reshape(z.shape[0], -1).float().cpu().numpy()
