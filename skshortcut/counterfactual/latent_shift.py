"""Latent Shift counterfactuals, searched for a whole batch of images at once.

Cohen et al., *Identifying Spurious Correlations using Counterfactual
Alignment* (2024), section 3, after *Gifsplanation via Latent Shift* (Cohen
et al., MIDL 2021): an image is encoded, ``z = E(x)``, and moved against the
gradient of a base classifier's output through the decoder,

.. math::

    z_\\lambda = z - \\lambda \\frac{\\partial f_b(D(z))}{\\partial z} \\quad (1)
    \\qquad x'_\\lambda = D(z_\\lambda) \\quad (2)

with ``lambda`` grown step by step until the base prediction has dropped by
``target_drop`` (0.6 in the paper), starts to rise, falls below
``min_output``, the image has changed too much, or the step budget is spent.
Here every image of a batch keeps its own ``lambda`` and its own stop flag, so
a batch is searched with one decoder and classifier call per step.
"""

from __future__ import annotations

import contextlib
import copy
import numbers

import numpy as np
import torch
from sklearn.utils import Bunch
from torch import nn

from .._torch import iter_batches, n_samples, resolve_device, restore_module_state
from ..base_model import module_device as _module_device
from .._validation import check_fraction, check_positive_int

__all__ = ["LatentShift", "ClassifierOutput", "as_classifier_output", "as_autoencoder", "relative_change", "STOP_REASONS"]

_OUTPUTS = ("logits", "sigmoid", "probabilities")

#: Why the lambda search of an image stopped (``stop_reason`` of a result).
STOP_REASONS = (
    "target_drop",  # the base prediction dropped by target_drop (the paper's goal)
    "min_output",  # the base prediction fell below min_output
    "rise",  # the base prediction started to rise
    "image_change",  # the image changed by more than max_image_change (L1)
    "max_steps",  # the step budget ran out
    "zero_gradient",  # the base output does not depend on the latent code
)
_CODE = {name: i for i, name in enumerate(STOP_REASONS)}
_AUTO_MOVE = 0.05  # "auto" first step: at most 5 % of the latent code's norm


