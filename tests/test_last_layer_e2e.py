"""End to end on the default benchmark: AFR, JTT and Group DRO on the last layer repair ERM's worst group."""

import numpy as np
import pytest

from skshortcut import group_accuracies
from skshortcut.bench import METHODS


def _scores(ctx, method):
    out = METHODS[method].run(ctx)
    y_pred = out["y_pred"] if isinstance(out, dict) else out
    test = ctx.data.test
    return float(np.mean(y_pred == test.y)), group_accuracies(test.y, y_pred, groups=test.groups).worst


@pytest.mark.slow
@pytest.mark.parametrize("method", ["afr", "jtt", "group-dro"])
def test_last_layer_methods_lift_the_worst_group_above_erm(default_benchmark, method):
    erm_mean, erm_worst = _scores(default_benchmark, "erm")
    mean, worst = _scores(default_benchmark, method)
    # `skshortcut benchmark --methods erm,dfr,afr,jtt,group-dro --seed S` on the default colored
    # digits, worst-group accuracy, seeds 0 / 1 / 2: ERM 0.066 / 0.008 / 0.000; AFR 0.744 / 0.460 /
    # 0.538; JTT 0.756 / 0.272 / 0.000; Group DRO 0.776 / 0.776 / 0.762. This test runs seed 0,
    # where each method gains at least 0.67; the threshold keeps a wide margin below that.
    assert worst - erm_worst >= 0.4
    assert mean > erm_mean + 0.1
