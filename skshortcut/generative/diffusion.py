"""``DiffusionShiftGenerator``: D3S-style images of foregrounds in chosen backgrounds.

Kattakinda, Levine and Feizi, *Invariant Learning via Diffusion Dreamed
Distribution Shifts* (D3S), section 3.1 and Algorithm 1. For a foreground
label ``l_fg`` and a background label ``l_bg``:

1. the *guide* is a foreground image, downsampled to a fraction of the side
   (0.4) and pasted at a random spot on a template image of the background;
2. the *prompt* is "a photo of a {l_fg}, {definition(l_fg)}, {l_bg}";
3. Stable Diffusion's image-to-image pipeline turns the guide into a new
   image, with a high noise strength (0.9) so that only global attributes of
   the guide (colour temperature, the background) survive.

Doing this for every (foreground, background) pair makes the two labels
independent, which :class:`~skshortcut.WassersteinDisentangler` needs.
Pipelines are loaded from a local directory (``from_pretrained(path,
local_files_only=True)``) or passed as objects; nothing is downloaded.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import numbers
import os
import re
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from .._torch import resolve_device

__all__ = [
    "D3S_BACKGROUNDS",
    "D3S_PROMPT",
    "DiffusionShiftGenerator",
    "build_prompt",
    "load_generated_shifts",
    "make_guide",
]

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

_PLAN_FILE = "plan.json"
_METADATA_FILE = "metadata.csv"
_COLUMNS = (
    "id", "file", "fg", "bg", "prompt", "seed", "x", "y", "fg_width", "fg_height",
    "fg_index", "template_index", "nsfw",
)


# --------------------------------------------------------------------------- images
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
    size = _check_int(size, "size", 8)
    fg_scale = _check_unit(fg_scale, "fg_scale")
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


# --------------------------------------------------------------------------- checks
def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return int(value)


def _check_unit(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number in (0, 1], got {value!r}.")
    if not 0 < value <= 1:
        raise ValueError(f"`{name}` must be in (0, 1], got {value!r}.")
    return float(value)


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


def _fingerprint(images: dict) -> str:
    h = hashlib.sha1()
    for label, imgs in images.items():
        h.update(label.encode())
        for img in imgs:
            h.update(str(img.size).encode())
            h.update(img.tobytes())
    return h.hexdigest()


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- loading
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


# --------------------------------------------------------------------------- generator
class DiffusionShiftGenerator(BaseEstimator):
    """Generate D3S images: every foreground in every background, by Stable Diffusion img2img.

    Algorithm 1 of Kattakinda et al. For each planned (foreground,
    background) pair the generator samples a foreground image and a template
    of the background, builds the guide (:func:`make_guide`: the foreground
    downsampled to ``fg_scale`` of the side and pasted at a random spot) and
    the prompt (:func:`build_prompt`: "a photo of a {fg}, {definition},
    {bg}"), and runs diffusers' ``StableDiffusionImg2ImgPipeline`` with
    ``strength`` 0.9 and ``guidance_scale`` 5. Images are written to
    ``out_dir/images/`` and described in ``out_dir/metadata.csv`` (foreground,
    background, prompt, seed, guide position, ...). Every image has its own
    seed, so any image can be regenerated alone, and a run that stopped
    resumes where it stopped: the plan is stored in ``out_dir/plan.json`` and
    images already written are skipped.

    Parameters
    ----------
    pipeline : path-like or pipeline object
        A local directory written by ``save_pretrained`` (loaded with
        ``StableDiffusionImg2ImgPipeline.from_pretrained(path,
        local_files_only=True)``; never from a hub), or a pipeline object
        whose ``__call__`` takes ``prompt``, ``image``, ``strength``,
        ``guidance_scale``, ``num_inference_steps`` and ``generator``. An
        object is moved to ``device``.
    strength : float in (0, 1], default=0.9
        Noise strength ``t_0`` of the image-to-image edit (section 3.1).
    guidance_scale : float, default=5.0
        Classifier-free guidance weight.
    num_inference_steps : int, default=50
        Scheduler steps (the paper: DDIM, 50); img2img runs
        ``strength * num_inference_steps`` of them.
    fg_scale : float in (0, 1], default=0.4
        Longer side of the pasted foreground, as a fraction of the guide's side.
    image_size : int, default=512
        Side of the guides and the generated images (a multiple of 8).
    prompt_template : str, default=D3S_PROMPT
        With the fields ``{fg}``, ``{bg}`` and optionally ``{definition}``.
    n_per_pair : int, default=1
        Images of every (foreground, background) pair, when ``n_samples`` is None.
    n_samples : int, optional
        Generate this many images of randomly drawn pairs instead (each pair
        at most once until all pairs are used, as in Algorithm 1's loop).
    batch_size : int, default=4
        Images per pipeline call.
    save_guides : bool, default=False
        Also write each guide to ``out_dir/guides/``.
    torch_dtype : torch.dtype, optional
        Passed to ``from_pretrained`` (for example ``torch.float16`` on a GPU).
    pipeline_kwargs : dict, optional
        Other ``from_pretrained`` arguments (``safety_checker=None``, ...).
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the plan: which foreground image and template each image uses,
        where the foreground is pasted, and each image's diffusion seed.
    verbose : int, default=1
        ``>= 1`` shows a progress bar over the images.

    Attributes
    ----------
    plan_ : list of dict
        One entry per planned image (id, file, fg, bg, prompt, seed, guide box, ...).
    n_generated_ : int
        Images generated by the last :meth:`generate` call (the rest were on disk).
    seconds_ : float
        Time the last call spent in the pipeline.

    See Also
    --------
    skshortcut.WassersteinDisentangler : learns features from the generated labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.generative import DiffusionShiftGenerator
    >>> gen = DiffusionShiftGenerator("unused/path", image_size=64, random_state=0)
    >>> fg = {"cat": np.ones((8, 8, 3)), "dog": np.zeros((8, 8, 3))}
    >>> bg = {"in snow": np.ones((64, 64, 3)), "at night": np.zeros((64, 64, 3))}
    >>> plan = gen.plan(fg, bg, definitions={"cat": "a small domesticated feline"})
    >>> len(plan), plan[0]["prompt"], plan[1]["prompt"]
    (4, 'a photo of a cat, a small domesticated feline, in snow', 'a photo of a cat, a small domesticated feline, at night')
    """

    def __init__(
        self,
        pipeline,
        *,
        strength=0.9,
        guidance_scale=5.0,
        num_inference_steps=50,
        fg_scale=0.4,
        image_size=512,
        prompt_template=D3S_PROMPT,
        n_per_pair=1,
        n_samples=None,
        batch_size=4,
        save_guides=False,
        torch_dtype=None,
        pipeline_kwargs=None,
        device="auto",
        random_state=None,
        verbose=1,
    ):
        self.pipeline = pipeline
        self.strength = strength
        self.guidance_scale = guidance_scale
        self.num_inference_steps = num_inference_steps
        self.fg_scale = fg_scale
        self.image_size = image_size
        self.prompt_template = prompt_template
        self.n_per_pair = n_per_pair
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.save_guides = save_guides
        self.torch_dtype = torch_dtype
        self.pipeline_kwargs = pipeline_kwargs
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        _check_unit(self.strength, "strength")
        if isinstance(self.guidance_scale, bool) or not isinstance(self.guidance_scale, numbers.Real):
            raise TypeError(f"`guidance_scale` must be a number, got {self.guidance_scale!r}.")
        if not self.guidance_scale >= 0:
            raise ValueError(f"`guidance_scale` must be >= 0, got {self.guidance_scale!r}.")
        _check_int(self.num_inference_steps, "num_inference_steps", 1)
        _check_unit(self.fg_scale, "fg_scale")
        _check_int(self.image_size, "image_size", 8)
        if self.image_size % 8:
            raise ValueError(f"`image_size` must be a multiple of 8 (the VAE downsamples by 8), got {self.image_size}.")
        if not isinstance(self.prompt_template, str) or "{fg}" not in self.prompt_template or "{bg}" not in self.prompt_template:
            raise ValueError(f"`prompt_template` must be a string with the fields {{fg}} and {{bg}}; got {self.prompt_template!r}.")
        _check_int(self.n_per_pair, "n_per_pair", 1)
        if self.n_samples is not None:
            _check_int(self.n_samples, "n_samples", 1)
        _check_int(self.batch_size, "batch_size", 1)
        if self.pipeline_kwargs is not None and not isinstance(self.pipeline_kwargs, dict):
            raise TypeError(f"`pipeline_kwargs` must be None or a dict, got {type(self.pipeline_kwargs).__name__}.")

    def _settings(self):
        return {
            "strength": float(self.strength),
            "guidance_scale": float(self.guidance_scale),
            "num_inference_steps": int(self.num_inference_steps),
            "fg_scale": float(self.fg_scale),
            "image_size": int(self.image_size),
            "prompt_template": self.prompt_template,
            "n_per_pair": int(self.n_per_pair),
            "n_samples": None if self.n_samples is None else int(self.n_samples),
        }

    # ------------------------------------------------------------------ plan
    def plan(self, foregrounds, backgrounds, definitions=None):
        """The images to generate, without generating them.

        Parameters
        ----------
        foregrounds : mapping
            ``{foreground label: image or list of images}``: the images
            ``I_fg`` that are pasted (ImageNet images in the paper). Images are
            PIL images, paths, or arrays / tensors (HWC or CHW; floats in
            [0, 1]).
        backgrounds : mapping
            ``{background label: template or list of templates}``; the label
            is the phrase that ends the prompt (see :data:`D3S_BACKGROUNDS`).
        definitions : mapping, optional
            ``{foreground label: definition}`` (WordNet glosses in the
            paper), to disambiguate the labels in the prompts.

        Returns
        -------
        list of dict
            One entry per image: ``id``, ``file``, ``fg``, ``bg``,
            ``prompt``, ``seed``, the guide box ``x``, ``y``, ``fg_width``,
            ``fg_height``, and the indices ``fg_index`` and
            ``template_index`` of the images used.
        """
        self._check_params()
        fgs = _as_image_lists(foregrounds, "foregrounds")
        bgs = _as_image_lists(backgrounds, "backgrounds")
        return self._make_plan(fgs, bgs, self._definitions(definitions, fgs))

    @staticmethod
    def _definitions(definitions, fgs):
        if definitions is None:
            return {}
        if not hasattr(definitions, "items"):
            raise TypeError(f"`definitions` must be a mapping from foreground labels to text; got {type(definitions).__name__}.")
        out = {str(k): str(v) for k, v in definitions.items()}
        unknown = sorted(set(out) - set(fgs))
        if unknown:
            raise ValueError(f"`definitions` has labels that are not foregrounds: {unknown}.")
        return out

    def _make_plan(self, fgs, bgs, definitions):
        rng = check_random_state(self.random_state)
        pairs = [(f, b) for f in fgs for b in bgs]
        if self.n_samples is None:
            order = [p for p in pairs for _ in range(self.n_per_pair)]
        else:
            idx = np.concatenate([rng.permutation(len(pairs)) for _ in range(-(-self.n_samples // len(pairs)))])
            order = [pairs[i] for i in idx[: self.n_samples]]
        size = int(self.image_size)
        jobs = []
        width = max(6, len(str(len(order))))
        for i, (f, b) in enumerate(order):
            k = int(rng.randint(len(fgs[f])))
            j = int(rng.randint(len(bgs[b])))
            w, h = fgs[f][k].size
            side = max(1, int(round(self.fg_scale * size)))
            scale = side / max(w, h)
            fw, fh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
            jobs.append(
                {
                    "id": i,
                    "file": f"images/{i:0{width}d}.png",
                    "fg": f,
                    "bg": b,
                    "prompt": build_prompt(f, b, definitions.get(f), self.prompt_template),
                    "seed": int(rng.randint(0, 2**31 - 1)),
                    "x": int(rng.randint(0, size - fw + 1)),
                    "y": int(rng.randint(0, size - fh + 1)),
                    "fg_width": fw,
                    "fg_height": fh,
                    "fg_index": k,
                    "template_index": j,
                }
            )
        return jobs

    # ------------------------------------------------------------------ pipeline
    def _load_pipeline(self):
        pipe = self.pipeline
        if isinstance(pipe, (str, os.PathLike)):
            path = Path(pipe)
            if not (path / "model_index.json").is_file():
                raise FileNotFoundError(
                    f"`pipeline` must be a local pipeline directory (written by save_pretrained, holding "
                    f"model_index.json); not found: {path / 'model_index.json'}"
                )
            from diffusers import StableDiffusionImg2ImgPipeline

            kwargs = dict(self.pipeline_kwargs or {})
            kwargs["local_files_only"] = True
            if self.torch_dtype is not None:
                kwargs["torch_dtype"] = self.torch_dtype
            pipe = StableDiffusionImg2ImgPipeline.from_pretrained(path, **kwargs)
        elif not callable(pipe):
            raise TypeError(f"`pipeline` must be a local directory or an img2img pipeline object; got {type(pipe).__name__}.")
        else:
            params = inspect.signature(pipe.__call__).parameters
            missing = [p for p in ("prompt", "image", "strength") if p not in params]
            if missing and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                raise TypeError(f"`pipeline` must be an image-to-image pipeline; its __call__ lacks {missing}.")
        device = resolve_device(self.device)
        if hasattr(pipe, "to") and getattr(pipe, "device", device) != device:
            pipe = pipe.to(device)
        return pipe

    # ------------------------------------------------------------------ generate
    def generate(self, out_dir, foregrounds, backgrounds, definitions=None, *, overwrite=False):
        """Generate the planned images into ``out_dir``, resuming a stopped run.

        Parameters
        ----------
        out_dir : path-like
            Output folder; created if needed. Holds ``plan.json``,
            ``metadata.csv``, ``images/`` (and ``guides/``).
        foregrounds, backgrounds, definitions
            As in :meth:`plan`.
        overwrite : bool, default=False
            Start afresh when ``out_dir`` holds a run with other settings or
            other input images; by default that is an error.

        Returns
        -------
        dataset : skshortcut.datasets.ImageFileDataset
            Every image of the plan, with foreground and background labels
            (see :func:`load_generated_shifts`).
        """
        from tqdm.auto import tqdm

        self._check_params()
        fgs = _as_image_lists(foregrounds, "foregrounds")
        bgs = _as_image_lists(backgrounds, "backgrounds")
        defs = self._definitions(definitions, fgs)
        root = Path(out_dir)
        (root / "images").mkdir(parents=True, exist_ok=True)
        header = {
            "settings": self._settings(),
            "foregrounds": list(fgs),
            "backgrounds": list(bgs),
            "definitions": defs,
            "inputs": _fingerprint(fgs) + ":" + _fingerprint(bgs),
        }
        plan_path = root / _PLAN_FILE
        meta_path = root / _METADATA_FILE
        stored = json.loads(plan_path.read_text()) if plan_path.is_file() else None
        if stored is not None and {k: stored.get(k) for k in header} != header:
            if not overwrite:
                raise ValueError(
                    f"`out_dir` {root} holds a run with other settings or input images; use another folder, "
                    "or overwrite=True to start afresh."
                )
            stored = None
        if stored is None:
            jobs = self._make_plan(fgs, bgs, defs)
            plan_path.write_text(json.dumps({**header, "jobs": jobs}, indent=1))
            if meta_path.is_file():
                meta_path.unlink()
        else:
            jobs = stored["jobs"]
        self.plan_ = jobs
        done = {int(r["id"]) for r in _read_rows(meta_path) if (root / r["file"]).is_file()}
        todo = [job for job in jobs if job["id"] not in done]
        self.n_generated_ = 0
        self.seconds_ = 0.0
        if todo:
            pipe = self._load_pipeline()
            old_config = dict(getattr(pipe, "_progress_bar_config", {}) or {})
            if hasattr(pipe, "set_progress_bar_config"):
                pipe.set_progress_bar_config(disable=True)
            if self.save_guides:
                (root / "guides").mkdir(exist_ok=True)
            new_file = not meta_path.is_file()
            bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), disable=not self.verbose, desc="D3S images")
            try:
                with open(meta_path, "a", newline="", encoding="utf-8") as f:
                    writer = csv.DictWriter(f, fieldnames=_COLUMNS)
                    if new_file:
                        writer.writeheader()
                    for start in range(0, len(todo), int(self.batch_size)):
                        batch = todo[start : start + int(self.batch_size)]
                        rows = self._generate_batch(pipe, batch, fgs, bgs, root)
                        writer.writerows(rows)
                        f.flush()
                        bar.update(len(batch))
                        self.n_generated_ += len(batch)
            finally:
                bar.close()
                if hasattr(pipe, "set_progress_bar_config"):
                    pipe._progress_bar_config = old_config
        return load_generated_shifts(root, image_size=int(self.image_size))

    def _generate_batch(self, pipe, batch, fgs, bgs, root):
        import torch

        guides = []
        for job in batch:
            guide, _ = make_guide(
                fgs[job["fg"]][job["fg_index"]],
                bgs[job["bg"]][job["template_index"]],
                size=int(self.image_size),
                fg_scale=self.fg_scale,
                position=(job["x"], job["y"]),
            )
            guides.append(guide)
            if self.save_guides:
                guide.save(root / "guides" / Path(job["file"]).name)
        generators = [torch.Generator("cpu").manual_seed(int(job["seed"])) for job in batch]
        start = time.perf_counter()
        out = pipe(
            prompt=[job["prompt"] for job in batch],
            image=guides,
            strength=float(self.strength),
            guidance_scale=float(self.guidance_scale),
            num_inference_steps=int(self.num_inference_steps),
            generator=generators,
            output_type="pil",
        )
        self.seconds_ += time.perf_counter() - start
        images = out.images if hasattr(out, "images") else out[0]
        flags = getattr(out, "nsfw_content_detected", None) or [None] * len(batch)
        rows = []
        for job, image, flag in zip(batch, images, flags):
            image = _to_pil(image, "pipeline output")
            if image.size != (int(self.image_size),) * 2:
                image = image.resize((int(self.image_size),) * 2, Image.BICUBIC)
            image.save(root / job["file"])
            rows.append({**{k: job[k] for k in _COLUMNS if k in job}, "nsfw": "" if flag is None else int(bool(flag))})
        return rows


# --------------------------------------------------------------------------- a miniature pipeline
_TINY_WORDS = (
    "a", "photo", "of", "in", "on", "at", "the", "snow", "grass", "road", "forest", "water", "cave", "sand",
    "indoors", "rain", "night", "cat", "dog", "digit",
)


def make_tiny_pipeline(save_to=None, *, random_state=0):
    """A randomly initialised, miniature ``StableDiffusionImg2ImgPipeline`` (offline).

    Every component is built from a small config in code: a two-level
    ``UNet2DConditionModel`` (8 and 16 channels), a two-level
    ``AutoencoderKL``, a two-layer ``CLIPTextModel`` and a ``CLIPTokenizer``
    over an in-memory vocabulary (letters and a few words), with a
    ``DDIMScheduler``; no safety checker. Its images are noise, but every
    step of real generation runs, in milliseconds on a CPU: for tests,
    examples and timing the machinery.

    Parameters
    ----------
    save_to : path-like, optional
        If given, the pipeline is written there with ``save_pretrained`` (a
        directory :class:`DiffusionShiftGenerator` can load offline) and the
        path is returned instead of the object.
    random_state : int, default=0
        Seeds the weights.

    Returns
    -------
    StableDiffusionImg2ImgPipeline or pathlib.Path

    Examples
    --------
    >>> from skshortcut.generative.diffusion import make_tiny_pipeline
    >>> pipe = make_tiny_pipeline()
    >>> type(pipe).__name__, list(pipe.vae.config.block_out_channels)
    ('StableDiffusionImg2ImgPipeline', [8, 16])
    """
    import tempfile

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from .._torch import torch_seed

    with torch_seed(random_state):
        unet = UNet2DConditionModel(
            block_out_channels=(8, 16),
            layers_per_block=1,
            sample_size=8,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=16,
            norm_num_groups=4,
            attention_head_dim=2,
        )
        vae = AutoencoderKL(
            block_out_channels=(8, 16),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            norm_num_groups=4,
            sample_size=64,
        )
        vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
        for token in [*"abcdefghijklmnopqrstuvwxyz,.-'0123456789", *_TINY_WORDS]:
            for piece in (token, token + "</w>"):
                vocab.setdefault(piece, len(vocab))
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
                hidden_size=16,
                intermediate_size=32,
                num_attention_heads=2,
                num_hidden_layers=2,
                vocab_size=len(vocab),
                max_position_embeddings=77,
                layer_norm_eps=1e-5,
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = Path(tmp) / "vocab.json", Path(tmp) / "merges.txt"
        vocab_file.write_text(json.dumps(vocab))
        merges_file.write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if save_to is None:
        return pipe
    path = Path(save_to)
    pipe.save_pretrained(path)
    return path
