"""Torch plumbing shared by every method: devices, batches, seeds and the base model.

This module is the one place that

* resolves ``device="auto"``;
* iterates over X in batches, whether X is an array, a tensor or a torch
  ``Dataset`` (whose items are an image or a tuple starting with one);
* seeds torch from a ``random_state`` without touching the caller's global RNG;
* turns what the user has (a fitted skorch net, an ``nn.Module`` or ``None``)
  into the pair ``M = g o f`` of feature extractor ``f`` and linear head ``g``:
  :class:`BaseModel`.
"""

from __future__ import annotations

import contextlib
import copy
import numbers

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "resolve_device",
    "AutoDeviceMixin",
    "seed_everything",
    "torch_seed",
    "is_dataset",
    "n_samples",
    "input_shape",
    "iter_batches",
    "ImageLabelDataset",
    "BaseModel",
    "as_base_model",
    "resolve_base_model",
    "restore_module_state",
]


# --------------------------------------------------------------------------- devices
def resolve_device(device) -> torch.device:
    """Return a ``torch.device``; ``"auto"`` (or ``None``) means CUDA when present.

    Raises
    ------
    ValueError
        If ``device`` names no device torch knows.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"`device` must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device; got {device!r}.") from exc


class AutoDeviceMixin:
    """Let a skorch net accept ``device="auto"``.

    skorch reads ``self.device`` everywhere it moves tensors. The mixin
    resolves ``"auto"`` when the net is initialised and keeps reporting
    ``"auto"`` through ``get_params`` so that ``clone`` and grid searches see
    the parameter the user set.
    """

    def initialize(self):
        if isinstance(self.device, str) and self.device == "auto":
            self.device = str(resolve_device("auto"))
            self.device_auto_ = True
        return super().initialize()

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        if getattr(self, "device_auto_", False) and "device" in params:
            params["device"] = "auto"
        return params

    def set_params(self, **kwargs):
        if "device" in kwargs:
            self.device_auto_ = False
        return super().set_params(**kwargs)


# --------------------------------------------------------------------------- seeds
def training_callbacks(*, verbose, patience=None, has_validation=False):
    """The skorch callbacks every network of the package adds to skorch's defaults.

    Early stopping on the validation loss (restoring the best epoch) when
    ``patience`` is set and there is validation data, and a progress bar per
    epoch when ``verbose``.

    Returns
    -------
    list of (name, callback)

    Examples
    --------
    >>> from skshortcut._torch import training_callbacks
    >>> [name for name, _ in training_callbacks(verbose=1, patience=3, has_validation=True)]
    ['early_stopping', 'progress_bar']
    >>> training_callbacks(verbose=0)
    []
    """
    from skorch.callbacks import EarlyStopping, ProgressBar

    callbacks = []
    if patience is not None and has_validation:
        callbacks.append(("early_stopping", EarlyStopping(monitor="valid_loss", patience=patience, load_best=True)))
    if verbose:
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks


def loss_term_callbacks(train_terms, valid_terms=()):
    """History columns for the terms of a composite loss, recorded by ``get_loss``.

    A network whose loss has several terms stores each batch's value with
    ``self.history.record_batch(f"train_{name}", value)``; these skorch
    ``PassthroughScoring`` callbacks average them per epoch into
    ``train_<name>`` (and ``valid_<name>``) columns of the history and the
    printed epoch table.

    Parameters
    ----------
    train_terms, valid_terms : iterable of (name, lower_is_better)

    Returns
    -------
    list of (name, callback)

    Examples
    --------
    >>> from skshortcut._torch import loss_term_callbacks
    >>> [name for name, _ in loss_term_callbacks([("kl", True)], [("kl", True)])]
    ['train_kl', 'valid_kl']
    """
    from skorch.callbacks import PassthroughScoring

    callbacks = [
        (f"train_{name}", PassthroughScoring(f"train_{name}", lower_is_better=lower, on_train=True))
        for name, lower in train_terms
    ]
    callbacks += [(f"valid_{name}", PassthroughScoring(f"valid_{name}", lower_is_better=lower)) for name, lower in valid_terms]
    return callbacks


def _seed_from(random_state) -> int | None:
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise TypeError(f"`random_state` must be None, an int or a numpy RandomState; got {type(random_state).__name__}.")


def seed_everything(random_state) -> int | None:
    """Seed torch's global generator from ``random_state``; return the seed used."""
    seed = _seed_from(random_state)
    if seed is not None:
        torch.manual_seed(seed)
    return seed


