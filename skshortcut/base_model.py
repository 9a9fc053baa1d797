"""The base model ``M = g o f`` every method starts from.

Most methods start from a trained classifier: a feature extractor ``f`` and a
linear head ``g``. This module is the one place that turns what a user has
into that pair:

* :func:`as_base_model` accepts a fitted skorch net, a ``torch.nn.Module``,
  or either wrapped in :class:`sklearn.frozen.FrozenEstimator` (the way to keep
  a fitted model through :func:`sklearn.base.clone`, and so through
  ``cross_validate`` and ``GridSearchCV``);
* :class:`BaseModel` embeds images in batches, in eval mode, without
  gradients, on a device, and never changes the user's module;
* :func:`class_to_logit` maps the classes of ``y`` to the model's logits and
  :func:`predicted_index` turns logits into predicted classes, one- or
  many-logit heads alike;
* :func:`find_last_layer` finds the last layer of a type reached in forward
  order (the head; the last convolution for CAMs).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ._torch import is_dataset, iter_batches, n_samples, resolve_device, restore_module_state

__all__ = [
    "BaseModel",
    "as_base_model",
    "resolve_base_model",
    "unwrap_frozen",
    "class_to_logit",
    "predicted_index",
    "find_last_layer",
    "module_device",
]


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (or buffer); CPU for a module with neither.

    Examples
    --------
    >>> from torch import nn
    >>> from skshortcut.base_model import module_device
    >>> module_device(nn.Linear(2, 2))
    device(type='cpu')
    """
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def unwrap_frozen(estimator):
    """The estimator inside a :class:`sklearn.frozen.FrozenEstimator`, or ``estimator`` itself.

    ``clone`` re-creates an unfitted copy of every estimator it meets, so a
    fitted base model passed as ``estimator=`` would be lost in
    ``cross_validate`` or ``GridSearchCV``. Wrapping it in ``FrozenEstimator``
    keeps it: ``clone`` returns the frozen model as it is.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skshortcut.base_model import unwrap_frozen
    >>> lr = LogisticRegression()
    >>> unwrap_frozen(FrozenEstimator(lr)) is lr
    True
    """
    from sklearn.frozen import FrozenEstimator

    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


def class_to_logit(classes, model_classes=None, *, n_logits: int, what: str = "the base model") -> np.ndarray:
    """For each class of ``classes``, the index of its logit.

    Parameters
    ----------
    classes : array-like
        The classes of ``y``, in the estimator's ``classes_`` order.
    model_classes : array-like or None
        The classes of the model, in logit order (a fitted skorch classifier's
        ``classes_``). ``None`` for a plain ``nn.Module``: its logits are then
        taken to be the sorted classes of ``y``.
    n_logits : int
        Number of logits of the model; a single logit stands for two classes
        (the logit of the second class against the first).
    what : str
        How error messages name the model.

    Returns
    -------
    ndarray of int64, shape (len(classes),)

    Raises
    ------
    ValueError
        If ``y`` holds a class the model does not predict, or the number of
        logits does not match the number of classes of a plain module.

    Examples
    --------
    >>> from skshortcut.base_model import class_to_logit
    >>> class_to_logit(["b", "c"], ["a", "b", "c"], n_logits=3)
    array([1, 2])
    >>> class_to_logit([0, 1], None, n_logits=1)
    array([0, 1])
    """
    classes = list(np.asarray(classes).tolist())
    n_logits = max(int(n_logits), 2)
    if model_classes is not None:
        pos = {label: j for j, label in enumerate(np.asarray(model_classes).tolist())}
        missing = [c for c in classes if c not in pos]
        if missing:
            raise ValueError(f"`y` holds classes {missing} that {what} does not predict (its classes: {list(pos)}).")
        return np.array([pos[c] for c in classes], dtype=np.int64)
    if n_logits != len(classes):
        raise ValueError(
            f"{what[0].upper()}{what[1:]} has {n_logits} logits but `y` holds {len(classes)} classes; with a plain "
            "nn.Module the logits must be the sorted classes of `y`."
        )
    return np.arange(n_logits, dtype=np.int64)


