"""End to end: Chroma-VAE on the ``colored-digits-noisy`` benchmark data (the example script).

``skshortcut benchmark --dataset colored-digits-noisy --methods erm,chroma-vae``
for seeds 0, 1, 2 measured (test accuracy, colour flipped for 90% of the test
images, ceiling 0.75):

====  =====  ===========  ============  ============
seed  ERM    z1-clf       z2-clf (kNN)  z2-clf (MLP)
====  =====  ===========  ============  ============
0     0.100  0.211        0.671         0.299
1     0.100  0.210        0.611         0.160
2     0.100  0.137        0.592         0.232
mean  0.100  0.186        0.625         0.230
====  =====  ===========  ============  ============

The smallest gain of the kNN z2-classifier over ERM was 0.492 (seed 2). The
example runs seed 0 with the same data and settings.
"""

import runpy
from pathlib import Path

import pytest

MARGIN = 0.45  # measured gains 0.571, 0.511, 0.492

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_chroma_vae_example_beats_erm_on_noisy_colored_digits(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSHORTCUT_EXAMPLE_OUT", str(tmp_path))
    ns = runpy.run_path(str(EXAMPLES / "chroma_vae.py"), run_name="__main__")
    scores = ns["scores"]
    erm, knn = scores["ERM"], scores["Chroma-VAE z2-classifier (kNN)"]
    assert erm <= 0.25  # ERM follows the colour, which is flipped for 90% of the test images
    assert knn >= erm + MARGIN  # the z2-classifier reads the digit
    assert knn <= 0.80  # and cannot beat the label-noise ceiling by more than sampling noise
    assert scores["Chroma-VAE z1-classifier"] <= 0.35  # the shortcut went to z1
    shift, d1 = ns["shift"], ns["vae"].dim_z1_
    assert shift[:d1].mean() > 2 * shift[d1:].mean()  # a colour swap moves z1, not z2 (figure 4c)
    for name in ("chroma_vae_partial_reconstructions.png", "chroma_vae_latent_shift.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert "ceiling 0.75" in capsys.readouterr().out