# --------------------------------------------------------------------------- classifiers
class ClassifierOutput:
    """One classifier's output for one target class, as a function of an image batch.

    Built by :func:`as_classifier_output`. Calling it on a tensor batch
    ``(n, c, h, w)`` returns the ``(n,)`` tensor ``f(x)``: the probability of
    the target class (or, for an :class:`~skshortcut.counterfactual.AdditiveClassifier`,
    its additive score).

    Parameters
    ----------
    fn : callable
        Tensor batch to ``(n,)`` tensor.
    differentiable : bool
        Whether gradients flow through ``fn`` (torch modules, skorch nets);
        ``False`` for ``predict_proba`` objects.
    modules : sequence of nn.Module
        Modules to put in eval mode while the output is used.
    description : str
        What it is, for messages.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import ClassifierOutput
    >>> f = ClassifierOutput(lambda x: x.mean(dim=1), differentiable=True, description="mean")
    >>> f(torch.ones(4, 3)).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, fn, *, differentiable, modules=(), description=""):
        self.fn = fn
        self.differentiable = differentiable
        self.modules = tuple(modules)
        self.description = description

    def __call__(self, x):
        out = self.fn(x)
        if out.ndim != 1 or out.shape[0] != x.shape[0]:
            raise ValueError(f"{self.description} returned shape {tuple(out.shape)} for a batch of {x.shape[0]}.")
        return out

    def __repr__(self):
        return f"ClassifierOutput({self.description})"


def _probabilities(out, outputs):
    if isinstance(out, (tuple, list)):
        out = out[0]
    out = out.float()
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise ValueError(f"A classifier must return (n, n_outputs); got shape {tuple(out.shape)}.")
    if outputs == "sigmoid" or (outputs == "logits" and out.shape[1] == 1):
        out = torch.sigmoid(out)
    elif outputs == "logits":
        return torch.softmax(out, dim=1)
    if out.shape[1] == 1:  # one output: the positive class of a binary problem
        return torch.cat([1 - out, out], dim=1)
    return out


def _column(probs, index, description):
    if not 0 <= index < probs.shape[1]:
        raise ValueError(f"target index {index} is out of range for {description} with {probs.shape[1]} outputs.")
    return probs[:, index]


def _target_index(classes, target, description):
    if classes is not None:
        classes = np.asarray(classes)
        hits = np.flatnonzero(classes == target)
        if len(hits):
            return int(hits[0])
        raise ValueError(f"target {target!r} is not a class of {description}; its classes are {classes.tolist()}.")
    if isinstance(target, bool) or not isinstance(target, numbers.Integral):
        raise TypeError(f"target of {description} must be an output index (int) when it has no `classes_`; got {target!r}.")
    return int(target)


def _on_device(module, device):
    return module if _module_device(module) == device else copy.deepcopy(module).to(device)


def _skorch_classes(net):
    try:
        classes = net.classes_
    except (AttributeError, Exception):  # skorch raises AttributeError when it never saw y
        return None
    return None if classes is None else np.asarray(classes)


def as_classifier_output(spec, *, outputs="logits", device="auto", name="classifier") -> ClassifierOutput:
    """Turn ``(classifier, target)`` into a :class:`ClassifierOutput`.

    Parameters
    ----------
    spec : tuple ``(classifier, target)`` or ``(classifier, target, outputs)``
        ``classifier`` is one of

        * a ``torch.nn.Module`` mapping images to one column per class;
          ``target`` is the column index. Its outputs are turned into
          probabilities as ``outputs`` says;
        * a fitted skorch net (for example :class:`~skshortcut.ERMClassifier`):
          its module, followed by the net's own prediction nonlinearity (what
          ``predict_proba`` applies), so it stays differentiable; ``target``
          is a class label from ``classes_`` (or a column index);
        * any object with ``predict_proba`` on images (a black box: Latent
          Shift then estimates its latent gradient by finite differences);
          ``target`` is a label from its ``classes_``;
        * an :class:`~skshortcut.counterfactual.AdditiveClassifier`; ``target``
          is ``None`` or its positive class, the output is its score.

        A third element overrides ``outputs`` for this classifier.
    outputs : {"logits", "sigmoid", "probabilities"}, default="logits"
        For a raw module (and a skorch net given a third element): ``"logits"``
        applies a softmax over the columns (a sigmoid when there is a single
        column); ``"sigmoid"`` applies a sigmoid to every column (multi-label
        classifiers such as the paper's face attributes); ``"probabilities"``
        uses the outputs as they are. A single column is read as the positive
        class of a binary problem: target ``1`` is that column, ``0`` its complement.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    name : str
        Used in error messages.

    Returns
    -------
    ClassifierOutput

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import as_classifier_output
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    >>> f = as_classifier_output((net, 1), device="cpu")
    >>> f(torch.zeros(3, 3, 2, 2)).shape
    torch.Size([3])
    """
    if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
        raise TypeError(f"`{name}` must be a tuple (classifier, target) or (classifier, target, outputs); got {spec!r}.")
    clf, target = spec[0], spec[1]
    out_mode = spec[2] if len(spec) == 3 else None
    mode = outputs if out_mode is None else out_mode
    if mode not in _OUTPUTS:
        raise ValueError(f"`outputs` of `{name}` must be one of {_OUTPUTS}; got {mode!r}.")
    dev = resolve_device(device)
    desc = f"`{name}` ({type(clf).__name__})"

    if hasattr(clf, "_latent_shift_output"):
        return clf._latent_shift_output(target, device=dev, outputs=outputs, name=name)

    if isinstance(clf, nn.Module):
        module = _on_device(clf, dev)
        index = _target_index(None, target, desc)

        def fn(x):
            return _column(_probabilities(module(x), mode), index, desc)

        return ClassifierOutput(fn, differentiable=True, modules=[module], description=desc)

    module = getattr(clf, "module_", None)
    if isinstance(module, nn.Module):
        module = _on_device(module, dev)
        index = _target_index(_skorch_classes(clf), target, desc)
        if out_mode is None and hasattr(clf, "_get_predict_nonlinearity"):
            nonlin = clf._get_predict_nonlinearity()

            def to_probs(out):
                probs = nonlin(out[0] if isinstance(out, (tuple, list)) else out).float()
                return probs[:, None] if probs.ndim == 1 else probs

        else:

            def to_probs(out):
                return _probabilities(out, mode)

        def fn(x):
            return _column(to_probs(module(x)), index, desc)

        return ClassifierOutput(fn, differentiable=True, modules=[module], description=desc)

    if hasattr(clf, "module") and not getattr(clf, "initialized_", False) and hasattr(clf, "fit"):
        raise TypeError(f"{desc} is a skorch net that is not fitted; fit it first.")

    if callable(getattr(clf, "predict_proba", None)):
        index = _target_index(getattr(clf, "classes_", None), target, desc)

        def fn(x):
            probs = np.asarray(clf.predict_proba(x.detach().cpu().numpy()), dtype=np.float32)
            return torch.as_tensor(probs[:, index], device=x.device)

        return ClassifierOutput(fn, differentiable=False, description=desc)

    raise TypeError(
        f"{desc} must be a torch.nn.Module, a fitted skorch net or an object with `predict_proba`; "
        f"got {type(clf).__name__}."
    )


# --------------------------------------------------------------------------- autoencoders
class _Coder:
    """An encoder/decoder pair on one device."""

    def __init__(self, encode, decode, modules):
        self.encode = encode
        self.decode = decode
        self.modules = tuple(modules)


def as_autoencoder(autoencoder, *, device="auto"):
    """Resolve what the user passed as an autoencoder into ``encode``/``decode`` callables.

    Parameters
    ----------
    autoencoder : object with ``encode`` and ``decode``, pair ``(encoder, decoder)``, or fitted :class:`~skshortcut.counterfactual.Autoencoder`
        ``encode`` maps an image batch to latent codes, ``decode`` codes to
        images; both must be differentiable torch functions. Modules are
        copied to ``device`` when they live elsewhere (the user's stay where
        they are).
    device : {"auto", "cpu", "cuda", ...}, default="auto"

    Returns
    -------
    object with ``encode``, ``decode`` and ``modules``
        Modules found are put in eval mode during a search; an object that only
        offers ``encode``/``decode`` should be in eval mode already.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import as_autoencoder
    >>> coder = as_autoencoder((torch.nn.Linear(4, 2), torch.nn.Linear(2, 4)), device="cpu")
    >>> coder.decode(coder.encode(torch.zeros(3, 4))).shape
    torch.Size([3, 4])
    """
    dev = resolve_device(device)
    if autoencoder is None:
        raise ValueError("`autoencoder` is None here; pass a fitted autoencoder, or use CFAlignmentScorer to train one.")
    if isinstance(autoencoder, (tuple, list)):
        if len(autoencoder) != 2:
            raise ValueError(f"`autoencoder` given as a sequence must be a pair (encoder, decoder); got {len(autoencoder)} items.")
        enc, dec = autoencoder
        for part, label in ((enc, "encoder"), (dec, "decoder")):
            if not callable(part):
                raise TypeError(f"The {label} of `autoencoder` must be callable (an nn.Module); got {type(part).__name__}.")
        enc = _on_device(enc, dev) if isinstance(enc, nn.Module) else enc
        dec = _on_device(dec, dev) if isinstance(dec, nn.Module) else dec
        return _Coder(enc, dec, [m for m in (enc, dec) if isinstance(m, nn.Module)])
    module = getattr(autoencoder, "module_", None)
    if isinstance(module, nn.Module) and hasattr(module, "encode") and hasattr(module, "decode"):
        module = _on_device(module, dev)
        return _Coder(module.encode, module.decode, [module])
    if hasattr(autoencoder, "module") and not getattr(autoencoder, "initialized_", False) and hasattr(autoencoder, "fit"):
        raise TypeError("The skorch `autoencoder` is not fitted; fit it first or pass autoencoder=None to train one.")
    if callable(getattr(autoencoder, "encode", None)) and callable(getattr(autoencoder, "decode", None)):
        if isinstance(autoencoder, nn.Module):
            autoencoder = _on_device(autoencoder, dev)
            return _Coder(autoencoder.encode, autoencoder.decode, [autoencoder])
        return _Coder(autoencoder.encode, autoencoder.decode, [])
    raise TypeError(
        "`autoencoder` must have `encode` and `decode` methods, be a pair (encoder, decoder) or a fitted "
        f"skshortcut Autoencoder; got {type(autoencoder).__name__}."
    )


# --------------------------------------------------------------------------- relative change
def relative_change(downstream_change, base_change):
    """Relative change of Eq. 3: ``(f_i(x_lambda) - f_i(x_0)) / (f_b(x_lambda) - f_b(x_0))``.

    Both changes are taken in the same direction, so the sign of the ratio is
    the direction of the downstream change relative to the base change:
    positive when the downstream classifier falls with the base one. Where the
    base did not change the result is NaN.

    Parameters
    ----------
    downstream_change : array-like of shape (n,) or (n, k)
        ``f_i(x_0) - f_i(x_lambda)`` for each sample (and classifier).
    base_change : array-like of shape (n,)
        ``f_b(x_0) - f_b(x_lambda)``.

    Returns
    -------
    ndarray of the shape of ``downstream_change``

    Examples
    --------
    >>> from skshortcut.counterfactual import relative_change
    >>> relative_change([0.3, -0.6, 0.1], [0.6, 0.6, 0.0]).tolist()
    [0.5, -1.0, nan]
    """
    d = np.asarray(downstream_change, dtype=np.float64)
    b = np.asarray(base_change, dtype=np.float64)
    if d.shape[0] != b.shape[0]:
        raise ValueError(f"`downstream_change` has {d.shape[0]} samples but `base_change` has {b.shape[0]}.")
    b = b.reshape((-1,) + (1,) * (d.ndim - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, d / np.where(b != 0, b, 1.0), np.nan)


# --------------------------------------------------------------------------- search
def _check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}; got {value!r}.")


def _check_real(value, name, *, low=None, high=None, low_open=False, allow_none=False):
    if value is None and allow_none:
        return None
    return check_fraction(
        value,
        name,
        low=-np.inf if low is None else low,
        high=np.inf if high is None else high,
        closed="right" if low_open else "both",
    )


def _check_int(value, name, minimum):
    return check_positive_int(value, name, minimum=minimum)


def _named_specs(downstream):
    if downstream is None:
        return {}
    if not isinstance(downstream, dict):
        raise TypeError(f"`downstream` must be a dict {{name: (classifier, target)}}; got {type(downstream).__name__}.")
    for key in downstream:
        if not isinstance(key, str):
            raise TypeError(f"`downstream` names must be strings; got {key!r}.")
    return dict(downstream)


class LatentShift:
    """Latent Shift counterfactuals of a base classifier, with the outputs of other classifiers along the path.

    Implements Eqs. 1-2 of Cohen et al., *Identifying Spurious Correlations
    using Counterfactual Alignment* (2024) and the lambda search of the
    authors' code: ``lambda`` grows step by step (each step
    ``lambda <- (1 + growth) * lambda + step``) until the base prediction
    ``f_b`` has dropped by ``target_drop`` below its value on the
    reconstruction, starts to rise, falls below ``min_output``, the image has
    changed by more than ``max_image_change`` of its L1 mass, or ``max_steps``
    steps are spent. When the stop is a rise or too large a change, the step
    that caused it is taken back, so the counterfactual is the last image on
    the path that lowered the prediction within the limits (the authors' loop
    keeps that last step; the paper's wording, "until the prediction begins
    to increase", reads as taking it back). The search runs on a whole batch at
    once: each image keeps its own ``lambda`` and stops on its own; only
    images still searching are decoded at each step.

    The gradient ``d f_b(D(z)) / dz`` is not normalised (as in the paper). For
    a base classifier known only through ``predict_proba`` it is estimated by
    central finite differences in the latent space (``2 * latent_dim``
    forward passes per image).

    Parameters
    ----------
    autoencoder : object with ``encode``/``decode``, pair ``(encoder, decoder)`` or fitted :class:`Autoencoder`
        Trained independently of the classifiers, on the same image domain.
    base : tuple ``(classifier, target)``
        The classifier whose output the counterfactuals lower, and the class
        whose probability is lowered (see :func:`as_classifier_output`).
    downstream : dict ``{name: (classifier, target)}``, optional
        Classifiers evaluated on the same counterfactuals.
    base_name : str, default="base"
        Name of the base classifier in the results.
    outputs : {"logits", "sigmoid", "probabilities"}, default="logits"
        How raw modules' outputs become probabilities (see :func:`as_classifier_output`).
    target_drop : float, default=0.6
        Stop when ``f_b`` has dropped by this much (the paper's 0.6).
    min_output : float, default=0.05
        Stop when ``f_b`` falls below this.
    max_image_change : float or None, default=0.05
        Stop when ``sum|x_lambda - x_0| > max_image_change * sum|x_0|`` (the
        authors' 5 %). Images that are mostly background (digits on black)
        change by far more than 5 % of their L1 mass when a stroke moves; raise
        it (for example to 1.0) or set ``None`` to disable this stop there.
    step_size : float or "auto", default="auto"
        First step of ``lambda``. ``"auto"``: per image, the step a linear model
        of ``f_b`` predicts to lower it by ``target_drop / 20``
        (``target_drop / (20 * ||grad||^2)``), which makes the search independent
        of the scale of the latent space; capped so that the first step moves
        the code by at most 5 % of its norm (a saturated classifier's tiny
        gradient would otherwise make the linear step huge). A float gives every image the same
        steps (the authors use 10 with their VQ-GAN).
    growth : float, default=0.1
        Relative growth of ``lambda`` per step besides ``step_size`` (the
        authors' ``lambda // 10``).
    max_steps : int, default=50
        Step budget of the search.
    n_path : int, default=2
        Points of the path ``lambda = linspace(0, lambda*, n_path)`` on which
        every classifier is evaluated (2: the reconstruction and the
        counterfactual, all Eq. 3 needs; more for plots).
    fd_epsilon : float, default=1e-2
        Finite-difference step for non-differentiable base classifiers,
        relative to the root-mean-square of each latent code.
    batch_size : int, default=64
        Images searched together. ``1`` searches one image at a time.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    verbose : int, default=0
        ``>= 1`` shows a progress bar over batches.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import LatentShift
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> enc, dec = torch.nn.Linear(4, 2), torch.nn.Linear(2, 4)
    >>> clf = torch.nn.Linear(4, 2)
    >>> ls = LatentShift((enc, dec), (clf, 1), downstream={"other": (clf, 0)}, max_image_change=None,
    ...                  device="cpu")
    >>> out = ls.generate(torch.rand(5, 4))
    >>> out.counterfactuals.shape, out.relative_changes.shape
    ((5, 4), (5, 1))
    """

    def __init__(
        self,
        autoencoder,
        base,
        *,
        downstream=None,
        base_name="base",
        outputs="logits",
        target_drop=0.6,
        min_output=0.05,
        max_image_change=0.05,
        step_size="auto",
        growth=0.1,
        max_steps=50,
        n_path=2,
        fd_epsilon=1e-2,
        batch_size=64,
        device="auto",
        verbose=0,
    ):
        self.autoencoder = autoencoder
        self.base = base
        self.downstream = downstream
        self.base_name = base_name
        self.outputs = outputs
        self.target_drop = target_drop
        self.min_output = min_output
        self.max_image_change = max_image_change
        self.step_size = step_size
        self.growth = growth
        self.max_steps = max_steps
        self.n_path = n_path
        self.fd_epsilon = fd_epsilon
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose

    def _validate(self):
        _check_choice(self.outputs, "outputs", _OUTPUTS)
        _check_real(self.target_drop, "target_drop", low=0, low_open=True)
        _check_real(self.min_output, "min_output")
        _check_real(self.max_image_change, "max_image_change", low=0, low_open=True, allow_none=True)
        if not (isinstance(self.step_size, str) and self.step_size == "auto"):
            _check_real(self.step_size, "step_size", low=0, low_open=True)
        _check_real(self.growth, "growth", low=0)
        _check_int(self.max_steps, "max_steps", 1)
        _check_int(self.n_path, "n_path", 2)
        _check_real(self.fd_epsilon, "fd_epsilon", low=0, low_open=True)
        _check_int(self.batch_size, "batch_size", 1)
        if not isinstance(self.base_name, str):
            raise TypeError(f"`base_name` must be a string; got {self.base_name!r}.")
        names = _named_specs(self.downstream)
        if self.base_name in names:
            raise ValueError(f"`base_name` {self.base_name!r} is also a `downstream` name; names must be unique.")
        return names

    def generate(self, X, *, return_images=True, return_path_images=False):
        """Counterfactuals of the images X and every classifier's output along their paths.

        Parameters
        ----------
        X : ndarray or tensor of shape (n, c, h, w), or torch Dataset
            Images in [0, 1] (any shape the autoencoder takes).
        return_images : bool, default=True
            Return the reconstructions and counterfactual images.
        return_path_images : bool, default=False
            Also return every image of the path (``n_path`` per sample).

        Returns
        -------
        result : :class:`~sklearn.utils.Bunch`
            ``counterfactuals`` ``(n, c, h, w)``: ``D(z_lambda*)``;
            ``reconstructions`` ``(n, c, h, w)``: ``D(z_0)``;
            ``lambdas`` ``(n,)``: the lambda found for each image;
            ``n_steps`` ``(n,)`` and ``stop_reason`` ``(n,)`` (see :data:`STOP_REASONS`);
            ``path_lambdas`` ``(n, n_path)``; ``path_outputs``:
            ``{name: (n, n_path)}`` for the base and every downstream
            classifier; ``path_images`` ``(n, n_path, c, h, w)`` if asked;
            ``base_change`` ``(n,)``: ``f_b(x_0) - f_b(x_lambda*)``;
            ``relative_changes`` ``(n, k)``: Eq. 3 for each downstream
            classifier, in the order of ``downstream_names``;
            ``base_name``, ``downstream_names``.
        """
        names = self._validate()
        dev = resolve_device(self.device)
        coder = as_autoencoder(self.autoencoder, device=dev)
        base = as_classifier_output(self.base, outputs=self.outputs, device=dev, name="base")
        downs = {k: as_classifier_output(v, outputs=self.outputs, device=dev, name=f"downstream[{k!r}]") for k, v in names.items()}
        n = n_samples(X)
        if n == 0:
            raise ValueError("`X` is empty; at least one image is needed.")
        modules = list(coder.modules) + list(base.modules) + [m for d in downs.values() for m in d.modules]
        batches = iter_batches(X, self.batch_size, device=dev)
        if self.verbose:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=-(-n // self.batch_size), desc="latent shift", leave=False)
        parts = []
        with contextlib.ExitStack() as stack:
            for m in {id(m): m for m in modules}.values():
                stack.enter_context(restore_module_state(m))
                m.eval()
            for xb in batches:
                parts.append(self._batch(xb, coder, base, downs, return_images, return_path_images))
        return self._collect(parts, list(names), return_images, return_path_images)

    # ------------------------------------------------------------------ internals
    def _base_gradient(self, coder, base, z0):
        """``f_b(D(z0))``, ``D(z0)`` and ``d f_b(D(z)) / dz`` at ``z0``."""
        if base.differentiable:
            z = z0.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                x0 = coder.decode(z)
                p0 = base(x0)
                grad = None
                if p0.requires_grad:
                    (grad,) = torch.autograd.grad(p0.sum(), z, allow_unused=True)
            grad = torch.zeros_like(z) if grad is None else grad.detach()
            return p0.detach(), x0.detach(), grad
        with torch.no_grad():
            x0 = coder.decode(z0)
            p0 = base(x0)
            n = z0.shape[0]
            flat = z0.reshape(n, -1)
            d = flat.shape[1]
            scale = flat.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-3) * self.fd_epsilon  # (n, 1)
            eye = torch.eye(d, device=z0.device, dtype=z0.dtype)
            shift = (eye[None] * scale[:, :, None]).reshape(n * d, d)
            zz = flat.repeat_interleave(d, dim=0)
            grad = torch.empty_like(flat)
            chunk = max(1, self.batch_size) * 4
            ups, downs = [], []
            for start in range(0, n * d, chunk):
                sl = slice(start, start + chunk)
                ups.append(base(coder.decode((zz[sl] + shift[sl]).reshape(-1, *z0.shape[1:]))))
                downs.append(base(coder.decode((zz[sl] - shift[sl]).reshape(-1, *z0.shape[1:]))))
            grad = ((torch.cat(ups) - torch.cat(downs)).reshape(n, d) / (2 * scale)).reshape(z0.shape)
        return p0, x0, grad

    def _search(self, coder, base, z0, x0, p0, grad):
        n = z0.shape[0]
        dev = z0.device
        gnorm2 = grad.flatten(1).pow(2).sum(1)
        if isinstance(self.step_size, str):
            # a linear model's step for target_drop / 20, at most _AUTO_MOVE of the code's norm in latent space
            linear = (self.target_drop / 20.0) / gnorm2.clamp_min(1e-30)
            capped = _AUTO_MOVE * z0.flatten(1).norm(dim=1) / gnorm2.clamp_min(1e-30).sqrt()
            step = torch.minimum(linear, capped)
        else:
            step = torch.full((n,), float(self.step_size), device=dev)
        lam = torch.zeros(n, device=dev)
        last = p0.clone()
        steps = torch.zeros(n, dtype=torch.long, device=dev)
        reason = torch.full((n,), _CODE["max_steps"], dtype=torch.long, device=dev)
        active = gnorm2 > 0
        reason[~active] = _CODE["zero_gradient"]
        mass = x0.flatten(1).abs().sum(1)
        bcast = (-1,) + (1,) * (z0.ndim - 1)
        for _ in range(self.max_steps):
            idx = torch.nonzero(active).squeeze(1)
            if idx.numel() == 0:
                break
            new_lam = lam[idx] * (1.0 + self.growth) + step[idx]
            z = z0[idx] - new_lam.reshape(bcast) * grad[idx]
            x = coder.decode(z)
            p = base(x)
            old_lam = lam[idx]
            lam[idx] = new_lam
            steps[idx] += 1
            code = torch.full_like(idx, -1)
            if self.max_image_change is not None:
                change = (x - x0[idx]).flatten(1).abs().sum(1)
                code[change > self.max_image_change * mass[idx]] = _CODE["image_change"]
            code[p > last[idx]] = _CODE["rise"]
            code[p < self.min_output] = _CODE["min_output"]
            code[p0[idx] - p > self.target_drop] = _CODE["target_drop"]
            last[idx] = p
            stop = code >= 0
            reason[idx[stop]] = code[stop]
            active[idx[stop]] = False
            # a step that raised the prediction or changed the image too much is taken back
            back = (code == _CODE["rise"]) | (code == _CODE["image_change"])
            lam[idx[back]] = old_lam[back]
        return lam, steps, reason

    def _batch(self, xb, coder, base, downs, return_images, return_path_images):
        with torch.no_grad():
            z0 = coder.encode(xb)
        p0, x0, grad = self._base_gradient(coder, base, z0)
        with torch.no_grad():
            lam, steps, reason = self._search(coder, base, z0, x0, p0, grad)
            n = z0.shape[0]
            frac = torch.linspace(0.0, 1.0, self.n_path, device=z0.device)
            path_lam = lam[:, None] * frac[None, :]  # (n, n_path)
            zp = z0[:, None] - path_lam.reshape((n, self.n_path) + (1,) * (z0.ndim - 1)) * grad[:, None]
            xp = coder.decode(zp.reshape(n * self.n_path, *z0.shape[1:]))
            outs = {self.base_name: base(xp).reshape(n, self.n_path)}
            for name, f in downs.items():
                outs[name] = f(xp).reshape(n, self.n_path)
            xp = xp.reshape(n, self.n_path, *xp.shape[1:])
        part = {
            "lambdas": lam.cpu().numpy(),
            "n_steps": steps.cpu().numpy(),
            "stop_code": reason.cpu().numpy(),
            "path_lambdas": path_lam.cpu().numpy(),
            "path_outputs": {k: v.float().cpu().numpy() for k, v in outs.items()},
        }
        if return_images:
            part["reconstructions"] = xp[:, 0].float().cpu().numpy()
            part["counterfactuals"] = xp[:, -1].float().cpu().numpy()
        if return_path_images:
            part["path_images"] = xp.float().cpu().numpy()
        return part

    def _collect(self, parts, names, return_images, return_path_images):
        cat = lambda key: np.concatenate([p[key] for p in parts])  # noqa: E731
        path_outputs = {k: np.concatenate([p["path_outputs"][k] for p in parts]) for k in parts[0]["path_outputs"]}
        base_path = path_outputs[self.base_name]
        base_change = base_path[:, 0] - base_path[:, -1]
        if names:
            down_change = np.stack([path_outputs[k][:, 0] - path_outputs[k][:, -1] for k in names], axis=1)
        else:
            down_change = np.empty((len(base_change), 0))
        result = Bunch(
            lambdas=cat("lambdas"),
            n_steps=cat("n_steps"),
            stop_reason=np.asarray(STOP_REASONS, dtype=object)[cat("stop_code")],
            path_lambdas=cat("path_lambdas"),
            path_outputs=path_outputs,
            base_change=base_change,
            relative_changes=relative_change(down_change, base_change),
            base_name=self.base_name,
            downstream_names=list(names),
        )
        if return_images:
            result.reconstructions = cat("reconstructions")
            result.counterfactuals = cat("counterfactuals")
        if return_path_images:
            result.path_images = cat("path_images")
        return result

