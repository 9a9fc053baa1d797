"""Seconds per Mask-and-Combine retraining epoch: masks cached once vs recomputed every epoch.

``MaskAndCombineRetrainer`` computes the XGradCAM masks of the frozen base
model once per training sample, before the first epoch (``cache_masks=True``,
the default). The baseline, ``cache_masks=False``, recomputes them for every
batch of every epoch, as a plain implementation of the paper's procedure
would. Both runs use the same data, base model, seed and settings, in the
same process; the only difference is the mask cache.

Printed and saved to ``benchmarks/results/mask_and_combine.json``: the median
seconds per epoch of each (over all epochs of ``--repeats`` fits), their
ratio, and the one-off cost of computing the cached masks and embeddings.

Run: ``python benchmarks/bench_mask_and_combine.py`` (a few minutes on two
CPU cores). Measured with ``--device cpu`` and ``OMP_NUM_THREADS=1`` on a
shared two-core machine: 4.6 s per epoch with the cache, 8.7 s without,
1.9x (``benchmarks/results/mask_and_combine.json``). Recomputing costs a
forward and a backward pass of every training image per epoch on top of the
forward passes of its removed and combined versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from skshortcut import ERMClassifier, MaskAndCombineRetrainer
from skshortcut.datasets import make_patch_digits


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "mask_and_combine.json"))
    args = parser.parse_args(argv)

    data = make_patch_digits(args.n_train, 200, 200, random_state=0)
    X, y = data.train.X, data.train.y
    erm = ERMClassifier(max_epochs=2, patience=None, module__width=16, random_state=0, device=args.device).fit(X, y)

    runs = {"cached": [], "recomputed": []}
    setup = []
    for rep in range(args.repeats):
        for name, cache in (("cached", True), ("recomputed", False)):
            mac = MaskAndCombineRetrainer(
                erm, cache_masks=cache, max_epochs=args.epochs, random_state=rep, device=args.device
            )
            start = time.perf_counter()
            mac.fit(X, y)
            total = time.perf_counter() - start
            durations = list(mac.history[:, "dur"])
            runs[name] += durations
            if cache:
                setup.append(total - sum(durations))
            print(f"repeat {rep} {name:>10}: epochs {', '.join(f'{d:.2f}' for d in durations)} s")

    cached, recomputed = float(np.median(runs["cached"])), float(np.median(runs["recomputed"]))
    result = {
        "benchmark": "seconds per Mask-and-Combine retraining epoch, masks cached vs recomputed every epoch",
        "data": f"make_patch_digits, {args.n_train} training images of 3x28x28, batch 32, alpha=2, beta=3",
        "base_model": "ERMClassifier SmallCNN width 16",
        "epochs_per_fit": args.epochs,
        "repeats": args.repeats,
        "seconds_per_epoch_cached": cached,
        "seconds_per_epoch_recomputed": recomputed,
        "speedup_recomputed_over_cached": recomputed / cached,
        "one_off_seconds_masks_and_embeddings": float(np.median(setup)),
        "all_epoch_seconds": runs,
        "device": str(mac.base_model_.device),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "machine": platform.machine(),
    }
    print(
        f"\nseconds per epoch: cached masks {cached:.2f}, recomputed masks {recomputed:.2f} "
        f"-> {recomputed / cached:.2f}x faster with the cache "
        f"(one-off mask and embedding pass: {np.median(setup):.2f} s)"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
