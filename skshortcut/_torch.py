"""Torch plumbing shared by every method: devices, batches and seeds.

This module is the one place that

* resolves ``device="auto"``;
* iterates over X in batches, whether X is an array, a tensor or a torch
  ``Dataset`` (whose items are an image or a tuple starting with one);
* seeds torch from a ``random_state`` without touching the caller's global RNG.

The base model (``M = g o f``) lives in :mod:`skshortcut.base_model`.
"""

from __future__ import annotations

import contextlib
import numbers

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "resolve_device",
    "seed_everything",
    "torch_seed",
    "is_dataset",
    "n_samples",
    "input_shape",
    "iter_batches",
    "ImageLabelDataset",
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


# --------------------------------------------------------------------------- seeds
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


# --------------------------------------------------------------------------- modules
@contextlib.contextmanager
def restore_module_state(module: nn.Module):
    """Restore every submodule's train/eval flag on exit."""
    modes = {m: m.training for m in module.modules()}
    try:
        yield module
    finally:
        for m, training in modes.items():
            m.train(training)