def predicted_index(scores, logit_index=None) -> np.ndarray:
    """Index of the predicted class from logits or decision scores.

    Parameters
    ----------
    scores : ndarray or tensor of shape (n,), (n, 1) or (n, n_logits)
        One column (or a 1-D array) is the score of the second class against
        the first, as scikit-learn's binary ``decision_function``.
    logit_index : array-like of int, optional
        The logit of each class (:func:`class_to_logit`); the result then
        indexes those classes.

    Returns
    -------
    ndarray of int64, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.base_model import predicted_index
    >>> predicted_index(np.array([[0.2, 1.0], [3.0, -1.0]]))
    array([1, 0])
    >>> predicted_index(np.array([-0.5, 2.0]))
    array([0, 1])
    """
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().float().cpu().numpy()
    scores = np.asarray(scores)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.shape[1] == 1:
        scores = np.c_[-scores, scores]
    if logit_index is not None:
        scores = scores[:, np.asarray(logit_index)]
    return scores.argmax(axis=1).astype(np.int64)


def find_last_layer(module: nn.Module, example, layer_type, *, hint: str = "") -> tuple[str, nn.Module]:
    """The last submodule of ``layer_type`` reached in a forward pass, with its dotted name.

    Layers are ordered by when they run, not by where they are defined, so a
    head defined before the body is still found. The module's train/eval
    flags are restored and the hooks removed.

    Parameters
    ----------
    module : nn.Module
    example : tensor
        A small batch the module accepts.
    layer_type : type or tuple of types
        For example ``nn.Linear`` (the head) or ``nn.Conv2d`` (CAM layer).
    hint : str
        Appended to the error messages (what to pass instead).

    Raises
    ------
    ValueError
        If the module has no such layer, or none is reached.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skshortcut.base_model import find_last_layer
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> find_last_layer(net, torch.zeros(1, 4), nn.Linear)[0]
    '2'
    """
    order = []
    names = {m: n for n, m in module.named_modules()}
    kind = layer_type.__name__ if isinstance(layer_type, type) else "/".join(t.__name__ for t in layer_type)
    handles = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in module.modules()
        if isinstance(m, layer_type)
    ]
    if not handles:
        raise ValueError(f"{type(module).__name__} has no nn.{kind} layer{hint}")
    try:
        with restore_module_state(module), torch.no_grad():
            module.eval()
            module(torch.as_tensor(example))
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError(f"No nn.{kind} layer of {type(module).__name__} was reached in a forward pass{hint}")
    return names[order[-1]], order[-1]


def _get_submodule(module: nn.Module, name: str) -> nn.Module:
    try:
        return module.get_submodule(name)
    except AttributeError as exc:
        raise ValueError(f"`head={name!r}` names no submodule of {type(module).__name__}.") from exc


