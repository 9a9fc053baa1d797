"""The inputs of D3S's image-to-image generation: image guides and text prompts (section 3.1).

A guide is a foreground image, downsampled and pasted at a random spot on a
template of the background (:func:`make_guide`); a prompt is "a photo of a
{fg}, {definition}, {bg}" (:func:`build_prompt`). Images come as PIL images,
paths, or arrays / tensors (HWC or CHW).
"""

from __future__ import annotations

import os
import re
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["D3S_BACKGROUNDS", "D3S_PROMPT", "make_guide", "build_prompt"]

#: The ten backgrounds of D3S (section 3.1), inspired by FOCUS.
D3S_BACKGROUNDS = (
    "on grass",
    "on a road",
    "in a forest",
    "in water",
    "in a cave",
    "in sand",
    "indoors",
    "in snow",
    "in rain",
    "at night",
)

#: D3S's prompt template (section 3.1).
D3S_PROMPT = "a photo of a {fg}, {definition}, {bg}"


def _to_pil(image, what: str) -> Image.Image:
    """An RGB PIL image from a PIL image, a path, or an array / tensor (HWC or CHW)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{what}: image file not found: {path}")
        with Image.open(path) as img:
            return img.convert("RGB")
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{what} must be PIL images, image paths, or arrays / tensors (HWC or CHW); got {type(image).__name__}."
        )
    arr = image
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"{what}: an image array must have 2 or 3 dimensions; got shape {image.shape}.")
    if arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.shape[-1] != 3:
        raise ValueError(f"{what}: an image array needs 1 or 3 channels; got shape {image.shape}.")
    if arr.dtype != np.uint8:
        arr = np.asarray(arr, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"{what}: image holds NaN or infinite values.")
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


@validate_params(
    {
        "foreground": "no_validation",  # images: checked as data by ``_to_pil``
        "template": "no_validation",
        "size": [Interval(Integral, 8, None, closed="left")],
        "fg_scale": [Interval(Real, 0, 1, closed="right")],
        "position": [tuple, list, None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_guide(foreground, template, *, size=512, fg_scale=0.4, position=None, random_state=None):
    """The image guide of D3S: a downsampled foreground pasted on a background template.

    Section 3.1, "Image guides": the template is resized to ``size x size``
    and the whole foreground image, resized so that its longer side is
    ``fg_scale * size`` (aspect ratio kept), is pasted at a random spot.

    Parameters
    ----------
    foreground, template : PIL image, path, or array / tensor (HWC or CHW)
        Arrays of floats are read in [0, 1], of ``uint8`` in [0, 255].
    size : int, default=512
        Side of the guide in pixels.
    fg_scale : float in (0, 1], default=0.4
        Longer side of the pasted foreground, as a fraction of ``size``.
    position : tuple of int, optional
        Top-left corner ``(x, y)`` of the foreground; default random.
    random_state : int, RandomState or None, default=None
        Draws the position.

    Returns
    -------
    guide : PIL.Image.Image
        RGB, ``size x size``.
    box : tuple of int
        ``(x, y, width, height)`` of the pasted foreground.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.generative import make_guide
    >>> fg = np.ones((20, 10, 3), dtype="float32")          # a white, tall foreground
    >>> bg = np.zeros((3, 16, 16), dtype="float32")         # a black template, CHW
    >>> guide, box = make_guide(fg, bg, size=50, position=(5, 7))
    >>> guide.size, box
    ((50, 50), (5, 7, 10, 20))
    >>> np.asarray(guide)[7:27, 5:15].min(), np.asarray(guide)[30:, 20:].max()
    (np.uint8(255), np.uint8(0))
    """
    size, fg_scale = int(size), float(fg_scale)
    fg = _to_pil(foreground, "`foreground`")
    guide = _to_pil(template, "`template`").resize((size, size), Image.BICUBIC)
    side = max(1, int(round(fg_scale * size)))
    w, h = fg.size
    scale = side / max(w, h)
    fw, fh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    fg = fg.resize((fw, fh), Image.BICUBIC)
    if position is None:
        rng = check_random_state(random_state)
        x, y = int(rng.randint(0, size - fw + 1)), int(rng.randint(0, size - fh + 1))
    else:
        try:
            x, y = (int(v) for v in position)
        except (TypeError, ValueError):
            raise ValueError(f"`position` must be a pair of integers (x, y); got {position!r}.") from None
        if not (0 <= x <= size - fw and 0 <= y <= size - fh):
            raise ValueError(f"`position={position!r}` puts the {fw}x{fh} foreground outside the {size}x{size} guide.")
    guide.paste(fg, (x, y))
    return guide, (x, y, fw, fh)


def build_prompt(fg, bg, definition=None, template=D3S_PROMPT):
    """D3S's text prompt, "a photo of a {fg}, {definition}, {bg}" (section 3.1).

    Without a definition the empty slot and its comma are dropped.

    Examples
    --------
    >>> from skshortcut.generative import build_prompt
    >>> build_prompt("otter", "in a cave", "freshwater carnivorous mammal having webbed and clawed feet")
    'a photo of a otter, freshwater carnivorous mammal having webbed and clawed feet, in a cave'
    >>> build_prompt("thatch", "in snow")
    'a photo of a thatch, in snow'
    """
    text = template.format(fg=fg, bg=bg, definition=definition or "")
    text = re.sub(r"\s*,\s*(,\s*)+", ", ", text)  # an empty slot between commas
    return re.sub(r"\s+", " ", text).strip().strip(",").strip()


def _as_image_lists(mapping, name):
    """``{label: [images]}`` from a mapping of labels to an image or a sequence of images."""
    if not hasattr(mapping, "items"):
        raise TypeError(f"`{name}` must be a mapping from labels to images (or lists of images); got {type(mapping).__name__}.")
    out = {}
    for label, images in mapping.items():
        if isinstance(images, (Image.Image, str, os.PathLike)) or (
            (isinstance(images, np.ndarray) or hasattr(images, "detach")) and np.ndim(images) in (2, 3)
        ):
            images = [images]
        images = list(images)
        if not images:
            raise ValueError(f"`{name}[{label!r}]` holds no image.")
        out[str(label)] = [_to_pil(img, f"`{name}[{label!r}]`") for img in images]
    if not out:
        raise ValueError(f"`{name}` is empty.")
    if len(out) != len(mapping):
        raise ValueError(f"`{name}` has labels that coincide once written as text.")
    return out
