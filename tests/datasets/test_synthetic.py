import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from skshortcut.datasets import (
    COLORED_DIGITS_PRESETS,
    make_colored_digits,
    make_dominoes,
    make_patch_digits,
)

SPLITS = ("train", "val", "test")
MAKERS = (make_colored_digits, make_patch_digits, make_dominoes)
DIGIT_TARGET = load_digits().target


@pytest.fixture(scope="module")
def colored():
    return make_colored_digits(200, 100, 100, random_state=0)


@pytest.fixture(scope="module")
def patch():
    return make_patch_digits(200, 100, 100, random_state=0)


@pytest.fixture(scope="module")
def dominoes():
    return make_dominoes(200, 100, 100, random_state=0)


@pytest.fixture(scope="module")
def datasets(colored, patch, dominoes):
    return {"colored": colored, "patch": patch, "dominoes": dominoes}


@pytest.mark.parametrize("name", ["colored", "patch", "dominoes"])
def test_bunch_layout(datasets, name):
    data = datasets[name]
    for key in ("train", "val", "test", "group_names", "target_names", "spurious_names",
                "params", "DESCR"):
        assert key in data
    assert len(data.group_names) == 4
    assert len(data.target_names) == len(data.spurious_names) == 2
    assert isinstance(data.DESCR, str) and "Group counts" in data.DESCR
    height = 56 if name == "dominoes" else 28
    for split, n in zip(SPLITS, (200, 100, 100)):
        part = data[split]
        assert part.X.shape == (n, 3, height, 28)
        assert part.X.dtype == np.float32
        assert part.X.min() >= 0.0 and part.X.max() <= 1.0
        assert part.X.max() > 0.9  # strokes reach full intensity
        for key in ("y", "spurious", "groups"):
            assert part[key].dtype == np.int64 and part[key].shape == (n,)
        np.testing.assert_array_equal(part.groups, part.y * 2 + part.spurious)
        assert set(np.unique(part.y)) <= {0, 1}
        assert set(np.unique(part.spurious)) <= {0, 1}


def test_group_names(colored, patch, dominoes):
    assert colored.group_names == [
        "y=0 (0-4), red", "y=0 (0-4), green", "y=1 (5-9), red", "y=1 (5-9), green",
    ]
    assert patch.group_names[3] == "y=1 (5-9), patch"
    assert dominoes.group_names[1] == "y=0 (core 3), spurious 1"


@pytest.mark.parametrize("make", MAKERS)
def test_image_size(make):
    data = make(5, 3, 3, image_size=16, random_state=0)
    height = 32 if make is make_dominoes else 16
    assert data.test.X.shape == (3, 3, height, 16)


@pytest.mark.parametrize("make", MAKERS)
def test_determinism(make):
    a = make(30, 10, 10, random_state=3)
    b = make(30, 10, 10, random_state=3)
    c = make(30, 10, 10, random_state=4)
    d = make(30, 10, 10, random_state=np.random.RandomState(3))
    for split in SPLITS:
        for key in ("X", "y", "spurious", "groups", "base_index"):
            np.testing.assert_array_equal(a[split][key], b[split][key])
            np.testing.assert_array_equal(a[split][key], d[split][key])
        assert not np.array_equal(a[split].X, c[split].X)


def test_splits_do_not_depend_on_other_sizes():
    a = make_colored_digits(100, 20, 20, random_state=0)
    b = make_colored_digits(300, 20, 20, random_state=0)
    np.testing.assert_array_equal(a.val.X, b.val.X)
    np.testing.assert_array_equal(a.test.X, b.test.X)


@pytest.mark.parametrize("name", ["colored", "patch", "dominoes"])
def test_no_base_image_leaks_across_splits(datasets, name):
    data = datasets[name]
    pools = {split: set(np.ravel(data[split].base_index)) for split in SPLITS}
    assert not pools["train"] & pools["val"]
    assert not pools["train"] & pools["test"]
    assert not pools["val"] & pools["test"]
    for split in SPLITS:
        np.testing.assert_array_equal(DIGIT_TARGET[data[split].base_index], data[split].digit)


