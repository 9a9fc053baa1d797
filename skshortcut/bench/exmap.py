"""ExMap + DFR and GEORGE + DFR in ``skshortcut benchmark``: group robustness with no group labels.

Both infer pseudo-groups on the validation split from the shared ERM model,
without any group label, and retrain its last layer with DFR on them (the
papers' workflow: ExMap sec. 4, supplement sec. 2.3). The adjusted Rand index
of the pseudo-groups against the true validation groups is reported beside
the accuracies (the true groups are used for that number only).
"""

from __future__ import annotations

from .core import register_method


def _grouper_then_dfr(ctx, grouper):
    from sklearn.metrics import adjusted_rand_score

    from ..retraining import DFRRetrainer

    val = ctx.data.val
    grouped = grouper.fit_transform(val.X, val.y)
    dfr = DFRRetrainer(random_state=ctx.seed).fit(grouped, val.y)
    # the test predictions need only the embeddings (the pseudo-groups of test samples are unused)
    y_pred = dfr.predict(grouper.base_model_.embed(ctx.data.test.X))
    n_clusters = grouper.n_clusters_
    return {
        "y_pred": y_pred,
        "n_clusters": int(n_clusters) if getattr(n_clusters, "ndim", 0) == 0 else n_clusters.tolist(),
        "ari_val_groups": float(adjusted_rand_score(val.groups, grouper.groups_)),
        "best_C": dfr.best_C_,
    }


@register_method(
    "exmap_dfr",
    labels="none",
    description="ExMap + DFR: LRP heatmaps of the ERM model on the validation split, spectral clustering "
    "(eigengap), DFR on the class x cluster pseudo-groups",
)
def exmap_dfr(ctx):
    from ..grouping import ExMapGrouper

    grouper = ExMapGrouper(ctx.erm, device=ctx.device, random_state=ctx.seed, verbose=max(0, ctx.verbose - 1))
    return _grouper_then_dfr(ctx, grouper)


@register_method(
    "george_dfr",
    labels="none",
    description="GEORGE + DFR: max-normalised ERM embeddings of the validation split, UMAP (2 dims) + KMeans "
    "(eigengap k), DFR on the class x cluster pseudo-groups",
)
def george_dfr(ctx):
    from ..grouping import FeatureClusterGrouper

    grouper = FeatureClusterGrouper(ctx.erm, device=ctx.device, random_state=ctx.seed, verbose=max(0, ctx.verbose - 1))
    return _grouper_then_dfr(ctx, grouper)
