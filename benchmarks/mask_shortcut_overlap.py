"""Mask-and-Combine's shortcut-under-the-masks diagnostic, where MaC works and where it cannot.

For each data set and seed: the benchmark's ERM model (small CNN of width 16,
8 epochs), then a :class:`~skshortcut.MaskAndCombineRetrainer` with the
paper's Waterbirds weights (``alpha=2, beta=3``, the epoch chosen by
validation worst-group accuracy) and the same retraining without the
interventions (``alpha=beta=0``). Recorded: the fit's diagnostic
``shortcut_overlap_`` (per class, the share of each group's top-K mask pixels
that lie where the validation images of its groups differ; ``score`` is the
smaller of the two), whether ``fit`` warned, and test worst-group accuracies.

* ``dominoes-95`` and ``patch-digits-95``: the benchmark's data sets, where
  the shortcut (the top digit, a corner patch) lies next to the core;
* ``colored-digits``: the benchmark's ``make_colored_digits`` data, the
  shortcut is the colour of the digit's strokes (95 % agreement in train and
  validation), on the core pixels themselves;
* ``shapes-on-tints``: ``make_shapes_on_tints`` (a tinted background), when
  the installed library has it.

Run ``python benchmarks/mask_shortcut_overlap.py [--datasets ...] [--seeds 0 1 2]``;
it writes ``benchmarks/results/mask_shortcut_overlap.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from skshortcut import ERMClassifier, MaskAndCombineRetrainer, worst_group_accuracy
from skshortcut.bench import DATASETS
from skshortcut.bench.datasets import ERM_PARAMS
from skshortcut.retraining._mac_diagnostics import SHORTCUT_ON_MASKS

ROOT = Path(__file__).resolve().parents[1]


def make_data(name, seed, scale):
    if name in DATASETS:
        return DATASETS[name].make(seed, scale), dict(DATASETS[name].erm_params)
    if name == "shapes-on-tints":
        from skshortcut.datasets import make_shapes_on_tints

        n = lambda base: max(20, int(round(base * scale)))  # noqa: E731
        return make_shapes_on_tints(20, n(4000), n(2000), n(2000), random_state=seed), dict(ERM_PARAMS)
    raise SystemExit(f"unknown data set {name!r}")


def fit_mac(erm, data, seed, alpha, beta, max_epochs):
    val = data.val
    mac = MaskAndCombineRetrainer(erm, alpha=alpha, beta=beta, max_epochs=max_epochs, device="cpu",
                                  validation_data=(val.X, val.y, val.groups), random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mac.fit(data.train.X, data.train.y)
    seconds = time.perf_counter() - start
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return mac, seconds, messages


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["dominoes-95", "patch-digits-95", "colored-digits"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--max-epochs", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mask_shortcut_overlap.json"))
    args = parser.parse_args(argv)

    rows = []
    out = Path(args.out)
    previous = json.loads(out.read_text())["rows"] if out.exists() else []
    for name in args.datasets:
        for seed in args.seeds:
            data, erm_params = make_data(name, seed, args.scale)
            test = data.test
            start = time.perf_counter()
            erm = ERMClassifier(**erm_params, device="cpu", random_state=seed).fit(data.train.X, data.train.y)
            erm_seconds = time.perf_counter() - start
            row = {"dataset": name, "seed": seed, "scale": args.scale, "erm_seconds": round(erm_seconds, 1),
                   "erm_test_worst": worst_group_accuracy(test.y, erm.predict(test.X), groups=test.groups)}
            for alpha, beta in ((2.0, 3.0), (0.0, 0.0)):
                mac, seconds, messages = fit_mac(erm, data, seed, alpha, beta, args.max_epochs)
                key = f"alpha={alpha:g},beta={beta:g}"
                row[key] = {
                    "test_worst": worst_group_accuracy(test.y, mac.predict(test.X), groups=test.groups),
                    "val_worst": mac.best_score_,
                    "base_val_worst": mac.base_valid_score_,
                    "best_epoch": mac.best_epoch_,
                    "seconds": round(seconds, 1),
                    "warned_shortcut_on_masks": any("lie on the shortcut's pixels" in m for m in messages),
                    "warned_no_gain": any("did not lift" in m for m in messages),
                }
                if alpha:
                    row["overlap"] = [{k: _plain(v) for k, v in r.items()} for r in mac.shortcut_overlap_]
                    row["score"] = max((r["score"] for r in mac.shortcut_overlap_ if r["score"] == r["score"]),
                                       default=None)
                    row["messages"] = messages
            rows.append(row)
            a, p = row["alpha=2,beta=3"], row["alpha=0,beta=0"]
            print(f"{name} seed {seed}: score {row['score']:.3f} (warn >= {SHORTCUT_ON_MASKS}) warned "
                  f"{a['warned_shortcut_on_masks']}; test worst ERM {row['erm_test_worst']:.3f}, MaC(2,3) "
                  f"{a['test_worst']:.3f}, plain {p['test_worst']:.3f}; val MaC {a['val_worst']:.3f} vs base "
                  f"{a['base_val_worst']:.3f}", flush=True)
            for r in row["overlap"]:
                print(f"    class {r['class']} groups {r['groups']} n {r['n']}: shortcut on {r['shortcut_share']:.3f} "
                      f"of the image; mask on it {r['mask_on_shortcut'][0]:.3f} / {r['mask_on_shortcut'][1]:.3f}; "
                      f"covered {r['shortcut_covered'][0]:.3f} / {r['shortcut_covered'][1]:.3f}", flush=True)
    done = {(r["dataset"], r["seed"], r["scale"]) for r in rows}
    rows = [r for r in previous if (r["dataset"], r["seed"], r["scale"]) not in done] + rows
    result = {
        "script": "benchmarks/mask_shortcut_overlap.py",
        "threshold": SHORTCUT_ON_MASKS,
        "max_epochs": args.max_epochs,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "machine": platform.platform(),
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
