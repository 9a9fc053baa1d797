"""Prediction time of ``Pipeline([("groups", ExMapGrouper(...)), ("clf", DFRRetrainer())])``.

DFR predicts from the base model's embeddings alone; the pseudo-groups of the
test images (LRP heatmaps and their clusters) are never used at predict. The
pipeline's ``predict`` is timed against what it needs,

* ``embed + DFR predict``: ``clf.predict(grouper.base_model_.embed(X))``;
* ``pipeline predict``: ``pipe.predict(X)``, the pipeline as written;

both in the same run, on the same images, in turn (so that both see the same
machine load), medians over ``--repeats`` runs.
The ratio pipeline / (embed + DFR predict) is the overhead of the pipeline
(the goal is <= 1.2).

Model: the benchmark's small CNN (width 16, 3 blocks, untrained: the time does
not depend on the weights) on 28 x 28 colour digits; the pipeline is fit on
the validation split, predictions on the test split.

Usage: ``python benchmarks/bench_exmap_predict.py [--repeats 5] [--n-images 1200]
[--out benchmarks/results/exmap_predict.json]``
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


def timed_in_turn(fns, repeats):
    """Median seconds of each function, the functions run in turn so that both see the same load."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-images", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "exmap_predict.json"))
    args = parser.parse_args(argv)

    from sklearn.pipeline import Pipeline

    from skshortcut import DFRRetrainer, ExMapGrouper
    from skshortcut.datasets import make_colored_digits
    from skshortcut.nets import SmallCNN

    torch.manual_seed(0)
    data = make_colored_digits(20, args.n_images, args.n_images, random_state=0)
    cnn = SmallCNN(in_channels=3, n_classes=2, width=16)
    pipe = Pipeline([
        ("groups", ExMapGrouper(cnn, batch_size=args.batch_size, device="cpu", random_state=0)),
        ("clf", DFRRetrainer(random_state=0)),
    ]).fit(data.val.X, data.val.y)
    grouper, clf = pipe.named_steps["groups"], pipe.named_steps["clf"]
    X = data.test.X

    def embed_and_predict():
        return clf.predict(grouper.base_model_.embed(X, batch_size=args.batch_size))

    def pipeline_predict():
        return pipe.predict(X)

    assert np.array_equal(embed_and_predict(), pipeline_predict())  # also a warm-up of both
    (base_s, pipe_s), (base_all, pipe_all) = timed_in_turn([embed_and_predict, pipeline_predict], args.repeats)
    ratio = pipe_s / base_s
    print(f"{len(X)} images of {tuple(X.shape[1:])}, batch {args.batch_size}, {torch.get_num_threads()} thread(s)")
    print(f"  embed + DFR predict  {base_s:7.3f} s")
    print(f"  pipeline predict     {pipe_s:7.3f} s   ratio {ratio:.2f} (goal <= 1.2)")
    payload = {
        "benchmark": "Pipeline(ExMapGrouper, DFRRetrainer).predict / (embed + DFR predict), same run (goal <= 1.2)",
        "n_images": len(X),
        "repeats": args.repeats,
        "embed_and_dfr_predict_s": base_s,
        "pipeline_predict_s": pipe_s,
        "ratio": ratio,
        "all_runs_s": {"embed_and_dfr_predict": base_all, "pipeline_predict": pipe_all},
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
