"""Wasserstein disentanglement (D3S) in ``skshortcut benchmark``, on digits over textures.

The data set is section 6's protocol in miniature: the train and validation
splits are *correlated* (each digit on one texture), the test split
*anti-correlated* (every other pairing). ERM trained on the train split learns
the texture. The ``wasserstein`` method trains a
:class:`~skshortcut.WassersteinDisentangler` on the data set's ``diverse``
split (every digit on every texture, with both labels: the D3S images), then a
linear probe on ``z_fg`` of the correlated train split, and predicts the test
digits with it.
"""

from __future__ import annotations

from .core import register_dataset, register_method
from .datasets import _n

#: Disentangler settings of the benchmark (see docs/user_guide/wasserstein.rst).
WASSERSTEIN_PARAMS = {"max_epochs": 12, "extractor_params": {"width": 16}}
_IMAGE_SIZE = 16


@register_dataset(
    "foreground-background",
    description="digits (foreground, label) on 10 coloured textures (background); train/val: each digit on one "
    "texture, test: every other pairing; a 'diverse' split has every pair with both labels (D3S section 6)",
    erm_params={"max_epochs": 10, "patience": None, "module__width": 16},
)
def foreground_background(seed, scale):
    from ..datasets import make_foreground_background

    return make_foreground_background(
        _n(3000, scale), _n(1000, scale), _n(500, scale), _n(1000, scale), image_size=_IMAGE_SIZE, random_state=seed
    )


def _probe():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


@register_method(
    "wasserstein",
    labels="fg + bg labels of the diverse split",
    description="D3S Wasserstein disentanglement trained on the diverse split; linear probe on z_fg of the "
    "correlated train split",
    datasets=("foreground-background",),
)
def wasserstein(ctx):
    import numpy as np

    from ..generative.wasserstein import WassersteinDisentangler

    params = dict(WASSERSTEIN_PARAMS)
    if ctx.max_epochs is not None:
        params["max_epochs"] = ctx.max_epochs
    data = ctx.data
    wd = WassersteinDisentangler(**params, device=ctx.device, random_state=ctx.seed, verbose=ctx.verbose)
    wd.fit(data.diverse.X, data.diverse.labels)
    train, test = data.train, data.test
    fg = _probe().fit(wd.transform(train.X), train.y)
    everything = _probe().fit(wd.transform(train.X, part="both"), train.y)
    bg = _probe().fit(wd.transform(train.X, part="bg"), train.background)
    report = wd.disentanglement_report(data.diverse.X, data.diverse.labels, X_test=test.X, y_test=test.labels)
    return {
        "y_pred": fg.predict(wd.transform(test.X)),
        "all_features_accuracy": float(np.mean(everything.predict(wd.transform(test.X, part="both")) == test.y)),
        "background_accuracy": float(np.mean(bg.predict(wd.transform(test.X, part="bg")) == test.background)),
        **{k: float(report[k]) for k in ("fg_from_fg", "bg_from_bg", "fg_from_bg", "bg_from_fg")},
    }
