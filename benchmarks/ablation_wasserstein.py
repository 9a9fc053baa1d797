"""Do the critics of WassersteinDisentangler remove the other label? Default settings against critic_steps=0.

D3S (Kattakinda et al.) Eqs. 8-10 make ``z_fg`` independent of the
background label and ``z_bg`` of the foreground label. This script trains the
disentangler on the ``diverse`` split (every foreground on every background,
both labels known: section 6's "all pairs") of two data sets with different
kinds of background:

* ``foreground-background``: :func:`skshortcut.datasets.make_foreground_background`,
  digits on 10 coloured textures (chance 0.10 for either label);
* ``shapes-on-tints``: :func:`skshortcut.datasets.make_shapes_on_tints`,
  3 shapes on 3 flat tints (chance 0.33);

then fits four linear probes (standardisation + logistic regression) on the
diverse split's latents and scores them on the held-out test split's latents:
fg <- z_fg and bg <- z_bg (should stay high), bg <- z_fg and fg <- z_bg (the
cross probes, should fall to chance). Each setting runs on seeds 0, 1, 2, with
the default parameters and with ``critic_steps=0`` (critics never trained; the
Wasserstein terms then come from untrained critics). On foreground-background
it also runs section 6's test: a probe for the digit trained on ``z_fg`` (and
on all of ``z``) of the correlated train split (each digit on one texture),
scored on the anti-correlated test split.

Run: ``OMP_NUM_THREADS=1 python benchmarks/ablation_wasserstein.py`` (about
12 runs of 30-90 s on one core); ``--datasets foreground-background`` runs
one. Prints a table and saves ``benchmarks/results/ablation_wasserstein.json``
(runs of other data sets already in the file are kept).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skshortcut import WassersteinDisentangler
from skshortcut.datasets import make_foreground_background, make_shapes_on_tints

RESULTS = Path(__file__).resolve().parent / "results" / "ablation_wasserstein.json"
SEEDS = (0, 1, 2)
N_DIVERSE, N_TEST, IMAGE_SIZE = 2000, 900, 16
#: Correlated training images of foreground-background for section 6's probe (each digit on one texture).
N_CORRELATED = 1000
#: What every run shares; the variants change only what they name.
COMMON = {"max_epochs": 8, "extractor_params": {"width": 16}, "device": "cpu"}
VARIANTS = {"default": {}, "critic_steps=0": {"critic_steps": 0}}
DATASETS = {
    "foreground-background": lambda seed: make_foreground_background(
        N_DIVERSE, N_CORRELATED, 10, N_TEST, image_size=IMAGE_SIZE, random_state=seed
    ),
    "shapes-on-tints": lambda seed: make_shapes_on_tints(
        N_DIVERSE, 10, 10, N_TEST, image_size=IMAGE_SIZE, random_state=seed
    ),
}
PROBES = ("fg<-z_fg", "bg<-z_bg", "bg<-z_fg", "fg<-z_bg")


def probe_accuracies(wd, train, test):
    """The four probes: logistic regression on the train latents, accuracy on the test latents."""
    z_train, z_test = wd.transform(train.X, part="both"), wd.transform(test.X, part="both")
    k = wd.n_foreground_features_
    parts = {"z_fg": slice(0, k), "z_bg": slice(k, None)}
    labels = {"fg": ("y",), "bg": ("background",)}
    out = {}
    for name in PROBES:
        target, source = name.split("<-")
        attr = labels[target][0]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(z_train[:, parts[source]], getattr(train, attr))
        out[name] = float(np.mean(model.predict(z_test[:, parts[source]]) == getattr(test, attr)))
    return out


def run(dataset, variant, seed):
    data = DATASETS[dataset](seed)
    start = time.perf_counter()
    wd = WassersteinDisentangler(**COMMON, **VARIANTS[variant], random_state=seed)
    wd.fit(data.diverse.X, data.diverse.labels)
    row = probe_accuracies(wd, data.diverse, data.test)
    if len(data.train.y) >= 100:  # section 6: trained where the labels correlate, tested where they do not
        for name, part in (("sec6_fg<-z_fg", "fg"), ("sec6_fg<-z", "both")):
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            model.fit(wd.transform(data.train.X, part=part), data.train.y)
            row[name] = float(np.mean(model.predict(wd.transform(data.test.X, part=part)) == data.test.y))
    row["chance_fg"] = float(np.bincount(data.test.y).max() / len(data.test.y))
    row["chance_bg"] = float(np.bincount(data.test.background).max() / len(data.test.background))
    last = wd.history[-1]
    row["w_fg_last_epoch"] = float(last.get("train_w_fg", float("nan")))
    row["w_bg_last_epoch"] = float(last.get("train_w_bg", float("nan")))
    row["fit_seconds"] = round(time.perf_counter() - start, 1)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["settings"] = {
        "seeds": list(SEEDS),
        "n_diverse": N_DIVERSE,
        "n_test": N_TEST,
        "image_size": IMAGE_SIZE,
        "common": COMMON,
        "variants": VARIANTS,
        "probe": "StandardScaler + LogisticRegression(max_iter=2000), fit on the diverse split, scored on test",
    }
    for dataset in args.datasets:
        per = {}
        for variant in VARIANTS:
            rows = [run(dataset, variant, seed) for seed in SEEDS]
            per[variant] = {
                "per_seed": rows,
                "mean": {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if not k.startswith(("w_", "fit"))},
            }
            print(f"{dataset:<22} {variant:<15} " + "  ".join(
                f"{k} {per[variant]['mean'][k]:.3f} ({', '.join(f'{r[k]:.2f}' for r in rows)})"
                for k in (*PROBES, "sec6_fg<-z_fg", "sec6_fg<-z") if k in rows[0]
            ), flush=True)
        results[dataset] = per
        current = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        current.update({"settings": results["settings"], dataset: per})
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(current, indent=2) + "\n")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
