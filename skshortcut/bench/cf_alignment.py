"""Counterfactual alignment in ``skshortcut benchmark``.

The benchmark's attribute classifiers are the shared ERM model and two
classifiers trained on a group-balanced subsample of the training split (so
that label and spurious attribute are independent there): one for the label,
one for the spurious attribute. A convolutional autoencoder is trained on the
training images. The method prints the alignment matrix of the three
(Cohen et al., 2024, figure 2a): a row per base classifier, a column per
downstream classifier, the mean relative change (Eq. 3). Its predictions are
those of the ERM model rectified against the spurious-attribute classifier
(Eqs. 5-6), ``beta`` fitted on the validation images (no labels used there).
"""

from __future__ import annotations

import json

import numpy as np

from .._balance import balanced_indices
from .core import register_method

CF_DATASETS = ("colored-digits", "colored-digits-cmnist")

#: Settings of the benchmark run (scale 1); ``max_epochs`` of the command caps the epochs.
SETTINGS = {
    "attribute_epochs": 10,
    "label_smoothing": 0.1,
    "autoencoder_images": 3000,
    "autoencoder_epochs": 15,
    "latent_dim": 32,
    "n_eval": 300,
    "n_rectify": 400,
    "rectify_learning_rate": 0.3,
    "rectify_max_iter": 30,
}


@register_method(
    "cf-alignment",
    labels="train groups (balanced attribute classifiers)",
    description="counterfactual alignment (Latent Shift): prints the alignment matrix of ERM and label / spurious "
    "classifiers; predicts with ERM rectified against the spurious classifier (f + beta f_spurious)",
    datasets=CF_DATASETS,
)
def cf_alignment(ctx):
    from .. import ERMClassifier
    from ..counterfactual import Autoencoder, CFAlignmentScorer, rectify

    data = ctx.data
    train = data.train
    rng = np.random.RandomState(ctx.seed)
    idx = balanced_indices(train.groups, rng, min_group_size=1)
    if len(np.unique(train.groups[idx])) < 4:
        raise ValueError("cf-alignment needs every (label, spurious) group in the train split to train unbiased "
                         "attribute classifiers.")
    cap = (lambda e: e) if ctx.max_epochs is None else (lambda e: min(e, ctx.max_epochs))
    params = dict(
        max_epochs=cap(SETTINGS["attribute_epochs"]),
        patience=None,
        criterion__label_smoothing=SETTINGS["label_smoothing"],
        random_state=ctx.seed,
        device=ctx.device,
        verbose=ctx.verbose,
    )
    f_label = ERMClassifier(**params).fit(train.X[idx], train.y[idx])
    f_spurious = ERMClassifier(**params).fit(train.X[idx], train.spurious[idx])
    n_ae = min(len(train.y), SETTINGS["autoencoder_images"])
    ae_idx = np.sort(rng.choice(len(train.y), n_ae, replace=False))
    autoencoder = Autoencoder(
        latent_dim=SETTINGS["latent_dim"],
        max_epochs=cap(SETTINGS["autoencoder_epochs"]),
        random_state=ctx.seed,
        device=ctx.device,
        verbose=ctx.verbose,
    ).fit(train.X[ae_idx])

    positive = 1
    classifiers = {"erm": (ctx.erm, positive), "label": (f_label, positive), "spurious": (f_spurious, positive)}
    X_eval = data.test.X[: SETTINGS["n_eval"]]
    # digits on black: a stroke that moves changes far more than 5 % of the image's L1 mass
    scorer = CFAlignmentScorer(autoencoder, max_image_change=None, device=ctx.device, random_state=ctx.seed)
    table = scorer.alignment_matrix(X_eval, classifiers)

    X_rect = data.val.X[: SETTINGS["n_rectify"]]
    try:
        fixed = rectify(
            X_rect,
            (ctx.erm, positive),
            (f_spurious, positive),
            autoencoder,
            learning_rate=SETTINGS["rectify_learning_rate"],
            max_iter=SETTINGS["rectify_max_iter"],
            max_image_change=None,
            device=ctx.device,
            random_state=ctx.seed,
        )
        beta, history, predict = float(fixed.beta_), fixed.history_, fixed.predict
    except ValueError as err:  # the ERM model predicts no validation image positive: nothing to rectify
        if "nothing to rectify" not in str(err):
            raise
        beta, history, predict = float("nan"), [], ctx.erm.predict
    if ctx.out is not None:
        from ..plotting import plot_alignment_matrix

        (ctx.out / "cf_alignment.json").write_text(
            json.dumps({"alignment_matrix": table.to_dict(), "beta": beta, "history": history,
                        "settings": SETTINGS}, indent=2, default=float)
        )
        fig = plot_alignment_matrix(table, title=f"{ctx.dataset}: counterfactual alignment")
        fig.savefig(ctx.out / "cf_alignment_matrix.png", dpi=120, bbox_inches="tight")
    return {
        "y_pred": predict(data.test.X),
        "beta": beta,
        "alignment_matrix": "(mean relative change, Eq. 3)\n" + table.format(),
    }
