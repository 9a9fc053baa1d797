"""Loaders for the standard releases of real shortcut benchmarks.

Nothing here downloads anything: every loader reads files the user already
has under ``root`` and raises :class:`FileNotFoundError` naming the expected
path when one is missing. Every loader returns a
:class:`ShortcutImageDataset`, a :class:`torch.utils.data.Dataset` whose items
are ``(image, y, group)`` and which carries the labels as numpy arrays, so
that group metrics never need to open an image.
"""

from __future__ import annotations

import abc
import csv
import gzip
import os
import struct
from pathlib import Path, PurePath

import numpy as np
from PIL import Image
from sklearn.utils import check_random_state
from torch.utils.data import Dataset

from ._synthetic import (
    _COLOR_NAMES,
    _assign_colors,
    _BINARY_DIGIT_NAMES,
    _check_image_size,
    _check_int,
    _colorize,
    _group_names,
    _resolve_colored_params,
)

__all__ = [
    "ColoredMNISTDataset",
    "ImageFileDataset",
    "ShortcutImageDataset",
    "load_celeba",
    "load_colored_mnist",
    "load_waterbirds",
]

_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_SPLIT_CHOICES = ("train", "val", "test", "all")
_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049


def _check_split(split) -> str:
    if split not in _SPLIT_CHOICES:
        valid = ", ".join(repr(s) for s in _SPLIT_CHOICES)
        raise ValueError(f"split must be one of {valid}, got {split!r}.")
    return split


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: expected {path}")
    return path


def _inside(base: Path, relative: str, what: str) -> Path:
    """Join ``relative`` to ``base``, rejecting paths that leave ``base``.

    The check is lexical (``..`` and absolute paths are rejected), so image
    folders that are symbolic links inside ``base`` keep working.
    """
    if PurePath(relative).is_absolute():
        raise ValueError(
            f"{what} {relative!r} is an absolute path; expected a path inside {base}."
        )
    path = Path(os.path.normpath(base / relative))
    if not path.is_relative_to(base):
        raise ValueError(f"{what} {relative!r} resolves outside {base}.")
    return path


def _resolve_transform(transform, image_size):
    """Return ``transform``, or the default resize + to-tensor one when it is None."""
    if transform is not None:
        return transform
    # imported here: torchvision takes seconds to import
    from torchvision import transforms

    image_size = _check_image_size(image_size)
    return transforms.Compose([transforms.Resize((image_size, image_size)), transforms.ToTensor()])


class ShortcutImageDataset(Dataset, abc.ABC):
    """Image dataset with a class label and a binary spurious attribute.

    Items are ``(image, y, group)``: ``image`` is what ``transform`` makes of
    the RGB :class:`PIL.Image.Image` (by default a float tensor
    ``(3, image_size, image_size)`` in [0, 1]), ``y`` the class label and
    ``group = y * len(spurious_names) + spurious``, both ints. Images are read
    only when an item is requested; the labels are available at once as numpy
    arrays.

    Subclasses implement :meth:`load_image`.

    Parameters
    ----------
    y : array-like of shape (n,)
        Class labels, 0 to ``len(target_names) - 1``.
    spurious : array-like of shape (n,)
        Spurious attribute, 0 to ``len(spurious_names) - 1``.
    target_names, spurious_names : list of str
        Readable names of the classes and of the spurious values.
    split : str
        Which split this is ("train", "val", "test" or "all").
    image_size : int
        Side of the images made by the default transform.
    transform : callable, default=None
        Maps the PIL image to the returned image; replaces the default
        ``Resize((image_size, image_size))`` + ``ToTensor()``.

    Attributes
    ----------
    y, spurious, groups : ndarray of shape (n,), int64
    group_names : list of str
        Names indexed by group id.
    target_names, spurious_names : list of str
    split : str
    transform : callable
    """

    def __init__(
        self,
        *,
        y,
        spurious,
        target_names,
        spurious_names,
        split: str,
        image_size: int,
        transform=None,
    ):
        self.y = np.asarray(y, dtype=np.int64)
        self.spurious = np.asarray(spurious, dtype=np.int64)
        self.groups = self.y * len(spurious_names) + self.spurious
        self.target_names = list(target_names)
        self.spurious_names = list(spurious_names)
        self.group_names = _group_names(self.target_names, self.spurious_names)
        self.split = split
        self.transform = _resolve_transform(transform, image_size)

    def __len__(self) -> int:
        return len(self.y)

    @abc.abstractmethod
    def load_image(self, index: int) -> Image.Image:
        """Return the ``index``-th image as an RGB PIL image, untransformed."""

    def __getitem__(self, index: int):
        image = self.transform(self.load_image(index))
        return image, int(self.y[index]), int(self.groups[index])

    def __repr__(self) -> str:
        counts = np.bincount(self.groups, minlength=len(self.group_names))
        return (
            f"{type(self).__name__}(split={self.split!r}, n={len(self)}, "
            f"group_counts={counts.tolist()})"
        )


