"""The paper's validation (sections 4.4-4.5) on the embedded dominoes benchmark.

Two independent attributes: the top digit (0 vs 1) and the bottom digit
(3 vs 8), drawn independently (``correlation=0``). One classifier per
attribute, trained on that independent data, so neither has a reason to use
the other attribute; an autoencoder trained on the same images.

* f_top's counterfactuals leave f_bottom alone (near-zero alignment);
* f_biased = f_top + 0.3 f_bottom (Eq. 4) is clearly aligned with f_bottom;
* rectify (Eqs. 5-6) fits beta on validation images and lowers that
  alignment on held-out test images.

Measured with exactly this pipeline for seeds 0-7 (``random_state`` of data,
classifiers and autoencoder), mean relative change over the 400 test images
whose base prediction dropped by more than 0.3:

====  ===========  ============  ==============  ======
seed  top->bottom  biased->bot.  rectified->bot. beta
====  ===========  ============  ==============  ======
0     -0.021       +0.662        +0.025          -0.296
1     +0.160       +0.978        +0.163          -0.298
2     -0.149       +1.035        -0.336          -0.339
3     -0.081       +1.002        -0.159          -0.310
4     +0.200       +1.117        -0.159          -0.395
5     -0.235       +0.445        +0.012          -0.249
6     +0.005       +1.091        +0.106          -0.290
7     +0.492       +1.488        -0.163          -0.442
====  ===========  ============  ==============  ======

(standard errors 0.03-0.09). Seed 7 is the exception to "near zero": there,
lowering the top digit's class also redraws the bottom digit. Every other
margin below holds for all eight seeds: biased minus unbiased >= 0.68,
biased >= 0.44, the rectified alignment smaller by >= 0.43, beta in
[-0.45, -0.24], top-digit accuracy of the rectified classifier >= 0.9975.
The test runs seed 0.
"""

import numpy as np
import pytest

from skshortcut import CFAlignmentScorer, ERMClassifier, rectify
from skshortcut.counterfactual import AdditiveClassifier, Autoencoder
from skshortcut.datasets import make_dominoes

pytestmark = pytest.mark.slow

SEED = 0


@pytest.fixture(scope="module")
def world():
    data = make_dominoes(1200, 400, 400, correlation=0.0, val_correlation=0.0, image_size=12, random_state=SEED)
    train = data.train
    kw = dict(max_epochs=8, module__width=8, lr=3e-3, patience=None, criterion__label_smoothing=0.1,
              random_state=SEED, device="cpu")
    f_top = ERMClassifier(**kw).fit(train.X, train.spurious)  # top digit: 0 vs 1
    f_bottom = ERMClassifier(**kw).fit(train.X, train.y)  # bottom digit: 3 vs 8
    ae = Autoencoder(latent_dim=32, max_epochs=15, lr=3e-3, random_state=SEED, device="cpu").fit(train.X)
    biased = AdditiveClassifier((f_top, 1), (f_bottom, 1), beta=0.3, device="cpu").fit()  # Eq. 4
    return data, f_top, f_bottom, ae, biased, {}


def alignment(world, name, base):
    data, f_top, f_bottom, ae, biased, cache = world
    if name not in cache:
        cache[name] = CFAlignmentScorer(ae, base, {"bottom": (f_bottom, 1)}, max_image_change=None,
                                        device="cpu").fit(data.test.X)
    return cache[name]


def test_classifiers_learned_their_attribute(world):
    data, f_top, f_bottom, *_ = world
    assert f_top.score(data.test.X, data.test.spurious) > 0.95
    assert f_bottom.score(data.test.X, data.test.y) > 0.95


def test_unbiased_classifier_is_not_aligned_with_the_other_attribute(world):
    s = alignment(world, "top", (world[1], 1))
    assert s.n_kept_ >= 40
    assert abs(s.alignment_["bottom"]) < 0.25


def test_composed_classifier_is_aligned_with_the_spurious_attribute(world):
    unbiased = alignment(world, "top", (world[1], 1)).alignment_["bottom"]
    biased = alignment(world, "biased", (world[4], None)).alignment_["bottom"]
    assert biased > 0.4
    assert biased - unbiased > 0.5


def test_rectify_lowers_the_alignment_on_held_out_data(world):
    data, f_top, f_bottom, ae, biased, _ = world
    fixed = rectify(data.val.X[:200], (biased, None), (f_bottom, 1), ae, X_val=data.val.X[200:],
                    learning_rate=0.3, max_iter=30, patience=10, max_image_change=None, device="cpu",
                    random_state=SEED)
    assert -0.6 < fixed.beta_ < -0.15  # the 0.3 f_bottom of Eq. 4, taken back out
    before = alignment(world, "biased", (biased, None)).alignment_["bottom"]
    after = CFAlignmentScorer(ae, (fixed, None), {"bottom": (f_bottom, 1)}, max_image_change=None,
                              device="cpu").fit(data.test.X).alignment_["bottom"]
    assert before - abs(after) > 0.3
    # still a classifier of the top digit
    assert fixed.score(data.test.X, data.test.spurious) > 0.95
    assert np.isfinite(fixed.val_psi_) and len(fixed.history_) > 1
