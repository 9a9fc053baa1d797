"""Seconds per training epoch: ``ChromaVAEClassifier`` against a hand-written torch loop.

Both train the same ``ChromaVAEModule`` (same encoder, decoder and z1-head,
same initial weights) on the same coloured digits with Adam, the same batch
size and the same Eq. 2 loss; the hand-written loop is what one would write
without skorch (a ``DataLoader`` over a ``TensorDataset``, shuffled). The two
alternate within one process, and the script reports the median seconds per
epoch of each and their ratio (goal: <= 1.15).

Run ``python benchmarks/bench_chroma_vae.py`` (``--quick`` for a short run);
it prints the numbers and writes ``benchmarks/results/chroma_vae.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from skshortcut import ChromaVAEClassifier
from skshortcut.datasets import make_colored_digits
from skshortcut.generative._chroma_vae_module import kl_standard_normal


def hand_written_epochs(module, X, y, *, epochs, batch_size, lr, beta, lambda_, seed):
    """Train ``module`` with a plain torch loop; return the seconds of each epoch."""
    torch.manual_seed(seed)
    loader = DataLoader(TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), batch_size=batch_size, shuffle=True)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    ce = torch.nn.CrossEntropyLoss()
    module.train()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for xb, yb in loader:
            opt.zero_grad()
            logits, mu, logvar, out = module(xb)
            recon = module.negative_log_likelihood(out, xb)
            loss = (recon + beta * kl_standard_normal(mu, logvar)).mean() + lambda_ * ce(logits, yb)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="training images")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="a short run (n=600, 2 epochs, 3 repeats)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "chroma_vae.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.epochs, args.repeats = 600, 2, 3

    data = make_colored_digits(args.n, 20, 20, regime="arjovsky", random_state=0)
    X, y = data.train.X, data.train.y.astype(np.int64)
    settings = dict(dim_z=32, z_p=0.25, beta=1.0, beta_start=None, lambda_=100.0, lr=1e-3, batch_size=args.batch_size)

    skorch_epoch, hand_epoch = [], []
    for r in range(args.repeats):
        est = ChromaVAEClassifier(**settings, max_epochs=args.epochs, device="cpu", random_state=r)
        est.fit(X, y)
        # first epoch of each run includes warm-up on both sides; keep the others when there are any
        durs = est.history[:, "dur"]
        skorch_epoch += durs[1:] if len(durs) > 1 else durs

        module = ChromaVAEClassifier(**settings, max_epochs=args.epochs, device="cpu", random_state=r)
        module.fit(X, y, epochs=0)  # builds the same module (same seed, same initial weights), trains nothing
        times = hand_written_epochs(
            module.module_, X, y, epochs=args.epochs, batch_size=args.batch_size, lr=settings["lr"],
            beta=settings["beta"], lambda_=settings["lambda_"], seed=r,
        )
        hand_epoch += times[1:] if len(times) > 1 else times
        print(f"run {r + 1}/{args.repeats}: skorch {statistics.median(durs):.3f} s/epoch, "
              f"hand-written {statistics.median(times):.3f} s/epoch", flush=True)

    med_skorch, med_hand = statistics.median(skorch_epoch), statistics.median(hand_epoch)
    result = {
        "benchmark": "ChromaVAEClassifier seconds per training epoch vs a hand-written torch loop",
        "n_train": args.n,
        "image_shape": list(X.shape[1:]),
        "batch_size": args.batch_size,
        "epochs_per_run": args.epochs,
        "repeats": args.repeats,
        "settings": settings,
        "median_seconds_per_epoch": {"ChromaVAEClassifier": med_skorch, "hand_written_loop": med_hand},
        "ratio": med_skorch / med_hand,
        "goal_ratio": 1.15,
        "all_epochs": {"ChromaVAEClassifier": skorch_epoch, "hand_written_loop": hand_epoch},
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}",
    }
    print(f"median s/epoch: ChromaVAEClassifier {med_skorch:.3f}, hand-written {med_hand:.3f}; "
          f"ratio {result['ratio']:.3f} (goal <= 1.15)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
