"""Heatmap throughput of ``skshortcut.explain.attribute`` against a plain forward + backward pass.

For each model, the same batches go through

* ``forward+backward``: the baseline, ``model(x)[range, predicted].sum().backward()``
  with the parameters requiring gradients (one training-style pass);
* ``attribute(model, X, method=...)`` for each method, with the predicted class
  as target, channel-summed output and max-abs normalisation (what ExMap and
  Mask-and-Combine compute).

Throughput is images per second; the ratio is method throughput / baseline
throughput, both measured in the same run (the goal is >= 0.5). The baseline and
the methods are run in turn within each of ``--repeats`` rounds, so that the load
of a shared machine falls on all of them alike; medians over the rounds. One torch
thread unless ``--threads`` says otherwise.

The row ``lrp (default, zennit's Gamma: before)`` is the default composite with
zennit's own ``Gamma`` rule on the convolutions, i.e. the implementation before the
closed-form rule (:class:`skshortcut._lrp_rules.ClosedFormGamma`); the script
prints and saves the speed-up of the default over it and the largest difference
of their heatmaps.

Models: the benchmark's small CNN (width 16, 3 blocks) on 28 x 28 colour digits,
and torchvision's ``resnet18(weights=None)`` on 64 x 64 images.

Usage: ``python benchmarks/bench_heatmaps.py [--repeats 5] [--threads 1] [--out benchmarks/results/heatmaps.json]``
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

from skshortcut.explain import _auto_canonizers, _epsilon_gamma_composite, attribute
from skshortcut.nets import SmallCNN


def forward_backward(model, X, batch_size):
    model.eval()
    for start in range(0, len(X), batch_size):
        x = torch.as_tensor(X[start : start + batch_size])
        out = model(x)
        out[torch.arange(len(x)), out.argmax(1)].sum().backward()
    model.zero_grad(set_to_none=True)


def zennit_gamma_composite(model):
    """The default composite with zennit's own Gamma rule: the implementation before the closed form."""
    from zennit.rules import Gamma

    return _epsilon_gamma_composite(_auto_canonizers(model), 4.0, 1e-6, None, conv_rule=Gamma)


def run_model(name, model, X, batch_size, methods, repeats, echo):
    def run(kwargs):
        return attribute(model, X, batch_size=batch_size, device="cpu", **kwargs)

    fns = {"forward+backward": lambda: forward_backward(model, X, batch_size)}
    fns.update({label: (lambda kw=kwargs: run(kw)) for label, kwargs in methods})
    for label, kwargs in methods:  # warm-up
        attribute(model, X[:batch_size], batch_size=batch_size, device="cpu", **kwargs)
    forward_backward(model, X[:batch_size], batch_size)
    times = {label: [] for label in fns}
    for _ in range(repeats):  # the methods in turn within each round: the load falls on all alike
        for label, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - start)
    base_s = statistics.median(times["forward+backward"])
    echo(f"{name}: {len(X)} images of {tuple(X.shape[1:])}, batch {batch_size}")
    rows = {}
    for label, ts in times.items():
        s = statistics.median(ts)
        rows[label] = {"seconds": s, "images_per_s": len(X) / s, "ratio": base_s / s, "seconds_all": ts}
        echo(f"  {label:40s} {s:7.2f} s  {len(X) / s:8.1f} img/s  ratio {base_s / s:.2f}")
    new, old = DEFAULT, BEFORE
    if new in rows and old in rows:
        diff = float(np.abs(run(dict(methods)[new]) - run(dict(methods)[old])).max())
        rows["default_vs_before"] = {
            "speedup": rows[old]["seconds"] / rows[new]["seconds"],
            "ratio_before": rows[old]["ratio"],
            "ratio_after": rows[new]["ratio"],
            "max_abs_heatmap_difference": diff,
        }
        echo(
            f"  default LRP: ratio {rows[old]['ratio']:.2f} before -> {rows[new]['ratio']:.2f} after "
            f"({rows[old]['seconds'] / rows[new]['seconds']:.2f}x faster), heatmaps differ by at most {diff:.1e}"
        )
    return rows


DEFAULT = "lrp (epsilon + gamma=4, default)"
BEFORE = "lrp (default, zennit's Gamma: before)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-images", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "heatmaps.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.RandomState(0)

    from skshortcut.datasets import make_colored_digits

    digits = make_colored_digits(args.n_images, 20, 20, random_state=0).train.X
    cnn = SmallCNN(in_channels=3, n_classes=2, width=16)
    methods = [
        (DEFAULT, {"method": "lrp"}),
        (BEFORE, {"method": "lrp", "method_params": {"composite": zennit_gamma_composite(cnn)}}),
        ("lrp (epsilon, Eq. 3)", {"method": "lrp", "method_params": {"composite": "epsilon"}}),
        ("xgradcam (upsampled to input)", {"method": "xgradcam", "size": (28, 28)}),
        ("gradcam", {"method": "gradcam"}),
        ("saliency", {"method": "saliency"}),
        ("integrated_gradients (n_steps=8)", {"method": "integrated_gradients", "method_params": {"n_steps": 8}}),
    ]
    results = {"small_cnn_28px": run_model("small CNN", cnn, digits, args.batch_size, methods, args.repeats, print)}

    from torchvision.models import resnet18

    X_big = rng.rand(max(args.n_images // 8, 64), 3, 64, 64).astype(np.float32)
    resnet = resnet18(weights=None, num_classes=2)
    resnet_methods = [
        (DEFAULT, {"method": "lrp"}),
        (BEFORE, {"method": "lrp", "method_params": {"composite": zennit_gamma_composite(resnet)}}),
        methods[2],
        methods[3],
    ]
    results["resnet18_64px"] = run_model(
        "resnet18", resnet, X_big, min(64, args.batch_size), resnet_methods, args.repeats, print
    )
    payload = {
        "benchmark": "heatmap throughput / forward+backward throughput, same batches (goal >= 0.5)",
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
