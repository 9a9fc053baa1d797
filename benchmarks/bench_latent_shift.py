"""Counterfactuals per second: the batched Latent Shift search against one image at a time.

Two settings, each with a base classifier, a downstream classifier (both
:class:`~skshortcut.ERMClassifier`) and the default convolutional autoencoder
(latent 32), trained once:

* ``dominoes-12``: the validation setting of the tests (24 x 12 dominoes,
  small CNNs of width 8);
* ``digits-28``: coloured digits at 28 x 28 with the default small CNN (width
  32), where a forward pass costs about ten times more.

The timing covers only the counterfactual search (Eqs. 1-2 with the lambda
search) and the evaluation of both classifiers on the counterfactuals.

Measured in the same run, ``--repeats`` times (medians reported):

* ``batched``: ``LatentShift(batch_size=64).generate`` on ``--n`` images;
* ``one at a time``: ``LatentShift(batch_size=1)`` on ``--n-single`` images
  (the same code, one image per search);
* ``plain loop``: an independent per-image transcription of the search (the
  shape of the authors' code: one image, one decoder and classifier call per
  step), written with plain torch, as a second baseline.

The batched and single searches must agree (each image keeps its own lambda);
the largest lambda difference is reported.

Usage: ``python benchmarks/bench_latent_shift.py [--repeats 3] [--threads 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch

from skshortcut import ERMClassifier
from skshortcut.counterfactual import Autoencoder, LatentShift
from skshortcut.datasets import make_colored_digits, make_dominoes


def plain_loop(ae, base, downstream, X, *, target_drop=0.6, min_output=0.05, growth=0.1, max_steps=50):
    """One image at a time, as in the authors' code (same stops and step schedule as LatentShift)."""
    enc, dec = ae.module_.encode, ae.module_.decode
    f = lambda m, x: torch.softmax(m.module_(x), 1)[:, 1]  # noqa: E731
    lambdas = []
    for x in torch.as_tensor(X):
        x = x[None]
        with torch.no_grad():
            z0 = enc(x)
        z = z0.clone().requires_grad_(True)
        x0 = dec(z)
        p0 = f(base, x0)
        (g,) = torch.autograd.grad(p0.sum(), z)
        with torch.no_grad():
            g2 = g.pow(2).sum().clamp_min(1e-30)
            step = torch.minimum(target_drop / 20 / g2, 0.05 * z0.norm() / g2.sqrt())
            lam, last = 0.0, p0.item()
            for _ in range(max_steps):
                new = lam * (1 + growth) + step.item()
                p = f(base, dec(z0 - new * g)).item()
                if p > last:
                    break
                lam = new
                if p < min_output or p0.item() - p > target_drop:
                    break
                last = p
            xl = dec(z0 - lam * g)
            f(base, xl), f(downstream, xl), f(downstream, x0)
        lambdas.append(lam)
    return np.asarray(lambdas)


def build(setting, n_test):
    """Data and trained models of a setting."""
    if setting == "digits-28":
        data = make_colored_digits(1500, 100, n_test, agreement=0.5, test_agreement=0.5, random_state=0)
        tr = data.train
        common = dict(max_epochs=8, lr=3e-3, patience=None, random_state=0, device="cpu")
        base = ERMClassifier(**common).fit(tr.X, tr.y)
        downstream = ERMClassifier(**common).fit(tr.X, tr.spurious)
        ae = Autoencoder(latent_dim=32, max_epochs=15, random_state=0, device="cpu").fit(tr.X)
        desc = {
            "data": "colored digits 3x28x28, colour independent of the label",
            "base": "ERMClassifier (SmallCNN width 32) on the digit label, 8 epochs",
            "downstream": "ERMClassifier (SmallCNN width 32) on colour, 8 epochs",
            "autoencoder": "Autoencoder latent 32, 15 epochs",
        }
        base_target = data.test.y
    else:  # the setting of tests/test_cf_alignment_dominoes.py
        data = make_dominoes(1200, 100, n_test, correlation=0.0, val_correlation=0.0, image_size=12, random_state=0)
        tr = data.train
        common = dict(max_epochs=8, module__width=8, lr=3e-3, patience=None, criterion__label_smoothing=0.1,
                      random_state=0, device="cpu")
        base = ERMClassifier(**common).fit(tr.X, tr.spurious)
        downstream = ERMClassifier(**common).fit(tr.X, tr.y)
        ae = Autoencoder(latent_dim=32, max_epochs=15, lr=3e-3, random_state=0, device="cpu").fit(tr.X)
        desc = {
            "data": "dominoes 3x24x12 (top digit 0/1, bottom digit 3/8, independent)",
            "base": "ERMClassifier (SmallCNN width 8) on the top digit, 8 epochs",
            "downstream": "ERMClassifier (SmallCNN width 8) on the bottom digit, 8 epochs",
            "autoencoder": "Autoencoder latent 32, 15 epochs",
        }
        base_target = data.test.spurious
    for m in (base.module_, downstream.module_, ae.module_):
        m.eval()
    desc["base_accuracy"] = float(base.score(data.test.X, base_target))
    return data.test.X, base, downstream, ae, desc


