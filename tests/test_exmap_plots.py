"""Tests for the ExMap figures: heatmaps per pseudo-group and the contingency table."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from skshortcut.plotting import plot_group_contingency, plot_group_heatmaps


def test_group_heatmaps_rows_are_groups_and_cells_overlay_heatmaps():
    rng = np.random.RandomState(0)
    X = rng.rand(9, 3, 8, 8)
    H = rng.randn(9, 3, 4, 4)  # smaller than the images, channels kept: summed and stretched for display
    groups = np.array([0, 0, 0, 0, 3, 3, 3, 5, 5])
    fig = plot_group_heatmaps(X, H, groups, n_per_group=3, group_names={0: "a", 3: "b", 5: "c"}, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 9
    first = fig.axes[0]
    assert len(first.images) == 2  # image + heatmap
    lo, hi = first.images[1].get_clim()
    assert lo == -hi  # symmetric: red positive, blue negative
    assert "a" in first.get_ylabel() and "(n=4)" in first.get_ylabel()
    assert len(fig.axes[8].images) == 0  # group 5 has only two samples


def test_group_heatmaps_errors():
    with pytest.raises(ValueError, match="same length"):
        plot_group_heatmaps(np.zeros((3, 8, 8)), np.zeros((2, 8, 8)), [0, 1, 2])
    with pytest.raises(ValueError, match="`n_per_group`"):
        plot_group_heatmaps(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)), [0, 1, 2], n_per_group=0)


def test_contingency_table_counts_and_ari():
    pseudo = np.array([0, 0, 1, 1, 1, 2])
    true = np.array(["x", "x", "y", "y", "x", "y"])
    fig = plot_group_contingency(pseudo, true, pseudo_names=["p0", "p1", "p2"])
    ax = fig.axes[0]
    counts = sorted(int(t.get_text()) for t in ax.texts)
    assert counts == [0, 0, 1, 1, 2, 2]
    assert ax.get_title().startswith("adjusted Rand index")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["p0", "p1", "p2"]
    with pytest.raises(ValueError, match="aligned"):
        plot_group_contingency([0, 1], [0, 1, 2])