class BaseModel:
    """The base classifier ``M = g o f`` every method starts from.

    Built by :func:`as_base_model`; holds the user's module (or a copy of it on
    another device) and its linear head. It never changes the user's module:
    train/eval flags are restored and hooks removed after every call.

    Parameters
    ----------
    module : nn.Module
        The full classifier, mapping images to logits.
    head : nn.Linear
        Its last linear layer ``g``; ``f`` is everything computed before it.
    head_name : str
        Dotted name of the head inside ``module``.
    device : torch.device
        Where batches are computed.
    classes : ndarray or None
        The user's class labels (from a fitted skorch classifier), in logit order.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.base_model import as_base_model
    >>> from skshortcut.nets import SmallCNN
    >>> base = as_base_model(SmallCNN(n_classes=2), torch.zeros(2, 3, 8, 8), device="cpu")
    >>> base.embed(torch.zeros(5, 3, 8, 8)).shape
    (5, 128)
    """

    def __init__(self, module, head, head_name, device, classes=None):
        self.module = module
        self.head = head
        self.head_name = head_name
        self.device = device
        self.classes = classes

    @property
    def n_features(self) -> int:
        """Dimension of the embedding ``f(x)``."""
        return self.head.in_features

    @property
    def n_outputs(self) -> int:
        """Number of logits."""
        return self.head.out_features

    def features_and_logits(self, x: torch.Tensor):
        """Return ``(f(x), M(x))`` for a batch; differentiable when grad is enabled."""
        captured = {}

        def hook(_mod, inputs):
            captured["z"] = inputs[0]

        handle = self.head.register_forward_pre_hook(hook)
        try:
            logits = self.module(x)
        finally:
            handle.remove()
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        z = captured["z"]
        return z.reshape(z.shape[0], -1), logits

    def embed(
        self,
        X,
        *,
        batch_size: int = 256,
        progress: bool = False,
        return_logits: bool = False,
        num_workers: int = 0,
        check_finite: bool = False,
    ):
        """Embeddings ``f(x)`` of X, in batches, in eval mode, without gradients.

        Parameters
        ----------
        X : ndarray, tensor or torch Dataset of images
        batch_size : int, default=256
        progress : bool, default=False
            Show a progress bar.
        return_logits : bool, default=False
            Also return the logits ``M(x)``.
        num_workers : int, default=0
            DataLoader workers reading a Dataset (arrays are sliced in the process).
        check_finite : bool, default=False
            Refuse a batch holding NaN or infinity (for Datasets, which are never
            checked whole before).

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
        logits : ndarray of shape (n_samples, n_outputs), only if ``return_logits``.
        """
        from tqdm.auto import tqdm

        n = n_samples(X)
        Z = np.empty((n, self.n_features), dtype=np.float32)
        out = np.empty((n, self.n_outputs), dtype=np.float32) if return_logits else None
        batches = iter_batches(X, batch_size, device=self.device, num_workers=num_workers if is_dataset(X) else 0)
        if progress:
            batches = tqdm(batches, total=-(-n // batch_size), desc="embedding", leave=False)
        start = 0
        with restore_module_state(self.module), torch.no_grad():
            self.module.eval()
            for xb in batches:
                if check_finite and not bool(torch.isfinite(xb).all()):
                    bad = start + int(torch.nonzero(~torch.isfinite(xb).reshape(len(xb), -1).all(dim=1))[0, 0])
                    raise ValueError(f"`X` contains NaN or infinity (first at sample {bad}); images must be finite.")
                z, logits = self.features_and_logits(xb)
                Z[start : start + len(z)] = z.float().cpu().numpy()
                if return_logits:
                    out[start : start + len(z)] = logits.float().cpu().numpy()
                start += len(z)
        return (Z, out) if return_logits else Z

    def logits(self, X, *, batch_size: int = 256) -> np.ndarray:
        """Logits ``M(x)`` of X, in batches, in eval mode."""
        return self.embed(X, batch_size=batch_size, return_logits=True)[1]

    def predict_index(self, X, *, batch_size: int = 256) -> np.ndarray:
        """Index of the predicted logit (:func:`predicted_index` of the logits)."""
        return predicted_index(self.logits(X, batch_size=batch_size))

    def class_to_logit(self, classes) -> np.ndarray:
        """:func:`class_to_logit` of ``classes`` for this model."""
        return class_to_logit(classes, self.classes, n_logits=self.n_outputs)

    def copy_head(self) -> nn.Linear:
        """A trainable copy of the head, on ``device``."""
        return copy.deepcopy(self.head).to(self.device)


def as_base_model(estimator, X=None, *, head: str | None = None, device="auto") -> BaseModel:
    """Turn a fitted skorch net or an ``nn.Module`` into a :class:`BaseModel`.

    Parameters
    ----------
    estimator : skorch.NeuralNet (fitted), torch.nn.Module, or either in a FrozenEstimator
        The trained classifier.
    X : array, tensor or Dataset, optional
        Example inputs; one sample is used to find the head in forward order
        when ``head`` is not given.
    head : str, optional
        Dotted name of the linear head (torchvision ResNets: ``"fc"``).
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        Where to compute. If the module lives elsewhere, a copy is moved there,
        leaving the user's module where it was.

    Returns
    -------
    BaseModel

    Examples
    --------
    >>> import torch
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skshortcut.base_model import as_base_model
    >>> from skshortcut.nets import SmallCNN
    >>> as_base_model(SmallCNN(n_classes=3), torch.zeros(2, 3, 8, 8), device="cpu").head_name
    'fc'
    """
    given = estimator
    estimator = unwrap_frozen(estimator)
    classes = None
    if isinstance(estimator, nn.Module):
        module = estimator
    elif hasattr(estimator, "module_") and isinstance(getattr(estimator, "module_", None), nn.Module):
        module = estimator.module_
        classes = getattr(estimator, "classes_", None)
    elif hasattr(estimator, "module") and not getattr(estimator, "initialized_", False):
        if estimator is not given:
            raise TypeError(
                f"The {type(estimator).__name__} in the FrozenEstimator passed as `estimator` is not fitted; "
                "fit it before wrapping it."
            )
        raise TypeError(
            f"The {type(estimator).__name__} passed as `estimator` is not fitted. Fit it first. A fitted net becomes "
            "an unfitted copy through sklearn.base.clone (as in cross_validate, GridSearchCV or a cloned Pipeline): "
            "to keep it, pass `estimator=FrozenEstimator(fitted_net)` (from sklearn.frozen import FrozenEstimator)."
        )
    else:
        raise TypeError(
            "`estimator` must be a fitted skorch net, a torch.nn.Module (either may be wrapped in "
            f"sklearn.frozen.FrozenEstimator) or None; got {type(estimator).__name__}."
        )
    dev = resolve_device(device)
    if module_device(module) != dev:
        module = copy.deepcopy(module).to(dev)
    if head is not None:
        head_mod = _get_submodule(module, head)
        if not isinstance(head_mod, nn.Linear):
            raise ValueError(f"`head={head!r}` is a {type(head_mod).__name__}, expected nn.Linear.")
        head_name = head
    else:
        if X is None:
            raise ValueError("Finding the head needs an example input `X`, or pass `head=`.")
        example = next(iter_batches(_head_probe(X), 2, device=dev))
        head_name, head_mod = find_last_layer(
            module, example, nn.Linear, hint="; pass `head=` with the name of its last linear layer."
        )
    return BaseModel(module, head_mod, head_name, dev, classes=None if classes is None else np.asarray(classes))


def _head_probe(X):
    if is_dataset(X):
        from torch.utils.data import Subset

        return Subset(X, list(range(min(2, len(X)))))
    return X[:2]


def resolve_base_model(estimator, X, y=None, *, head=None, device="auto", random_state=None, verbose=0):
    """The base model for ``estimator``, fitting an :class:`~skshortcut.ERMClassifier` when it is ``None``.

    Returns
    -------
    base : BaseModel
    fitted : estimator or ERMClassifier
        What the base model came from (the new ERM classifier when one was fit).

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.base_model import resolve_base_model
    >>> X = np.random.RandomState(0).rand(40, 3, 8, 8).astype("float32")
    >>> base, fitted = resolve_base_model(None, X, np.arange(40) % 2, device="cpu", random_state=0)
    >>> type(fitted).__name__
    'ERMClassifier'
    """
    if estimator is None:
        if y is None:
            raise ValueError("`estimator=None` fits an ERMClassifier on the data first, which needs `y`.")
        from .erm import ERMClassifier

        estimator = ERMClassifier(device=device, random_state=random_state, verbose=verbose).fit(X, y)
    return as_base_model(estimator, X, head=head, device=device), estimator
