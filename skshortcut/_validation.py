"""Input checks shared by the whole package.

Every public function validates its arguments here so that a user gets one
kind of message for one kind of mistake: the argument is named, and what was
expected is said.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_labels", "check_same_length", "check_images", "check_fraction", "check_positive_int"]


def check_labels(values, name: str, *, allow_none: bool = False) -> np.ndarray | None:
    """Return ``values`` as a 1-D numpy array of labels.

    Parameters
    ----------
    values : array-like or None
        Labels of any hashable type (ints, strings, ...).
    name : str
        The argument's name, used in error messages.
    allow_none : bool, default=False
        Whether ``None`` is accepted (and returned as ``None``).

    Raises
    ------
    ValueError
        If ``values`` is not one-dimensional, is empty, or holds NaN / None.
    """
    if values is None:
        if allow_none:
            return None
        raise ValueError(f"`{name}` is required, got None.")
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` is empty; at least one sample is needed.")
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            raise ValueError(f"`{name}` contains NaN; labels must be defined for every sample.")
    elif arr.dtype.kind == "O":
        bad = [v for v in arr if v is None or (isinstance(v, float) and np.isnan(v))]
        if bad:
            raise ValueError(f"`{name}` contains missing labels (None or NaN).")
    return arr


def check_same_length(**arrays) -> int:
    """Check that all given arrays have the same first dimension and return it."""
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"`{k}` has {v}" for k, v in lengths.items())
        raise ValueError(f"Inconsistent numbers of samples: {desc}.")
    return next(iter(lengths.values()))


def check_fraction(value, name: str, *, low: float = 0.0, high: float = 1.0, closed: str = "both") -> float:
    """Check that ``value`` is a real number within ``[low, high]``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}.")
    ok_low = value >= low if closed in ("both", "left") else value > low
    ok_high = value <= high if closed in ("both", "right") else value < high
    if not (ok_low and ok_high):
        lb = "[" if closed in ("both", "left") else "("
        rb = "]" if closed in ("both", "right") else ")"
        raise ValueError(f"`{name}` must be in {lb}{low}, {high}{rb}, got {value!r}.")
    return float(value)


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Check that ``value`` is an integer ``>= minimum``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an integer, got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return int(value)


def check_images(X, name: str = "X", *, expected_shape=None) -> np.ndarray:
    """Return images ``X`` as a C-contiguous float32 array of shape (n, channels, height, width).

    Any strides are accepted (negative strides, slices, transposed views, read-only
    memory maps): the result is a contiguous copy when needed. Tensors are moved
    to the CPU.

    Parameters
    ----------
    X : array-like or tensor
        Images, values in [0, 1] by the package's data contract.
    name : str, default="X"
        The argument's name, used in error messages.
    expected_shape : tuple (channels, height, width), optional
        The shape of one image at fit; a different channel count or size is an error.

    Raises
    ------
    TypeError
        If ``X`` is not numeric (strings, objects that are not numbers) or is sparse.
    ValueError
        If ``X`` is complex, is not 4-D, is empty, holds NaN or infinity, or does not match
        ``expected_shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut._validation import check_images
    >>> check_images(np.zeros((2, 3, 4, 4))[:, ::-1]).dtype
    dtype('float32')
    >>> check_images(np.full((1, 1, 2, 2), np.nan))
    Traceback (most recent call last):
    ...
    ValueError: `X` contains NaN or infinity (4 of 4 values); images must be finite.
    """
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise TypeError(f"`{name}` must be a dense array of images; got the sparse {type(X).__name__}.")
    if hasattr(X, "detach"):  # torch tensor
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: `{name}` must hold real numbers (images in [0, 1]).")
    if X.dtype.kind == "O":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{name}` must hold real numbers (images in [0, 1]); got objects that are not: {exc}") from exc
    if X.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must hold real numbers (images in [0, 1]); got dtype {X.dtype}.")
    if X.ndim != 4:
        hint = " (a feature table: use an estimator over features, e.g. DFRRetrainer)" if X.ndim == 2 else ""
        raise ValueError(f"`{name}` must be images of shape (n, channels, height, width); got shape {X.shape}{hint}.")
    if X.shape[0] == 0:
        raise ValueError(f"`{name}` holds no images; at least one sample is needed.")
    X = np.ascontiguousarray(X, dtype=np.float32)
    finite = np.isfinite(X)
    if not finite.all():
        bad = int(X.size - finite.sum())
        raise ValueError(f"`{name}` contains NaN or infinity ({bad} of {X.size} values); images must be finite.")
    if expected_shape is not None and tuple(X.shape[1:]) != tuple(expected_shape):
        c, shape = X.shape[1], tuple(X.shape[1:])
        expected = tuple(expected_shape)
        if c != expected[0]:
            raise ValueError(
                f"`{name}` has {c} channel(s) but the estimator was fitted on images with {expected[0]} "
                f"(shape {shape} vs {expected})."
            )
        raise ValueError(f"`{name}` holds images of shape {shape} but the estimator was fitted on images of shape {expected}.")
    return X
