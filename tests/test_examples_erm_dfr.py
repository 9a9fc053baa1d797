import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_erm_dfr_example_runs_and_tells_its_story(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSHORTCUT_EXAMPLE_OUT", str(tmp_path))
    ns = runpy.run_path(str(EXAMPLES / "erm_dfr.py"), run_name="__main__")
    assert (tmp_path / "erm_dfr_groups.png").stat().st_size > 1000
    assert ns["dfr_groups"].worst > ns["erm_groups"].worst
    assert "worst-group accuracy: ERM" in capsys.readouterr().out
