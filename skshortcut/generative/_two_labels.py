"""The two label columns of Wasserstein disentanglement: foreground, and background with ``-1`` unknown.

D3S (section 5) trains on images with a foreground and a background label;
images without a background label (the paper's ImageNet images) carry
:data:`UNKNOWN_BACKGROUND` and skip every term that uses it.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_labels

__all__ = [
    "UNKNOWN_BACKGROUND", "label_columns", "dataset_labels", "label_values", "encode_label_columns",
    "ForegroundScoreMixin",
]

#: Background label meaning "unknown": such samples skip every term that uses
#: the background label (the paper's ImageNet images, section 5).
UNKNOWN_BACKGROUND = -1


def _is_unknown(values) -> np.ndarray:
    """Where a background label column says "unknown" (-1, or "-1" for string labels)."""
    values = np.asarray(values)
    if values.dtype.kind in "iuf":
        return values == UNKNOWN_BACKGROUND
    return np.asarray([(v == UNKNOWN_BACKGROUND) or (v == str(UNKNOWN_BACKGROUND)) for v in values], dtype=bool)


def label_values(values) -> np.ndarray:
    """A column cut from an object array of mixed columns, back to a numeric dtype when it holds no text.

    ``np.stack([["cat", "dog"], [0, 1]], axis=1)`` is an object array; its
    second column holds Python ints, which scikit-learn's target checks read
    as an unknown label type.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.generative._two_labels import label_values
    >>> Y = np.array([["cat", 0], ["dog", 1]], dtype=object)
    >>> label_values(Y[:, 1]).dtype.kind, label_values(Y[:, 0]).dtype.kind
    ('i', 'O')
    """
    if values.dtype == object and not any(isinstance(v, str) for v in values):
        try:
            return np.asarray(values.tolist())
        except (TypeError, ValueError):
            return values
    return values


def label_columns(y, *, name="y"):
    """``(Y, known)``: the two label columns, each checked, and where the background is known.

    Parameters
    ----------
    y : array-like of shape (n, 2)
        Foreground and background labels; a background of ``-1`` (or ``"-1"``) is unknown.
    name : str, default="y"
        The argument's name, for error messages.

    Returns
    -------
    Y : ndarray of shape (n, 2)
    known : ndarray of bool, shape (n,)

    Examples
    --------
    >>> from skshortcut.generative._two_labels import label_columns
    >>> Y, known = label_columns([["cat", "snow"], ["dog", -1]])
    >>> known.tolist()
    [True, False]
    """
    if y is None:
        raise ValueError(f"`{name}` is required: two columns, the foreground and the background label.")
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    Y = np.asarray(y)
    if Y.ndim != 2 or Y.shape[1] != 2:
        raise ValueError(
            f"`{name}` must have two columns (foreground label, background label; -1 = unknown background); "
            f"got shape {Y.shape}."
        )
    check_labels(label_values(Y[:, 0]), f"{name}[:, 0] (foreground)")
    bg = check_labels(label_values(Y[:, 1]), f"{name}[:, 1] (background; -1 marks an unknown one)")
    return Y, ~_is_unknown(bg)


def dataset_labels(X):
    """(foreground, background) labels a Dataset carries: ``labels``, or ``y`` with ``spurious``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from skshortcut.generative._two_labels import dataset_labels
    >>> dataset_labels(SimpleNamespace(y=[0, 1], spurious=[1, 1])).tolist()
    [[0, 1], [1, 1]]
    """
    if hasattr(X, "labels"):
        return np.asarray(X.labels)
    if hasattr(X, "y") and hasattr(X, "spurious"):
        return np.stack([np.asarray(X.y), np.asarray(X.spurious)], axis=1)
    raise ValueError(
        "`y` is None and the Dataset carries no (foreground, background) labels: give `y` with two columns, "
        "or a Dataset with a `labels` attribute (n, 2) or `y` and `spurious` attributes."
    )


def encode_label_columns(net, Y, known):
    """Encoded ``(n, 2)`` labels; fits ``net.label_encoder_`` (foreground) and ``net.background_encoder_``.

    Each column goes through the skorch base's ``_encode_labels``
    (classification targets, at least two classes); the background, known
    samples only, is encoded first and its encoder moved aside, so that
    ``label_encoder_`` is the foreground's. Unknown backgrounds are encoded
    as :data:`UNKNOWN_BACKGROUND`.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import WassersteinDisentangler
    >>> from skshortcut.generative._two_labels import encode_label_columns, label_columns
    >>> net = WassersteinDisentangler()
    >>> Y, known = label_columns([["cat", "snow"], ["dog", -1], ["dog", "grass"]])
    >>> encode_label_columns(net, Y, known).tolist(), net.background_encoder_.classes_.tolist()
    ([[0, 1], [1, -1], [1, 0]], ['grass', 'snow'])
    """
    if known.sum() < 2:
        raise ValueError("`y` needs at least two distinct known background labels (-1 marks unknown ones).")
    bg_known = net._encode_labels(label_values(Y[known, 1]), name="y[:, 1] (known backgrounds)")
    net.background_encoder_, net.n_background_classes_ = net.label_encoder_, net.n_classes_
    Y_enc = np.full((len(Y), 2), UNKNOWN_BACKGROUND, dtype=np.int64)
    Y_enc[known, 1] = bg_known
    Y_enc[:, 0] = net._encode_labels(label_values(Y[:, 0]), name="y[:, 0] (foreground)")
    return Y_enc


class ForegroundScoreMixin:
    """``score(X, y)``: foreground accuracy, with ``y`` as ``fit`` takes it (two columns) or the foreground alone.

    scikit-learn's ``ClassifierMixin.score`` compares ``predict(X)`` (one
    column) with all of ``y``, which fails on the two label columns that
    ``fit`` takes, so ``GridSearchCV`` and ``cross_validate`` would score
    every fold NaN. Here the first column is scored; the background, known
    or not, is ignored.
    """

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of :meth:`predict` on the foreground labels: ``y[:, 0]``, or ``y`` if 1-D."""
        from sklearn.metrics import accuracy_score

        if hasattr(y, "detach"):
            y = y.detach().cpu().numpy()
        Y = np.asarray(y)
        if Y.ndim == 2 and Y.shape[1] == 2:
            Y = Y[:, 0]
        elif Y.ndim != 1:
            raise ValueError(
                f"`y` must have two columns (foreground, background) or one (foreground); got shape {Y.shape}."
            )
        return accuracy_score(label_values(Y), self.predict(X), sample_weight=sample_weight)