class ImageFileDataset(ShortcutImageDataset):
    """:class:`ShortcutImageDataset` over image files, opened lazily with PIL.

    Parameters
    ----------
    paths : sequence of path-like
        One image file per sample.
    **kwargs
        Passed to :class:`ShortcutImageDataset`.

    Attributes
    ----------
    paths : list of pathlib.Path
    """

    def __init__(self, paths, **kwargs):
        super().__init__(**kwargs)
        self.paths = [Path(p) for p in paths]
        if len(self.paths) != len(self.y):
            raise ValueError(f"got {len(self.paths)} paths for {len(self.y)} labels.")

    def load_image(self, index: int) -> Image.Image:
        path = _require_file(self.paths[index], "image")
        with Image.open(path) as image:
            return image.convert("RGB")


class ColoredMNISTDataset(ShortcutImageDataset):
    """:class:`ShortcutImageDataset` of coloured MNIST digits held in memory.

    Parameters
    ----------
    data : ndarray of shape (n, H, W), uint8
        Grey-level digits.
    digits : ndarray of shape (n,)
        The digit of each image.
    **kwargs
        Passed to :class:`ShortcutImageDataset`; ``spurious`` is the colour
        (0 red, 1 green).

    Attributes
    ----------
    data : ndarray of shape (n, H, W), uint8
    digits : ndarray of shape (n,), int64
    """

    def __init__(self, data, digits, **kwargs):
        super().__init__(**kwargs)
        self.data = np.asarray(data, dtype=np.uint8)
        self.digits = np.asarray(digits, dtype=np.int64)

    def load_image(self, index: int) -> Image.Image:
        rgb = _colorize(self.data[index][None], self.spurious[index][None])[0]
        return Image.fromarray(np.ascontiguousarray(rgb.transpose(1, 2, 0)))


