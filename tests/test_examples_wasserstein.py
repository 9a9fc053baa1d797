import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_wasserstein_example_runs_and_tells_its_story(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSHORTCUT_EXAMPLE_OUT", str(tmp_path))
    ns = runpy.run_path(str(EXAMPLES / "wasserstein_disentanglement.py"), run_name="__main__")
    for name in ("wasserstein_data.png", "wasserstein_probes.png", "wasserstein_table2.png"):
        assert (tmp_path / name).stat().st_size > 1000
    results = ns["results"]
    # section 6: the z_fg probe keeps the digit where the texture pairing breaks; ERM's features do not
    assert results["WD z_fg / z_bg"]["fg, anti-correlated"] > results["ERM features"]["fg, anti-correlated"] + 0.4
    assert results["WD z_fg / z_bg"]["fg, anti-correlated"] > results["WD all features"]["fg, anti-correlated"]
    assert ns["table2"].fg_from_bg < 0.25
    assert "linear probes trained on the correlated split" in capsys.readouterr().out
