"""Group DRO on the last layer, trained on the validation split with its true groups."""

from __future__ import annotations

from .core import register_method


@register_method(
    "group-dro",
    labels="val groups",
    description="Group DRO: last layer trained on the validation split by online group DRO on its true groups",
)
def group_dro(ctx):
    from ..retraining import GroupDRORetrainer

    val = ctx.data.val
    model = GroupDRORetrainer(ctx.erm, device=ctx.device, random_state=ctx.seed)
    model.fit(val.X, val.y, groups=val.groups)
    return {"y_pred": model.predict(ctx.data.test.X), "max_q": float(model.q_.max())}