def load_waterbirds(
    root, split: str = "train", *, image_size: int = 224, transform=None
) -> ImageFileDataset:
    """Load the Waterbirds benchmark from its standard release.

    Waterbirds (Sagawa et al.; ExMap supplement 1.2) pastes CUB birds on
    Places backgrounds: the label is the bird type (0 landbird, 1 waterbird),
    the spurious attribute the background (0 land, 1 water). The release
    directory holds ``metadata.csv`` with the columns ``img_id``,
    ``img_filename``, ``y``, ``split`` (0 train, 1 val, 2 test), ``place``
    and ``place_filename``; images are at ``root/<img_filename>``.

    Parameters
    ----------
    root : path-like
        The release directory (the one holding ``metadata.csv``).
    split : {"train", "val", "test", "all"}, default="train"
    image_size : int, default=224
        Side of the images made by the default transform (resize, then
        :class:`~torchvision.transforms.ToTensor`); ignored when
        ``transform`` is given.
    transform : callable, default=None
        Applied to each RGB PIL image instead of the default.

    Returns
    -------
    ImageFileDataset
        Items ``(image, y, group)``; ``group = y * 2 + place``.

    Raises
    ------
    FileNotFoundError
        If ``metadata.csv`` is missing (or, when the item is read, an image).
    ValueError
        If the metadata is malformed or names a file outside ``root``.

    Examples
    --------
    >>> from skshortcut.datasets import load_waterbirds
    >>> train = load_waterbirds("data/waterbird_complete95_forest2water2")  # doctest: +SKIP
    >>> image, y, group = train[0]  # doctest: +SKIP
    """
    split = _check_split(split)
    transform = _resolve_transform(transform, image_size)
    root = Path(root).resolve()
    metadata = _require_file(root / "metadata.csv", "Waterbirds metadata")
    with open(metadata, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"img_filename", "y", "split", "place"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{metadata} lacks the column(s) {sorted(missing)}.")
        rows = list(reader)
    try:
        codes = np.array([int(row["split"]) for row in rows], dtype=np.int64)
        y = np.array([int(row["y"]) for row in rows], dtype=np.int64)
        place = np.array([int(row["place"]) for row in rows], dtype=np.int64)
    except ValueError as error:
        raise ValueError(f"{metadata} holds a non-integer label: {error}") from None
    checks = (("y", y, (0, 1)), ("place", place, (0, 1)), ("split", codes, (0, 1, 2)))
    for name, values, valid in checks:
        if not np.isin(values, valid).all():
            raise ValueError(f"{metadata}: column {name!r} must only hold {valid}.")
    keep = np.ones(len(rows), dtype=bool) if split == "all" else codes == _SPLIT_CODES[split]
    paths = [
        _inside(root, rows[i]["img_filename"], "img_filename") for i in np.flatnonzero(keep)
    ]
    return ImageFileDataset(
        paths,
        y=y[keep],
        spurious=place[keep],
        target_names=["landbird", "waterbird"],
        spurious_names=["land", "water"],
        split=split,
        image_size=image_size,
        transform=transform,
    )


def _celeba_dir(root: Path) -> Path:
    for candidate in (root, root / "celeba"):
        if (candidate / "list_attr_celeba.txt").is_file():
            return candidate
    raise FileNotFoundError(
        "CelebA attributes not found: expected "
        f"{root / 'list_attr_celeba.txt'} or {root / 'celeba' / 'list_attr_celeba.txt'}"
    )


def _read_celeba_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with open(path) as f:
        lines = f.read().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path} is too short to be a CelebA attribute file.")
    names = lines[1].split()
    filenames, values = [], []
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise ValueError(
                f"{path}, line {number}: expected a filename and {len(names)} values, "
                f"got {len(parts)} fields."
            )
        filenames.append(parts[0])
        values.append(parts[1:])
    try:
        declared = int(lines[0].split()[0])
    except (IndexError, ValueError):
        raise ValueError(f"{path}: the first line must be the number of images.") from None
    if declared != len(filenames):
        raise ValueError(f"{path} declares {declared} images but lists {len(filenames)}.")
    return names, filenames, np.array(values, dtype=np.int64).reshape(len(filenames), len(names))


def load_celeba(
    root,
    split: str = "train",
    *,
    target: str = "Blond_Hair",
    spurious: str = "Male",
    image_size: int = 224,
    transform=None,
) -> ImageFileDataset:
    """Load CelebA from its official files, with one attribute as label and one as shortcut.

    The default task is the group-robustness benchmark of Sagawa et al. used
    by ExMap and Chroma-VAE: predict ``Blond_Hair`` with ``Male`` as the
    spurious attribute. Attribute values -1 / 1 become 0 / 1.

    The files are looked up in ``root`` and then in ``root/celeba`` (the
    layout torchvision uses): ``list_attr_celeba.txt`` (first line: the image
    count; second: the 40 attribute names; then ``filename v1 ... v40``),
    ``list_eval_partition.txt`` (``filename 0|1|2`` for train, val, test) and
    the images in ``img_align_celeba/``.

    Parameters
    ----------
    root : path-like
        The directory holding the files, or its parent holding ``celeba/``.
    split : {"train", "val", "test", "all"}, default="train"
    target : str, default="Blond_Hair"
        Attribute used as the label.
    spurious : str, default="Male"
        Attribute used as the spurious attribute.
    image_size : int, default=224
        Side of the images made by the default transform (resize, then
        :class:`~torchvision.transforms.ToTensor`); ignored when
        ``transform`` is given.
    transform : callable, default=None
        Applied to each RGB PIL image instead of the default.

    Returns
    -------
    ImageFileDataset
        Items ``(image, y, group)``; ``group = y * 2 + spurious``.

    Raises
    ------
    FileNotFoundError
        If a metadata file is missing (or, when the item is read, an image).
    ValueError
        If an attribute name is unknown, the files are malformed, or a
        filename points outside ``img_align_celeba/``.

    Examples
    --------
    >>> from skshortcut.datasets import load_celeba
    >>> test = load_celeba("data", split="test")  # doctest: +SKIP
    >>> test.group_names[3]  # doctest: +SKIP
    'y=1 (Blond_Hair), Male'
    """
    split = _check_split(split)
    transform = _resolve_transform(transform, image_size)
    base = _celeba_dir(Path(root).resolve())
    attr_path = base / "list_attr_celeba.txt"
    partition_path = _require_file(base / "list_eval_partition.txt", "CelebA partition file")
    image_dir = base / "img_align_celeba"
    names, filenames, values = _read_celeba_attributes(attr_path)
    for argument, name in (("target", target), ("spurious", spurious)):
        if name not in names:
            raise ValueError(
                f"{argument}={name!r} is not a CelebA attribute; valid names: {', '.join(names)}."
            )
    partition = {}
    with open(partition_path) as f:
        for number, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{partition_path}, line {number}: expected 'filename 0|1|2'.")
            partition[parts[0]] = int(parts[1])
    unlisted = [name for name in filenames if name not in partition]
    if unlisted:
        raise ValueError(
            f"{partition_path} has no split for {len(unlisted)} image(s), "
            f"e.g. {unlisted[0]!r}."
        )
    codes = np.array([partition[name] for name in filenames], dtype=np.int64)
    keep = np.ones(len(filenames), dtype=bool) if split == "all" else codes == _SPLIT_CODES[split]
    binary = (values > 0).astype(np.int64)
    return ImageFileDataset(
        [_inside(image_dir, filenames[i], "filename") for i in np.flatnonzero(keep)],
        y=binary[keep, names.index(target)],
        spurious=binary[keep, names.index(spurious)],
        target_names=[f"not {target}", target],
        spurious_names=[f"not {spurious}", spurious],
        split=split,
        image_size=image_size,
        transform=transform,
    )


