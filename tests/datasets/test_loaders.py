import csv
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from skshortcut.datasets import (
    ColoredMNISTDataset,
    ImageFileDataset,
    ShortcutImageDataset,
    load_celeba,
    load_colored_mnist,
    load_waterbirds,
)

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()


def _write_image(path, size=(20, 16), value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


# ---------------------------------------------------------------------------
# Waterbirds
# ---------------------------------------------------------------------------

WATERBIRDS_ROWS = [
    # img_filename, y, split, place
    ("001.Black_footed_Albatross/a.png", 1, 0, 1),
    ("001.Black_footed_Albatross/b.png", 1, 0, 0),
    ("002.Cardinal/c.png", 0, 0, 0),
    ("002.Cardinal/d.png", 0, 1, 1),
    ("002.Cardinal/e.png", 0, 2, 0),
    ("001.Black_footed_Albatross/f.png", 1, 2, 1),
]


def _write_waterbirds(root, rows=WATERBIRDS_ROWS, images=True):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["img_id", "img_filename", "y", "split", "place", "place_filename"])
        for i, (filename, y, split, place) in enumerate(rows):
            writer.writerow([i + 1, filename, y, split, place, "/b/bamboo_forest/x.jpg"])
            if images and not filename.startswith(("/", "..")):
                _write_image(root / filename, value=i)
    return root


def test_waterbirds_splits_and_labels(tmp_path):
    root = _write_waterbirds(tmp_path / "waterbirds")
    train = load_waterbirds(root, image_size=32)
    assert isinstance(train, ImageFileDataset) and isinstance(train, ShortcutImageDataset)
    assert train.split == "train" and len(train) == 3
    np.testing.assert_array_equal(train.y, [1, 1, 0])
    np.testing.assert_array_equal(train.spurious, [1, 0, 0])
    np.testing.assert_array_equal(train.groups, [3, 2, 0])
    assert train.groups.dtype == np.int64
    assert train.group_names == [
        "y=0 (landbird), land", "y=0 (landbird), water",
        "y=1 (waterbird), land", "y=1 (waterbird), water",
    ]
    assert train.target_names == ["landbird", "waterbird"]
    assert train.spurious_names == ["land", "water"]
    assert len(load_waterbirds(root, "val")) == 1
    test = load_waterbirds(root, "test")
    np.testing.assert_array_equal(test.groups, [0, 3])
    assert len(load_waterbirds(root, "all")) == 6
    assert "n=3" in repr(train)


def test_waterbirds_items(tmp_path):
    root = _write_waterbirds(tmp_path)
    data = load_waterbirds(root, "all", image_size=32)
    image, y, group = data[0]
    assert isinstance(image, torch.Tensor)
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert (y, group) == (1, 3)
    images, ys, groups = next(iter(DataLoader(data, batch_size=4)))
    assert images.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(groups.numpy(), data.groups[:4])
    assert load_waterbirds(root)[0][0].shape == (3, 224, 224)
    # a user transform takes the PIL image and replaces the default
    sized = load_waterbirds(root, transform=lambda im: im.size)
    assert sized[0][0] == (20, 16)
    assert len(pickle.loads(pickle.dumps(data))) == 6


def test_waterbirds_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.csv"):
        load_waterbirds(tmp_path)
    root = _write_waterbirds(tmp_path / "wb", images=False)
    data = load_waterbirds(root)  # lazy: nothing opened yet
    with pytest.raises(FileNotFoundError, match=r"001\.Black_footed_Albatross/a\.png"):
        data[0]


@pytest.mark.parametrize("filename", ["../outside.png", "sub/../../outside.png", "/etc/passwd"])
def test_waterbirds_rejects_paths_outside_root(tmp_path, filename):
    rows = WATERBIRDS_ROWS + [(filename, 0, 0, 0)]
    root = _write_waterbirds(tmp_path / "wb", rows=rows)
    with pytest.raises(ValueError, match="img_filename"):
        load_waterbirds(root)
    # the escaping row is in the train split only
    assert len(load_waterbirds(root, "test")) == 2


