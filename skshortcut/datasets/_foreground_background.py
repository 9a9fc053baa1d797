"""Digits on textured backgrounds: foreground and background labels, correlated or not.

A small, embedded stand-in for D3S (Kattakinda, Levine and Feizi, *Invariant
Learning via Diffusion Dreamed Distribution Shifts*, sections 5-6): every image
shows a handwritten digit (the foreground) on one of ten coloured textures (the
background), and both labels are known. The digits are scikit-learn's bundled
handwritten digits rendered by the helpers of :mod:`._synthetic` (disjoint
base-image pools per split, random affine jitter), so nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ._synthetic import (
    _base_pools,
    _check_image_size,
    _check_int,
    _draw_base,
    _group_names,
    _render,
    _split_seeds,
)

__all__ = ["FOREGROUND_BACKGROUND_TEXTURES", "make_foreground_background"]

#: The backgrounds of :func:`make_foreground_background`: ``(name, RGB colour,
#: pattern)``. Each has its own hue and its own texture, so either one tells
#: the backgrounds apart.
FOREGROUND_BACKGROUND_TEXTURES: tuple[tuple[str, tuple[float, float, float], str], ...] = (
    ("red plain", (0.85, 0.15, 0.15), "plain"),
    ("green stripes", (0.2, 0.8, 0.2), "hstripes"),
    ("blue checks", (0.2, 0.35, 0.95), "checks"),
    ("yellow dots", (0.9, 0.85, 0.1), "dots"),
    ("cyan diagonals", (0.1, 0.85, 0.85), "diagonals"),
    ("magenta noise", (0.85, 0.2, 0.8), "noise"),
    ("orange bars", (0.95, 0.55, 0.1), "vstripes"),
    ("purple grid", (0.55, 0.3, 0.85), "grid"),
    ("teal gradient", (0.1, 0.6, 0.5), "gradient"),
    ("grey speckle", (0.6, 0.6, 0.6), "speckle"),
)

_SPLITS = ("diverse", "train", "val", "test")
_POOL_OF_SPLIT = {"diverse": "train", "train": "train", "val": "val", "test": "test"}
# the background keeps the digit readable: its brightness stays within these bounds
_MIN_LEVEL, _MAX_LEVEL = 0.25, 0.7


def _pattern(kind: str, n: int, size: int, rng) -> np.ndarray:
    """``n`` texture maps ``(n, size, size)`` in [0, 1] with random phases."""
    period = max(2, int(round(size / 7)))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    phase = rng.randint(0, period, size=(n, 2)).astype(np.float32)
    py = yy[None] + phase[:, 0, None, None]
    px = xx[None] + phase[:, 1, None, None]
    half = period / 2
    if kind == "plain":
        return np.full((n, size, size), 0.6, dtype=np.float32)
    if kind == "hstripes":
        return ((py % period) < half).astype(np.float32)
    if kind == "vstripes":
        return ((px % period) < half).astype(np.float32)
    if kind == "checks":
        return (((py // period) + (px // period)) % 2).astype(np.float32)
    if kind == "diagonals":
        return (((px + py) % (2 * period)) < period).astype(np.float32)
    if kind == "dots":
        dy = (py % period) - half + 0.5
        dx = (px % period) - half + 0.5
        return ((dy**2 + dx**2) <= (0.3 * period) ** 2 + 0.5).astype(np.float32)
    if kind == "grid":
        return (((py % period) < 1) | ((px % period) < 1)).astype(np.float32)
    if kind == "gradient":
        flip = rng.randint(0, 2, size=n).astype(bool)
        ramp = np.broadcast_to(yy / max(size - 1, 1), (n, size, size)).copy()
        ramp[flip] = 1.0 - ramp[flip]
        return ramp
    if kind == "noise":
        return rng.rand(n, size, size).astype(np.float32)
    if kind == "speckle":
        return (rng.rand(n, size, size) < 0.15).astype(np.float32)
    raise ValueError(f"unknown pattern {kind!r}")  # pragma: no cover - internal table


def _backgrounds(background: np.ndarray, size: int, rng) -> np.ndarray:
    """Background images ``(n, 3, size, size)`` for background indices ``background``."""
    out = np.empty((len(background), 3, size, size), dtype=np.float32)
    brightness = rng.uniform(0.85, 1.1, size=len(background)).astype(np.float32)
    for b in np.unique(background):
        where = np.flatnonzero(background == b)
        _, color, kind = FOREGROUND_BACKGROUND_TEXTURES[int(b)]
        level = _MIN_LEVEL + (_MAX_LEVEL - _MIN_LEVEL) * _pattern(kind, len(where), size, rng)
        level = level * brightness[where, None, None]
        out[where] = np.asarray(color, dtype=np.float32)[None, :, None, None] * level[:, None]
    return np.clip(out, 0.0, 1.0)


def _balanced(n: int, k: int, rng) -> np.ndarray:
    """``n`` values in ``0..k-1``, each ``n // k`` or ``n // k + 1`` times, shuffled."""
    extra = rng.choice(k, size=n % k, replace=False)
    return rng.permutation(np.concatenate([np.tile(np.arange(k), n // k), extra])).astype(np.int64)


def _draw_backgrounds(fg: np.ndarray, allowed: list[np.ndarray], rng) -> np.ndarray:
    """For each foreground class, spread its samples evenly over its allowed backgrounds."""
    bg = np.empty_like(fg)
    for c, choices in enumerate(allowed):
        where = np.flatnonzero(fg == c)
        bg[where] = choices[_balanced(len(where), len(choices), rng)]
    return bg


def _four_split_sizes(n_diverse, n_train, n_val, n_test) -> dict[str, int]:
    return {
        "diverse": _check_int(n_diverse, "n_diverse", 1),
        "train": _check_int(n_train, "n_train", 1),
        "val": _check_int(n_val, "n_val", 1),
        "test": _check_int(n_test, "n_test", 1),
    }


def _four_split_seeds(seeds) -> dict[str, int]:
    """Seeds of the four splits from the three drawn by ``_split_seeds`` after the first:
    ``diverse`` and ``train`` share a pool, so ``diverse`` gets a fourth stream."""
    return {"diverse": seeds[0] ^ 0x5A5A5A5, "train": seeds[0], "val": seeds[1], "test": seeds[2]}


def _two_label_result(target_names, background_names, pairing, params) -> Bunch:
    """The Bunch of a foreground / background data set before its splits are added."""
    return Bunch(
        target_names=target_names,
        background_names=background_names,
        spurious_names=background_names,
        group_names=_group_names(target_names, background_names),
        pairing=pairing,
        params={
            **params,
            "pairing": {target_names[c]: background_names[pairing[c]] for c in range(len(pairing))},
        },
    )


def _two_label_split(X, y, background, n_backgrounds, **extra) -> Bunch:
    return Bunch(
        X=np.clip(X, 0.0, 1.0).astype(np.float32),
        y=y,
        background=background,
        spurious=background,
        groups=y * n_backgrounds + background,
        labels=np.stack([y, background], axis=1),
        **extra,
    )


def _split_counts(result, what: str) -> str:
    return "\n".join(
        f"    {split:<7} {len(result[split].y):>6d} images, "
        f"{len(np.unique(result[split].groups)):>3d} {what}"
        for split in _SPLITS
    )


def make_foreground_background(
    n_diverse: int = 5000,
    n_train: int = 2000,
    n_val: int = 1000,
    n_test: int = 2000,
    *,
    n_foregrounds: int = 10,
    n_backgrounds: int = 10,
    image_size: int = 28,
    random_state=None,
) -> Bunch:
    """Handwritten digits on coloured textures, with foreground and background labels.

    The D3S setting (Kattakinda et al., sections 5-6) in miniature. The
    foreground is a white handwritten digit (label ``y``: the digit, one of
    ``n_foregrounds``), the background one of ``n_backgrounds`` coloured
    textures (label ``background``; see
    :data:`FOREGROUND_BACKGROUND_TEXTURES`). The digit is drawn over the
    texture (``x = (1 - m) * background + m``, ``m`` the stroke intensity).

    The splits follow section 6:

    * ``diverse`` holds every (foreground, background) pair equally often:
      the analogue of D3S, on which a disentangler is trained;
    * ``train`` and ``val`` are *correlated* (D3S\\ :sub:`corr`): each
      foreground class is paired with one background (``pairing``), so
      either label predicts the other perfectly;
    * ``test`` is *anti-correlated* (D3S\\ :sub:`anticorr`): every other
      pair, each equally often, and never the paired one.

    A classifier trained on ``train`` that uses the background fails on
    ``test``. Base digit images are split into disjoint pools first:
    ``diverse`` and ``train`` draw from one, ``val`` and ``test`` from their
    own.

    Parameters
    ----------
    n_diverse, n_train, n_val, n_test : int, default=5000, 2000, 1000, 2000
        Number of samples in each split (>= 1).
    n_foregrounds : int, default=10
        Foreground classes: the digits ``0`` to ``n_foregrounds - 1`` (2-10).
    n_backgrounds : int, default=10
        Backgrounds: the first ``n_backgrounds`` textures (2-10).
    image_size : int, default=28
        Side of the images in pixels (>= 8).
    random_state : int, RandomState instance or None, default=None
        Seeds the pools, the pairing, the draws and the rendering.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``diverse``, ``train``, ``val``, ``test``: Bunches with ``X`` (float32
        ``(n, 3, image_size, image_size)`` in [0, 1]), ``y`` (foreground),
        ``background``, ``spurious`` (the background again, for the group
        tools), ``groups`` (``y * n_backgrounds + background``) and
        ``base_index``, all int64 ``(n,)``, and ``labels`` (``(n, 2)``:
        foreground and background, what
        :class:`~skshortcut.WassersteinDisentangler` fits on);
        ``pairing`` (int64 ``(n_foregrounds,)``: the background of each
        foreground class in the correlated splits); ``target_names``,
        ``background_names``, ``spurious_names``, ``group_names``;
        ``params`` and ``DESCR``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.datasets import make_foreground_background
    >>> data = make_foreground_background(40, 20, 10, 30, n_foregrounds=3, n_backgrounds=3,
    ...                                   image_size=16, random_state=0)
    >>> data.train.X.shape, data.diverse.labels.shape
    ((20, 3, 16, 16), (40, 2))
    >>> bool(np.all(data.train.background == data.pairing[data.train.y]))
    True
    >>> bool(np.any(data.test.background == data.pairing[data.test.y]))
    False
    """
    sizes = _four_split_sizes(n_diverse, n_train, n_val, n_test)
    n_fg = _check_int(n_foregrounds, "n_foregrounds", 2)
    if n_fg > 10:
        raise ValueError(f"n_foregrounds must be at most 10 (the digits), got {n_fg}.")
    n_bg = _check_int(n_backgrounds, "n_backgrounds", 2)
    if n_bg > len(FOREGROUND_BACKGROUND_TEXTURES):
        raise ValueError(f"n_backgrounds must be at most {len(FOREGROUND_BACKGROUND_TEXTURES)}, got {n_bg}.")
    image_size = _check_image_size(image_size)

    pool_seed, *seeds = _split_seeds(random_state)
    pools = _base_pools(pool_seed)
    pair_rng = np.random.RandomState(pool_seed)
    order = pair_rng.permutation(n_bg)
    pairing = np.asarray([order[c % n_bg] for c in range(n_fg)], dtype=np.int64)
    everything = [np.arange(n_bg)] * n_fg
    allowed = {
        "diverse": everything,
        "train": [pairing[c : c + 1] for c in range(n_fg)],
        "val": [pairing[c : c + 1] for c in range(n_fg)],
        "test": [np.setdiff1d(np.arange(n_bg), pairing[c : c + 1]) for c in range(n_fg)],
    }
    target_names = [str(d) for d in range(n_fg)]
    background_names = [name for name, _, _ in FOREGROUND_BACKGROUND_TEXTURES[:n_bg]]
    result = _two_label_result(
        target_names, background_names, pairing,
        {"n_foregrounds": n_fg, "n_backgrounds": n_bg, "image_size": image_size},
    )
    split_seeds = _four_split_seeds(seeds)
    for split in _SPLITS:
        rng = np.random.RandomState(split_seeds[split])
        y = _balanced(sizes[split], n_fg, rng)
        background = _draw_backgrounds(y, allowed[split], rng)
        base_index = _draw_base(y, pools[_POOL_OF_SPLIT[split]], rng)
        strokes = _render(base_index, image_size, rng)[:, None]
        X = (1.0 - strokes) * _backgrounds(background, image_size, rng) + strokes
        result[split] = _two_label_split(X, y, background, n_bg, base_index=base_index)
    counts = _split_counts(result, "(foreground, background) pairs")
    result.DESCR = (
        "Foreground / background digits (scikit-learn handwritten digits)\n"
        "----------------------------------------------------------------\n"
        f"Foreground: a white digit 0-{n_fg - 1}; background: one of {n_bg} coloured textures "
        f"({', '.join(background_names)}). Correlated pairing used by train and val: "
        + ", ".join(f"{t} -> {background_names[pairing[c]]}" for c, t in enumerate(target_names))
        + ". diverse holds every pair, test every pair but the correlated ones. "
        f"Images (3, {image_size}, {image_size}) in [0, 1].\n" + counts
    )
    return result
