"""End to end: Mask-and-Combine repairs an ERM shortcut on the ``dominoes-95`` benchmark data (the example).

Dominoes in the Waterbirds layout (the spurious top digit agrees with the label
for 95% of the training images; validation and test group-balanced), a small
CNN trained by ERM, and Mask-and-Combine with the paper's Waterbirds weights
(``alpha=2, beta=3``), the epoch chosen by validation worst-group accuracy.
Measured with exactly this setting (test worst-group accuracy):

====  =====  ==================  ==========================
seed  ERM    MaC alpha=2 beta=3  plain retraining (0, 0)
====  =====  ==================  ==========================
0     0.212  0.960               0.962
1     0.894  0.918               0.930
2     0.966  0.830               0.964
====  =====  ==================  ==========================

Seeds 1 and 2 train an ERM model that is already fairly robust, and there the
fixed weights do no better than plain retraining (seed 2: they hurt; the benchmark's selection of
alpha and beta on validation picks plain retraining for it); seed 0, the one
the example runs, learns the shortcut, and Mask-and-Combine repairs it (as does plain
last-layer retraining with the same epoch selection). On the 1,000 training images of the
table-1 diagnostic the masks put 15-35 % of their pixels on the spurious half (the core half
is the other 50 % of the image) in every group of these three seeds.
"""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_mask_and_combine_example_repairs_the_shortcut_on_dominoes_95(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSHORTCUT_EXAMPLE_OUT", str(tmp_path))
    ns = runpy.run_path(str(EXAMPLES / "mask_and_combine.py"), run_name="__main__")
    erm_worst, mac_worst = ns["erm_groups"].worst, ns["mac_groups"].worst
    assert erm_worst < 0.3  # measured 0.212: the shortcut shows
    assert mac_worst >= erm_worst + 0.6  # measured +0.748
    assert ns["mac"].best_score_ >= 0.85  # validation worst-group accuracy of the kept epoch, measured 0.916
    # the paper's table 1: the XGradCAM masks of the ERM model lie mostly on the core half (measured 0.66 and more)
    assert min(row["mask_on_core"] for row in ns["table"].values()) > 0.55
    # the fit's own diagnostic, from the validation groups: the top digit is off the masks (measured 0.223), no warning
    assert max(row["score"] for row in ns["mac"].shortcut_overlap_) < 0.5
    assert (tmp_path / "mask_and_combine.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "worst-group accuracy: ERM" in out and "share of the masks on the core half" in out
