"""DiffusionShiftGenerator: D3S guides, prompts and offline img2img generation with a tiny pipeline."""

import csv
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # never reach a model hub from the tests

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from skshortcut.generative import (
    D3S_BACKGROUNDS,
    DiffusionShiftGenerator,
    build_prompt,
    load_generated_shifts,
    make_guide,
)
from skshortcut.generative.diffusion import make_tiny_pipeline

SIZE = 32


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A tiny random pipeline written with save_pretrained, loaded back offline by the generator."""
    return make_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "pipeline")


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.RandomState(0)
    foregrounds = {"cat": [rng.rand(20, 16, 3)], "dog": [rng.rand(3, 12, 12), rng.rand(3, 12, 12)]}
    backgrounds = {"in snow": rng.rand(SIZE, SIZE, 3), "at night": [rng.rand(SIZE, SIZE, 3) * 0.2]}
    definitions = {"cat": "a small domesticated feline"}
    return foregrounds, backgrounds, definitions


def _generator(pipeline, **kw):
    params = dict(image_size=SIZE, num_inference_steps=4, batch_size=3, random_state=0, verbose=0)
    params.update(kw)
    return DiffusionShiftGenerator(pipeline, **params)


def test_generate_offline_writes_images_and_metadata_that_load_back(pipeline_dir, inputs, tmp_path):
    fgs, bgs, defs = inputs
    gen = _generator(pipeline_dir, save_guides=True)
    data = gen.generate(tmp_path / "out", fgs, bgs, defs)

    assert gen.n_generated_ == 4 and len(gen.plan_) == 4
    rows = list(csv.DictReader(open(tmp_path / "out" / "metadata.csv", newline="")))
    assert [(r["fg"], r["bg"]) for r in rows] == [
        ("cat", "in snow"), ("cat", "at night"), ("dog", "in snow"), ("dog", "at night")
    ]
    assert rows[0]["prompt"] == "a photo of a cat, a small domesticated feline, in snow"
    assert rows[3]["prompt"] == "a photo of a dog, at night"
    assert len({r["seed"] for r in rows}) == 4  # one seed per image
    for r in rows:
        x, y, w, h = (int(r[k]) for k in ("x", "y", "fg_width", "fg_height"))
        assert max(w, h) == round(0.4 * SIZE) and 0 <= x <= SIZE - w and 0 <= y <= SIZE - h
        with Image.open(tmp_path / "out" / r["file"]) as img:
            assert img.size == (SIZE, SIZE) and img.mode == "RGB"
        assert (tmp_path / "out" / "guides" / os.path.basename(r["file"])).is_file()

    # the returned dataset and a fresh load agree, and carry both labels
    again = load_generated_shifts(tmp_path / "out")
    for ds in (data, again):
        assert len(ds) == 4
        assert ds.labels.tolist() == [["cat", "in snow"], ["cat", "at night"], ["dog", "in snow"], ["dog", "at night"]]
        assert ds.target_names == ["cat", "dog"] and ds.spurious_names == ["in snow", "at night"]
        image, y, group = ds[3]
        assert tuple(image.shape) == (3, SIZE, SIZE) and 0 <= float(image.min()) <= float(image.max()) <= 1
        assert (y, group) == (1, 3)
    # generated images are not just the guides
    guide = np.asarray(Image.open(tmp_path / "out" / "guides" / os.path.basename(rows[0]["file"])), dtype=float)
    out = np.asarray(Image.open(tmp_path / "out" / rows[0]["file"]), dtype=float)
    assert np.abs(guide - out).mean() > 5


def test_resume_generates_only_what_is_missing_and_reproduces_it(pipeline_dir, inputs, tmp_path):
    fgs, bgs, defs = inputs
    out = tmp_path / "out"
    _generator(pipeline_dir).generate(out, fgs, bgs, defs)
    rows = list(csv.DictReader(open(out / "metadata.csv", newline="")))
    first = {r["file"]: np.asarray(Image.open(out / r["file"]), dtype=float) for r in rows}
    # a run that stopped after two images: two rows and one image file are missing
    with open(out / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:2])
    (out / rows[3]["file"]).unlink()

    gen = _generator(pipeline_dir, batch_size=1)
    data = gen.generate(out, fgs, bgs, defs)
    assert gen.n_generated_ == 2 and len(data) == 4
    for r in rows[2:]:
        again = np.asarray(Image.open(out / r["file"]), dtype=float)
        assert np.abs(again - first[r["file"]]).max() <= 2  # per-image seeds: the same image again

    gen.generate(out, fgs, bgs, defs)
    assert gen.n_generated_ == 0


def test_pipeline_object_and_saved_directory_give_the_same_images(pipeline_dir, inputs, tmp_path):
    fgs, bgs, defs = inputs
    from diffusers import StableDiffusionImg2ImgPipeline

    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(pipeline_dir, local_files_only=True)
    a = _generator(pipe, n_samples=2).generate(tmp_path / "a", fgs, bgs, defs)
    b = _generator(pipeline_dir, n_samples=2).generate(tmp_path / "b", fgs, bgs, defs)
    assert a.labels.tolist() == b.labels.tolist()
    for ra, rb in zip(a.metadata, b.metadata):
        pa = np.asarray(Image.open(tmp_path / "a" / ra["file"]), dtype=float)
        pb = np.asarray(Image.open(tmp_path / "b" / rb["file"]), dtype=float)
        assert np.abs(pa - pb).max() <= 2


def test_other_settings_in_the_same_folder_are_refused_unless_overwritten(pipeline_dir, inputs, tmp_path):
    fgs, bgs, defs = inputs
    _generator(pipeline_dir, n_samples=1).generate(tmp_path, fgs, bgs, defs)
    with pytest.raises(ValueError, match="other settings"):
        _generator(pipeline_dir, n_samples=1, strength=0.5).generate(tmp_path, fgs, bgs, defs)
    changed = {"cat": [np.zeros((8, 8, 3))], "dog": fgs["dog"]}
    with pytest.raises(ValueError, match="other settings or input images"):
        _generator(pipeline_dir, n_samples=1).generate(tmp_path, changed, bgs, defs)
    gen = _generator(pipeline_dir, n_samples=1, strength=0.5)
    assert len(gen.generate(tmp_path, fgs, bgs, defs, overwrite=True)) == 1 and gen.n_generated_ == 1


def test_generated_dataset_trains_the_disentangler(pipeline_dir, inputs, tmp_path):
    from skshortcut import WassersteinDisentangler

    fgs, bgs, defs = inputs
    data = _generator(pipeline_dir, n_per_pair=3, batch_size=6).generate(tmp_path, fgs, bgs, defs)
    wd = WassersteinDisentangler(
        max_epochs=2, batch_size=4, n_background_features=2, extractor_params={"width": 4}, random_state=0
    ).fit(data)
    assert list(wd.classes_) == ["cat", "dog"] and list(wd.background_classes_) == ["at night", "in snow"]
    assert wd.transform(data, part="bg").shape == (12, 2)


def test_plan_samples_pairs_evenly_and_is_seeded():
    fg = {c: np.ones((4, 4, 3)) for c in "abc"}
    bg = {b: np.ones((8, 8, 3)) for b in D3S_BACKGROUNDS[:4]}
    gen = DiffusionShiftGenerator("unused", image_size=64, n_samples=24, random_state=3)
    plan = gen.plan(fg, bg)
    pairs = [(j["fg"], j["bg"]) for j in plan]
    assert len(plan) == 24 and all(pairs.count(p) == 2 for p in set(pairs)) and len(set(pairs)) == 12
    assert plan == gen.plan(fg, bg)  # the same random_state, the same plan
    assert plan != DiffusionShiftGenerator("unused", image_size=64, n_samples=24, random_state=4).plan(fg, bg)
    full = DiffusionShiftGenerator("unused", image_size=64, n_per_pair=2).plan(fg, bg)
    assert len(full) == 24 and len({(j["fg"], j["bg"]) for j in full}) == 12


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(8, 48),
    fg_h=st.integers(1, 30),
    fg_w=st.integers(1, 30),
    scale=st.floats(0.1, 1.0),
    seed=st.integers(0, 1000),
)
def test_guide_pastes_the_whole_resized_foreground_inside_the_template(size, fg_h, fg_w, scale, seed):
    fg = np.ones((fg_h, fg_w, 3), dtype=np.float32)  # white
    template = np.zeros((3, 10, 10), dtype=np.float32)  # black, CHW
    guide, (x, y, w, h) = make_guide(fg, template, size=size, fg_scale=scale, random_state=seed)
    arr = np.asarray(guide)
    assert guide.size == (size, size)
    assert max(w, h) == max(1, round(scale * size)) and 0 <= x <= size - w and 0 <= y <= size - h
    assert (arr[y : y + h, x : x + w] == 255).all()
    outside = np.ones((size, size), bool)
    outside[y : y + h, x : x + w] = False
    assert (arr[outside] == 0).all()


def test_prompts_follow_the_d3s_template():
    assert build_prompt("otter", "in a cave", "freshwater carnivorous mammal") == (
        "a photo of a otter, freshwater carnivorous mammal, in a cave"
    )
    assert build_prompt("thatch", "in snow") == "a photo of a thatch, in snow"
    assert build_prompt("fox", "at night", template="{fg} {bg}") == "fox at night"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"strength": 0.0}, ValueError, "strength"),
        ({"strength": "high"}, TypeError, "strength"),
        ({"guidance_scale": -1.0}, ValueError, "guidance_scale"),
        ({"num_inference_steps": 0}, ValueError, "num_inference_steps"),
        ({"fg_scale": 1.5}, ValueError, "fg_scale"),
        ({"image_size": 60}, ValueError, "multiple of 8"),
        ({"prompt_template": "a photo of {fg}"}, ValueError, "prompt_template"),
        ({"n_per_pair": 0}, ValueError, "n_per_pair"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"batch_size": 1.5}, TypeError, "batch_size"),
        ({"pipeline_kwargs": "fp16"}, TypeError, "pipeline_kwargs"),
        ({"save_guides": "yes"}, ValueError, "save_guides"),
        ({"torch_dtype": "float16"}, ValueError, "torch_dtype"),
        ({"device": "tpu9"}, ValueError, "device"),
        ({"random_state": "seed"}, ValueError, "random_state"),
    ],
)
def test_bad_parameters_are_named(kwargs, error, match):
    gen = DiffusionShiftGenerator("unused", **{"image_size": 64, **kwargs})
    with pytest.raises(error, match=match):
        gen.plan({"a": np.ones((4, 4, 3))}, {"b": np.ones((4, 4, 3))})


def test_every_parameter_has_a_constraint_and_clone_pickle_keep_them():
    import inspect
    import pickle

    import torch
    from sklearn.base import clone

    names = set(inspect.signature(DiffusionShiftGenerator).parameters)
    assert names == set(DiffusionShiftGenerator._parameter_constraints)
    gen = DiffusionShiftGenerator("a/path", image_size=64, n_samples=3, torch_dtype=torch.float16, random_state=1)
    for other in (clone(gen), pickle.loads(pickle.dumps(gen))):
        assert other.get_params() == gen.get_params()
    with pytest.raises(TypeError, match="'pipeline' parameter"):  # checked at plan too, not only when loading
        DiffusionShiftGenerator(42, image_size=64).plan({"a": np.ones((4, 4, 3))}, {"b": np.ones((4, 4, 3))})


def test_guide_parameters_are_checked_by_scikit_learn():
    img = np.ones((4, 4, 3))
    with pytest.raises(ValueError, match="'size' parameter of make_guide"):
        make_guide(img, img, size=4)
    with pytest.raises(ValueError, match="'fg_scale' parameter of make_guide"):
        make_guide(img, img, fg_scale=0.0)
    with pytest.raises(ValueError, match="NaN or infinite"):  # the images are data, checked as such
        make_guide(np.full((4, 4, 3), np.nan), img, size=16)


def test_bad_inputs_are_named(tmp_path):
    gen = DiffusionShiftGenerator(tmp_path / "nothing", image_size=32, verbose=0)
    img = np.ones((4, 4, 3))
    with pytest.raises(TypeError, match="foregrounds"):
        gen.plan([img], {"b": img})
    with pytest.raises(ValueError, match="holds no image"):
        gen.plan({"a": []}, {"b": img})
    with pytest.raises(TypeError, match="backgrounds"):
        gen.plan({"a": img}, {"b": ["not an image"]} and {"b": [object()]})
    with pytest.raises(ValueError, match="definitions"):
        gen.plan({"a": img}, {"b": img}, definitions={"zebra": "striped"})
    with pytest.raises(FileNotFoundError, match="image file not found"):
        gen.plan({"a": tmp_path / "missing.png"}, {"b": img})
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        gen.generate(tmp_path / "out", {"a": img}, {"b": img})
    with pytest.raises(TypeError, match="pipeline"):
        DiffusionShiftGenerator(42, image_size=32, verbose=0).generate(tmp_path / "out2", {"a": img}, {"b": img})
    with pytest.raises(FileNotFoundError, match="metadata.csv"):
        load_generated_shifts(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="position"):
        make_guide(img, img, size=16, position=(15, 15))
