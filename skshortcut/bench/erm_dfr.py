"""ERM, and DFR with the true validation groups: the baseline and the oracle."""

from __future__ import annotations

from .core import register_method


@register_method("erm", labels="none", description="the ERM base model trained on the train split")
def erm(ctx):
    return ctx.erm.predict(ctx.data.test.X)


@register_method(
    "dfr",
    labels="val groups",
    description="DFR: last layer retrained on the validation split, balanced by its true groups",
)
def dfr(ctx):
    from ..retraining import DFRRetrainer

    val = ctx.data.val
    model = DFRRetrainer(ctx.erm, device=ctx.device, random_state=ctx.seed, n_jobs=None)
    model.fit(val.X, val.y, groups=val.groups)
    return {"y_pred": model.predict(ctx.data.test.X), "best_C": model.best_C_}
