"""AFR: the last layer retrained on the validation split, weighted by the ERM model's confidence."""

from __future__ import annotations

from .core import register_method


@register_method(
    "afr",
    labels="val groups (selection only)",
    description="AFR: last layer retrained on the validation split with weights exp(-gamma p_true), "
    "gamma and lambda chosen on a held-out part of it by worst-group accuracy",
)
def afr(ctx):
    from ..retraining import AFRRetrainer

    val = ctx.data.val
    model = AFRRetrainer(ctx.erm, device=ctx.device, random_state=ctx.seed)
    model.fit(val.X, val.y, groups=val.groups)
    return {"y_pred": model.predict(ctx.data.test.X), "gamma": model.best_gamma_, "lambda": model.best_lambda_}
