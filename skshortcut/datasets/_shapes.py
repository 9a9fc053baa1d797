"""Shapes on tinted backgrounds: a shortcut that covers the whole image.

The foreground is a light-grey geometric shape (its label ``y``), the background
a flat tint with noise (its label ``background``). Unlike the digits of
:mod:`._synthetic`, nothing is drawn from scikit-learn's digits: the shapes are
rendered from their definitions, anti-aliased by supersampling, with random
position, size and rotation. The tint covers every pixel the shape does not, so
a mask over part of the image cannot remove it (the case Mask-and-Combine
cannot separate), and the background differs from the textures of
:func:`~skshortcut.datasets.make_foreground_background` in kind (colour only).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ._foreground_background import (
    _SPLITS,
    _balanced,
    _four_split_seeds,
    _four_split_sizes,
    _split_counts,
    _two_label_result,
    _two_label_split,
)
from ._synthetic import _check_image_size, _check_int, _check_probability, _split_seeds

__all__ = ["SHAPES", "TINTS", "make_shapes_on_tints"]

#: The shapes of :func:`make_shapes_on_tints`, in label order.
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring", "diamond")

#: The tints of :func:`make_shapes_on_tints`: ``(name, RGB colour)``, in label order.
TINTS: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("red", (0.9, 0.2, 0.15)),
    ("green", (0.2, 0.8, 0.25)),
    ("blue", (0.2, 0.3, 0.95)),
    ("yellow", (0.9, 0.85, 0.15)),
    ("cyan", (0.15, 0.8, 0.85)),
    ("magenta", (0.85, 0.2, 0.8)),
)

_SUPERSAMPLING = 4
_MAX_ROTATION = np.pi / 12  # +-15 degrees: a square never turns into the diamond


def _inside(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the shape-frame points ``(u, v)`` (the shape spans [-1, 1]) lie in the shape."""
    if kind == "circle":
        return u**2 + v**2 <= 1.0
    if kind == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if kind == "triangle":
        return (v <= 0.55) & (v >= -1.0 + 1.7320508 * np.abs(u))
    if kind == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 0.95))
    if kind == "ring":
        r2 = u**2 + v**2
        return (r2 <= 1.0) & (r2 >= 0.5**2)
    if kind == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    raise ValueError(f"unknown shape {kind!r}")  # pragma: no cover - internal table


def _render_shapes(shape: np.ndarray, size: int, rng, chunk: int = 256) -> np.ndarray:
    """Anti-aliased coverage maps ``(n, size, size)`` in [0, 1] of shapes ``shape``."""
    n = len(shape)
    fine = size * _SUPERSAMPLING
    axis = (np.arange(fine, dtype=np.float32) + 0.5) / fine * 2.0 - 1.0  # pixel centres in [-1, 1]
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    radius = rng.uniform(0.45, 0.65, size=n).astype(np.float32)
    slack = 0.95 - radius  # the shape stays inside the image
    centre = (rng.uniform(-1.0, 1.0, size=(n, 2)) * slack[:, None]).astype(np.float32)
    angle = rng.uniform(-_MAX_ROTATION, _MAX_ROTATION, size=n).astype(np.float32)
    out = np.empty((n, size, size), dtype=np.float32)
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        dx = xx[None] - centre[sl, 0, None, None]
        dy = yy[None] - centre[sl, 1, None, None]
        cos, sin = np.cos(angle[sl])[:, None, None], np.sin(angle[sl])[:, None, None]
        r = radius[sl, None, None]
        u = (cos * dx + sin * dy) / r
        v = (-sin * dx + cos * dy) / r
        mask = np.zeros(u.shape, dtype=np.float32)
        for k in np.unique(shape[sl]):
            rows = np.flatnonzero(shape[sl] == k)
            mask[rows] = _inside(SHAPES[int(k)], u[rows], v[rows])
        m = len(mask)
        out[sl] = mask.reshape(m, size, _SUPERSAMPLING, size, _SUPERSAMPLING).mean(axis=(2, 4))
    return out


def _tinted(tint: np.ndarray, size: int, rng) -> np.ndarray:
    """Tinted, noisy backgrounds ``(n, 3, size, size)`` for tint indices ``tint``."""
    colors = np.asarray([c for _, c in TINTS], dtype=np.float32)[tint]
    level = rng.uniform(0.55, 0.85, size=len(tint)).astype(np.float32)
    noise = rng.normal(0.0, 0.04, size=(len(tint), 3, size, size)).astype(np.float32)
    return np.clip(colors[:, :, None, None] * level[:, None, None, None] + noise, 0.0, 1.0)


def _draw_tints(y: np.ndarray, pairing: np.ndarray, n_tints: int, agreement, rng) -> np.ndarray:
    """Tints for shapes ``y``: all pairs evenly (``agreement=None``), else each class's
    paired tint for exactly ``round(agreement * n_c)`` of its samples and the others evenly."""
    tint = np.empty_like(y)
    for c in range(len(pairing)):
        where = rng.permutation(np.flatnonzero(y == c))
        if agreement is None:
            tint[where] = _balanced(len(where), n_tints, rng)
            continue
        n_agree = int(round(agreement * len(where)))
        others = np.setdiff1d(np.arange(n_tints), pairing[c : c + 1])
        tint[where[:n_agree]] = pairing[c]
        tint[where[n_agree:]] = others[_balanced(len(where) - n_agree, len(others), rng)]
    return tint


