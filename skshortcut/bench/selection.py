"""Choosing hyperparameters without group labels: the selection rules compared.

For every last-layer method with hyperparameters (DFR's ``C``, AFR's
``gamma`` x ``lambda``, JTT's ``lambda_up``, Group DRO's ``eta`` x
generalisation adjustment), each configuration of a small grid is fit on one
half of the validation split (the *fit half*) and scored on the other half
(the *selection half*) by four rules:

``true groups``
    worst-group accuracy with the true group labels (the oracle rule most
    papers use, which needs group labels);
``pseudo-groups``
    worst-group accuracy on ExMap's pseudo-groups of the selection half (the
    grouper fit on the fit half with the ERM model; no group labels);
``worst-class``
    worst-class accuracy (Yang et al., *Change is Hard*, ICML 2023; no group labels);
``mean accuracy``
    plain accuracy (what a search without a group-aware scorer maximises).

The number reported for a rule is the *test* worst-group accuracy of the
configuration the rule picks; ``best`` is the best test worst-group accuracy
over the grid (what a perfect rule would reach). Methods train exactly as they
do in the benchmark: DFR and Group DRO with the fit half's true groups, AFR and
JTT without groups; only the choice of hyperparameters changes between rules.

:func:`compare_selection_rules` runs one data set and seed;
``skshortcut benchmark --compare-selection`` and
``benchmarks/selection_rules.py`` run the grid of data sets and seeds.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..metrics import worst_group_accuracy

__all__ = ["RULES", "GRIDS", "compare_selection_rules", "summarize_selection", "format_selection_table"]

RULES = ("true groups", "pseudo-groups", "worst-class", "mean accuracy")

#: The configurations compared for each method (small grids, so that a CPU run stays affordable).
GRIDS = {
    "dfr": [{"C": c} for c in (1.0, 0.3, 0.1, 0.03, 0.01)],
    "afr": [{"gamma": g, "lambda": lam} for g in (0.0, 2.0, 6.0, 14.0) for lam in (0.0, 0.1, 0.4)],
    "jtt": [{"lambda_up": u} for u in (1.0, 5.0, 20.0, 50.0)],
    "group_dro": [{"eta": e, "generalization_adjustment": c} for e in (0.001, 0.01, 0.1) for c in (0.0, 1.0)],
}


class _Head(ClassifierMixin, BaseEstimator):
    """The ERM model's linear head as a fitted scikit-learn classifier over its embeddings.

    The grids fit many heads on the same data: the images are embedded once and
    every method gets the base model as this head (its probabilities for AFR and
    JTT, its weights as AFR's ``W_0``). Built fitted by :meth:`of`.
    """

    @classmethod
    def of(cls, base, classes):
        head = cls()
        W = base.head.weight.detach().cpu().double().numpy()
        b = base.head.bias.detach().cpu().double().numpy()
        idx = base.class_to_logit(classes)
        head.coef_, head.intercept_, head.classes_ = W[idx], b[idx], np.asarray(classes)
        head.n_features_in_ = W.shape[1]
        return head

    def fit(self, X, y):  # already fitted: the base model
        return self

    def decision_function(self, Z):
        return np.asarray(Z, dtype=np.float64) @ self.coef_.T + self.intercept_

    def predict_proba(self, Z):
        s = self.decision_function(Z)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, Z):
        return self.classes_[self.decision_function(Z).argmax(axis=1)]


def _estimator(method, config, head, seed):
    from ..retraining import AFRRetrainer, DFRRetrainer, GroupDRORetrainer, JTTRetrainer

    if method == "dfr":
        return DFRRetrainer(Cs=(config["C"],), random_state=seed), True
    if method == "afr":
        return AFRRetrainer(head, gammas=(config["gamma"],), lambdas=(config["lambda"],), random_state=seed), False
    if method == "jtt":
        return JTTRetrainer(head, lambda_up=config["lambda_up"], random_state=seed), False
    if method == "group_dro":
        return (
            GroupDRORetrainer(
                eta=config["eta"], generalization_adjustment=config["generalization_adjustment"], random_state=seed
            ),
            True,
        )
    raise ValueError(f"`methods` must name methods of {sorted(GRIDS)}; got {method!r}.")


def _halves(y, groups, seed):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    _, counts = np.unique(groups, return_counts=True)
    return train_test_split(idx, test_size=0.5, random_state=seed, stratify=groups if counts.min() >= 2 else y)


def compare_selection_rules(dataset="colored-digits", *, seed=0, methods=None, scale=1.0, device="cpu", verbose=0):
    """Test worst-group accuracy of the configuration each selection rule picks, on one data set and seed.

    Parameters
    ----------
    dataset : str, default="colored-digits"
        A data set of ``skshortcut benchmark`` (see :data:`skshortcut.bench.DATASETS`).
    seed : int, default=0
        Seeds the data, the ERM model, the halves of the validation split and the methods.
    methods : sequence of str, optional
        Keys of :data:`GRIDS`; all by default.
    scale : float, default=1.0
        Multiplies the split sizes.
    device : str, default="cpu"
    verbose : int, default=0

    Returns
    -------
    dict
        ``{"dataset", "seed", "seconds", "pseudo_group_ari", "methods": {method: {"configs": [...],
        "picked": {rule: config index}, "test_worst_group": {rule: float, "best": float}}}}``. A
        configuration the method refuses on the data (JTT with an error set of one class) is left out
        and its message kept under ``"errors"``; a method that refuses every one has no picks.

    Examples
    --------
    >>> from skshortcut.bench.selection import compare_selection_rules
    >>> res = compare_selection_rules("colored-digits", seed=0, methods=["jtt"], scale=0.1)  # doctest: +SKIP
    >>> sorted(res["methods"]["jtt"]["test_worst_group"])  # doctest: +SKIP
    ['best', 'mean accuracy', 'pseudo-groups', 'true groups', 'worst-class']
    """
    from sklearn.frozen import FrozenEstimator
    from sklearn.metrics import adjusted_rand_score

    from ..base_model import as_base_model
    from ..erm import ERMClassifier
    from ..grouping import ExMapGrouper
    from .core import DATASETS

    if dataset not in DATASETS:
        raise ValueError(f"`dataset` must be one of {sorted(DATASETS)}; got {dataset!r}.")
    methods = list(GRIDS) if methods is None else list(methods)
    unknown = [m for m in methods if m not in GRIDS]
    if unknown:
        raise ValueError(f"`methods` must name methods of {sorted(GRIDS)}; got {unknown}.")
    start = time.perf_counter()
    spec = DATASETS[dataset]
    data = spec.make(seed, scale)
    params = {"random_state": seed, **spec.erm_params}
    erm = ERMClassifier(device=device, verbose=verbose, **params).fit(data.train.X, data.train.y)
    val, test = data.val, data.test
    fit_idx, sel_idx = _halves(val.y, val.groups, seed)
    y_fit, g_fit = val.y[fit_idx], val.groups[fit_idx]
    y_sel, g_sel = val.y[sel_idx], val.groups[sel_idx]

    grouper = ExMapGrouper(FrozenEstimator(erm), device=device, random_state=seed).fit(val.X[fit_idx], y_fit)
    pseudo_sel = np.asarray(grouper.transform(val.X[sel_idx]).groups)

    base = as_base_model(erm, val.X, device=device)
    Z_val, Z_test = base.embed(val.X), base.embed(test.X)
    Z_fit, Z_sel = Z_val[fit_idx], Z_val[sel_idx]
    head = _Head.of(base, erm.classes_)

    result = {
        "dataset": dataset,
        "seed": seed,
        "pseudo_group_ari": float(adjusted_rand_score(g_sel, pseudo_sel)),
        "n_pseudo_groups": int(len(np.unique(pseudo_sel))),
        "methods": {},
    }
    for method in methods:
        configs = GRIDS[method]
        scores = {rule: [] for rule in RULES}
        test_wga, errors = [], []
        for config in configs:
            est, uses_groups = _estimator(method, config, head, seed)
            try:
                est.fit(Z_fit, y_fit, **({"groups": g_fit} if uses_groups else {}))
            except ValueError as exc:  # a configuration the method refuses on these data (JTT's error set)
                errors.append(f"{config}: {exc}")
                for rule in RULES:
                    scores[rule].append(-np.inf)
                test_wga.append(np.nan)
                continue
            pred = est.predict(Z_sel)
            scores["true groups"].append(worst_group_accuracy(y_sel, pred, groups=g_sel))
            scores["pseudo-groups"].append(worst_group_accuracy(y_sel, pred, groups=pseudo_sel))
            scores["worst-class"].append(worst_group_accuracy(y_sel, pred, groups=y_sel))
            scores["mean accuracy"].append(float(np.mean(pred == y_sel)))
            test_wga.append(worst_group_accuracy(test.y, est.predict(Z_test), groups=test.groups))
        if all(np.isnan(test_wga)):
            result["methods"][method] = {"configs": configs, "errors": errors}
            continue
        picked = {rule: int(np.argmax(scores[rule])) for rule in RULES}  # ties: the first in grid order
        result["methods"][method] = {
            "configs": configs,
            "selection_scores": {rule: [float(s) for s in scores[rule]] for rule in RULES},
            "test_worst_group_per_config": [float(t) for t in test_wga],
            "picked": picked,
            "test_worst_group": {
                **{rule: float(test_wga[i]) for rule, i in picked.items()},
                "best": float(np.nanmax(test_wga)),
            },
            **({"errors": errors} if errors else {}),
        }
    result["seconds"] = time.perf_counter() - start
    return result


def summarize_selection(results):
    """Mean and per-seed test worst-group accuracy per (data set, method, rule).

    Parameters
    ----------
    results : list of dict
        Outputs of :func:`compare_selection_rules`.

    Returns
    -------
    dict
        ``{dataset: {method: {rule: {"mean": float, "per_seed": [float, ...]}}}}``, rules
        including ``"best"``.

    Examples
    --------
    >>> from skshortcut.bench.selection import summarize_selection
    >>> r = {"dataset": "d", "seed": 0, "methods": {"jtt": {"test_worst_group": {"worst-class": 0.5, "best": 0.7}}}}
    >>> summarize_selection([r])["d"]["jtt"]["worst-class"]
    {'mean': 0.5, 'per_seed': [0.5]}
    """
    values = {}
    for res in sorted(results, key=lambda r: (r["dataset"], r["seed"])):
        for method, m in res["methods"].items():
            for rule, value in m.get("test_worst_group", {}).items():
                values.setdefault(res["dataset"], {}).setdefault(method, {}).setdefault(rule, []).append(float(value))
    out = {}
    for dataset, methods in values.items():
        for method, rules in methods.items():
            out.setdefault(dataset, {})[method] = {
                rule: {"mean": float(np.mean(v)), "per_seed": v} for rule, v in rules.items()
            }
    return out


def format_selection_table(summary) -> str:
    """A plain-text table of :func:`summarize_selection`: one row per (data set, method).

    Examples
    --------
    >>> from skshortcut.bench.selection import format_selection_table
    >>> s = {"d": {"jtt": {r: {"mean": 0.5, "per_seed": [0.5]} for r in
    ...      ("true groups", "pseudo-groups", "worst-class", "mean accuracy", "best")}}}
    >>> print(format_selection_table(s).splitlines()[0].split())
    ['data', 'set', 'method', 'true', 'groups', 'pseudo-groups', 'worst-class', 'mean', 'accuracy', 'best']
    """
    cols = [*RULES, "best"]
    rows = [["data set", "method", *cols]]
    for dataset, methods in summary.items():
        for method, rules in methods.items():
            cells = []
            for c in cols:
                entry = rules.get(c)
                cells.append("-" if entry is None else f"{entry['mean']:.3f} (" + "/".join(f"{v:.2f}" for v in entry["per_seed"]) + ")")
            rows.append([dataset, method, *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
