"""Embedded shortcut benchmarks built from scikit-learn's handwritten digits.

Every benchmark here starts from the 1797 real 8x8 images that ship with
scikit-learn (:func:`sklearn.datasets.load_digits`), so nothing is downloaded.
The base images are first split into disjoint, digit-stratified train /
validation / test pools (60 % / 20 % / 20 %), so that no base image appears in
two splits. Each split then draws its samples from its own pool (with
replacement; every digit 0-9 equally often, up to one, in the coloured and
patch benchmarks) and renders each one at ``image_size`` pixels with a small random
affine jitter (rotation within +-12 degrees, scale 0.9-1.1, shift within +-2 px
at 28 px) and a mild random stroke-thickness change (a gamma in 0.75-1.33).
The digit fills a 20/28 box of the image, as MNIST digits do.

The spurious attribute of every benchmark is binary, and the group of a sample
is ``y * 2 + spurious``.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "COLORED_DIGITS_PRESETS",
    "make_colored_digits",
    "make_dominoes",
    "make_patch_digits",
]

#: Settings of :func:`make_colored_digits` (and of the ColoredMNIST loader) for
#: each ``regime``. ``agreement`` is P(colour == label) in a split and
#: ``label_noise`` the probability that the binary digit label is flipped.
COLORED_DIGITS_PRESETS: dict[str, dict[str, float]] = {
    # Balanced-colour test set: a clean measure of how much colour is used.
    "default": {
        "agreement": 0.95,
        "val_agreement": 0.95,
        "test_agreement": 0.5,
        "label_noise": 0.0,
    },
    # ExMap's C-MNIST (supplement 1.1): 99 % colour agreement in every split.
    "cmnist": {
        "agreement": 0.99,
        "val_agreement": 0.99,
        "test_agreement": 0.99,
        "label_noise": 0.0,
    },
    # Arjovsky et al.'s ColoredMNIST as used by Chroma-VAE (section 5.1):
    # label flipped with p_d = 0.25, colour flipped with p_c = 0.1 (train and
    # validation) and p_c = 0.9 (test).
    "arjovsky": {
        "agreement": 0.9,
        "val_agreement": 0.9,
        "test_agreement": 0.1,
        "label_noise": 0.25,
    },
}

_SPLITS = ("train", "val", "test")
_POOL_FRACTIONS = (0.6, 0.2, 0.2)
_DIGIT_BOX = 20 / 28
_MAX_ROTATION_DEG = 12.0
_SCALE_RANGE = (0.9, 1.1)
_MAX_SHIFT_PX_AT_28 = 2.0
_GAMMA_RANGE = (0.75, 4 / 3)
_BASE_UPSAMPLING = 4
_RENDER_BATCH = 2048
_PATCH_COLOR = (0.0, 0.0, 1.0)
_PATCH_SIZE_AT_28 = 4
_COLOR_NAMES = ("red", "green")
_BINARY_DIGIT_NAMES = ("0-4", "5-9")


# ---------------------------------------------------------------------------
# argument validation
# ---------------------------------------------------------------------------


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def _check_real(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [{low}, {high}], got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}.")
    return float(value)


def _check_probability(value, name: str) -> float:
    return _check_real(value, name, 0.0, 1.0)


def _check_image_size(image_size) -> int:
    return _check_int(image_size, "image_size", 8)


def _check_digit_pair(pair, name: str) -> tuple[int, int]:
    try:
        first, second = pair
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of two digits, got {pair!r}.") from None
    for digit in (first, second):
        if isinstance(digit, bool) or not isinstance(digit, numbers.Integral):
            raise ValueError(f"{name} must hold digits 0-9, got {pair!r}.")
        if not 0 <= digit <= 9:
            raise ValueError(f"{name} must hold digits 0-9, got {pair!r}.")
    if first == second:
        raise ValueError(f"{name} must hold two different digits, got {pair!r}.")
    return int(first), int(second)


# ---------------------------------------------------------------------------
# shared mechanics
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _base_digits() -> tuple[torch.Tensor, np.ndarray]:
    """Base images upsampled bicubically to ``(1797, 32, 32)`` in [0, 1], and their digits."""
    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    upsampled = F.interpolate(
        images, scale_factor=_BASE_UPSAMPLING, mode="bicubic", align_corners=False
    )
    target = digits.target.astype(np.int64)
    target.flags.writeable = False
    return upsampled[:, 0].clamp_(0.0, 1.0), target


def _split_seeds(random_state) -> tuple[int, ...]:
    """Draw one seed for the pool split and one for each of the three splits."""
    rng = check_random_state(random_state)
    return tuple(int(s) for s in rng.randint(np.iinfo(np.int32).max, size=4))


def _base_pools(seed: int) -> dict[str, np.ndarray]:
    """Split the base images into disjoint, digit-stratified pools."""
    _, target = _base_digits()
    index = np.arange(len(target))
    train_frac, val_frac, test_frac = _POOL_FRACTIONS
    train, rest = train_test_split(
        index, train_size=train_frac, stratify=target, random_state=seed
    )
    val, test = train_test_split(
        rest,
        train_size=val_frac / (val_frac + test_frac),
        stratify=target[rest],
        random_state=seed,
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _render(base_index: np.ndarray, image_size: int, rng) -> np.ndarray:
    """Render base images with a random affine jitter.

    Parameters
    ----------
    base_index : ndarray of shape (n,)
        Indices into the base images.
    image_size : int
        Side of the output images in pixels.
    rng : numpy.random.RandomState
        Source of the jitter.

    Returns
    -------
    ndarray of shape (n, image_size, image_size), float32
        Grey-level images in [0, 1] (white strokes on black).
    """
    images, _ = _base_digits()
    n = len(base_index)
    angle = np.deg2rad(rng.uniform(-_MAX_ROTATION_DEG, _MAX_ROTATION_DEG, n))
    scale = rng.uniform(*_SCALE_RANGE, n)
    # normalised coordinates span 2 units over the image side
    shift = rng.uniform(-_MAX_SHIFT_PX_AT_28, _MAX_SHIFT_PX_AT_28, (n, 2)) * 2 / 28
    gamma = np.exp(rng.uniform(*np.log(_GAMMA_RANGE), n))

    # The output point p maps to the input point R(-angle) (p - shift) / size,
    # i.e. the digit box is scaled to `size`, rotated by `angle`, then shifted.
    size = _DIGIT_BOX * scale
    cos, sin = np.cos(angle), np.sin(angle)
    inverse = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)
    inverse = inverse / size[:, None, None]
    offset = -np.einsum("nij,nj->ni", inverse, shift)
    theta = torch.from_numpy(np.concatenate([inverse, offset[:, :, None]], 2)).float()

    index = torch.from_numpy(np.asarray(base_index, dtype=np.int64))
    gamma_t = torch.from_numpy(gamma).float()
    out = np.empty((n, image_size, image_size), dtype=np.float32)
    for start in range(0, n, _RENDER_BATCH):
        stop = min(start + _RENDER_BATCH, n)
        batch = images[index[start:stop]].unsqueeze(1)
        grid = F.affine_grid(
            theta[start:stop], [stop - start, 1, image_size, image_size], align_corners=False
        )
        rendered = F.grid_sample(
            batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        rendered = rendered[:, 0].clamp_(0.0, 1.0).pow_(gamma_t[start:stop, None, None])
        out[start:stop] = rendered.numpy()
    return out


def _balanced_digits(n: int, rng) -> np.ndarray:
    """Digits 0-9, each ``n // 10`` times plus ``n % 10`` distinct extras, shuffled."""
    extra = rng.choice(10, size=n % 10, replace=False)
    return rng.permutation(np.concatenate([np.tile(np.arange(10), n // 10), extra]))


def _draw_base(digit: np.ndarray, pool: np.ndarray, rng) -> np.ndarray:
    """For each requested digit, draw a base image of that digit from ``pool``."""
    _, target = _base_digits()
    pool_digit = target[pool]
    base_index = np.empty(np.shape(digit), dtype=np.int64)
    for d in np.unique(digit):
        where = digit == d
        base_index[where] = rng.choice(pool[pool_digit == d], size=int(where.sum()))
    return base_index


def _exact_subset(index: np.ndarray, fraction: float, rng) -> np.ndarray:
    """Pick exactly ``round(fraction * len(index))`` elements (halves round up)."""
    count = int(np.floor(fraction * len(index) + 0.5 + 1e-9))
    return rng.choice(index, size=count, replace=False)


def _agreeing_attribute(y: np.ndarray, agreement: float, rng) -> np.ndarray:
    """Binary attribute equal to ``y`` on an exact ``agreement`` share of each class.

    In each class ``c`` with ``n_c`` members, exactly ``round((1 - agreement)
    * n_c)`` randomly chosen members get the attribute ``1 - c``.
    """
    attribute = y.copy()
    for c in (0, 1):
        disagree = _exact_subset(np.flatnonzero(y == c), 1.0 - agreement, rng)
        attribute[disagree] = 1 - c
    return attribute


def _assign_colors(
    digit: np.ndarray, *, agreement: float, label_noise: float, rng
) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and colours of the coloured-digit benchmarks.

    The label is ``digit >= 5``; exactly ``round(label_noise * n)`` labels are
    flipped; then the colour follows the (noisy) label on an exact
    ``agreement`` share of each class (see :func:`_agreeing_attribute`).

    Returns
    -------
    y : ndarray of shape (n,), int64
    color : ndarray of shape (n,), int64
        0 = red, 1 = green.
    """
    y = (np.asarray(digit) >= 5).astype(np.int64)
    flipped = _exact_subset(np.arange(len(y)), label_noise, rng)
    y[flipped] = 1 - y[flipped]
    return y, _agreeing_attribute(y, agreement, rng)


def _colorize(gray: np.ndarray, color: np.ndarray) -> np.ndarray:
    """Colour grey-level digits: red ``(I, 0, 0)`` for colour 0, green ``(0, I, 0)`` for 1.

    Parameters
    ----------
    gray : ndarray of shape (n, H, W)
    color : ndarray of shape (n,) with values in {0, 1}

    Returns
    -------
    ndarray of shape (n, 3, H, W), same dtype as ``gray``
    """
    out = np.zeros((gray.shape[0], 3) + gray.shape[1:], dtype=gray.dtype)
    out[np.arange(gray.shape[0]), np.asarray(color)] = gray
    return out


def _resolve_colored_params(
    regime: str,
    *,
    agreement: float | None,
    val_agreement: float | None,
    test_agreement: float | None,
    label_noise: float | None,
) -> dict[str, float | str]:
    """Combine a preset with explicit overrides (see :func:`make_colored_digits`)."""
    if regime not in COLORED_DIGITS_PRESETS:
        valid = ", ".join(repr(name) for name in COLORED_DIGITS_PRESETS)
        raise ValueError(f"regime must be one of {valid}, got {regime!r}.")
    preset = COLORED_DIGITS_PRESETS[regime]
    train = preset["agreement"] if agreement is None else agreement
    if val_agreement is None:
        val_agreement = preset["val_agreement"] if agreement is None else agreement
    params = {
        "regime": regime,
        "agreement": train,
        "val_agreement": val_agreement,
        "test_agreement": preset["test_agreement"] if test_agreement is None else test_agreement,
        "label_noise": preset["label_noise"] if label_noise is None else label_noise,
    }
    for name in ("agreement", "val_agreement", "test_agreement", "label_noise"):
        params[name] = _check_probability(params[name], name)
    return params


def _group_names(target_names, spurious_names) -> list[str]:
    """Readable group names indexed by ``y * len(spurious_names) + spurious``."""
    return [
        f"y={c} ({target}), {spurious}"
        for c, target in enumerate(target_names)
        for spurious in spurious_names
    ]


def _split_bunch(X, y, spurious, **extra) -> Bunch:
    y = np.asarray(y, dtype=np.int64)
    spurious = np.asarray(spurious, dtype=np.int64)
    return Bunch(X=X, y=y, spurious=spurious, groups=y * 2 + spurious, **extra)


def _split_sizes(n_train, n_val, n_test) -> dict[str, int]:
    return {
        "train": _check_int(n_train, "n_train", 1),
        "val": _check_int(n_val, "n_val", 1),
        "test": _check_int(n_test, "n_test", 1),
    }


def _group_table(result: Bunch) -> str:
    lines = []
    for split in _SPLITS:
        counts = np.bincount(result[split].groups, minlength=len(result.group_names))
        lines.append(f"    {split:<5}  " + "  ".join(f"{c:>6d}" for c in counts))
    groups = range(len(result.group_names))
    header = "    split  " + "  ".join(f"{'g' + str(g):>6}" for g in groups)
    names = "\n".join(f"    g{g} = {name}" for g, name in enumerate(result.group_names))
    return "\n".join([names, header, *lines])


# ---------------------------------------------------------------------------
# public generators
# ---------------------------------------------------------------------------


def make_colored_digits(
    n_train: int = 6000,
    n_val: int = 2000,
    n_test: int = 2000,
    *,
    regime: str = "default",
    agreement: float | None = None,
    val_agreement: float | None = None,
    test_agreement: float | None = None,
    label_noise: float | None = None,
    image_size: int = 28,
    random_state=None,
) -> Bunch:
    """Coloured handwritten digits: a colour shortcut for a digit-range label.

    The label is ``y = digit >= 5`` (optionally flipped with probability
    ``label_noise``); the spurious attribute is the colour of the strokes on a
    black background, 0 = red ``(I, 0, 0)`` and 1 = green ``(0, I, 0)``. The
    colour agrees with the label (class 0 red, class 1 green) on an
    ``agreement`` share of each split, so colour is a shortcut wherever the
    agreement is far from 0.5. This is the ColoredMNIST construction of
    Arjovsky et al. used by Chroma-VAE (section 5.1) and the C-MNIST of ExMap
    (supplement 1.1), on scikit-learn's 8x8 digits instead of MNIST.

    Counts are exact rather than sampled: each digit 0-9 appears ``n // 10``
    or ``n // 10 + 1`` times in a split of ``n``, exactly ``round(label_noise * n)``
    labels of a split are flipped, and in each class of ``n_c`` samples exactly
    ``round((1 - agreement) * n_c)`` (halves rounded up) get the disagreeing
    colour, at random positions. Small splits therefore still contain the
    minority groups whenever ``(1 - agreement) * n_c >= 0.5``. The label is
    flipped first and the colour drawn relative to the noisy label.

    Parameters
    ----------
    n_train, n_val, n_test : int, default=6000, 2000, 2000
        Number of samples in each split (>= 1).
    regime : {"default", "cmnist", "arjovsky"}, default="default"
        Preset of agreements and label noise, from
        :data:`COLORED_DIGITS_PRESETS`:

        ============  =====  =====  =====  ===========
        regime        train  val    test   label_noise
        ============  =====  =====  =====  ===========
        ``default``   0.95   0.95   0.5    0
        ``cmnist``    0.99   0.99   0.99   0
        ``arjovsky``  0.9    0.9    0.1    0.25
        ============  =====  =====  =====  ===========

    agreement : float in [0, 1], default=None
        P(colour == y) in the training split; overrides the preset.
    val_agreement : float in [0, 1], default=None
        P(colour == y) in the validation split. When None it is ``agreement``
        if that was given, else the preset's value.
    test_agreement : float in [0, 1], default=None
        P(colour == y) in the test split; overrides the preset.
    label_noise : float in [0, 1], default=None
        Probability that the binary digit label is flipped (every split);
        overrides the preset.
    image_size : int, default=28
        Side of the images in pixels (>= 8).
    random_state : int, RandomState instance or None, default=None
        Seeds the base-image pools, the draws and the rendering.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``train``, ``val``, ``test``: Bunches with ``X`` (float32
        ``(n, 3, image_size, image_size)`` in [0, 1]), ``y``, ``spurious``
        (colour), ``groups`` (``y * 2 + spurious``), ``digit`` (the base
        digit 0-9) and ``base_index`` (index into
        :func:`sklearn.datasets.load_digits`), all int64 ``(n,)``;
        ``group_names``, ``target_names``, ``spurious_names``; ``params`` (the
        resolved settings) and ``DESCR``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.datasets import make_colored_digits
    >>> data = make_colored_digits(40, 20, 20, random_state=0)
    >>> data.train.X.shape
    (40, 3, 28, 28)
    >>> data.group_names[1]
    'y=0 (0-4), green'
    >>> for split in ("train", "val", "test"):
    ...     print(split, np.bincount(data[split].groups, minlength=4))
    train [19  1  1 19]
    val [9 1 1 9]
    test [5 5 5 5]
    """
    sizes = _split_sizes(n_train, n_val, n_test)
    image_size = _check_image_size(image_size)
    params = _resolve_colored_params(
        regime,
        agreement=agreement,
        val_agreement=val_agreement,
        test_agreement=test_agreement,
        label_noise=label_noise,
    )
    split_agreement = {
        "train": params["agreement"],
        "val": params["val_agreement"],
        "test": params["test_agreement"],
    }
    pool_seed, *seeds = _split_seeds(random_state)
    pools = _base_pools(pool_seed)
    result = Bunch(
        target_names=list(_BINARY_DIGIT_NAMES),
        spurious_names=list(_COLOR_NAMES),
        group_names=_group_names(_BINARY_DIGIT_NAMES, _COLOR_NAMES),
        params={**params, "image_size": image_size},
    )
    for split, seed in zip(_SPLITS, seeds):
        rng = np.random.RandomState(seed)
        digit = _balanced_digits(sizes[split], rng)
        base_index = _draw_base(digit, pools[split], rng)
        y, color = _assign_colors(
            digit, agreement=split_agreement[split], label_noise=params["label_noise"], rng=rng
        )
        X = _colorize(_render(base_index, image_size, rng), color)
        result[split] = _split_bunch(X, y, color, digit=digit, base_index=base_index)
    result.DESCR = (
        "Coloured digits (scikit-learn handwritten digits)\n"
        "--------------------------------------------------\n"
        "Label y = digit >= 5 (0-4 vs 5-9), flipped with probability "
        f"{params['label_noise']}; spurious attribute = stroke colour "
        "(0 red, 1 green); colour == y with probability "
        f"{params['agreement']} (train), {params['val_agreement']} (val), "
        f"{params['test_agreement']} (test). Regime {params['regime']!r}. "
        f"Images (3, {image_size}, {image_size}) in [0, 1], white-on-black strokes "
        "coloured red or green.\nGroup counts:\n" + _group_table(result)
    )
    return result


def _patch_fractions(value, name: str, patch_class: int) -> tuple[float, float]:
    """Per-class patch fractions ``(class 0, class 1)`` from a float or a pair."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        fractions = [0.0, 0.0]
        fractions[patch_class] = _check_probability(value, name)
        return fractions[0], fractions[1]
    try:
        first, second = value
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a float in [0, 1] or a pair (class 0, class 1) of them, "
            f"got {value!r}."
        ) from None
    return _check_probability(first, name), _check_probability(second, name)


def make_patch_digits(
    n_train: int = 6000,
    n_val: int = 2000,
    n_test: int = 2000,
    *,
    patch_fraction=0.9,
    patch_class: int = 1,
    val_patch_fraction=None,
    test_patch_fraction=(0.5, 0.5),
    patch_size: int | None = None,
    image_size: int = 28,
    random_state=None,
) -> Bunch:
    """White digits with a blue corner patch as a shortcut.

    The synthetic-patch experiment of Chroma-VAE (section 3.1: a blue square
    on 90 % of the positive class of CelebA; figure 3 shows it in the
    bottom-right corner) on scikit-learn's handwritten digits. The label is
    ``y = digit >= 5``; the image is the grey digit replicated to three
    channels (white strokes on black); a pure blue ``(0, 0, 1)`` square of
    ``patch_size`` pixels is painted over the bottom-right corner. The
    spurious attribute is whether the patch is present.

    With the defaults the patch is on 90 % of class 1 and on no image of class
    0 in train and validation, so "patch => class 1" is a shortcut there, and
    on 50 % of each class in test, where it carries no information about the
    label.

    Counts are exact: each digit 0-9 appears ``n // 10`` or ``n // 10 + 1``
    times in a split of ``n`` and, in each class of ``n_c`` samples, exactly
    ``round(fraction * n_c)`` (halves rounded up) randomly chosen images
    carry the patch.

    Parameters
    ----------
    n_train, n_val, n_test : int, default=6000, 2000, 2000
        Number of samples in each split (>= 1).
    patch_fraction : float or pair of floats in [0, 1], default=0.9
        Patch frequency in the training split. A float ``f`` puts the patch on
        a fraction ``f`` of the images of class ``patch_class`` and on none of
        the other class; a pair ``(f0, f1)`` gives the fractions of class 0
        and class 1 directly.
    patch_class : {0, 1}, default=1
        The class a float fraction refers to.
    val_patch_fraction : float, pair or None, default=None
        Same for the validation split; None means ``patch_fraction``.
    test_patch_fraction : float or pair, default=(0.5, 0.5)
        Same for the test split; the default makes the patch independent of
        the label.
    patch_size : int, default=None
        Side of the square in pixels (1 to ``image_size``); None means
        ``round(4 * image_size / 28)``.
    image_size : int, default=28
        Side of the images in pixels (>= 8).
    random_state : int, RandomState instance or None, default=None
        Seeds the base-image pools, the draws and the rendering.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``train``, ``val``, ``test``: Bunches with ``X`` (float32
        ``(n, 3, image_size, image_size)`` in [0, 1]), ``y``, ``spurious``
        (1 = patch present), ``groups`` (``y * 2 + spurious``), ``digit`` and
        ``base_index``, all int64 ``(n,)``; ``group_names``,
        ``target_names``, ``spurious_names``; ``patch_region`` (boolean
        ``(image_size, image_size)`` mask of the patch); ``params`` (the
        resolved settings, fractions as ``(class 0, class 1)``) and ``DESCR``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.datasets import make_patch_digits
    >>> data = make_patch_digits(40, 20, 20, random_state=0)
    >>> data.train.X.shape
    (40, 3, 28, 28)
    >>> for split in ("train", "val", "test"):
    ...     print(split, np.bincount(data[split].groups, minlength=4))
    train [20  0  2 18]
    val [10  0  1  9]
    test [5 5 5 5]
    """
    sizes = _split_sizes(n_train, n_val, n_test)
    image_size = _check_image_size(image_size)
    if patch_class not in (0, 1) or isinstance(patch_class, bool):
        raise ValueError(f"patch_class must be 0 or 1, got {patch_class!r}.")
    if patch_size is None:
        patch_size = max(1, int(round(_PATCH_SIZE_AT_28 * image_size / 28)))
    patch_size = _check_int(patch_size, "patch_size", 1)
    if patch_size > image_size:
        raise ValueError(
            f"patch_size must be at most image_size={image_size}, got {patch_size}."
        )
    train_fractions = _patch_fractions(patch_fraction, "patch_fraction", patch_class)
    fractions = {
        "train": train_fractions,
        "val": train_fractions
        if val_patch_fraction is None
        else _patch_fractions(val_patch_fraction, "val_patch_fraction", patch_class),
        "test": _patch_fractions(test_patch_fraction, "test_patch_fraction", patch_class),
    }
    patch_region = np.zeros((image_size, image_size), dtype=bool)
    patch_region[image_size - patch_size :, image_size - patch_size :] = True

    pool_seed, *seeds = _split_seeds(random_state)
    pools = _base_pools(pool_seed)
    spurious_names = ["no patch", "patch"]
    result = Bunch(
        target_names=list(_BINARY_DIGIT_NAMES),
        spurious_names=spurious_names,
        group_names=_group_names(_BINARY_DIGIT_NAMES, spurious_names),
        patch_region=patch_region,
        params={
            "patch_fraction": fractions["train"],
            "val_patch_fraction": fractions["val"],
            "test_patch_fraction": fractions["test"],
            "patch_size": patch_size,
            "patch_color": _PATCH_COLOR,
            "image_size": image_size,
        },
    )
    color = np.asarray(_PATCH_COLOR, dtype=np.float32)[:, None, None]
    for split, seed in zip(_SPLITS, seeds):
        rng = np.random.RandomState(seed)
        digit = _balanced_digits(sizes[split], rng)
        base_index = _draw_base(digit, pools[split], rng)
        y = (digit >= 5).astype(np.int64)
        patch = np.zeros_like(y)
        for c in (0, 1):
            patch[_exact_subset(np.flatnonzero(y == c), fractions[split][c], rng)] = 1
        gray = _render(base_index, image_size, rng)
        X = np.repeat(gray[:, None], 3, axis=1)
        X[patch == 1, :, image_size - patch_size :, image_size - patch_size :] = color
        result[split] = _split_bunch(X, y, patch, digit=digit, base_index=base_index)
    result.DESCR = (
        "Patch digits (scikit-learn handwritten digits)\n"
        "----------------------------------------------\n"
        "Label y = digit >= 5 (0-4 vs 5-9); spurious attribute = a blue "
        f"{patch_size}x{patch_size} square in the bottom-right corner. Fraction "
        "of (class 0, class 1) images with the patch: "
        f"{fractions['train']} (train), {fractions['val']} (val), "
        f"{fractions['test']} (test). Images (3, {image_size}, {image_size}) in "
        "[0, 1], white strokes on black.\nGroup counts:\n" + _group_table(result)
    )
    return result


def make_dominoes(
    n_train: int = 6000,
    n_val: int = 2000,
    n_test: int = 2000,
    *,
    core_pair: tuple[int, int] = (3, 8),
    spurious_pair: tuple[int, int] = (0, 1),
    correlation: float = 1.0,
    val_correlation: float | None = None,
    test_correlation: float = 0.0,
    image_size: int = 28,
    random_state=None,
) -> Bunch:
    """Digit dominoes: two stacked digits, the easier one a shortcut for the other.

    The MF-Dominoes benchmark of Chroma-VAE (section 5.2, after Shah et al.
    and Lee et al.) stacks an MNIST digit (0 or 1, the shortcut) on top of a
    Fashion-MNIST object (coat or dress, the label). Here both halves are
    handwritten digits: the top half shows a digit from ``spurious_pair`` and
    the bottom half a digit from ``core_pair``. The label is the position of
    the bottom digit in ``core_pair`` and the spurious attribute the position
    of the top digit in ``spurious_pair``. The defaults, 0 vs 1 on top and
    3 vs 8 below, keep the paper's ordering of difficulty: 0 vs 1 is the
    easiest pair of digits to tell apart (an RBF SVM on 300 rendered images
    scores about 99.8 %), 3 vs 8 one of the most confusable (about 96 %), so a
    model that may use either half prefers the top one.

    ``correlation`` is the correlation between label and spurious attribute:
    P(spurious == y) = (1 + correlation) / 2, so 1 means completely correlated
    (the "harder" setting of Lee et al. used by Chroma-VAE, no minority
    groups), 0 independent and -1 always opposite. Classes are balanced (their
    sizes differ by at most one) and, in each class of ``n_c`` samples,
    exactly ``round((1 - correlation) / 2 * n_c)`` (halves rounded up) samples
    disagree.

    Parameters
    ----------
    n_train, n_val, n_test : int, default=6000, 2000, 2000
        Number of samples in each split (>= 1).
    core_pair : pair of int, default=(3, 8)
        Digits of class 0 and class 1 in the bottom (core) half.
    spurious_pair : pair of int, default=(0, 1)
        Digits of spurious value 0 and 1 in the top half.
    correlation : float in [-1, 1], default=1.0
        Label / spurious correlation in the training split.
    val_correlation : float in [-1, 1], default=None
        Same for the validation split; None means ``correlation``. Pass 0 for
        a group-balanced validation set.
    test_correlation : float in [-1, 1], default=0.0
        Same for the test split.
    image_size : int, default=28
        Side of each half in pixels (>= 8); images are
        ``(3, 2 * image_size, image_size)``.
    random_state : int, RandomState instance or None, default=None
        Seeds the base-image pools, the draws and the rendering.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``train``, ``val``, ``test``: Bunches with ``X`` (float32
        ``(n, 3, 2 * image_size, image_size)`` in [0, 1]), ``y``,
        ``spurious``, ``groups`` (``y * 2 + spurious``), all int64 ``(n,)``,
        and ``digit`` and ``base_index``, int64 ``(n, 2)`` with columns (top,
        bottom); ``core_region`` (boolean ``(2 * image_size, image_size)``
        mask, True on the bottom, core half); ``group_names``,
        ``target_names``, ``spurious_names``; ``params`` and ``DESCR``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.datasets import make_dominoes
    >>> data = make_dominoes(40, 20, 20, random_state=0)
    >>> data.train.X.shape
    (40, 3, 56, 28)
    >>> for split in ("train", "val", "test"):
    ...     print(split, np.bincount(data[split].groups, minlength=4))
    train [20  0  0 20]
    val [10  0  0 10]
    test [5 5 5 5]
    """
    sizes = _split_sizes(n_train, n_val, n_test)
    image_size = _check_image_size(image_size)
    core_pair = _check_digit_pair(core_pair, "core_pair")
    spurious_pair = _check_digit_pair(spurious_pair, "spurious_pair")
    correlations = {
        "train": _check_real(correlation, "correlation", -1.0, 1.0),
        "val": _check_real(
            correlation if val_correlation is None else val_correlation,
            "val_correlation",
            -1.0,
            1.0,
        ),
        "test": _check_real(test_correlation, "test_correlation", -1.0, 1.0),
    }
    core_region = np.zeros((2 * image_size, image_size), dtype=bool)
    core_region[image_size:] = True

    pool_seed, *seeds = _split_seeds(random_state)
    pools = _base_pools(pool_seed)
    target_names = [f"core {d}" for d in core_pair]
    spurious_names = [f"spurious {d}" for d in spurious_pair]
    result = Bunch(
        target_names=target_names,
        spurious_names=spurious_names,
        group_names=_group_names(target_names, spurious_names),
        core_region=core_region,
        params={
            "core_pair": core_pair,
            "spurious_pair": spurious_pair,
            "correlation": correlations["train"],
            "val_correlation": correlations["val"],
            "test_correlation": correlations["test"],
            "image_size": image_size,
        },
    )
    core_digits, spurious_digits = np.asarray(core_pair), np.asarray(spurious_pair)
    for split, seed in zip(_SPLITS, seeds):
        rng = np.random.RandomState(seed)
        n = sizes[split]
        y = rng.permutation(np.arange(n) % 2).astype(np.int64)
        spurious = _agreeing_attribute(y, (1.0 + correlations[split]) / 2.0, rng)
        digit = np.stack([spurious_digits[spurious], core_digits[y]], axis=1)
        base_index = _draw_base(digit, pools[split], rng)
        halves = _render(base_index.ravel(), image_size, rng).reshape(
            n, 2 * image_size, image_size
        )
        X = np.repeat(halves[:, None], 3, axis=1)
        result[split] = _split_bunch(X, y, spurious, digit=digit, base_index=base_index)
    result.DESCR = (
        "Digit dominoes (scikit-learn handwritten digits)\n"
        "------------------------------------------------\n"
        f"Top half: digit {spurious_pair[0]} or {spurious_pair[1]} (spurious "
        f"attribute); bottom half: digit {core_pair[0]} or {core_pair[1]} (label). "
        "Label / spurious correlation: "
        f"{correlations['train']} (train), {correlations['val']} (val), "
        f"{correlations['test']} (test). Images (3, {2 * image_size}, {image_size}) "
        "in [0, 1], white strokes on black; core_region marks the bottom half."
        "\nGroup counts:\n" + _group_table(result)
    )
    return result
