# The usage block of docs/user_guide/diffusion.rst against what a test machine has: the miniature
# offline pipeline instead of a Stable Diffusion folder, 32 px, random foreground and template images.
import numpy as np

from skshortcut import DiffusionShiftGenerator, WassersteinDisentangler
from skshortcut.generative.diffusion import make_tiny_pipeline

rng = np.random.RandomState(0)
otter_images, thatch_images = [rng.rand(24, 20, 3)], [rng.rand(3, 16, 16), rng.rand(3, 16, 16)]
cave_templates, snow_templates = [rng.rand(32, 32, 3) * 0.2], [rng.rand(32, 32, 3)]

generator = DiffusionShiftGenerator(
    make_tiny_pipeline("tiny-pipeline"),          # a local pipeline folder
    image_size=32, num_inference_steps=4, batch_size=8, n_per_pair=2, random_state=0, verbose=0,
)
dataset = generator.generate(
    "d3s/",                                       # images/, metadata.csv, plan.json
    foregrounds={"otter": otter_images, "thatch": thatch_images},
    backgrounds={"in a cave": cave_templates, "in snow": snow_templates},
    definitions={"otter": "freshwater carnivorous mammal having webbed and clawed feet",
                 "thatch": "a house roof made with a plant material (as straw)"},
)
wd = WassersteinDisentangler(max_epochs=1, n_background_features=2, extractor_params={"width": 4}, random_state=0)
wd.fit(dataset)          # foreground and background labels included
assert len(dataset) == 8 and sorted(wd.background_classes_) == ["in a cave", "in snow"]
