"""Chroma-VAE with less data: the noisy coloured digits at 1,000, 2,000 and 4,000 training images.

For every training-set size and seed, a :class:`~skshortcut.ChromaVAEClassifier`
is trained on Arjovsky's ColoredMNIST regime (``skshortcut benchmark --dataset
colored-digits-noisy``: label ``digit >= 5`` flipped for 25 %, the colour
agreeing with the label for 90 % of the training images and 10 % of the test
images; ceiling 0.75) in each configuration:

* ``default``: the estimator's defaults (``dim_z=32, z_p=1/4``, ``n_steps=1920``
  optimisation steps whatever the data size, the KL warm-up over the first half);
* ``steps960``: the former default length, 960 optimisation steps;
* ``epochs30``: the length before that, 30 epochs whatever the data size
  (``max_epochs=30``; the same as ``steps960`` at 4,000 images);
* ``sample``: ``steps960`` with the z1-classifier reading the sampled ``z1``
  (``z1_input="sample"``).

Per fitted model it records what locates the failure: the z1-classifier's
accuracy (train, test), the z2-classifier's (kNN, ``k = sqrt(N)``: train, test,
per test group and worst group), linear probes of the colour and of the clean
digit label from ``mu(x)_2`` (fit on train, scored on test), the latent shift
under a colour swap, and the final reconstruction and KL terms.

Run ``python benchmarks/data_size_chroma_vae.py [--jobs 2]``; it writes
``benchmarks/results/chroma_vae_data_size.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    "default": {},
    "steps960": {"n_steps": 960},
    "epochs30": {"max_epochs": 30},
    "sample": {"z1_input": "sample", "n_steps": 960},
}


def fit_one(n, seed, config):
    """Train one model and measure it; returns a JSON-able row."""
    import torch

    torch.set_num_threads(1)
    from sklearn.linear_model import LogisticRegression

    from skshortcut import ChromaVAEClassifier, group_accuracies
    from skshortcut.datasets import make_colored_digits

    data = make_colored_digits(n, 200, 2000, regime="arjovsky", random_state=seed)
    train, test = data.train, data.test
    start = time.perf_counter()
    model = ChromaVAEClassifier(dim_z=32, z_p=0.25, device="cpu", random_state=seed, **CONFIGS[config])
    model.fit(train.X, train.y)
    seconds = time.perf_counter() - start
    d1 = model.dim_z1_
    z2_train, z2_test = model.transform(train.X), model.transform(test.X)
    pred = model.predict(test.X)
    res = group_accuracies(test.y, pred, groups=test.groups)
    groups = {data.group_names[int(g)]: float(a) for g, a in zip(res.groups, res.accuracy)}
    # a label-free variant of the second stage: the kNN on mu(x)_2 with its linear regression on the
    # z1-classifier's logits removed (what of z2 moves with the shortcut that z1 holds)
    from sklearn.linear_model import LinearRegression
    from sklearn.neighbors import KNeighborsClassifier

    logit = lambda X: model.module_.classify(torch.as_tensor(model.latent_means(X))).detach().numpy()  # noqa: E731
    l_train, l_test = logit(train.X), logit(test.X)
    reg = LinearRegression().fit(l_train, z2_train)
    knn = KNeighborsClassifier(model.z2_classifier_.n_neighbors).fit(z2_train - reg.predict(l_train), train.y)
    pred_r = knn.predict(z2_test - reg.predict(l_test))
    res_r = group_accuracies(test.y, pred_r, groups=test.groups)
    probe = lambda target: float(  # noqa: E731 - a linear probe from mu(x)_2, fit on train, scored on test
        LogisticRegression(max_iter=2000).fit(z2_train, target(train)).score(z2_test, target(test))
    )
    shift = model.latent_shift(train.X[:500], train.X[:500][:, [1, 0, 2]])
    h = model.history
    return {
        "n_train": n,
        "seed": seed,
        "config": config,
        "params": CONFIGS[config],
        "n_epochs": model.n_epochs_,
        "n_steps": int(sum(len(e["batches"]) for e in h)),
        "train_z1_clf": float(model.z1_score(train.X, train.y)),
        "test_z1_clf": float(model.z1_score(test.X, test.y)),
        "train_z2_clf": float(model.score(train.X, train.y)),
        "test_z2_clf": float((pred == test.y).mean()),
        "test_groups_z2_clf": groups,
        "worst_group_z2_clf": res.worst,
        "test_z2_clf_z1_removed": float((pred_r == test.y).mean()),
        "worst_group_z2_clf_z1_removed": res_r.worst,
        "colour_from_z2": probe(lambda s: s.spurious),
        "digit_from_z2": probe(lambda s: s.digit >= 5),
        "shift_z1": float(shift[:d1].mean()),
        "shift_z2": float(shift[d1:].mean()),
        "final_recon": float(h[-1, "train_recon"]),
        "final_kl": float(h[-1, "train_kl"]),
        "seconds": seconds,
    }


def summarise(rows):
    out = {}
    for row in rows:
        key = f"{row['config']} n={row['n_train']}"
        keys = ["test_z2_clf", "worst_group_z2_clf", "colour_from_z2", "test_z2_clf_z1_removed",
                "worst_group_z2_clf_z1_removed"]
        out.setdefault(key, {"seeds": [], **{k: [] for k in keys}})
        for k in out[key]:
            out[key][k].append(row["seed"] if k == "seeds" else row[k])
    for v in out.values():
        for k in [k for k in v if k != "seeds"]:
            v[f"mean_{k}"] = float(np.mean(v[k]))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=["default", "steps960", "epochs30"], choices=sorted(CONFIGS))
    parser.add_argument("--jobs", type=int, default=1, help="models trained in parallel (one torch thread each)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "chroma_vae_data_size.json"))
    parser.add_argument("--merge", nargs="*", default=(), help="also keep the rows of these result files")
    args = parser.parse_args(argv)

    from joblib import Parallel, delayed

    tasks = [(n, s, c) for c in args.configs for n in args.sizes for s in args.seeds]
    # 30 epochs of 4,000 images are 960 steps: ``epochs30`` is ``steps960`` there
    tasks = [t for t in tasks if not (t[2] == "epochs30" and t[0] == 4000)]
    rows = []
    for path in args.merge:
        rows += json.loads(Path(path).read_text())["rows"]
    done = {(r["n_train"], r["seed"], r["config"]) for r in rows}
    tasks = [t for t in tasks if t not in done]
    for row in Parallel(n_jobs=args.jobs, return_as="generator")(delayed(fit_one)(*t) for t in tasks):
        rows.append(row)
        print(
            f"{row['config']:8s} n={row['n_train']:5d} seed={row['seed']} epochs={row['n_epochs']:3d} | "
            f"z1 train {row['train_z1_clf']:.3f} test {row['test_z1_clf']:.3f} | z2 train {row['train_z2_clf']:.3f} "
            f"test {row['test_z2_clf']:.3f} worst group {row['worst_group_z2_clf']:.3f} | colour<-z2 "
            f"{row['colour_from_z2']:.3f} digit<-z2 {row['digit_from_z2']:.3f} ({row['seconds']:.0f} s)",
            flush=True,
        )
    rows.sort(key=lambda r: (r["config"], r["n_train"], r["seed"]))
    result = {
        "benchmark": "Chroma-VAE on colored-digits-noisy by training-set size (test accuracy, ceiling 0.75)",
        "data": "make_colored_digits(n_train, 200, 2000, regime='arjovsky', random_state=seed)",
        "model": "ChromaVAEClassifier(dim_z=32, z_p=0.25, device='cpu', random_state=seed, **config)",
        "configs": CONFIGS,
        "ceiling": 0.75,
        "rows": rows,
        "summary": summarise(rows),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_1min_at_end": os.getloadavg()[0],
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
