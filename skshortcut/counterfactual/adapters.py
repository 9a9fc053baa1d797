"""What Latent Shift is handed, turned into what it computes with.

The counterfactual methods take classifiers as ``(classifier, target)`` pairs
and autoencoders in several forms (a fitted :class:`~skshortcut.counterfactual.Autoencoder`,
an ``(encoder, decoder)`` pair, an object with ``encode``/``decode``), and
images as arrays, tensors or Datasets. This module resolves each of them once:
:func:`as_classifier_output` gives the differentiable output ``f(x)`` of a
target class (Cohen et al., 2024, Eqs. 1-3 use nothing else),
:func:`as_autoencoder` the ``encode``/``decode`` pair, and
:func:`check_counterfactual_images` the checked images.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch
from sklearn.utils import check_array
from torch import nn

from .._torch import is_dataset, resolve_device
from .._validation import check_images
from ..base_model import module_device as _module_device
from ..base_model import unwrap_frozen

__all__ = [
    "ClassifierOutput",
    "KeepsFittedParts",
    "OUTPUTS",
    "as_autoencoder",
    "as_classifier_output",
    "check_counterfactual_images",
    "check_finite_batch",
]

OUTPUTS = ("logits", "sigmoid", "probabilities")


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

        A third element overrides ``outputs`` for this classifier. A
        classifier wrapped in :class:`sklearn.frozen.FrozenEstimator` is
        unwrapped (the wrapper keeps it fitted through ``clone``).
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
    clf, target = unwrap_frozen(spec[0]), spec[1]
    out_mode = spec[2] if len(spec) == 3 else None
    mode = outputs if out_mode is None else out_mode
    if mode not in OUTPUTS:
        raise ValueError(f"`outputs` of `{name}` must be one of {OUTPUTS}; got {mode!r}.")
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
    autoencoder = unwrap_frozen(autoencoder)
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




# --------------------------------------------------------------------------- images
def check_counterfactual_images(X, name="X"):
    """Images (or other autoencoder inputs) for Latent Shift, checked.

    Counterfactual images are only as good as the images they start from: a
    NaN or infinite pixel would make every output along its path NaN.

    * 4-D arrays and tensors ``(n, channels, height, width)`` go through
      :func:`skshortcut._validation.check_images` (finite, any strides,
      returned as a C-contiguous float32 array);
    * arrays of another rank of at least 2 (flat inputs an autoencoder over
      features takes) through scikit-learn's ``check_array`` (finite, float32);
    * a ``torch.utils.data.Dataset`` is returned as it is: it is never read
      whole, its batches are checked as Latent Shift reads them
      (:func:`check_finite_batch`).

    Parameters
    ----------
    X : ndarray, tensor or Dataset
    name : str, default="X"
        The argument's name, used in error messages.

    Returns
    -------
    ndarray of float32 or Dataset

    Raises
    ------
    ValueError
        If X is empty, one-dimensional or holds NaN or infinity.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.counterfactual.adapters import check_counterfactual_images
    >>> check_counterfactual_images(np.zeros((2, 3, 4, 4))).dtype
    dtype('float32')
    >>> check_counterfactual_images(np.array([[0.0, np.inf]]))
    Traceback (most recent call last):
    ...
    ValueError: Input X contains infinity or a value too large for dtype('float32').
    """
    if is_dataset(X):
        return X
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    if np.ndim(X) == 4:
        return check_images(X, name)
    # not an image batch: scikit-learn's own check of a numeric array (rank >= 2, finite, non-empty)
    return check_array(X, dtype=np.float32, allow_nd=True, ensure_all_finite=True, input_name=name)


def check_finite_batch(xb, name="X"):
    """Raise a ``ValueError`` if the batch tensor ``xb`` (read from a Dataset) holds NaN or infinity.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual.adapters import check_finite_batch
    >>> check_finite_batch(torch.zeros(2, 3)).shape
    torch.Size([2, 3])
    """
    if not bool(torch.isfinite(xb).all()):
        raise ValueError(f"`{name}` contains NaN or infinity; images must be finite.")
    return xb


# --------------------------------------------------------------------------- cloning
class KeepsFittedParts:
    """``clone`` keeps the fitted classifiers and autoencoder an estimator was given.

    The counterfactual estimators take fitted models inside their parameters
    (``(classifier, target)`` pairs, an autoencoder). scikit-learn's ``clone``
    would rebuild every estimator it finds there unfitted; these estimators
    only read those models, so a clone shares them as they are, which is what
    ``GridSearchCV`` and ``cross_validate`` need.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator, clone
    >>> from skshortcut.counterfactual.adapters import KeepsFittedParts
    >>> class Holder(KeepsFittedParts, BaseEstimator):
    ...     def __init__(self, part=None):
    ...         self.part = part
    >>> part = object()
    >>> clone(Holder(part)).part is part
    True
    """

    def __sklearn_clone__(self):
        return type(self)(**self.get_params(deep=False))
