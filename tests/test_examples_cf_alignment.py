import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cf_alignment.py"


@pytest.mark.slow
def test_cf_alignment_example_runs_and_finds_the_shortcut(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSHORTCUT_EXAMPLE_OUT", str(tmp_path))
    ns = runpy.run_path(str(EXAMPLE), run_name="__main__")
    printed = capsys.readouterr().out
    assert "alignment matrix" in printed and "rectify: beta" in printed
    for name in ("cf_alignment_matrix.png", "cf_alignment_strips.png", "cf_alignment_plot.png"):
        assert (tmp_path / name).stat().st_size > 2000
    table = ns["table"]
    # the biased classifier follows the bottom digit, the top-digit classifier does not
    assert table["biased", "bottom"] - table["top", "bottom"] > 0.15  # measured 0.24
    assert ns["before"] - abs(ns["after"]) > 0.1  # measured 0.25 -> 0.05 (beta -0.29)
    assert ns["fixed"].beta_ < 0
    # each update's psi rests on several samples above the 0.6 base change (measured 6.8 a minibatch of
    # 30 images; minibatches of 10 kept 2.4, and beta then stayed at 0)
    kept = [record["n_train_kept"] for record in ns["fixed"].history_[1:]]
    assert sum(kept) / len(kept) >= 4
