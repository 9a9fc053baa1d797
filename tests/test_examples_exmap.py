import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_exmap_example_runs_and_tells_its_story(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSHORTCUT_EXAMPLE_OUT", str(tmp_path))
    ns = runpy.run_path(str(EXAMPLES / "exmap.py"), run_name="__main__")
    assert (tmp_path / "exmap_heatmaps.png").stat().st_size > 1000
    assert (tmp_path / "exmap_contingency.png").stat().st_size > 1000
    assert ns["ari"] > 0.5  # the heatmap clusters recover the hidden colour groups
    assert ns["exmap_groups"].worst > ns["erm_groups"].worst + 0.15
    assert "worst-group accuracy without group labels" in capsys.readouterr().out
