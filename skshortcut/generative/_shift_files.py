"""The files of a D3S generation run, and their loader.

:meth:`~skshortcut.generative.DiffusionShiftGenerator.generate` writes
``plan.json`` (settings, labels and one entry per planned image),
``metadata.csv`` (one row per written image) and ``images/``;
:func:`load_generated_shifts` reads them back as a labelled Dataset.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

__all__ = ["load_generated_shifts"]

_PLAN_FILE = "plan.json"
_METADATA_FILE = "metadata.csv"
_COLUMNS = (
    "id", "file", "fg", "bg", "prompt", "seed", "x", "y", "fg_width", "fg_height",
    "fg_index", "template_index", "nsfw",
)


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_generated_shifts(root, *, image_size=None, transform=None):
    """Load the images and labels written by :meth:`DiffusionShiftGenerator.generate`.

    Parameters
    ----------
    root : path-like
        The output folder (holding ``metadata.csv`` and ``plan.json``).
    image_size : int, optional
        Side of the images made by the default transform (resize, then
        ``ToTensor``); default: the generated size.
    transform : callable, optional
        Applied to each RGB PIL image instead of the default.

    Returns
    -------
    dataset : skshortcut.datasets.ImageFileDataset
        Items ``(image, y, group)``; ``y`` is the foreground code and
        ``spurious`` the background code (names in ``target_names`` and
        ``spurious_names``), so the dataset is ready for
        :class:`~skshortcut.WassersteinDisentangler` (``fit(dataset)``) and
        the group tools. Extra attributes: ``labels`` (``(n, 2)`` array of
        foreground and background names), ``metadata`` (the CSV rows) and
        ``root``.

    Examples
    --------
    >>> import tempfile
    >>> from skshortcut.generative import load_generated_shifts
    >>> load_generated_shifts(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: no generated images here: expected ...metadata.csv
    """
    from ..datasets import ImageFileDataset

    root = Path(root)
    meta_path = root / _METADATA_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"no generated images here: expected {meta_path}")
    plan = json.loads((root / _PLAN_FILE).read_text()) if (root / _PLAN_FILE).is_file() else {}
    rows = [r for r in _read_rows(meta_path) if (root / r["file"]).is_file()]
    unique = {}
    for r in rows:
        unique[int(r["id"])] = r  # a re-generated id keeps its last row
    rows = [unique[i] for i in sorted(unique)]
    fg_names = plan.get("foregrounds") or sorted({r["fg"] for r in rows})
    bg_names = plan.get("backgrounds") or sorted({r["bg"] for r in rows})
    fg_code = {n: i for i, n in enumerate(fg_names)}
    bg_code = {n: i for i, n in enumerate(bg_names)}
    if image_size is None:
        image_size = int(plan.get("settings", {}).get("image_size", 512))
    dataset = ImageFileDataset(
        [root / r["file"] for r in rows],
        y=[fg_code[r["fg"]] for r in rows],
        spurious=[bg_code[r["bg"]] for r in rows],
        target_names=fg_names,
        spurious_names=bg_names,
        split="all",
        image_size=image_size,
        transform=transform,
    )
    dataset.labels = np.array([[r["fg"], r["bg"]] for r in rows], dtype=object).reshape(-1, 2)
    dataset.metadata = rows
    dataset.root = root
    return dataset
