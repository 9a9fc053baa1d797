"""Training-image augmentations of :class:`~skshortcut.ERMClassifier` (``augment=``).

Each maps one image tensor ``(channels, height, width)`` to another of the
same shape. ``augment="crop_flip"`` is :func:`crop_flip` (the DFR authors'
fine-tuning augmentation), ``augment="shift"`` is :class:`RandomShift` (the
translation :class:`~skshortcut.grouping.ExMapGrouper` trains its own base
model with); any callable of the same form works too.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["crop_flip", "RandomShift", "training_transform"]


def crop_flip(image_size):
    """The DFR authors' training augmentation: random resized crop and horizontal flip.

    ``RandomResizedCrop(size, scale=(0.7, 1.0), ratio=(3/4, 4/3))`` then
    ``RandomHorizontalFlip()`` (``AugWaterbirdsCelebATransform`` of the DFR
    authors' code, ``data/data_transforms.py``), on one image tensor
    ``(channels, height, width)``, cropped back to its own size.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.augment import crop_flip
    >>> crop_flip((16, 16))(torch.rand(3, 16, 16)).shape
    torch.Size([3, 16, 16])
    """
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomResizedCrop(tuple(image_size), scale=(0.7, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
        v2.RandomHorizontalFlip(),
    ])


class RandomShift:
    """Random translation of a training image by up to ``fraction`` of its side, edges repeated.

    The image is padded by ``max(1, round(fraction * side))`` pixels on every
    side, its border pixels repeated, and a crop of its own size taken at a
    uniformly random offset (the translation augmentation of CIFAR-10 training,
    4 pixels on 32, at ``fraction=1/8``). :class:`~skshortcut.grouping.ExMapGrouper`
    trains the base models it fits itself with it, so that they do not
    memorise the images they then explain.

    Parameters
    ----------
    fraction : float, default=0.125
        The largest shift, as a fraction of the image's height and width.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.augment import RandomShift
    >>> image = torch.rand(3, 16, 16)
    >>> shifted = RandomShift()(image)
    >>> shifted.shape
    torch.Size([3, 16, 16])
    """

    def __init__(self, fraction=0.125):
        self.fraction = fraction

    def __call__(self, image):
        from torchvision.transforms import v2

        h, w = image.shape[-2:]
        pad = [max(1, round(self.fraction * w)), max(1, round(self.fraction * h))]  # left/right, top/bottom
        return v2.RandomCrop((h, w), padding=pad, padding_mode="edge")(image)

    def __repr__(self):
        return f"RandomShift(fraction={self.fraction!r})"

    def __eq__(self, other):
        return type(other) is type(self) and other.fraction == self.fraction

    def __hash__(self):
        return hash((type(self), self.fraction))


def training_transform(augment, image_size):
    """The transform ``augment`` names (``"crop_flip"``, ``"shift"`` or a callable), for images of ``image_size``."""
    if augment == "crop_flip":
        return crop_flip(image_size)
    if augment == "shift":
        return RandomShift()
    return augment


class Augmented(torch.utils.data.Dataset):
    """The training items of ``dataset`` with ``transform`` applied to their image."""

    def __init__(self, dataset, transform):
        self.dataset = dataset
        self.transform = transform

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, *rest = self.dataset[i]
        return (self.transform(torch.as_tensor(np.asarray(x))), *rest)
