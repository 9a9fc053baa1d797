"""Input checks shared by the whole package.

Every public function validates its arguments here so that a user gets one
kind of message for one kind of mistake: the argument is named, and what was
expected is said.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_labels", "check_same_length", "check_images", "check_image_input", "ImageInputMixin"]


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


def check_images(X, name: str = "X", *, expected_shape=None, owner: str = "the estimator") -> np.ndarray:
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
    owner : str, default="the estimator"
        How error messages name what was fitted.

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
                f"`{name}` has {c} channel(s) but {owner} was fitted on images with {expected[0]} "
                f"(shape {shape} vs {expected})."
            )
        raise ValueError(f"`{name}` holds images of shape {shape} but {owner} was fitted on images of shape {expected}.")
    return X


def check_image_input(X, name: str = "X", *, expected_shape=None, owner: str = "the estimator"):
    """Checked images and the shape of one image: arrays through :func:`check_images`, Datasets by their first item.

    A torch Dataset is never read whole: it must be non-empty and its first
    item an image ``(channels, height, width)``; non-finite values inside it
    are not looked for.

    Parameters
    ----------
    X : array-like, tensor or torch Dataset
    name : str, default="X"
    expected_shape : tuple, optional
        The shape of one image at fit.
    owner : str, default="the estimator"
        How error messages name what was fitted.

    Returns
    -------
    X : ndarray (float32, C-contiguous) or the Dataset
    shape : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut._validation import check_image_input
    >>> check_image_input(np.zeros((2, 1, 4, 4)))[1]
    (1, 4, 4)
    >>> check_image_input(np.zeros((2, 1, 5, 5)), expected_shape=(1, 4, 4), owner="ExMapGrouper")
    Traceback (most recent call last):
    ...
    ValueError: `X` holds images of shape (1, 5, 5) but ExMapGrouper was fitted on images of shape (1, 4, 4).
    """
    from ._torch import input_shape, is_dataset

    if is_dataset(X):
        if len(X) == 0:
            raise ValueError(f"`{name}` is an empty Dataset; at least one sample is needed.")
        shape = tuple(int(s) for s in input_shape(X))
        if len(shape) != 3:
            raise ValueError(f"The items of the Dataset `{name}` must be images (channels, height, width); got shape {shape}.")
    else:
        X = check_images(X, name, expected_shape=expected_shape, owner=owner)
        shape = tuple(int(s) for s in X.shape[1:])
    if expected_shape is not None and shape != tuple(expected_shape):
        raise ValueError(
            f"`{name}` holds images of shape {shape} but {owner} was fitted on images of shape {tuple(expected_shape)}."
        )
    return X, shape


class ImageInputMixin:
    """``_check_images(X, reset=...)``: checked images, ``input_shape_`` recorded at fit and enforced after.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut._validation import ImageInputMixin
    >>> class Est(ImageInputMixin):
    ...     pass
    >>> est = Est()
    >>> _ = est._check_images(np.zeros((2, 3, 4, 4)), reset=True)
    >>> est.input_shape_
    (3, 4, 4)
    """

    def _check_images(self, X, *, reset: bool, name: str = "X"):
        expected = None if reset else getattr(self, "input_shape_", None)
        if not reset and expected is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit first.")
        X, shape = check_image_input(X, name, expected_shape=expected, owner=type(self).__name__)
        if reset:
            self.input_shape_ = shape
        return X
