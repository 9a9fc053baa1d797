"""Time ``DFRRetrainer.fit`` against a plain transcription of the reference procedure.

Data: 20,000 x 512 synthetic features, 4 groups (class x spurious attribute, the
attribute agreeing with the class for 90% of samples). Measured in one run:

* ``DFRRetrainer(n_jobs=1)`` and ``DFRRetrainer(n_jobs=2)``;
* ``reference``: a deliberately independent, sequential transcription of the DFR
  authors' procedure (tune C on 5 random half splits by worst-group accuracy,
  20 retrains on fresh group-balanced subsamples, average weights and scaler),
  written as plain loops without any skshortcut code.

Prints and saves medians over ``--repeats`` runs, the time ratios against the
reference, and the test worst-group accuracy of each (balanced test set).

Usage: ``python benchmarks/bench_dfr.py [--repeats 3] [--out benchmarks/results/dfr.json]``
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skshortcut import DFRRetrainer, worst_group_accuracy

CS = [1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01]

# L1 in the installed scikit-learn's terms: before 1.8 `penalty="l1"` (there `l1_ratio=1` alone
# fits L2); from 1.8 `penalty` is deprecated and `l1_ratio=1` is L1. Written out here rather than
# imported, so that the reference stays independent of skshortcut.
_PENALTY = inspect.signature(LogisticRegression).parameters.get("penalty")
L1 = {"l1_ratio": 1.0} if _PENALTY is None or _PENALTY.default == "deprecated" else {"penalty": "l1"}


def make_features(n, d, agreement, seed):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    s = np.where(rng.rand(n) < agreement, y, 1 - y)
    Z = rng.normal(size=(n, d)).astype(np.float64)
    Z[:, :32] += 0.35 * (2 * y[:, None] - 1)  # weak core signal spread over 32 dims
    Z[:, 32:40] += 1.5 * (2 * s[:, None] - 1)  # strong spurious signal
    return Z, y, 2 * y + s


def reference_dfr(Z, y, g, seed):
    """The reference procedure as sequential loops (independent of skshortcut)."""
    rng = np.random.RandomState(seed)

    def balanced(idx, r):
        groups = np.unique(g[idx])
        sizes = [np.sum(g[idx] == k) for k in groups]
        m = min(s for s in sizes if s > 5)
        keep = []
        for k in groups:
            members = idx[g[idx] == k]
            keep.extend(r.choice(members, min(m, len(members)), replace=False))
        return np.array(keep)

    def fit(idx, C, r):
        b = balanced(idx, r)
        sc = StandardScaler().fit(Z[b])
        lr = LogisticRegression(C=C, solver="liblinear", max_iter=1000, **L1)
        lr.fit(sc.transform(Z[b]), y[b])
        return sc, lr

    n = len(y)
    scores = {C: 0.0 for C in CS}
    for _ in range(5):
        perm = rng.permutation(n)
        tr, te = perm[: n // 2], perm[n // 2 :]
        for C in CS:
            sc, lr = fit(tr, C, rng)
            pred = lr.predict(sc.transform(Z[te]))
            accs = [np.mean(pred[g[te] == k] == y[te][g[te] == k]) for k in np.unique(g[te])]
            scores[C] += min(accs)
    best = max(CS, key=lambda C: scores[C])
    coefs, inters, means, scales = [], [], [], []
    for _ in range(20):
        sc, lr = fit(np.arange(n), best, rng)
        coefs.append(lr.coef_)
        inters.append(lr.intercept_)
        means.append(sc.mean_)
        scales.append(sc.scale_)
    coef, inter = np.mean(coefs, 0), np.mean(inters, 0)
    mean, scale = np.mean(means, 0), np.mean(scales, 0)
    return lambda X: ((((X - mean) / scale) @ coef.T + inter)[:, 0] > 0).astype(int)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "dfr.json"))
    args = parser.parse_args()

    Z, y, g = make_features(args.n, args.d, 0.9, seed=0)
    Zt, yt, gt = make_features(10_000, args.d, 0.5, seed=1)
    runs = {
        "reference": lambda seed: reference_dfr(Z, y, g, seed),
        "DFRRetrainer(n_jobs=1)": lambda seed: DFRRetrainer(n_jobs=1, random_state=seed).fit(Z, y, groups=g).predict,
        "DFRRetrainer(n_jobs=2)": lambda seed: DFRRetrainer(n_jobs=2, random_state=seed).fit(Z, y, groups=g).predict,
    }
    times = {k: [] for k in runs}
    wga = {k: [] for k in runs}
    for rep in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            predict = run(rep)
            times[name].append(time.perf_counter() - start)
            wga[name].append(worst_group_accuracy(yt, predict(Zt), groups=gt))
            print(f"repeat {rep}: {name:24s} {times[name][-1]:7.2f} s  worst-group {wga[name][-1]:.4f}", flush=True)

    ref = statistics.median(times["reference"])
    result = {
        "data": {"n": args.n, "d": args.d, "groups": 4, "agreement": 0.9},
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15_min_at_end": os.getloadavg(),
        },
        "median_seconds": {k: statistics.median(v) for k, v in times.items()},
        "ratio_to_reference": {k: statistics.median(v) / ref for k, v in times.items()},
        "median_worst_group_accuracy": {k: statistics.median(v) for k, v in wga.items()},
        "worst_group_gap_to_reference": {
            k: statistics.median(v) - statistics.median(wga["reference"]) for k, v in wga.items()
        },
    }
    print()
    print(f"{'run':24s} {'median s':>9s} {'ratio':>7s} {'worst-group':>12s}")
    for k in runs:
        print(
            f"{k:24s} {result['median_seconds'][k]:9.2f} {result['ratio_to_reference'][k]:7.2f} "
            f"{result['median_worst_group_accuracy'][k]:12.4f}"
        )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
