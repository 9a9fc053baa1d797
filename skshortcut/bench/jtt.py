"""JTT on the last layer: the validation samples ERM misclassifies, up-weighted."""

from __future__ import annotations

from .core import register_method


@register_method(
    "jtt",
    labels="none",
    description="JTT: last layer retrained on the validation split with the samples ERM misclassifies "
    "up-weighted (lambda_up = 20)",
)
def jtt(ctx):
    from ..retraining import JTTRetrainer

    val = ctx.data.val
    model = JTTRetrainer(ctx.erm, device=ctx.device, random_state=ctx.seed).fit(val.X, val.y)
    return {"y_pred": model.predict(ctx.data.test.X), "error_set": int(len(model.error_set_))}
