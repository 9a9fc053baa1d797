import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_diffusion_example_generates_resumes_and_feeds_the_disentangler(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSHORTCUT_EXAMPLE_OUT", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ns = runpy.run_path(str(EXAMPLES / "diffusion_shifts.py"), run_name="__main__")
    assert (tmp_path / "diffusion_shifts.png").stat().st_size > 1000
    assert len(ns["again"]) == 24 and ns["generator"].n_generated_ == 0  # the second call resumed a full run
    assert sorted(ns["wd"].background_classes_) == sorted(ns["backgrounds"])
    assert "second call: 0 new images" in capsys.readouterr().out