@contextlib.contextmanager
def torch_seed(random_state):
    """Run a block with torch seeded from ``random_state``, restoring the caller's RNG after.

    With ``random_state=None`` nothing is seeded or restored.
    """
    seed = _seed_from(random_state)
    if seed is None:
        yield None
        return
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield seed


# --------------------------------------------------------------------------- data
def is_dataset(X) -> bool:
    """Whether X is a torch ``Dataset`` (as opposed to an array or tensor)."""
    return isinstance(X, Dataset) and not isinstance(X, torch.Tensor)


def n_samples(X) -> int:
    """Number of samples of an array, tensor, Dataset or GroupedData."""
    try:
        return len(X)
    except TypeError as exc:
        raise TypeError(f"`X` must be an array, a tensor or a sized torch Dataset; got {type(X).__name__}.") from exc


def _first(item):
    if isinstance(item, (tuple, list)):
        if not item:
            raise ValueError("Dataset items must be an image tensor or a non-empty tuple starting with one.")
        return item[0]
    if isinstance(item, dict):
        raise TypeError("Dataset items must be an image tensor or a tuple starting with one, not a dict.")
    return item


def input_shape(X) -> tuple:
    """Shape of one sample of X (channels, height, width for images)."""
    if is_dataset(X):
        first = _first(X[0])
        return tuple(torch.as_tensor(first).shape)
    shape = tuple(getattr(X, "shape", np.shape(X)))
    return shape[1:]


class _DatasetImages(Dataset):
    """View of a Dataset that yields only the image of each item."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return torch.as_tensor(_first(self.dataset[i]))


def iter_batches(X, batch_size: int, *, device=None, dtype=torch.float32, num_workers: int = 0):
    """Yield batches of X as tensors on ``device``.

    Parameters
    ----------
    X : ndarray, tensor or torch Dataset
        Arrays and tensors are sliced; a Dataset is read through a
        ``DataLoader`` in order, taking the first element of tuple items.
    batch_size : int
        Samples per batch.
    device : torch.device, optional
        Where to put each batch.
    dtype : torch.dtype, default=torch.float32
        Floating dtype of the batches.
    num_workers : int, default=0
        DataLoader workers for Datasets.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
    if is_dataset(X):
        loader = DataLoader(_DatasetImages(X), batch_size=batch_size, shuffle=False, num_workers=num_workers)
        for batch in loader:
            yield batch.to(device=device, dtype=dtype)
        return
    n = n_samples(X)
    for start in range(0, n, batch_size):
        chunk = X[start : start + batch_size]
        yield torch.as_tensor(np.asarray(chunk) if not isinstance(chunk, torch.Tensor) else chunk).to(
            device=device, dtype=dtype
        )


class ImageLabelDataset(Dataset):
    """Pair the images of X (array, tensor or Dataset) with labels ``y``.

    Used to feed torch Datasets whose items carry more than ``(image, label)``
    (for example ``(image, y, group)``) to skorch, which expects pairs.
    """

    def __init__(self, X, y):
        if len(X) != len(y):
            raise ValueError(f"`X` has {len(X)} samples but `y` has {len(y)}.")
        self.X = X
        self.y = np.asarray(y)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.as_tensor(_first(self.X[i]), dtype=torch.float32), self.y[i]


def dataset_targets(X):
    """Labels carried by a Dataset: its ``y`` attribute, or the second element of its items."""
    if hasattr(X, "y"):
        return np.asarray(X.y)
    item = X[0]
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        return np.asarray([X[i][1] for i in range(len(X))])
    raise ValueError("`y` is None and the Dataset carries no labels (no `y` attribute, no (image, label) items).")


# --------------------------------------------------------------------------- base model
@contextlib.contextmanager
def restore_module_state(module: nn.Module):
    """Restore every submodule's train/eval flag on exit."""
    modes = {m: m.training for m in module.modules()}
    try:
        yield module
    finally:
        for m, training in modes.items():
            m.train(training)


def _get_submodule(module: nn.Module, name: str) -> nn.Module:
    try:
        return module.get_submodule(name)
    except AttributeError as exc:
        raise ValueError(f"`head={name!r}` names no submodule of {type(module).__name__}.") from exc