def make_shapes_on_tints(
    n_diverse: int = 3000,
    n_train: int = 2000,
    n_val: int = 1000,
    n_test: int = 2000,
    *,
    n_shapes: int = 3,
    n_tints: int = 3,
    agreement: float = 0.95,
    image_size: int = 28,
    random_state=None,
) -> Bunch:
    """Light shapes on tinted backgrounds, with shape and tint labels.

    Every image shows one of ``n_shapes`` shapes (:data:`SHAPES`; label ``y``)
    in light grey, anti-aliased, at a random position, size (radius 45-65 % of
    half the image) and rotation (+-15 degrees), over one of ``n_tints`` flat
    tints (:data:`TINTS`; label ``background``) with random brightness and
    pixel noise. The tint covers the whole image around the shape.

    The splits:

    * ``diverse`` holds every (shape, tint) pair equally often (what
      :class:`~skshortcut.WassersteinDisentangler` trains on, as D3S section 6
      trains on all pairs);
    * ``train`` and ``val``: each shape class ``c`` has its paired tint
      ``pairing[c]`` on exactly ``round(agreement * n_c)`` of its samples and
      the other tints, evenly, on the rest, so the tint is a shortcut;
    * ``test`` holds every pair equally often, so each (shape, tint) group
      has ``n_test / (n_shapes * n_tints)`` samples for worst-group accuracy.

    Parameters
    ----------
    n_diverse, n_train, n_val, n_test : int, default=3000, 2000, 1000, 2000
        Number of samples in each split (>= 1).
    n_shapes : int, default=3
        Shape classes: the first ``n_shapes`` of :data:`SHAPES` (2-6).
    n_tints : int, default=3
        Tints: the first ``n_tints`` of :data:`TINTS` (2-6, and at least
        ``n_shapes`` so that every shape has its own paired tint).
    agreement : float, default=0.95
        Fraction of ``train`` and ``val`` samples whose tint is their shape's
        paired tint, in [0, 1].
    image_size : int, default=28
        Side of the images in pixels (>= 8).
    random_state : int, RandomState instance or None, default=None
        Seeds the pairing, the draws and the rendering.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``diverse``, ``train``, ``val``, ``test``: Bunches with ``X`` (float32
        ``(n, 3, image_size, image_size)`` in [0, 1]), ``y`` (shape),
        ``background`` (tint), ``spurious`` (the tint again, for the group
        tools), ``groups`` (``y * n_tints + background``), all int64 ``(n,)``,
        and ``labels`` (``(n, 2)``: shape and tint); ``pairing`` (int64
        ``(n_shapes,)``: the tint of each shape in ``train`` and ``val``);
        ``target_names``, ``background_names``, ``spurious_names``,
        ``group_names``; ``params`` and ``DESCR``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.datasets import make_shapes_on_tints
    >>> data = make_shapes_on_tints(30, 100, 20, 90, agreement=0.9, image_size=16, random_state=0)
    >>> data.train.X.shape, data.diverse.labels.shape
    ((100, 3, 16, 16), (30, 2))
    >>> float(np.mean(data.train.background == data.pairing[data.train.y])) >= 0.89
    True
    >>> np.bincount(data.test.groups).tolist()
    [10, 10, 10, 10, 10, 10, 10, 10, 10]
    """
    sizes = _four_split_sizes(n_diverse, n_train, n_val, n_test)
    n_shapes = _check_int(n_shapes, "n_shapes", 2)
    if n_shapes > len(SHAPES):
        raise ValueError(f"n_shapes must be at most {len(SHAPES)}, got {n_shapes}.")
    n_tints = _check_int(n_tints, "n_tints", 2)
    if n_tints > len(TINTS):
        raise ValueError(f"n_tints must be at most {len(TINTS)}, got {n_tints}.")
    if n_tints < n_shapes:
        raise ValueError(
            f"n_tints must be at least n_shapes ({n_shapes}) so that every shape has its own "
            f"paired tint, got {n_tints}."
        )
    agreement = _check_probability(agreement, "agreement")
    image_size = _check_image_size(image_size)

    pair_seed, *seeds = _split_seeds(random_state)
    pairing = np.random.RandomState(pair_seed).permutation(n_tints)[:n_shapes].astype(np.int64)
    target_names = list(SHAPES[:n_shapes])
    background_names = [name for name, _ in TINTS[:n_tints]]
    result = _two_label_result(
        target_names, background_names, pairing,
        {"n_shapes": n_shapes, "n_tints": n_tints, "agreement": agreement, "image_size": image_size},
    )
    split_seeds = _four_split_seeds(seeds)
    for split in _SPLITS:
        rng = np.random.RandomState(split_seeds[split])
        y = _balanced(sizes[split], n_shapes, rng)
        split_agreement = agreement if split in ("train", "val") else None
        background = _draw_tints(y, pairing, n_tints, split_agreement, rng)
        coverage = _render_shapes(y, image_size, rng)[:, None]
        shade = rng.uniform(0.85, 1.0, size=(len(y), 1, 1, 1)).astype(np.float32)
        X = (1.0 - coverage) * _tinted(background, image_size, rng) + coverage * shade
        result[split] = _two_label_split(X, y, background, n_tints)
    counts = _split_counts(result, "(shape, tint) pairs")
    result.DESCR = (
        "Shapes on tinted backgrounds\n"
        "----------------------------\n"
        f"Foreground: a light {'/'.join(target_names)}; background: a noisy flat tint "
        f"({', '.join(background_names)}). train and val pair "
        + ", ".join(f"{t} -> {background_names[pairing[c]]}" for c, t in enumerate(target_names))
        + f" on {agreement:.0%} of each class; diverse and test hold every pair equally often. "
        f"Images (3, {image_size}, {image_size}) in [0, 1].\n" + counts
    )
    return result
