"""Counterfactual alignment in ``skshortcut benchmark``.

The benchmark's attribute classifiers are the shared ERM model and two
classifiers trained on a group-balanced subsample of the training split (so
that label and spurious attribute are independent there): one for the label,
one for the spurious attribute (the label classifier in batches of 32, see
``SETTINGS``). A convolutional autoencoder is trained on the
training images. The method prints the alignment matrix of the three
(Cohen et al., 2024, figure 2a): a row per base classifier, a column per
downstream classifier, the mean relative change (Eq. 3). Its predictions are
those of the ERM model rectified against the spurious-attribute classifier
(Eqs. 5-6), ``beta`` fitted on the validation images (no labels used there).
"""

from __future__ import annotations

import json
import time

import numpy as np

from .._balance import balanced_indices
from .core import register_method

CF_DATASETS = ("colored-digits", "colored-digits-cmnist")

#: Settings of the benchmark run (scale 1); ``max_epochs`` of the command caps the epochs.
SETTINGS = {
    "attribute_epochs": 10,
    # The balanced subsample is small (400 images on the default data set). In batches of 128, 10 epochs are
    # 30 steps: too few for the digit (the label classifier stayed at chance, 0.50, so no counterfactual could
    # lower it and its row of the matrix was empty); in batches of 32 (130 steps) it reaches 0.79-0.87.
    "label_batch_size": 32,
    # The colour is learnt in 30 steps (accuracy 1.0), with outputs that are not saturated (0.2-0.8); rectifying
    # ERM works with that classifier. Trained for 130 steps it saturates, the ERM model's counterfactuals no
    # longer move it, and the fitted beta stays near 0 (seed 0: +0.07, worst-group 0.06 instead of 0.12).
    "spurious_batch_size": 128,
    "label_smoothing": 0.1,
    "autoencoder_images": 3000,
    "autoencoder_epochs": 15,
    "latent_dim": 32,
    "n_eval": 300,
    "n_rectify": 400,
    "rectify_learning_rate": 0.3,
    "rectify_max_iter": 30,
}


def attribute_classifiers(train, rng, *, seed, device="auto", max_epochs=None, verbose=0):
    """The label and spurious-attribute classifiers of the method, trained on a group-balanced subsample.

    Parameters
    ----------
    train : split with ``X``, ``y``, ``spurious`` and ``groups``
    rng : numpy RandomState
        Draws the balanced subsample.
    seed : int
        Seeds both classifiers.
    device : str, default="auto"
    max_epochs : int, optional
        Caps ``SETTINGS["attribute_epochs"]``.
    verbose : int, default=0

    Returns
    -------
    f_label, f_spurious : fitted :class:`~skshortcut.ERMClassifier`
    """
    from .. import ERMClassifier

    idx = balanced_indices(train.groups, rng, min_group_size=1)
    if len(np.unique(train.groups[idx])) < 4:
        raise ValueError("cf-alignment needs every (label, spurious) group in the train split to train unbiased "
                         "attribute classifiers.")
    epochs = SETTINGS["attribute_epochs"] if max_epochs is None else min(SETTINGS["attribute_epochs"], max_epochs)
    params = dict(
        max_epochs=epochs,
        patience=None,
        criterion__label_smoothing=SETTINGS["label_smoothing"],
        random_state=seed,
        device=device,
        verbose=verbose,
    )
    f_label = ERMClassifier(batch_size=SETTINGS["label_batch_size"], **params).fit(train.X[idx], train.y[idx])
    f_spurious = ERMClassifier(batch_size=SETTINGS["spurious_batch_size"], **params).fit(train.X[idx], train.spurious[idx])
    return f_label, f_spurious


def attribute_accuracy(split, f_label, f_spurious):
    """Group-balanced accuracy of the label and spurious-attribute classifiers on a split.

    The mean over the (label, spurious) groups of each classifier's accuracy on
    its own attribute: 0.5 is chance, and a classifier at chance cannot be
    lowered by a counterfactual, which leaves its row of the matrix empty.

    Returns
    -------
    dict
        ``{"label": float, "spurious": float}``.
    """
    groups = np.asarray(split.groups)
    out = {}
    for name, clf, target in (("label", f_label, split.y), ("spurious", f_spurious, split.spurious)):
        correct = clf.predict(split.X) == np.asarray(target)
        out[name] = round(float(np.mean([correct[groups == g].mean() for g in np.unique(groups)])), 3)
    return out


@register_method(
    "cf-alignment",
    labels="train groups (balanced attribute classifiers)",
    description="counterfactual alignment (Latent Shift): prints the alignment matrix of ERM and label / spurious "
    "classifiers; predicts with ERM rectified against the spurious classifier (f + beta f_spurious)",
    datasets=CF_DATASETS,
)
def cf_alignment(ctx):
    from ..counterfactual import Autoencoder, CFAlignmentScorer, rectify

    data = ctx.data
    train = data.train
    erm = ctx.erm
    seconds = {}
    clock = time.perf_counter()

    def lap(stage):
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 1)
        clock = now

    rng = np.random.RandomState(ctx.seed)
    f_label, f_spurious = attribute_classifiers(train, rng, seed=ctx.seed, device=ctx.device,
                                                max_epochs=ctx.max_epochs, verbose=ctx.verbose)
    cap = (lambda e: e) if ctx.max_epochs is None else (lambda e: min(e, ctx.max_epochs))
    lap("attribute_classifiers")
    n_ae = min(len(train.y), SETTINGS["autoencoder_images"])
    ae_idx = np.sort(rng.choice(len(train.y), n_ae, replace=False))
    autoencoder = Autoencoder(
        latent_dim=SETTINGS["latent_dim"],
        max_epochs=cap(SETTINGS["autoencoder_epochs"]),
        random_state=ctx.seed,
        device=ctx.device,
        verbose=ctx.verbose,
    ).fit(train.X[ae_idx])
    lap("autoencoder")

    positive = 1
    classifiers = {"erm": (erm, positive), "label": (f_label, positive), "spurious": (f_spurious, positive)}
    X_eval = data.test.X[: SETTINGS["n_eval"]]
    # digits on black: a stroke that moves changes far more than 5 % of the image's L1 mass
    scorer = CFAlignmentScorer(autoencoder, max_image_change=None, device=ctx.device, random_state=ctx.seed)
    table = scorer.alignment_matrix(X_eval, classifiers)
    lap("alignment_matrix")

    X_rect = data.val.X[: SETTINGS["n_rectify"]]
    try:
        fixed = rectify(
            X_rect,
            (erm, positive),
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
        beta, history, predict = float("nan"), [], erm.predict
    lap("rectify")
    ctx.cache["cf_alignment"] = {"alignment_matrix": table, "seconds": seconds, "autoencoder": autoencoder,
                                 "f_label": f_label, "f_spurious": f_spurious}
    if ctx.out is not None:
        from ..plotting import plot_alignment_matrix

        (ctx.out / "cf_alignment.json").write_text(
            json.dumps({"alignment_matrix": table.to_dict(), "beta": beta, "history": history,
                        "seconds": seconds, "settings": SETTINGS}, indent=2, default=float)
        )
        fig = plot_alignment_matrix(table, title=f"{ctx.dataset}: counterfactual alignment")
        fig.savefig(ctx.out / "cf_alignment_matrix.png", dpi=120, bbox_inches="tight")
    return {
        "y_pred": predict(data.test.X),
        "attribute_accuracy": attribute_accuracy(data.val, f_label, f_spurious),
        "beta": beta,
        "alignment_matrix": "(mean relative change, Eq. 3)\n" + table.format(),
    }
