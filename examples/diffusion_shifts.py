"""D3S-style distribution shifts with Stable Diffusion img2img, offline.

Algorithm 1 of D3S (Kattakinda et al., 2023): for every (foreground,
background) pair, paste a downsampled foreground image at a random spot on a
background template (the *guide*), write the prompt "a photo of a {fg},
{definition}, {bg}", and let Stable Diffusion's image-to-image pipeline turn the
guide into a new image (strength 0.9, guidance 5). The result has foreground
and background labels that are independent by construction, ready for
WassersteinDisentangler.

Here the pipeline is a tiny, randomly initialised one written to a local folder
(its images are noise, but every step runs, in seconds on a CPU); with a real
model, pass the folder of a Stable Diffusion checkpoint saved with
``save_pretrained`` instead, e.g. ``DiffusionShiftGenerator("/models/sd-v1-5",
torch_dtype=torch.float16, num_inference_steps=50, image_size=512)``.

Figures go to ``$SKSHORTCUT_EXAMPLE_OUT`` (or a temporary folder).
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything below is local

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from skshortcut import WassersteinDisentangler  # noqa: E402
from skshortcut.generative import DiffusionShiftGenerator, load_generated_shifts  # noqa: E402
from skshortcut.generative.diffusion import make_tiny_pipeline  # noqa: E402
from skshortcut.plotting import plot_images  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))
out = Path(os.environ.get("SKSHORTCUT_EXAMPLE_OUT") or tempfile.mkdtemp(prefix="diffusion_"))
out.mkdir(parents=True, exist_ok=True)
work = out / "diffusion_run"  # the pipeline folder and the generated data set

# 1. a local pipeline folder (a real one would be a Stable Diffusion checkpoint) -------------
pipeline_dir = make_tiny_pipeline(work / "pipeline")

# 2. foreground images per label, background templates per background phrase ---------------
digits = load_digits()
foregrounds = {
    name: [np.repeat(img[:, :, None] / 16.0, 3, axis=2) for img in digits.images[digits.target == d][:3]]
    for d, name in ((0, "zero"), (1, "one"), (7, "seven"))
}
definitions = {"zero": "the digit 0", "one": "the digit 1", "seven": "the digit 7"}
size = 32
yy, xx = np.mgrid[0:size, 0:size] / size
backgrounds = {
    "on grass": np.stack([0.2 + 0 * xx, 0.6 + 0.2 * np.sin(20 * xx), 0.2 + 0 * xx], -1),
    "in snow": np.stack([0.9 + 0 * xx, 0.9 + 0 * xx, 0.95 + 0 * xx], -1),
    "at night": np.stack([0.05 + 0 * xx, 0.05 + 0 * xx, 0.2 * yy], -1),
    "in sand": np.stack([0.85 + 0 * xx, 0.75 + 0.1 * np.cos(15 * yy), 0.5 + 0 * xx], -1),
}

# 3. generate every pair twice; a second call resumes instead of starting over ---------------
generator = DiffusionShiftGenerator(pipeline_dir, image_size=size, num_inference_steps=10, n_per_pair=2,
                                    batch_size=8, save_guides=True, random_state=0, device="cpu")
dataset = generator.generate(work / "d3s", foregrounds, backgrounds, definitions)
print(f"generated {generator.n_generated_} images of {len(foregrounds)} foregrounds x {len(backgrounds)} "
      f"backgrounds in {generator.seconds_:.1f} s of pipeline time")
for row in dataset.metadata[:3]:
    print(f"  {row['file']}: seed {row['seed']}, guide box at ({row['x']}, {row['y']}), prompt {row['prompt']!r}")
generator.generate(work / "d3s", foregrounds, backgrounds, definitions)
print(f"second call: {generator.n_generated_} new images (the run was complete)")

# 4. load back and look: guides (top) and what the pipeline made of them (bottom) ------------
again = load_generated_shifts(work / "d3s")
files = [Path(row["file"]).name for row in again.metadata[:8]]
guides = np.stack([np.asarray(Image.open(work / "d3s" / "guides" / f)) for f in files])
images = np.stack([again[i][0].numpy() for i in range(8)])
plot_images(np.concatenate([guides.transpose(0, 3, 1, 2) / 255.0, images]),
            labels=[f"{fg}, {bg}" for fg, bg in again.labels[:8]] * 2,
            title="guides and generated images").savefig(out / "diffusion_shifts.png", dpi=120, bbox_inches="tight")

# 5. the labels are ready for the disentangler -------------------------------------------------
wd = WassersteinDisentangler(max_epochs=2, batch_size=8, n_background_features=4, extractor_params={"width": 8},
                             random_state=0, device="cpu").fit(again)
print(f"WassersteinDisentangler fitted on {len(again)} generated images: foregrounds {list(wd.classes_)}, "
      f"backgrounds {list(wd.background_classes_)}")
print(f"figure in {out}")
