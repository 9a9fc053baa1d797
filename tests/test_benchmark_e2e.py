"""End to end on the default benchmark: ERM learns the colour shortcut, DFR repairs it."""

import numpy as np
import pytest

from skshortcut import group_accuracies
from skshortcut.bench import METHODS
from skshortcut.metrics import worst_group_accuracy_ci


def _scores(ctx, method):
    out = METHODS[method].run(ctx)
    y_pred = out["y_pred"] if isinstance(out, dict) else out
    test = ctx.data.test
    res = group_accuracies(test.y, y_pred, groups=test.groups)
    return float(np.mean(y_pred == test.y)), res.worst, worst_group_accuracy_ci(
        test.y, y_pred, groups=test.groups, random_state=0
    )


@pytest.mark.slow
def test_default_benchmark_erm_fails_worst_group_and_dfr_repairs_it(default_benchmark):
    erm_mean, erm_worst, erm_ci = _scores(default_benchmark, "erm")
    dfr_mean, dfr_worst, dfr_ci = _scores(default_benchmark, "dfr")
    # `skshortcut benchmark --methods erm,dfr --seed S`, S = 0..4: ERM mean - worst-group accuracy
    # 0.385 / 0.501 / 0.675 / 0.519 / 0.652, DFR worst-group gain over ERM 0.488 / 0.668 / 0.722 /
    # 0.754 / 0.690 (seed 0 is the smallest on both). The thresholds keep a wide margin below these.
    assert erm_mean - erm_worst >= 0.25
    assert dfr_worst - erm_worst >= 0.25
    assert dfr_mean > erm_mean
    # about 500 test images per group: the 95% intervals of the two worst-group accuracies do not overlap
    assert erm_ci.low <= erm_worst <= erm_ci.high and dfr_ci.low <= dfr_worst <= dfr_ci.high
    assert erm_ci.high < dfr_ci.low


def test_benchmark_on_a_frozen_pretrained_backbone(tmp_path, capsys):
    """``--backbone efficientnet_lite0 --frozen``: the shared ERM model, and so DFR, is the pretrained network."""
    import json

    from skshortcut.cli import main

    out = tmp_path / "report"
    argv = ["benchmark", "--methods", "erm,dfr", "--scale", "0.05", "--max-epochs", "1", "--device", "cpu",
            "--backbone", "efficientnet_lite0", "--frozen", "--image-size", "32", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "colored-digits (seed 0, efficientnet_lite0, DEFAULT weights, head_only, 32 px): test accuracies" in printed
    report = json.loads((out / "results.json").read_text())
    assert report["backbone"] == {"backbone": "efficientnet_lite0", "weights": None, "recipe": "head_only",
                                  "image_size": 32}
    assert [r["method"] for r in report["results"]] == ["erm", "dfr"]
    for r in report["results"]:
        assert 0 <= r["worst_group_ci"][0] <= r["worst_group_accuracy"] <= r["accuracy"] <= 1


def test_methods_start_from_the_frozen_pretrained_erm_model():
    import torch

    from skshortcut.bench import DATASETS, BenchmarkContext
    from skshortcut.nets import build_classifier

    data = DATASETS["colored-digits"].make(0, 0.05)
    ctx = BenchmarkContext("colored-digits", data, 0, "cpu", None, max_epochs=1, backbone="efficientnet_lite0",
                           recipe="head_only", image_size=32)
    erm = ctx.erm
    assert erm.recipe_["freeze_backbone"] and erm.head_name_ == "network._fc"
    # head-only training left the packaged ImageNet weights of the backbone exactly as they were loaded
    reference = build_classifier("efficientnet_lite0", data.train.X.shape[1:], 2, weights="DEFAULT", image_size=32)
    trained = erm.module_.state_dict()
    for name, value in reference.state_dict().items():
        if "_fc" not in name:
            assert torch.equal(trained[name], value), name
    out = METHODS["dfr"].run(ctx)
    assert ctx.cache["erm"] is erm  # DFR retrained the head of this model, not a new one
    assert out["y_pred"].shape == data.test.y.shape and out["best_C"] > 0
