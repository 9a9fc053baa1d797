"""Mask-and-Combine in ``skshortcut benchmark``.

As in the paper's table 2, the last layer of the shared ERM model is retrained
on the *training* split with the masked and combined images; the validation
split's group labels serve only to pick ``alpha``, ``beta`` and the epoch by
validation worst-group accuracy (appendix B). Only the data sets where the shortcut is spatially
separate from the core apply: a mask can keep one and drop the other.
"""

from __future__ import annotations

import numpy as np

from .core import register_dataset, register_method
from .datasets import ERM_PARAMS, _n


@register_dataset(
    "dominoes-95",
    description="dominoes in the Waterbirds layout: spurious digit agrees with the label in 95% of train "
    "(minority groups present), group-balanced validation and test",
    erm_params=ERM_PARAMS,
)
def dominoes_95(seed, scale):
    from ..datasets import make_dominoes

    return make_dominoes(
        _n(4000, scale), _n(2000, scale), _n(2000, scale),
        correlation=0.9, val_correlation=0.0, test_correlation=0.0, random_state=seed,
    )


@register_dataset(
    "patch-digits-95",
    description="patch digits in the Waterbirds layout: patch on 95% of class 1 and 5% of class 0 in train, "
    "on half of each class in validation and test",
    erm_params=ERM_PARAMS,
)
def patch_digits_95(seed, scale):
    from ..datasets import make_patch_digits

    return make_patch_digits(
        _n(4000, scale), _n(2000, scale), _n(2000, scale),
        patch_fraction=(0.05, 0.95), val_patch_fraction=(0.5, 0.5), test_patch_fraction=(0.5, 0.5),
        random_state=seed,
    )


MAC_DATASETS = ("dominoes", "patch-digits", "dominoes-95", "patch-digits-95")


#: alpha and beta tried by the benchmark: a corner of the paper's grid ({0, 1, 2} x {0, ..., 5}, appendix B)
#: that keeps a run affordable on a CPU; ``(0, 0)`` is plain last-layer retraining on the train split.
MAC_GRID = {"alpha": [0.0, 2.0], "beta": [0.0, 3.0]}
MAC_EPOCHS = 6


@register_method(
    "mac",
    labels="val groups (selection)",
    description="Mask-and-Combine: last layer retrained on the train split with XGradCAM-masked and "
    "combined images; alpha in {0, 2}, beta in {0, 3} and the epoch chosen by validation worst-group accuracy",
    datasets=MAC_DATASETS,
)
def mac(ctx):
    from sklearn.model_selection import ParameterGrid

    from ..retraining import MaskAndCombineRetrainer
    from ..retraining.mask_and_combine import mask_region_table

    train, val = ctx.data.train, ctx.data.val
    best, scores, epoch_seconds = None, {}, []
    # Equivalent to GridSearchCV(..., scoring=worst_group_scorer) with a predefined train / val split:
    # each fit keeps its best validation epoch, whose validation worst-group accuracy is its score.
    for params in ParameterGrid(MAC_GRID):
        model = MaskAndCombineRetrainer(
            ctx.erm,
            validation_data=(val.X, val.y, val.groups),
            max_epochs=MAC_EPOCHS,
            device=ctx.device,
            random_state=ctx.seed,
            verbose=max(0, ctx.verbose - 1),
            **params,
        )
        model.fit(train.X, train.y)
        scores[f"alpha={params['alpha']:g},beta={params['beta']:g}"] = round(model.best_score_, 4)
        if params["alpha"] and params["beta"]:
            epoch_seconds = list(model.history[:, "dur"])
        if best is None or model.best_score_ > best.best_score_:
            best = model
    result = {
        "y_pred": best.predict(ctx.data.test.X),
        "alpha": best.alpha,
        "beta": best.beta,
        "best_epoch": best.best_epoch_,
        "val_worst_group": best.best_score_,
        "val_worst_group_per_setting": scores,
        "seconds_per_epoch": float(np.median(epoch_seconds)) if epoch_seconds else None,
        # the fit's diagnostic: the largest share of a group's masks on the pixels where its class's groups differ
        "shortcut_on_masks": max((r["score"] for r in best.shortcut_overlap_ if not np.isnan(r["score"])),
                                 default=None),
    }
    # the paper's table 1 on a sample of the training split: how much of the masks lies on the shortcut
    region = getattr(ctx.data, "core_region", None)
    if region is None and getattr(ctx.data, "patch_region", None) is not None:
        region = ~ctx.data.patch_region
    if region is not None:
        n = min(512, len(train.y))
        masks = best.compute_masks(train.X[:n], train.y[:n])
        table = mask_region_table(masks, region, train.groups[:n])
        result["mask_on_spurious"] = {str(g): round(row["mask_on_spurious"], 4) for g, row in table.items()}
        result["spurious_covered"] = {str(g): round(row["spurious_covered"], 4) for g, row in table.items()}
    return result
