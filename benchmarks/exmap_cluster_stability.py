"""How stable is ExMap's number of clusters, and what does it cost DFR?

For each data set and seed: a small CNN (``skshortcut.ERMClassifier`` with the
benchmark's ERM settings) is trained on the train split, ExMap's LRP heatmaps
of the validation split are computed once (:class:`skshortcut.ExMapGrouper`),
and every clustering rule below clusters those same heatmaps. The
pseudo-groups (class x cluster, global ExMap) go to
:class:`skshortcut.DFRRetrainer` on the validation embeddings, scored by
worst-group accuracy on the test split; DFR on the true validation groups is
the reference.

Rules compared (``SpectralEigengap`` parameters):

* ``before``: the previous default, the authors' setting: ``n_neighbors=int(ln n)``
  (``n_neighbors="log"``), the eigengap over the 10 smallest eigenvalues
  (``n_clusters_rule="eigengap"``);
* ``after``: the new default, the same ``int(ln n)`` graph with
  ``n_clusters_rule="stability"``: for every ``k`` in ``2..10`` the agreement
  (adjusted Rand index) of the clustering of the whole data with the
  clusterings of 10 random 80 % subsamples (each with its own graph), the
  ``k`` of the highest mean agreement;
* ``sqrt_eigengap``: the eigengap on a denser graph, ``n_neighbors="sqrt"``
  (``int(sqrt(n) / 2)``): the neighbour count alone.

Reported per seed: the number of clusters, the adjusted Rand index of the
clusters against the true spurious attribute within each class (mean over the
classes) and of the pseudo-groups against the true groups, and the test
worst-group accuracy of ExMap + DFR and of DFR on the true groups.

Data (seeds 0-4; the scale multiplies the split sizes 4,000 / 2,000 / 2,000 of
``skshortcut benchmark``: 1.0 for the coloured digits, 0.5 for the dominoes,
whose images are twice as large; ``--scale`` sets one scale for all):

* ``colored-digits-95``: ``make_colored_digits(regime="default")``: stroke colour
  agrees with the label for 95 % of train and validation, 50 % of test;
* ``colored-digits-97``: the same with ``agreement=0.97``;
* ``dominoes-95``: ``make_dominoes(correlation=0.9, val_correlation=0,
  test_correlation=0)`` (the spurious top digit agrees with the label for 95 %
  of train; group-balanced validation and test).

The heatmaps and embeddings of each (data set, seed) are cached under
``--cache`` so that rules can be re-run without training again.

Usage: ``python benchmarks/exmap_cluster_stability.py [--scale S] [--seeds 0 1 2 3 4]
[--out benchmarks/results/exmap_cluster_stability.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from skshortcut import DFRRetrainer, ERMClassifier, ExMapGrouper, GroupedData
from skshortcut.bench.datasets import ERM_PARAMS
from skshortcut.datasets import make_colored_digits, make_dominoes
from skshortcut.grouping import SpectralEigengap
from skshortcut.metrics import worst_group_accuracy

DATASETS = ("colored-digits-95", "colored-digits-97", "dominoes-95")
SCALES = {"colored-digits-95": 1.0, "colored-digits-97": 1.0, "dominoes-95": 0.5}

RULES = {
    "before": {"n_neighbors": "log", "n_clusters_rule": "eigengap"},
    "after": {},  # the defaults
    "sqrt_eigengap": {"n_neighbors": "sqrt", "n_clusters_rule": "eigengap"},
}


def make_data(name, seed, scale):
    def n(base):
        return max(20, int(round(base * scale)))

    if name == "colored-digits-95":
        return make_colored_digits(n(4000), n(2000), n(2000), regime="default", random_state=seed)
    if name == "colored-digits-97":
        return make_colored_digits(n(4000), n(2000), n(2000), regime="default", agreement=0.97, random_state=seed)
    if name == "dominoes-95":
        return make_dominoes(n(4000), n(2000), n(2000), correlation=0.9, val_correlation=0.0,
                             test_correlation=0.0, random_state=seed)
    raise ValueError(f"unknown data set {name!r}")


def heatmaps(name, seed, scale, cache: Path):
    """Heatmaps and embeddings of the validation split, test embeddings, labels; cached."""
    path = cache / f"{name}_seed{seed}_scale{scale}.npz"
    if path.exists():
        return dict(np.load(path))
    start = time.perf_counter()
    data = make_data(name, seed, scale)
    erm = ERMClassifier(device="cpu", random_state=seed, **ERM_PARAMS).fit(data.train.X, data.train.y)
    # the grouper's own heatmaps: fit it (any clustering), then read its heatmaps of the fitted samples
    grouper = ExMapGrouper(erm, clustering="kmeans", n_clusters=2, device="cpu", random_state=seed)
    Z_val = grouper.fit_transform(data.val.X, data.val.y).X
    H = grouper.heatmaps(data.val.X)
    out = {
        "H": H.reshape(len(H), -1).astype(np.float32),
        "Z_val": Z_val,
        "Z_test": grouper.base_model_.embed(data.test.X),
        "y_val": data.val.y, "groups_val": data.val.groups, "spurious_val": data.val.spurious,
        "y_test": data.test.y, "groups_test": data.test.groups,
        "seconds": np.array(time.perf_counter() - start),
    }
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def within_class_ari(labels, y, spurious):
    return float(np.mean([adjusted_rand_score(spurious[y == c], labels[y == c]) for c in np.unique(y)]))


def evaluate(rule, d, seed):
    start = time.perf_counter()
    sc = SpectralEigengap(random_state=seed, **RULES[rule]).fit(d["H"])
    seconds = time.perf_counter() - start
    k = sc.n_clusters_
    groups = d["y_val"] * k + sc.labels_
    dfr = DFRRetrainer(random_state=seed).fit(GroupedData(d["Z_val"], groups), d["y_val"])
    wga = worst_group_accuracy(d["y_test"], dfr.predict(d["Z_test"]), groups=d["groups_test"])
    out = {
        "n_clusters": int(k),
        "ari_spurious_within_class": within_class_ari(sc.labels_, d["y_val"], d["spurious_val"]),
        "ari_groups": float(adjusted_rand_score(d["groups_val"], groups)),
        "exmap_dfr_worst_group": float(wga),
        "cluster_seconds": seconds,
    }
    if getattr(sc, "stability_", None) is not None:
        out["stability"] = [round(float(s), 4) for s in sc.stability_]
    return out


def oracle(d, seed):
    dfr = DFRRetrainer(random_state=seed).fit(GroupedData(d["Z_val"], d["groups_val"]), d["y_val"])
    return float(worst_group_accuracy(d["y_test"], dfr.predict(d["Z_test"]), groups=d["groups_test"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--scale", type=float, default=None, help="one scale for every data set")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "exmap_cluster_cache")
    parser.add_argument("--out", default="benchmarks/results/exmap_cluster_stability.json")
    args = parser.parse_args()

    results = []
    for name in args.datasets:
        for seed in args.seeds:
            scale = SCALES[name] if args.scale is None else args.scale
            d = heatmaps(name, seed, scale, args.cache)
            row = {"dataset": name, "seed": seed, "scale": scale, "n_val": int(len(d["H"])),
                   "dfr_true_groups_worst_group": oracle(d, seed)}
            for rule in args.rules:
                row[rule] = evaluate(rule, d, seed)
            results.append(row)
            print(name, "seed", seed, "| DFR true groups %.3f" % row["dfr_true_groups_worst_group"], "|",
                  " | ".join(f"{r}: k={row[r]['n_clusters']} ARI(spur|class)={row[r]['ari_spurious_within_class']:.2f}"
                             f" ARI(groups)={row[r]['ari_groups']:.2f} WGA={row[r]['exmap_dfr_worst_group']:.3f}"
                             for r in args.rules), flush=True)

    summary = {}
    for name in args.datasets:
        rows = [r for r in results if r["dataset"] == name]
        summary[name] = {"dfr_true_groups_worst_group_mean": float(np.mean([r["dfr_true_groups_worst_group"] for r in rows]))}
        for rule in args.rules:
            ks = [r[rule]["n_clusters"] for r in rows]
            summary[name][rule] = {
                "n_clusters": ks,
                "distinct_n_clusters": len(set(ks)),
                "ari_spurious_within_class_mean": float(np.mean([r[rule]["ari_spurious_within_class"] for r in rows])),
                "exmap_dfr_worst_group_mean": float(np.mean([r[rule]["exmap_dfr_worst_group"] for r in rows])),
            }
    print(json.dumps(summary, indent=1))
    report = {
        "benchmark": "exmap_cluster_stability",
        "scales": {name: SCALES[name] if args.scale is None else args.scale for name in args.datasets},
        "seeds": args.seeds,
        "rules": {r: RULES[r] for r in args.rules},
        "erm_params": ERM_PARAMS,
        "results": results,
        "summary": summary,
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=1)
    print("saved", args.out)


if __name__ == "__main__":
    main()
