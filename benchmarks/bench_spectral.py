"""Spectral clustering with the eigengap heuristic on 5,000 / 10,000 / 20,000 heatmaps of 400 dims.

:class:`skshortcut.grouping.SpectralEigengap` never builds an ``n x n`` matrix:
a sparse ``int(ln n)``-nearest-neighbour graph, LOBPCG for the 11 smallest
Laplacian eigenvalues, cluster-QR. For each ``n`` it prints and saves the
median seconds of ``fit`` and its peak traced memory (``tracemalloc``: numpy
and scipy allocations; one separate traced fit), for

* ``approximate`` neighbours (random-projection forest + neighbours of
  neighbours; time near linear in ``n``), and
* ``exact`` neighbours (chunked brute force; memory linear, time quadratic),

with the memory one dense float64 affinity matrix would need, the number of
clusters found and the adjusted Rand index against the planted clusters. The
growth exponents ``log(t(20k) / t(5k)) / log(4)`` summarise the scaling.

Data: 8 planted "heatmap strategies" (random non-negative 20 x 20 maps), each
sample one of them plus noise, max-abs normalised as ExMap does.

Usage: ``python benchmarks/bench_spectral.py [--repeats 2] [--out benchmarks/results/spectral.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np
from sklearn.metrics import adjusted_rand_score

from skshortcut.grouping import SpectralEigengap


def make_heatmaps(n, d=400, k=8, noise=0.6, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.rand(k, d) * (rng.rand(k, d) > 0.7)
    labels = rng.randint(0, k, n)
    H = centres[labels] + noise * rng.randn(n, d) * 0.3
    H /= np.abs(H).max(axis=1, keepdims=True)
    return H.astype(np.float32), labels


def measure(H, labels, neighbors, repeats):
    """Median seconds over ``repeats`` untraced fits, then one traced fit for the peak memory."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sc = SpectralEigengap(neighbors=neighbors, random_state=0).fit(H)
        times.append(time.perf_counter() - start)
    tracemalloc.start()  # tracing slows Python-level code: timed separately above
    SpectralEigengap(neighbors=neighbors, random_state=0).fit(H)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "seconds": statistics.median(times),
        "peak_mib": peak / 2**20,
        "n_clusters": int(sc.n_clusters_),
        "ari": float(adjusted_rand_score(labels, sc.labels_)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", default="5000,10000,20000")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "spectral.json"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    print(f"{'n':>6} {'neighbours':>12} {'seconds':>8} {'peak MiB':>9} {'dense MiB':>10} {'k':>3} {'ARI':>6}")
    for n in sizes:
        H, labels = make_heatmaps(n)
        for neighbors in ("approximate", "exact"):
            r = measure(H, labels, neighbors, args.repeats)
            r.update(n=n, neighbors=neighbors, dense_affinity_mib=n * n * 8 / 2**20, input_mib=H.nbytes / 2**20)
            rows.append(r)
            print(f"{n:6d} {neighbors:>12} {r['seconds']:8.2f} {r['peak_mib']:9.1f} {r['dense_affinity_mib']:10.1f} "
                  f"{r['n_clusters']:3d} {r['ari']:6.3f}")
    growth = {}
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        for neighbors in ("approximate", "exact"):
            a = next(r for r in rows if r["n"] == lo and r["neighbors"] == neighbors)
            b = next(r for r in rows if r["n"] == hi and r["neighbors"] == neighbors)
            growth[neighbors] = {
                "time_exponent": float(np.log(b["seconds"] / a["seconds"]) / np.log(hi / lo)),
                "memory_exponent": float(np.log(b["peak_mib"] / a["peak_mib"]) / np.log(hi / lo)),
            }
            print(f"{neighbors}: time ~ n^{growth[neighbors]['time_exponent']:.2f}, "
                  f"peak memory ~ n^{growth[neighbors]['memory_exponent']:.2f}")
    payload = {
        "benchmark": "SpectralEigengap.fit on heatmaps of 400 dims: seconds and peak traced memory",
        "repeats": args.repeats,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_at_end": os.getloadavg(),
        "results": rows,
        "growth": growth,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