def _module_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


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

    def embed(self, X, *, batch_size: int = 256, progress: bool = False, return_logits: bool = False):
        """Embeddings ``f(x)`` of X, in batches, in eval mode, without gradients.

        Parameters
        ----------
        X : ndarray, tensor or torch Dataset of images
        batch_size : int, default=256
        progress : bool, default=False
            Show a progress bar.
        return_logits : bool, default=False
            Also return the logits ``M(x)``.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
        logits : ndarray of shape (n_samples, n_outputs), only if ``return_logits``.
        """
        from tqdm.auto import tqdm

        feats, outs = [], []
        n = n_samples(X)
        batches = iter_batches(X, batch_size, device=self.device)
        if progress:
            batches = tqdm(batches, total=-(-n // batch_size), desc="embedding", leave=False)
        with restore_module_state(self.module), torch.no_grad():
            self.module.eval()
            for xb in batches:
                z, logits = self.features_and_logits(xb)
                feats.append(z.float().cpu().numpy())
                if return_logits:
                    outs.append(logits.float().cpu().numpy())
        Z = np.concatenate(feats) if feats else np.empty((0, self.n_features), dtype=np.float32)
        if return_logits:
            return Z, np.concatenate(outs) if outs else np.empty((0, self.n_outputs), dtype=np.float32)
        return Z

    def logits(self, X, *, batch_size: int = 256) -> np.ndarray:
        """Logits ``M(x)`` of X, in batches, in eval mode."""
        return self.embed(X, batch_size=batch_size, return_logits=True)[1]

    def predict_index(self, X, *, batch_size: int = 256) -> np.ndarray:
        """Index of the predicted class (argmax of the logits)."""
        logits = self.logits(X, batch_size=batch_size)
        if logits.shape[1] == 1:
            return (logits[:, 0] > 0).astype(np.int64)
        return logits.argmax(axis=1)

    def copy_head(self) -> nn.Linear:
        """A trainable copy of the head, on ``device``."""
        return copy.deepcopy(self.head).to(self.device)


def _find_head(module: nn.Module, example: torch.Tensor) -> tuple[str, nn.Linear]:
    """The last ``nn.Linear`` reached in forward order."""
    order = []
    names = {m: n for n, m in module.named_modules()}
    handles = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in module.modules()
        if isinstance(m, nn.Linear)
    ]
    if not handles:
        raise ValueError(
            f"{type(module).__name__} has no nn.Linear layer to use as the head; "
            "pass `head=` with the name of its last linear layer."
        )
    try:
        with restore_module_state(module), torch.no_grad():
            module.eval()
            module(example)
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError(
            f"No nn.Linear layer of {type(module).__name__} was reached in a forward pass; "
            "pass `head=` with the name of its last linear layer."
        )
    head = order[-1]
    return names[head], head


def as_base_model(estimator, X=None, *, head: str | None = None, device="auto") -> BaseModel:
    """Turn a fitted skorch net or an ``nn.Module`` into a :class:`BaseModel`.

    Parameters
    ----------
    estimator : skorch.NeuralNet (fitted) or torch.nn.Module
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
    """
    classes = None
    if isinstance(estimator, nn.Module):
        module = estimator
    elif hasattr(estimator, "module_") and isinstance(getattr(estimator, "module_", None), nn.Module):
        module = estimator.module_
        classes = getattr(estimator, "classes_", None)
    elif hasattr(estimator, "module") and not getattr(estimator, "initialized_", False):
        raise TypeError(f"The {type(estimator).__name__} passed as `estimator` is not fitted; fit it first.")
    else:
        raise TypeError(
            "`estimator` must be a fitted skorch net, a torch.nn.Module or None; "
            f"got {type(estimator).__name__}."
        )
    dev = resolve_device(device)
    if _module_device(module) != dev:
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
        head_name, head_mod = _find_head(module, example)
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
    """
    if estimator is None:
        if y is None:
            raise ValueError("`estimator=None` fits an ERMClassifier on the data first, which needs `y`.")
        from .erm import ERMClassifier

        estimator = ERMClassifier(device=device, random_state=random_state, verbose=verbose).fit(X, y)
    return as_base_model(estimator, X, head=head, device=device), estimator
