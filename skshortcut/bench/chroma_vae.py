"""Chroma-VAE in ``skshortcut benchmark``, and Arjovsky's noisy ColoredMNIST regime.

Chroma-VAE uses no group labels: the VAE classifier and the kNN z2-classifier
are trained on the train split alone, with the paper's ColoredMNIST setting
(``dim_z=32``, ``z_p=1/4``).
"""

from __future__ import annotations

from .core import register_dataset, register_method
from .datasets import ERM_PARAMS, _n

#: Chroma-VAE settings of the benchmark (see docs/user_guide/chroma_vae.rst); the length of training
#: is the estimator's default, 1,920 optimisation steps (60 epochs of the 4,000 training images, more
#: epochs at a smaller ``--scale``).
CHROMA_VAE_PARAMS = {"dim_z": 32, "z_p": 0.25}


@register_dataset(
    "colored-digits-noisy",
    description="Arjovsky's ColoredMNIST regime (Chroma-VAE's table 2): label = digit >= 5 flipped with "
    "p=0.25, colour agrees with the label in 90% of train/val and 10% of test; ceiling 75%",
    erm_params=ERM_PARAMS,
    ceiling=0.75,
)
def colored_digits_noisy(seed, scale):
    from ..datasets import make_colored_digits

    return make_colored_digits(_n(4000, scale), _n(2000, scale), _n(2000, scale), regime="arjovsky", random_state=seed)


@register_method(
    "chroma-vae",
    labels="none",
    description="Chroma-VAE: VAE classifier with the shortcut sequestered in z1 (dim_z=32, z_p=1/4), "
    "kNN (k=sqrt(N)) on mu(x)_2",
)
def chroma_vae(ctx):
    from ..generative.chroma_vae import ChromaVAEClassifier

    params = dict(CHROMA_VAE_PARAMS)
    if ctx.max_epochs is not None:
        params["max_epochs"] = ctx.max_epochs
    model = ChromaVAEClassifier(**params, device=ctx.device, random_state=ctx.seed, verbose=ctx.verbose)
    train, test = ctx.data.train, ctx.data.test
    model.fit(train.X, train.y)
    y_pred = model.predict(test.X)
    extra = {"z1_clf_accuracy": float(model.z1_score(test.X, test.y))}
    # the paper's other z2-classifier, on the same VAE: an MLP on mu(x)_2
    model.set_params(z2_classifier="mlp").fit_z2(train.X, train.y)
    extra["mlp_z2_clf_accuracy"] = float(model.score(test.X, test.y))
    return {"y_pred": y_pred, **extra}