def test_waterbirds_bad_metadata(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        load_waterbirds(tmp_path, "validation")
    (tmp_path / "metadata.csv").write_text("img_id,img_filename,y\n1,a.png,0\n")
    with pytest.raises(ValueError, match=r"\['place', 'split'\]"):
        load_waterbirds(tmp_path)
    (tmp_path / "metadata.csv").write_text("img_filename,y,split,place\na.png,2,0,0\n")
    with pytest.raises(ValueError, match="'y'"):
        load_waterbirds(tmp_path)
    (tmp_path / "metadata.csv").write_text("img_filename,y,split,place\na.png,x,0,0\n")
    with pytest.raises(ValueError, match="non-integer"):
        load_waterbirds(tmp_path)


# ---------------------------------------------------------------------------
# CelebA
# ---------------------------------------------------------------------------

CELEBA_FILES = ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg"]
CELEBA_PARTITION = [0, 0, 1, 2]


def _write_celeba(base, filenames=CELEBA_FILES, attribute_rows=None):
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    values = None
    if attribute_rows is None:
        values = rng.choice([-1, 1], size=(len(filenames), 40))
        blond, male = CELEBA_ATTRIBUTES.index("Blond_Hair"), CELEBA_ATTRIBUTES.index("Male")
        values[:, blond] = [1, -1, 1, -1]
        values[:, male] = [1, 1, -1, -1]
        attribute_rows = [
            f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(filenames, values)
        ]
    lines = [str(len(attribute_rows)), " ".join(CELEBA_ATTRIBUTES) + " ", *attribute_rows]
    (base / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (base / "list_eval_partition.txt").write_text(
        "".join(f"{name} {code}\n" for name, code in zip(filenames, CELEBA_PARTITION))
    )
    for i, name in enumerate(filenames):
        if not name.startswith(".."):
            _write_image(base / "img_align_celeba" / name, size=(18, 22), value=i)
    return values


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_celeba_layouts_and_labels(tmp_path, layout):
    base = tmp_path if layout == "flat" else tmp_path / "celeba"
    _write_celeba(base)
    train = load_celeba(tmp_path, image_size=24)
    assert train.split == "train" and len(train) == 2
    np.testing.assert_array_equal(train.y, [1, 0])
    np.testing.assert_array_equal(train.spurious, [1, 1])
    np.testing.assert_array_equal(train.groups, [3, 1])
    assert train.group_names[3] == "y=1 (Blond_Hair), Male"
    assert train.target_names == ["not Blond_Hair", "Blond_Hair"]
    image, y, group = train[0]
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert (y, group) == (1, 3)
    val, test, everything = (load_celeba(tmp_path, s) for s in ("val", "test", "all"))
    assert (len(val), len(test), len(everything)) == (1, 1, 4)
    np.testing.assert_array_equal(everything.groups, [3, 1, 2, 0])


def test_celeba_other_attributes(tmp_path):
    values = _write_celeba(tmp_path)
    data = load_celeba(tmp_path, "all", target="Attractive", spurious="Smiling")
    np.testing.assert_array_equal(data.y, values[:, CELEBA_ATTRIBUTES.index("Attractive")] > 0)
    np.testing.assert_array_equal(
        data.spurious, values[:, CELEBA_ATTRIBUTES.index("Smiling")] > 0
    )


def test_celeba_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="list_attr_celeba.txt"):
        load_celeba(tmp_path)
    _write_celeba(tmp_path)
    with pytest.raises(ValueError, match="target='Blonde'.*valid names: 5_o_Clock_Shadow"):
        load_celeba(tmp_path, target="Blonde")
    with pytest.raises(ValueError, match="spurious='Female'"):
        load_celeba(tmp_path, spurious="Female")
    (tmp_path / "list_eval_partition.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
        load_celeba(tmp_path)


def test_celeba_malformed_files(tmp_path):
    _write_celeba(tmp_path, attribute_rows=["000001.jpg 1 -1"] * 4)
    with pytest.raises(ValueError, match="line 3"):
        load_celeba(tmp_path)
    _write_celeba(tmp_path)
    attr = tmp_path / "list_attr_celeba.txt"
    attr.write_text("5\n" + attr.read_text().split("\n", 1)[1])
    with pytest.raises(ValueError, match="declares 5 images but lists 4"):
        load_celeba(tmp_path)


def test_celeba_rejects_escaping_filenames(tmp_path):
    _write_celeba(tmp_path, filenames=["../../secret.jpg", *CELEBA_FILES[1:]])
    with pytest.raises(ValueError, match="outside"):
        load_celeba(tmp_path)


# ---------------------------------------------------------------------------
# Coloured MNIST
# ---------------------------------------------------------------------------


def _idx_bytes(array, magic):
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(root, n_train=40, n_test=20, compress=False):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": (rng.integers(0, 256, (n_train, 28, 28)), 2051),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10, 2049),
        "t10k-images-idx3-ubyte": (rng.integers(0, 256, (n_test, 28, 28)), 2051),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10, 2049),
    }
    for name, (array, magic) in arrays.items():
        data = _idx_bytes(np.asarray(array), magic)
        if compress:
            with gzip.open(raw / (name + ".gz"), "wb") as f:
                f.write(data)
        else:
            (raw / name).write_bytes(data)
    return {name: array for name, (array, _) in arrays.items()}