def _read_idx(root: Path, name: str, magic: int) -> np.ndarray:
    """Read an MNIST idx file ``root/MNIST/raw/<name>`` (or ``<name>.gz``)."""
    path = root / "MNIST" / "raw" / name
    if path.is_file():
        with open(path, "rb") as f:
            raw = f.read()
    elif path.with_name(name + ".gz").is_file():
        with gzip.open(path.with_name(name + ".gz"), "rb") as f:
            raw = f.read()
    else:
        raise FileNotFoundError(f"MNIST file not found: expected {path} (or {path}.gz)")
    if len(raw) < 4 or struct.unpack(">i", raw[:4])[0] != magic:
        raise ValueError(f"{path} is not an idx file with magic number {magic}.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} values; its header announces {shape}.")
    return data.reshape(shape)


def _check_mnist_pair(root: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Check that an MNIST images file and its labels file belong together."""
    # the magic numbers fix the dimensions (3 for images, 1 for labels): only the counts can disagree
    raw = root / "MNIST" / "raw"
    if len(images) != len(labels):
        raise ValueError(
            f"{raw / (prefix + '-images-idx3-ubyte')} holds {len(images)} images but "
            f"{raw / (prefix + '-labels-idx1-ubyte')} holds {len(labels)} labels; they must match."
        )
    # idx label files are unsigned bytes, so only the upper bound can be violated
    bad = np.flatnonzero(labels > 9)
    if len(bad):
        raise ValueError(
            f"{raw / (prefix + '-labels-idx1-ubyte')} holds digit labels outside 0-9 (first: {int(labels[bad[0]])} "
            f"at index {int(bad[0])}, {len(bad)} in all)."
        )


def load_colored_mnist(
    root,
    split: str = "train",
    *,
    regime: str = "arjovsky",
    agreement: float | None = None,
    val_agreement: float | None = None,
    test_agreement: float | None = None,
    label_noise: float | None = None,
    n_val: int = 10000,
    image_size: int = 28,
    transform=None,
    random_state=0,
) -> ColoredMNISTDataset:
    """Coloured MNIST from the raw MNIST idx files.

    The labels and colours follow exactly the rules and presets of
    :func:`~skshortcut.datasets.make_colored_digits` (label ``digit >= 5``,
    label noise, colour agreement per split, exact counts, red ``(I, 0, 0)``
    / green ``(0, I, 0)`` strokes); the default regime ``"arjovsky"`` is the
    ColoredMNIST of Chroma-VAE section 5.1 and ``"cmnist"`` the C-MNIST of
    ExMap. As in Arjovsky et al. and ExMap, the last ``n_val`` images of the
    MNIST training file form the validation split, the others the training
    split, and the MNIST test file the test split.

    The files are read as torchvision stores them, uncompressed or gzipped:
    ``root/MNIST/raw/train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte``.

    Parameters
    ----------
    root : path-like
        The directory holding ``MNIST/raw``.
    split : {"train", "val", "test", "all"}, default="train"
        "all" concatenates train, val and test, each coloured with its own
        agreement.
    regime, agreement, val_agreement, test_agreement, label_noise
        As in :func:`~skshortcut.datasets.make_colored_digits`.
    n_val : int, default=10000
        Number of training-file images used for validation (>= 1, fewer than
        the training-file images).
    image_size : int, default=28
        Side of the images made by the default transform.
    transform : callable, default=None
        Applied to each RGB PIL image instead of the default.
    random_state : int, RandomState instance or None, default=0
        Seeds the label noise and colours. Each split draws from its own
        seed, so a split is coloured the same whichever split is loaded.

    Returns
    -------
    ColoredMNISTDataset
        Items ``(image, y, group)``; ``spurious`` is the colour (0 red, 1
        green), ``groups = y * 2 + spurious``; ``data`` holds the grey digits,
        ``digits`` the original digit labels and ``params`` the resolved
        settings.

    Raises
    ------
    FileNotFoundError
        If an idx file is missing.
    ValueError
        If an idx file is malformed, an images file and its labels file hold
        different numbers of samples, a label is not a digit 0-9, or an
        argument is invalid.

    Examples
    --------
    >>> from skshortcut.datasets import load_colored_mnist
    >>> test = load_colored_mnist("data", split="test")  # doctest: +SKIP
    >>> image, y, group = test[0]  # doctest: +SKIP
    """
    split = _check_split(split)
    transform = _resolve_transform(transform, image_size)
    params = _resolve_colored_params(
        regime,
        agreement=agreement,
        val_agreement=val_agreement,
        test_agreement=test_agreement,
        label_noise=label_noise,
    )
    n_val = _check_int(n_val, "n_val", 1)
    root = Path(root)
    train_images = _read_idx(root, "train-images-idx3-ubyte", _IDX_IMAGES_MAGIC)
    train_labels = _read_idx(root, "train-labels-idx1-ubyte", _IDX_LABELS_MAGIC)
    test_images = _read_idx(root, "t10k-images-idx3-ubyte", _IDX_IMAGES_MAGIC)
    test_labels = _read_idx(root, "t10k-labels-idx1-ubyte", _IDX_LABELS_MAGIC)
    _check_mnist_pair(root, "train", train_images, train_labels)
    _check_mnist_pair(root, "t10k", test_images, test_labels)
    if n_val >= len(train_images):
        raise ValueError(
            f"n_val must be smaller than the {len(train_images)} training images, got {n_val}."
        )
    cut = len(train_images) - n_val
    parts = {
        "train": (train_images[:cut], train_labels[:cut], params["agreement"]),
        "val": (train_images[cut:], train_labels[cut:], params["val_agreement"]),
        "test": (test_images, test_labels, params["test_agreement"]),
    }
    rng = check_random_state(random_state)
    seeds = dict(zip(_SPLIT_CODES, rng.randint(np.iinfo(np.int32).max, size=3)))
    chosen = list(_SPLIT_CODES) if split == "all" else [split]
    images, digits, ys, colors = [], [], [], []
    for name in chosen:
        split_images, split_digits, split_agreement = parts[name]
        y, color = _assign_colors(
            split_digits,
            agreement=split_agreement,
            label_noise=params["label_noise"],
            rng=np.random.RandomState(seeds[name]),
        )
        images.append(split_images)
        digits.append(split_digits)
        ys.append(y)
        colors.append(color)
    dataset = ColoredMNISTDataset(
        np.concatenate(images),
        np.concatenate(digits),
        y=np.concatenate(ys),
        spurious=np.concatenate(colors),
        target_names=list(_BINARY_DIGIT_NAMES),
        spurious_names=list(_COLOR_NAMES),
        split=split,
        image_size=image_size,
        transform=transform,
    )
    dataset.params = {**params, "n_val": n_val}
    return dataset
