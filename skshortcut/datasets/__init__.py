"""Shortcut-learning benchmarks: embedded synthetic sets and real-format loaders.

The ``make_*`` functions build small benchmarks from scikit-learn's bundled
handwritten digits (no download) and return :class:`~sklearn.utils.Bunch`
objects with ``train`` / ``val`` / ``test`` splits. The ``load_*`` functions
read the standard releases of real benchmarks from a local folder and return
lazily loading :class:`torch.utils.data.Dataset` objects.
"""

from ._foreground_background import FOREGROUND_BACKGROUND_TEXTURES, make_foreground_background
from ._loaders import (
    ColoredMNISTDataset,
    ImageFileDataset,
    ShortcutImageDataset,
    load_celeba,
    load_colored_mnist,
    load_waterbirds,
)
from ._shapes import SHAPES, TINTS, make_shapes_on_tints
from ._synthetic import (
    COLORED_DIGITS_PRESETS,
    make_colored_digits,
    make_dominoes,
    make_patch_digits,
)

__all__ = [
    "COLORED_DIGITS_PRESETS",
    "ColoredMNISTDataset",
    "FOREGROUND_BACKGROUND_TEXTURES",
    "ImageFileDataset",
    "SHAPES",
    "ShortcutImageDataset",
    "TINTS",
    "load_celeba",
    "load_colored_mnist",
    "load_waterbirds",
    "make_colored_digits",
    "make_dominoes",
    "make_foreground_background",
    "make_patch_digits",
    "make_shapes_on_tints",
]