@pytest.mark.parametrize("name", ["colored", "patch"])
def test_digits_are_balanced(datasets, name):
    data = datasets[name]
    for split, n in zip(SPLITS, (200, 100, 100)):
        np.testing.assert_array_equal(np.bincount(data[split].digit, minlength=10), n // 10)
    odd = make_colored_digits(23, 1, 1, random_state=0).train.digit
    assert set(np.bincount(odd, minlength=10)) == {2, 3}


def test_colored_exact_counts(colored):
    # default regime: agreement 0.95 in train / val, 0.5 in test; 100 / 50 per class
    np.testing.assert_array_equal(np.bincount(colored.train.groups), [95, 5, 5, 95])
    # 0.05 * 50 = 2.5 minority samples per class: halves round up
    np.testing.assert_array_equal(np.bincount(colored.val.groups), [47, 3, 3, 47])
    np.testing.assert_array_equal(np.bincount(colored.test.groups), [25, 25, 25, 25])


def test_colored_labels_and_colours(colored):
    for split in SPLITS:
        part = colored[split]
        np.testing.assert_array_equal(part.y, (part.digit >= 5).astype(int))
        red, green = part.spurious == 0, part.spurious == 1
        assert np.all(part.X[:, 2] == 0)
        assert np.all(part.X[red, 1] == 0) and np.all(part.X[green, 0] == 0)
        assert np.all(part.X[red, 0].max(axis=(1, 2)) > 0.5)
        assert np.all(part.X[green, 1].max(axis=(1, 2)) > 0.5)


@pytest.mark.parametrize("regime", sorted(COLORED_DIGITS_PRESETS))
def test_colored_presets(regime):
    n = 400
    data = make_colored_digits(n, n, n, regime=regime, random_state=1)
    preset = COLORED_DIGITS_PRESETS[regime]
    assert data.params["regime"] == regime
    for key in ("agreement", "val_agreement", "test_agreement", "label_noise"):
        assert data.params[key] == preset[key]
    for split, key in zip(SPLITS, ("agreement", "val_agreement", "test_agreement")):
        part = data[split]
        flipped = np.sum(part.y != (part.digit >= 5))
        assert flipped == round(preset["label_noise"] * n)
        # exact per class up to rounding
        assert np.mean(part.spurious == part.y) == pytest.approx(preset[key], abs=1.01 / n)


def test_preset_table():
    assert COLORED_DIGITS_PRESETS["cmnist"]["test_agreement"] == 0.99
    assert COLORED_DIGITS_PRESETS["arjovsky"]["label_noise"] == 0.25
    assert COLORED_DIGITS_PRESETS["arjovsky"]["test_agreement"] == 0.1
    assert COLORED_DIGITS_PRESETS["default"]["test_agreement"] == 0.5


def test_colored_override_precedence():
    data = make_colored_digits(20, 20, 20, regime="arjovsky", agreement=0.8, random_state=0)
    assert data.params["agreement"] == 0.8
    assert data.params["val_agreement"] == 0.8  # follows an explicit agreement
    assert data.params["test_agreement"] == 0.1  # still the preset
    assert data.params["label_noise"] == 0.25
    data = make_colored_digits(
        20, 20, 20, regime="cmnist", val_agreement=0.5, test_agreement=0.0, label_noise=0.1,
        random_state=0,
    )
    assert data.params["agreement"] == 0.99
    assert data.params["val_agreement"] == 0.5
    assert data.params["test_agreement"] == 0.0
    assert data.params["label_noise"] == 0.1
    assert np.all(data.test.spurious != data.test.y)


def test_colored_small_splits_keep_minority_groups():
    data = make_colored_digits(20, 20, 20, random_state=5)
    counts = np.bincount(data.train.groups, minlength=4)
    assert counts[1] == 1 and counts[2] == 1  # 0.05 * 10 = 0.5 rounds up


def test_patch_placement(patch):
    region = patch.patch_region
    assert region.shape == (28, 28) and region.sum() == 16
    assert region[-1, -1] and region[-4, -4] and not region[0, 0]
    blue = np.array([0.0, 0.0, 1.0], dtype=np.float32)[:, None]
    for split in SPLITS:
        part = patch[split]
        pixels = part.X[:, :, region]  # (n, 3, 16)
        is_blue = np.all(pixels == blue, axis=(1, 2))
        np.testing.assert_array_equal(is_blue, part.spurious == 1)
        # everything else is grey: equal channels
        outside = part.X[:, :, ~region]
        assert np.all(outside[:, 0] == outside[:, 2]) and np.all(outside[:, 1] == outside[:, 2])
    # train / val: 90 % of class 1, none of class 0; test: half of each class
    np.testing.assert_array_equal(np.bincount(patch.train.groups, minlength=4), [100, 0, 10, 90])
    np.testing.assert_array_equal(np.bincount(patch.val.groups, minlength=4), [50, 0, 5, 45])
    np.testing.assert_array_equal(np.bincount(patch.test.groups, minlength=4), [25, 25, 25, 25])
    assert patch.params["patch_fraction"] == (0.0, 0.9)
    assert patch.params["test_patch_fraction"] == (0.5, 0.5)


def test_patch_options():
    data = make_patch_digits(
        20, 20, 20, patch_fraction=1.0, patch_class=0, val_patch_fraction=(0.2, 0.4),
        test_patch_fraction=0.0, patch_size=6, image_size=32, random_state=0,
    )
    assert data.patch_region.sum() == 36
    np.testing.assert_array_equal(data.train.spurious, 1 - data.train.y)
    np.testing.assert_array_equal(np.bincount(data.val.groups, minlength=4), [8, 2, 6, 4])
    assert data.test.spurious.sum() == 0
    assert make_patch_digits(2, 2, 2, image_size=56, random_state=0).params["patch_size"] == 8


def test_dominoes_structure(dominoes):
    region = dominoes.core_region
    assert region.shape == (56, 28) and region.dtype == bool
    assert region[28:].all() and not region[:28].any()
    assert dominoes.params["core_pair"] == (3, 8)
    assert dominoes.params["spurious_pair"] == (0, 1)
    for split in SPLITS:
        part = dominoes[split]
        assert part.digit.shape == part.base_index.shape == (len(part.y), 2)
        np.testing.assert_array_equal(part.digit[:, 0], np.array([0, 1])[part.spurious])
        np.testing.assert_array_equal(part.digit[:, 1], np.array([3, 8])[part.y])
        # both halves hold a digit
        assert np.all(part.X[:, :, :28].max(axis=(1, 2, 3)) > 0.5)
        assert np.all(part.X[:, :, 28:].max(axis=(1, 2, 3)) > 0.5)
    np.testing.assert_array_equal(dominoes.train.spurious, dominoes.train.y)
    np.testing.assert_array_equal(dominoes.val.spurious, dominoes.val.y)
    np.testing.assert_array_equal(np.bincount(dominoes.test.groups), [25, 25, 25, 25])


def test_dominoes_correlations():
    data = make_dominoes(
        400, 40, 1000, core_pair=(4, 9), spurious_pair=(7, 2), correlation=0.5,
        val_correlation=-1.0, test_correlation=0.0, random_state=0,
    )
    assert np.mean(data.train.spurious == data.train.y) == 0.75
    assert np.all(data.val.spurious != data.val.y)
    test = data.test
    assert abs(np.corrcoef(test.y, test.spurious)[0, 1]) < 1e-9
    assert np.mean(test.y) == 0.5
    assert data.target_names == ["core 4", "core 9"]
    np.testing.assert_array_equal(data.train.digit[:, 0], np.array([7, 2])[data.train.spurious])


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "match"),
    [
        (make_colored_digits, {"n_train": 0}, ValueError, "n_train"),
        (make_colored_digits, {"n_val": -1}, ValueError, "n_val"),
        (make_colored_digits, {"n_test": 1.5}, TypeError, "n_test"),
        (make_colored_digits, {"image_size": 7}, ValueError, "image_size"),
        (make_colored_digits, {"agreement": 1.5}, ValueError, "agreement"),
        (make_colored_digits, {"test_agreement": -0.1}, ValueError, "test_agreement"),
        (make_colored_digits, {"label_noise": 2}, ValueError, "label_noise"),
        (make_colored_digits, {"regime": "mnist"}, ValueError, "'default', 'cmnist', 'arjovsky'"),
        (make_patch_digits, {"patch_fraction": 1.1}, ValueError, "patch_fraction"),
        (make_patch_digits, {"test_patch_fraction": (0.5,)}, ValueError, "test_patch_fraction"),
        (make_patch_digits, {"val_patch_fraction": (0.5, -1)}, ValueError, "val_patch_fraction"),
        (make_patch_digits, {"patch_class": 2}, ValueError, "patch_class"),
        (make_patch_digits, {"patch_size": 0}, ValueError, "patch_size"),
        (make_patch_digits, {"patch_size": 29}, ValueError, "patch_size"),
        (make_dominoes, {"core_pair": (3, 3)}, ValueError, "core_pair"),
        (make_dominoes, {"spurious_pair": (0, 10)}, ValueError, "spurious_pair"),
        (make_dominoes, {"spurious_pair": 1}, ValueError, "spurious_pair"),
        (make_dominoes, {"correlation": 1.5}, ValueError, "correlation"),
        (make_dominoes, {"val_correlation": -2}, ValueError, "val_correlation"),
        (make_dominoes, {"test_correlation": "0"}, TypeError, "test_correlation"),
    ],
)
def test_invalid_arguments(make, kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**{"n_train": 4, "n_val": 4, "n_test": 4, **kwargs})


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 2),
    sizes=st.tuples(st.integers(1, 12), st.integers(1, 6), st.integers(1, 6)),
    maker=st.sampled_from(MAKERS),
    agreement=st.floats(0.0, 1.0),
)
def test_invariants_hold_for_any_seed_and_size(seed, sizes, maker, agreement):
    if maker is make_colored_digits:
        data = maker(*sizes, agreement=agreement, random_state=seed)
    elif maker is make_patch_digits:
        data = maker(*sizes, patch_fraction=agreement, random_state=seed)
    else:
        data = maker(*sizes, correlation=2 * agreement - 1, random_state=seed)
    for split, n in zip(SPLITS, sizes):
        part = data[split]
        assert part.X.shape[:2] == (n, 3)
        assert part.X.dtype == np.float32
        assert part.X.min() >= 0.0 and part.X.max() <= 1.0
        np.testing.assert_array_equal(part.groups, part.y * 2 + part.spurious)
        assert set(np.unique(part.groups)) <= {0, 1, 2, 3}