@pytest.mark.parametrize("compress", [False, True])
def test_colored_mnist_splits(tmp_path, compress):
    arrays = _write_mnist(tmp_path, compress=compress)
    train = load_colored_mnist(tmp_path, n_val=20)
    val = load_colored_mnist(tmp_path, "val", n_val=20)
    test = load_colored_mnist(tmp_path, "test", n_val=20)
    everything = load_colored_mnist(tmp_path, "all", n_val=20)
    assert isinstance(train, ColoredMNISTDataset)
    assert (len(train), len(val), len(test), len(everything)) == (20, 20, 20, 60)
    assert train.split == "train" and everything.split == "all"
    np.testing.assert_array_equal(train.data, arrays["train-images-idx3-ubyte"][:20])
    np.testing.assert_array_equal(val.digits, arrays["train-labels-idx1-ubyte"][20:])
    np.testing.assert_array_equal(test.data, arrays["t10k-images-idx3-ubyte"])
    # a split is coloured the same whichever split is loaded
    for key in ("y", "spurious", "groups", "digits"):
        np.testing.assert_array_equal(
            everything.__dict__[key],
            np.concatenate([train.__dict__[key], val.__dict__[key], test.__dict__[key]]),
        )


def test_colored_mnist_colouring_rule(tmp_path):
    _write_mnist(tmp_path)
    data = load_colored_mnist(tmp_path, "all", n_val=20, regime="cmnist")
    assert data.params["test_agreement"] == 0.99 and data.params["label_noise"] == 0.0
    np.testing.assert_array_equal(data.y, data.digits >= 5)
    np.testing.assert_array_equal(data.groups, data.y * 2 + data.spurious)
    assert data.spurious_names == ["red", "green"]
    for i in range(len(data)):
        image, y, group = data[i]
        assert image.shape == (3, 28, 28) and image.dtype == torch.float32
        channel = data.spurious[i]
        expected = torch.from_numpy(data.data[i] / 255.0).float()
        torch.testing.assert_close(image[channel], expected)
        assert image.sum() == pytest.approx(float(expected.sum()), rel=1e-5)
        assert (y, group) == (data.y[i], data.groups[i])


def test_colored_mnist_presets_and_determinism(tmp_path):
    _write_mnist(tmp_path, n_train=120, n_test=40)
    train = load_colored_mnist(tmp_path, n_val=20)
    assert train.params["regime"] == "arjovsky"
    # label noise 0.25: exactly 25 of 100 labels flipped; agreement 0.9 per class
    assert np.sum(train.y != (train.digits >= 5)) == 25
    assert np.mean(train.spurious == train.y) == pytest.approx(0.9, abs=0.011)
    test = load_colored_mnist(tmp_path, "test", n_val=20)
    assert np.mean(test.spurious == test.y) == pytest.approx(0.1, abs=0.026)
    again = load_colored_mnist(tmp_path, n_val=20)
    np.testing.assert_array_equal(train.spurious, again.spurious)
    other = load_colored_mnist(tmp_path, n_val=20, random_state=1)
    assert not np.array_equal(train.spurious, other.spurious)
    custom = load_colored_mnist(tmp_path, "test", n_val=20, test_agreement=1.0, label_noise=0.0)
    np.testing.assert_array_equal(custom.spurious, custom.y)
    resized = load_colored_mnist(tmp_path, "test", n_val=20, image_size=14)
    assert resized[0][0].shape == (3, 14, 14)


def test_colored_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST/raw/train-images-idx3-ubyte"):
        load_colored_mnist(tmp_path)
    _write_mnist(tmp_path)
    with pytest.raises(ValueError, match="n_val"):
        load_colored_mnist(tmp_path, n_val=40)
    with pytest.raises(ValueError, match="regime must be one of"):
        load_colored_mnist(tmp_path, regime="colored")
    with pytest.raises(ValueError, match="agreement"):
        load_colored_mnist(tmp_path, agreement=1.2)
    with pytest.raises(ValueError, match="image_size"):
        load_colored_mnist(tmp_path, image_size=2)
    labels = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(_idx_bytes(np.zeros(20), 2051))
    with pytest.raises(ValueError, match="magic number 2049"):
        load_colored_mnist(tmp_path, n_val=20)
    labels.write_bytes(_idx_bytes(np.zeros(20), 2049)[:-3])
    with pytest.raises(ValueError, match="header announces"):
        load_colored_mnist(tmp_path, n_val=20)


@pytest.mark.parametrize("prefix", ["train", "t10k"])
def test_colored_mnist_refuses_image_and_label_counts_that_differ(tmp_path, prefix):
    _write_mnist(tmp_path)
    n = 40 if prefix == "train" else 20
    (tmp_path / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_bytes(np.arange(n - 1) % 10, 2049))
    with pytest.raises(ValueError, match=rf"holds {n} images but .*{prefix}-labels-idx1-ubyte holds {n - 1} labels"):
        load_colored_mnist(tmp_path, "test" if prefix == "t10k" else "train", n_val=20)


def test_colored_mnist_refuses_labels_that_are_not_digits(tmp_path):
    _write_mnist(tmp_path)
    labels = np.arange(20) % 10
    labels[7] = 12
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(labels, 2049))
    with pytest.raises(ValueError, match=r"outside 0-9 \(first: 12 at index 7, 1 in all\)"):
        load_colored_mnist(tmp_path, "test", n_val=20)

