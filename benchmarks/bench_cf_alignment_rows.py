"""The rows of the benchmark's alignment matrix: how many of the 300 test images reach the 0.3 drop.

Runs the ``cf-alignment`` method of ``skshortcut benchmark`` on the default
data set (``colored-digits``, scale 1: 4,000 / 2,000 / 2,000 images, 28 x 28)
for each seed, on one shared ERM model:

* ``after``: the method as it is (label classifier trained in batches of 32,
  10 epochs on the 400-image balanced subsample: 130 optimisation steps;
  spurious classifier in batches of 128: 30 steps);
* ``before``: the label classifier trained as before, in batches of 128 (30
  steps), its row of the matrix recomputed with the ``after`` run's
  autoencoder, ERM model and spurious classifier (the rest of the method does
  not depend on the label classifier, so its other rows, ``beta`` and
  accuracies are those of ``after``);
* ``spurious_32`` (``--spurious-32``): the whole method with the spurious
  classifier also trained in batches of 32, to show why it is not.

Everything else (the autoencoder, the latent-shift search, rectification) is
the method's own code and settings. For each run it records the alignment
matrix (values, standard errors, and per row the number of the 300 images whose
base prediction dropped by more than 0.3), the group-balanced validation
accuracy of the label and spurious classifiers, the fitted ``beta``, the test
mean and worst-group accuracy, and the CPU seconds of each stage (attribute
classifiers, autoencoder fit, the three latent-shift searches of the matrix,
rectification), measured with ``time.process_time`` on one thread.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_cf_alignment_rows.py [--seeds 0 1 2] [--spurious-32]``
Writes ``benchmarks/results/cf_alignment_rows.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import types
import warnings
from pathlib import Path

import numpy as np
import torch

from skshortcut import CFAlignmentScorer
from skshortcut.bench import cf_alignment as cfa
from skshortcut.bench.core import DATASETS, BenchmarkContext

RESULTS = Path(__file__).parent / "results" / "cf_alignment_rows.json"


def worst_group(y_pred, split):
    correct = np.asarray(y_pred) == np.asarray(split.y)
    groups = np.asarray(split.groups)
    return float(np.mean(correct)), float(min(correct[groups == g].mean() for g in np.unique(groups)))


def run_method(ctx, **settings):
    """The cf-alignment method with some settings changed; its numbers and its stage CPU seconds."""
    saved = dict(cfa.SETTINGS)
    cfa.SETTINGS.update(settings)
    # the method's stage clock reads CPU time instead of wall time here
    cfa.time = types.SimpleNamespace(perf_counter=time.process_time)
    try:
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = cfa.cf_alignment(ctx)
        total = time.process_time() - start
    finally:
        cfa.SETTINGS.clear()
        cfa.SETTINGS.update(saved)
        cfa.time = time
    run = ctx.cache["cf_alignment"]
    table = run["alignment_matrix"]
    acc, wg = worst_group(res["y_pred"], ctx.data.test)
    out = {
        "settings": settings,
        "alignment_matrix": table.to_dict(),
        "reached_drop": dict(zip(table.index, np.diag(table.count).astype(int).tolist())),
        "attribute_accuracy": res["attribute_accuracy"],
        "beta": res["beta"],
        "accuracy": acc,
        "worst_group": wg,
        "cpu_seconds": {**run["seconds"], "method": round(total, 1)},
    }
    return out, run


def show(seed, variant, out, text):
    print(f"seed {seed} {variant}: reached the 0.3 drop {out['reached_drop']} of {cfa.SETTINGS['n_eval']}; "
          f"attribute accuracy {out['attribute_accuracy']}; beta {out['beta']:.3f}; acc {out['accuracy']:.3f} "
          f"wg {out['worst_group']:.3f}; CPU s {out['cpu_seconds']}\n{text}", flush=True)


def label_row_before(ctx, run):
    """The label row with the label classifier trained in batches of 128, on the after run's other parts."""
    data = ctx.data
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = cfa.SETTINGS["label_batch_size"]
        cfa.SETTINGS["label_batch_size"] = 128
        try:
            f_label, _ = cfa.attribute_classifiers(data.train, np.random.RandomState(ctx.seed), seed=ctx.seed,
                                                   device="cpu")
        finally:
            cfa.SETTINGS["label_batch_size"] = saved
        fit_cpu = time.process_time() - start
        start = time.process_time()
        scorer = CFAlignmentScorer(run["autoencoder"], (f_label, 1),
                                   {"erm": (ctx.erm, 1), "spurious": (run["f_spurious"], 1)}, base_name="label",
                                   max_image_change=None, device="cpu", random_state=ctx.seed)
        scorer.fit(data.test.X[: cfa.SETTINGS["n_eval"]])
    search_cpu = time.process_time() - start
    acc = cfa.attribute_accuracy(data.val, f_label, run["f_spurious"])["label"]
    return {
        "settings": {"label_batch_size": 128},
        "label_accuracy": acc,
        "label_row": {k: (None if not np.isfinite(v) else round(v, 4)) for k, v in scorer.alignment_.items()},
        "reached_drop": {"label": scorer.n_kept_},
        "stop_reasons": dict(zip(*[a.tolist() for a in np.unique(scorer.stop_reasons_, return_counts=True)])),
        "cpu_seconds": {"label_classifier": round(fit_cpu, 1), "label_row_search": round(search_cpu, 1)},
    }


def run_seed(seed, spurious_32=False, dataset="colored-digits"):
    data = DATASETS[dataset].make(seed, 1.0)
    ctx = BenchmarkContext(dataset, data, seed, "cpu", None)
    start = time.process_time()
    ctx.erm  # noqa: B018  (trains the shared ERM model)
    erm_cpu = time.process_time() - start
    acc, wg = worst_group(ctx.erm.predict(data.test.X), data.test)
    out = {"erm_cpu_seconds": round(erm_cpu, 1), "erm": {"accuracy": acc, "worst_group": wg}}
    out["after"], run = run_method(ctx)
    show(seed, "after", out["after"], run["alignment_matrix"].format())
    out["before"] = before = label_row_before(ctx, run)
    print(f"seed {seed} before: label accuracy {before['label_accuracy']}, reached the 0.3 drop "
          f"{before['reached_drop']['label']}, row {before['label_row']}, stops {before['stop_reasons']}, "
          f"CPU s {before['cpu_seconds']}", flush=True)
    if spurious_32:
        out["spurious_32"], run = run_method(ctx, spurious_batch_size=32)
        show(seed, "spurious_32", out["spurious_32"], run["alignment_matrix"].format())
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--spurious-32", action="store_true", help="also run the method with the spurious "
                        "classifier trained in batches of 32")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {
        "dataset": "colored-digits",
        "n_eval": cfa.SETTINGS["n_eval"],
        "settings": dict(cfa.SETTINGS),
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "seeds": {},
    }
    for seed in args.seeds:
        measured = run_seed(seed, spurious_32=args.spurious_32)
        if RESULTS.exists():  # keep seeds measured in earlier (or concurrent) runs
            results["seeds"].update(json.loads(RESULTS.read_text()).get("seeds", {}))
        results["seeds"][str(seed)] = measured
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, default=float))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
