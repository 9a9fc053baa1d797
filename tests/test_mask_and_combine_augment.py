"""Mask-and-Combine augmentations: Eqs. 1 and 2 pixel by pixel, top-K masks, partners, table 1."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skshortcut.retraining.mask_and_combine import (
    draw_partners,
    mask_region_table,
    masked_combination,
    masked_removal,
    top_k_mask,
)

# Two hand-made images, 2 channels, 2 x 3 pixels.
X = np.array(
    [
        [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]]],
        [[[7.0, 8.0, 9.0], [0.0, 1.0, 2.0]], [[70.0, 80.0, 90.0], [0.0, 10.0, 20.0]]],
    ],
    dtype=np.float32,
)
M = np.array(
    [
        [[1, 1, 0], [0, 0, 0]],  # core of image 0: top-left two pixels
        [[0, 1, 0], [0, 1, 1]],  # core of image 1
    ],
    dtype=bool,
)
# per-channel mean over the batch (both images, all pixels)
B = np.array([(21 + 27) / 12, (210 + 270) / 12], dtype=np.float32)  # [4.0, 40.0]


def test_batch_fill_is_per_channel_mean():
    assert np.allclose(B, X.mean(axis=(0, 2, 3)))


def test_removal_eq1_pixel_by_pixel():
    out = masked_removal(X, M)
    b0, b1 = B
    expected = np.array(
        [
            [[[1.0, 2.0, b0], [b0, b0, b0]], [[10.0, 20.0, b1], [b1, b1, b1]]],
            [[[b0, 8.0, b0], [b0, 1.0, 2.0]], [[b1, 80.0, b1], [b1, 10.0, 20.0]]],
        ],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(out, expected)


def test_removal_with_explicit_fill():
    out = masked_removal(X[:1], M[:1], fill=[-1.0, -2.0])
    expected = np.array([[[[1.0, 2.0, -1.0], [-1.0, -1.0, -1.0]], [[10.0, 20.0, -2.0], [-2.0, -2.0, -2.0]]]])
    np.testing.assert_array_equal(out, expected)


def test_combination_eq2_pixel_by_pixel():
    # image 0 with partner 1 and image 1 with partner 0
    out = masked_combination(X, M, [1, 0])
    b0, b1 = B
    # pixel cases for i=0, j=1: m_i=1 -> x_i; m_i=0, m_j=0 -> x_j; m_i=0, m_j=1 -> b
    # m_0 = [[1,1,0],[0,0,0]], m_1 = [[0,1,0],[0,1,1]]
    expected0 = np.array(
        [[[1.0, 2.0, 9.0], [0.0, b0, b0]], [[10.0, 20.0, 90.0], [0.0, b1, b1]]], dtype=np.float32
    )
    # i=1, j=0: m_1 = [[0,1,0],[0,1,1]], m_0 = [[1,1,0],[0,0,0]]
    expected1 = np.array(
        [[[b0, 8.0, 3.0], [4.0, 1.0, 2.0]], [[b1, 80.0, 30.0], [40.0, 10.0, 20.0]]], dtype=np.float32
    )
    np.testing.assert_array_equal(out[0], expected0)
    np.testing.assert_array_equal(out[1], expected1)


def test_torch_and_numpy_agree_and_keep_their_kind():
    out_np = masked_combination(X, M, [1, 0])
    out_t = masked_combination(torch.from_numpy(X), torch.from_numpy(M), torch.tensor([1, 0]))
    assert isinstance(out_t, torch.Tensor)
    np.testing.assert_array_equal(out_t.numpy(), out_np)
    rm_t = masked_removal(torch.from_numpy(X), torch.from_numpy(M))
    np.testing.assert_array_equal(rm_t.numpy(), masked_removal(X, M))


def test_masks_with_channel_axis_are_accepted():
    np.testing.assert_array_equal(masked_removal(X, M[:, None]), masked_removal(X, M))


def test_augmentation_errors_name_the_argument():
    with pytest.raises(ValueError, match="`X` must have shape"):
        masked_removal(X[0], M)
    with pytest.raises(ValueError, match="`masks` must have shape"):
        masked_removal(X, M[:, :1])
    with pytest.raises(ValueError, match="`fill`"):
        masked_removal(X, M, fill=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="`partners`"):
        masked_combination(X, M, [1, 2])
    with pytest.raises(ValueError, match="`partners`"):
        masked_combination(X, M, [1])


# --------------------------------------------------------------------- laws (hypothesis)
images = st.integers(1, 4).flatmap(
    lambda n: st.tuples(
        arrays(np.float32, (n, 2, 3, 4), elements=st.floats(0, 1, width=32)),
        arrays(np.bool_, (n, 3, 4)),
        st.lists(st.integers(0, n - 1), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(images)
def test_combination_law_per_pixel(case):
    x, m, partners = case
    out = masked_combination(x, m, partners)
    b = x.mean(axis=(0, 2, 3))
    for i, j in enumerate(partners):
        for c in range(x.shape[1]):
            want = np.where(m[i], x[i, c], np.where(m[j], b[c], x[j, c]))
            np.testing.assert_allclose(out[i, c], want, rtol=0, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(images)
def test_removal_law_and_self_combination(case):
    x, m, _ = case
    b = x.mean(axis=(0, 2, 3))
    rm = masked_removal(x, m)
    np.testing.assert_allclose(rm, np.where(m[:, None], x, b[None, :, None, None]), atol=1e-6)
    # combining an image with itself gives it back: m x + (1 - m) x
    np.testing.assert_allclose(masked_combination(x, m, list(range(len(x)))), x, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, (3, 4, 5), elements=st.floats(-5, 5)),
    st.integers(1, 20),
    st.integers(0, 2**16),
)
def test_top_k_mask_law(scores, k, seed):
    masks = top_k_mask(scores, k, random_state=seed)
    assert masks.dtype == bool and masks.shape == scores.shape
    for s, m in zip(scores, masks):
        assert m.sum() == k
        if k < m.size:
            assert s[m].min() >= s[~m].max()


def test_top_k_mask_fraction_ties_and_torch():
    scores = np.zeros((2, 10, 10))
    scores[:, 5:, :] = 1.0  # bottom half scores high
    masks = top_k_mask(scores, 0.3, random_state=0)
    assert masks.sum(axis=(1, 2)).tolist() == [30, 30]
    assert not masks[:, :5].any()
    # ties broken at random: an all-zero map does not favour the first rows
    flat = top_k_mask(np.zeros((1, 20, 20)), 0.5, random_state=0)[0]
    assert 60 < flat[:10].sum() < 140
    t = top_k_mask(torch.from_numpy(scores), 30, random_state=0)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.bool
    np.testing.assert_array_equal(t.numpy(), masks)


def test_top_k_mask_errors():
    with pytest.raises(ValueError, match="`k`"):
        top_k_mask(np.zeros((1, 2, 2)), 5)
    with pytest.raises(ValueError, match="`k`"):
        top_k_mask(np.zeros((1, 2, 2)), 1.5)
    with pytest.raises(TypeError, match="`k`"):
        top_k_mask(np.zeros((1, 2, 2)), "3")
    with pytest.raises(ValueError, match="`scores`"):
        top_k_mask(np.zeros((2, 2)), 1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=30), st.integers(0, 1000))
def test_partners_have_another_class(y, seed):
    y = np.array(y)
    p = draw_partners(y, random_state=seed)
    for i, j in enumerate(p):
        if len(np.unique(y)) == 1:
            assert j == -1
        else:
            assert j >= 0 and y[j] != y[i]


def test_mask_region_table_hand_made():
    region = np.zeros((4, 2), bool)
    region[2:] = True  # bottom half is core
    masks = np.zeros((3, 4, 2), bool)
    masks[0, 2:] = True  # all on core
    masks[1, 0, 0] = masks[1, 3, 1] = True  # half on core
    masks[2, :2] = True  # all on spurious
    heat = masks.astype(float) * 2.0
    t = mask_region_table(masks, region, groups=[0, 0, 1], heatmaps=heat, group_names=["g0", "g1"])
    assert t["g0"]["n"] == 2
    assert t["g0"]["mask_on_core"] == pytest.approx(0.75)
    assert t["g0"]["mask_on_spurious"] == pytest.approx(0.25)
    assert t["g0"]["core_covered"] == pytest.approx((1.0 + 0.25) / 2)
    assert t["g1"]["mask_on_core"] == 0.0 and t["g1"]["spurious_covered"] == 1.0
    assert t["g1"]["core_score"] == 0.0 and t["g1"]["spurious_score"] == 1.0
    with pytest.raises(ValueError, match="`region`"):
        mask_region_table(masks, region[:2], groups=[0, 0, 1])
    with pytest.raises(ValueError, match="`heatmaps`"):
        mask_region_table(masks, region, groups=[0, 0, 1], heatmaps=heat[:, :2])


def test_interventions_live_in_their_module_and_keep_their_public_path():
    from skshortcut.plotting import plot_mask_and_combine  # noqa: F401 - imports them from there
    from skshortcut.retraining import _interventions, _mac_diagnostics, mask_and_combine

    for name in ("top_k_mask", "draw_partners", "masked_removal", "masked_combination"):
        assert getattr(mask_and_combine, name) is getattr(_interventions, name)
        assert name in mask_and_combine.__all__
    assert mask_and_combine.mask_region_table is _mac_diagnostics.mask_region_table
    assert mask_and_combine.shortcut_mask_overlap is _mac_diagnostics.shortcut_mask_overlap
    assert "shortcut_mask_overlap" in mask_and_combine.__all__
