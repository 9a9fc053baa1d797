"""make_shapes_on_tints: splits, the agreement, the rendering and its argument checks."""

import numpy as np
import pytest

from skshortcut.datasets import SHAPES, TINTS, make_shapes_on_tints


@pytest.fixture(scope="module")
def data():
    return make_shapes_on_tints(60, 400, 100, 180, n_shapes=3, n_tints=3, agreement=0.9,
                                image_size=16, random_state=0)


def test_layout(data):
    for split, n in (("diverse", 60), ("train", 400), ("val", 100), ("test", 180)):
        part = data[split]
        assert part.X.shape == (n, 3, 16, 16) and part.X.dtype == np.float32
        assert np.isfinite(part.X).all() and part.X.min() >= 0.0 and part.X.max() <= 1.0
        np.testing.assert_array_equal(part.groups, part.y * 3 + part.background)
        np.testing.assert_array_equal(part.labels, np.stack([part.y, part.background], axis=1))
        np.testing.assert_array_equal(part.spurious, part.background)
    assert data.target_names == list(SHAPES[:3])
    assert data.background_names == [name for name, _ in TINTS[:3]]
    assert len(data.group_names) == 9 and sorted(data.pairing.tolist()) == [0, 1, 2]


def test_agreement_is_exact_per_class(data):
    for split in ("train", "val"):
        part = data[split]
        for c in range(3):
            in_class = part.y == c
            agree = np.sum(part.background[in_class] == data.pairing[c])
            assert agree == round(0.9 * in_class.sum())


def test_diverse_and_test_hold_every_pair_evenly(data):
    assert np.bincount(data.test.groups, minlength=9).tolist() == [20] * 9
    counts = np.bincount(data.diverse.groups, minlength=9)
    assert counts.min() >= 6 and counts.max() <= 7


def test_tint_covers_the_background_and_the_shape_is_light(data):
    X, bg = data.test.X, data.test.background
    corners = X[:, :, 0, 0]  # the shape never reaches the image border
    colors = np.asarray([c for _, c in TINTS[:3]])
    nearest = np.argmin(
        np.linalg.norm(corners[:, None, :] / corners.max(axis=1, keepdims=True)[:, None, :]
                       - colors[None] / colors.max(axis=1, keepdims=True)[None], axis=2), axis=1)
    assert np.mean(nearest == bg) > 0.97
    # the brightest pixels are the shape's: light grey in every channel
    assert np.all(X.min(axis=1).max(axis=(1, 2)) > 0.8)


def test_shapes_differ_by_class():
    data = make_shapes_on_tints(10, 10, 10, 600, n_shapes=6, n_tints=6, image_size=20, random_state=1)
    coverage = data.test.X.min(axis=1)  # high on the light shape, low on every tint
    area = (coverage > 0.6).mean(axis=(1, 2))
    means = [area[data.test.y == c].mean() for c in range(6)]
    # the ring covers less than the circle, the cross less than the square
    assert means[SHAPES.index("ring")] < means[SHAPES.index("circle")]
    assert means[SHAPES.index("cross")] < means[SHAPES.index("square")]


def test_seeded_and_agreement_extremes():
    a = make_shapes_on_tints(5, 30, 5, 9, agreement=1.0, image_size=8, random_state=3)
    b = make_shapes_on_tints(5, 30, 5, 9, agreement=1.0, image_size=8, random_state=3)
    np.testing.assert_array_equal(a.train.X, b.train.X)
    assert np.all(a.train.background == a.pairing[a.train.y])
    c = make_shapes_on_tints(5, 30, 5, 9, agreement=0.0, image_size=8, random_state=3)
    assert not np.any(c.train.background == c.pairing[c.train.y])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_shapes": 7}, ValueError, "n_shapes"),
        ({"n_shapes": 1}, ValueError, "n_shapes"),
        ({"n_tints": 7}, ValueError, "n_tints"),
        ({"n_shapes": 4, "n_tints": 3}, ValueError, "n_tints must be at least n_shapes"),
        ({"agreement": 1.5}, ValueError, "agreement"),
        ({"agreement": "high"}, TypeError, "agreement"),
        ({"image_size": 4}, ValueError, "image_size"),
        ({"n_train": 0}, ValueError, "n_train"),
        ({"n_test": 2.5}, TypeError, "n_test"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_shapes_on_tints(**{"n_diverse": 5, "n_train": 5, "n_val": 5, "n_test": 5, **kwargs})