def measure(setting, args):
    X, base, downstream, ae, desc = build(setting, max(args.n, args.n_single))

    def shift(batch_size):
        return LatentShift(ae, (base, 1), downstream={"other": (downstream, 1)}, max_image_change=None,
                           batch_size=batch_size, device="cpu")

    runs = {
        "batched": (lambda: shift(args.batch_size).generate(X[: args.n], return_images=False), args.n),
        "one at a time": (lambda: shift(1).generate(X[: args.n_single], return_images=False), args.n_single),
        "plain loop": (lambda: plain_loop(ae, base, downstream, X[: args.n_single]), args.n_single),
    }
    rates = {k: [] for k in runs}
    outputs = {}
    for rep in range(args.repeats):
        for name, (run, n) in runs.items():
            start = time.perf_counter()
            outputs[name] = run()
            seconds = time.perf_counter() - start
            rates[name].append(n / seconds)
            print(f"{setting} repeat {rep}: {name:14s} {n:4d} images {seconds:7.2f} s  "
                  f"{n / seconds:8.1f} counterfactuals/s", flush=True)
    batched, single = outputs["batched"], outputs["one at a time"]
    m = args.n_single
    rel = lambda a, b: float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))  # noqa: E731
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "setting": {
            **desc,
            "n_batched": args.n,
            "n_single": args.n_single,
            "batch_size": args.batch_size,
            "mean_search_steps": float(np.mean(batched.n_steps)),
            "stop_reasons": {str(k): int(v) for k, v in zip(*np.unique(batched.stop_reason, return_counts=True))},
        },
        "median_counterfactuals_per_second": med,
        "speedup_batched_over": {
            "one at a time": med["batched"] / med["one at a time"],
            "plain loop": med["batched"] / med["plain loop"],
        },
        "max_relative_lambda_difference": {
            "batched vs one at a time": rel(batched.lambdas[:m], single.lambdas),
            "plain loop vs one at a time": rel(outputs["plain loop"], single.lambdas),
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=256, help="images for the batched search")
    parser.add_argument("--n-single", type=int, default=64, help="images for the one-at-a-time searches")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--settings", default="dominoes-12,digits-28")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "latent_shift.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    result = {"repeats": args.repeats, "torch_threads": args.threads, "settings": {}}
    for setting in args.settings.split(","):
        result["settings"][setting] = measure(setting, args)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_1_5_15_min_at_end": os.getloadavg(),
    }
    print()
    print(f"{'setting':12s} {'run':14s} {'CF/s':>9s} {'speed-up':>9s}")
    for setting, r in result["settings"].items():
        med = r["median_counterfactuals_per_second"]
        for k, v in med.items():
            print(f"{setting:12s} {k:14s} {v:9.1f} {med['batched'] / v:8.1f}x")
        print(f"{'':12s} largest relative lambda difference, batched vs one at a time: "
              f"{r['max_relative_lambda_difference']['batched vs one at a time']:.1e}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
