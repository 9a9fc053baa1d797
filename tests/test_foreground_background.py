"""make_foreground_background: digits on textures, with the correlated / anti-correlated splits of D3S section 6."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skshortcut.datasets import FOREGROUND_BACKGROUND_TEXTURES, make_foreground_background


def test_splits_shapes_and_labels():
    data = make_foreground_background(60, 30, 20, 40, image_size=16, random_state=0)
    for split, n in (("diverse", 60), ("train", 30), ("val", 20), ("test", 40)):
        part = data[split]
        assert part.X.shape == (n, 3, 16, 16) and part.X.dtype == np.float32
        assert 0.0 <= part.X.min() and part.X.max() <= 1.0
        np.testing.assert_array_equal(part.labels, np.stack([part.y, part.background], 1))
        np.testing.assert_array_equal(part.groups, part.y * 10 + part.background)
        np.testing.assert_array_equal(part.spurious, part.background)
    assert data.target_names == [str(d) for d in range(10)]
    assert data.background_names == [name for name, _, _ in FOREGROUND_BACKGROUND_TEXTURES]
    assert len(data.group_names) == 100 and sorted(data.pairing.tolist()) == list(range(10))


@settings(max_examples=15, deadline=None)
@given(n_fg=st.integers(2, 10), n_bg=st.integers(2, 10), seed=st.integers(0, 100))
def test_correlated_and_anticorrelated_pairs(n_fg, n_bg, seed):
    n = n_fg * n_bg * 2
    data = make_foreground_background(n, 3 * n_fg, n_fg, n, n_foregrounds=n_fg, n_backgrounds=n_bg,
                                      image_size=8, random_state=seed)
    pairing = data.pairing
    assert pairing.shape == (n_fg,) and len(set(pairing.tolist())) == min(n_fg, n_bg)
    for split in ("train", "val"):  # each foreground on its one background
        np.testing.assert_array_equal(data[split].background, pairing[data[split].y])
    assert not np.any(data.test.background == pairing[data.test.y])  # never the paired one
    # diverse: every pair, each exactly twice; foregrounds balanced everywhere
    pairs, counts = np.unique(data.diverse.labels, axis=0, return_counts=True)
    assert len(pairs) == n_fg * n_bg and set(counts.tolist()) == {2}
    assert set(np.bincount(data.train.y, minlength=n_fg).tolist()) == {3}
    # anti-correlated: every other pair, evenly
    test_pairs, test_counts = np.unique(data.test.labels, axis=0, return_counts=True)
    assert len(test_pairs) == n_fg * (n_bg - 1) and test_counts.max() - test_counts.min() <= 1


def test_seeded_and_disjoint_base_images():
    a = make_foreground_background(50, 20, 20, 20, image_size=12, random_state=3)
    b = make_foreground_background(50, 20, 20, 20, image_size=12, random_state=3)
    c = make_foreground_background(50, 20, 20, 20, image_size=12, random_state=4)
    np.testing.assert_array_equal(a.diverse.X, b.diverse.X)
    assert not np.array_equal(a.diverse.X, c.diverse.X)
    assert not set(a.train.base_index) & set(a.test.base_index)
    assert not set(a.val.base_index) & set(a.test.base_index)


def test_background_is_the_easy_cue_and_the_digit_is_drawn_on_top():
    data = make_foreground_background(400, 10, 10, 10, image_size=16, random_state=0)
    X, bg = data.diverse.X, data.diverse.background
    # mean colour alone tells the backgrounds apart: nearest class mean, on held-out halves
    colour = X.mean(axis=(2, 3))
    means = np.stack([colour[:200][bg[:200] == b].mean(0) for b in range(10)])
    pred = np.argmin(((colour[200:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == bg[200:]) >= 0.9
    # white strokes: the brightest pixels are white on every background
    assert np.all(X.min(axis=1).max(axis=(1, 2)) >= 0.9)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_foregrounds": 11}, ValueError, "n_foregrounds"),
        ({"n_foregrounds": 1}, ValueError, "n_foregrounds"),
        ({"n_backgrounds": 11}, ValueError, "n_backgrounds"),
        ({"n_backgrounds": 2.5}, TypeError, "n_backgrounds"),
        ({"image_size": 4}, ValueError, "image_size"),
        ({"n_diverse": 0}, ValueError, "n_diverse"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_foreground_background(**{"n_diverse": 10, "n_train": 10, "n_val": 10, "n_test": 10, **kwargs})
