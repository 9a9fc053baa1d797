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

This module holds the generator; the guides and prompts are in
:mod:`._guides`, the files of a run and their loader in :mod:`._shift_files`,
a miniature offline pipeline for tests and examples in :mod:`._tiny_pipeline`.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import os
import time
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from .._skorch import DeviceConstraint
from .._torch import resolve_device
from .._constraints import Satisfies
from ._guides import D3S_BACKGROUNDS, D3S_PROMPT, _as_image_lists, _to_pil, build_prompt, make_guide
from ._shift_files import _COLUMNS, _METADATA_FILE, _PLAN_FILE, _read_rows, load_generated_shifts
from ._tiny_pipeline import make_tiny_pipeline

__all__ = [
    "D3S_BACKGROUNDS",
    "D3S_PROMPT",
    "DiffusionShiftGenerator",
    "build_prompt",
    "load_generated_shifts",
    "make_guide",
    "make_tiny_pipeline",
]


def _fingerprint(images: dict) -> str:
    h = hashlib.sha1()
    for label, imgs in images.items():
        h.update(label.encode())
        for img in imgs:
            h.update(str(img.size).encode())
            h.update(img.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- generator
def _is_image_size(value):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 8 and value % 8 == 0


def _is_template(value):
    return isinstance(value, str) and "{fg}" in value and "{bg}" in value


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

    _parameter_constraints = {
        "pipeline": [str, os.PathLike, callable],
        "strength": [Interval(Real, 0, 1, closed="right")],
        "guidance_scale": [Interval(Real, 0, None, closed="left")],
        "num_inference_steps": [Interval(Integral, 1, None, closed="left")],
        "fg_scale": [Interval(Real, 0, 1, closed="right")],
        "image_size": [Satisfies(_is_image_size, "an int >= 8 and a multiple of 8 (the VAE downsamples by 8)")],
        "prompt_template": [Satisfies(_is_template, "a str with the fields {fg} and {bg}")],
        "n_per_pair": [Interval(Integral, 1, None, closed="left")],
        "n_samples": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "save_guides": ["boolean"],
        "torch_dtype": [torch.dtype, None],
        "pipeline_kwargs": [dict, None],
        "device": [DeviceConstraint()],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

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
        self._validate_params()
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

        self._validate_params()
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
