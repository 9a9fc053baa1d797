"""Real data at scale: PNG files in the Waterbirds layout, streamed through ``load_waterbirds``.

Writes ``max(--n)`` colour-digit images (64 x 64 PNG files, the layout of the
Waterbirds release: ``metadata.csv`` with ``img_id, img_filename, y, split,
place, place_filename``) into a temporary folder, once, then for each size in
``--n`` runs, in a fresh process (so each peak is its own):

* **embedding + DFR**: :class:`skshortcut.embedding.Embedder` streams the
  files through a DataLoader with ``--workers`` workers; ``DFRRetrainer`` is
  fit on the embeddings of the validation split with the metadata's groups
  and scored (worst-group accuracy) on the test split;
* **ExMap grouping**: :class:`skshortcut.ExMapGrouper` (LRP heatmaps downsized
  to ``--heatmap-size``, channels summed) over all the images.

The base model is a small ERM CNN trained on ``--erm-n`` of the training
images (held in memory: a fixed cost, not a function of n), passed frozen
(``FrozenEstimator``). Each process reports images/s of the embedding and of
the heatmaps, and its peak resident memory (``VmHWM``; ``ru_maxrss`` elsewhere) after each stage;
the peak is reset (Linux ``/proc/self/clear_refs``) after the imports and
again before ExMap, so each stage's peak is its own. The growth of the peak
between sizes (least-squares slope), per image, is compared with the bytes of
one embedding, one downsized heatmap and one image.

The images: the 8 x 8 scikit-learn digits of ``make_colored_digits`` (16 px),
upsampled 4x to 64 px, each shifted by a few pixels so that no two files in a
row are the same; labels, colours and splits as the default regime (train and
validation agreement 0.95, test 0.5). The files are written by a pool of 2
processes.

Usage::

    python benchmarks/bench_scale.py --n 25000 50000 100000
    python benchmarks/bench_scale.py --n 5000 10000 20000 --out benchmarks/results/scale_small.json

Options: ``--root DIR`` (reuse / keep the image folder), ``--device``,
``--batch-size``, ``--workers``, ``--erm-n``, ``--heatmap-size``,
``--no-exmap``; ``--summarize FILE`` recomputes the growth figures of a saved result.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

IMAGE_SIZE = 64
_POOL = {}


# --------------------------------------------------------------------------- the data set
def _pool(seed=0):
    """Base images (uint8, 64 px) and their labels for the three splits."""
    from skshortcut.datasets import make_colored_digits

    data = make_colored_digits(3000, 1000, 1000, image_size=16, random_state=seed)
    pool = {}
    for code, name in enumerate(("train", "val", "test")):
        part = data[name]
        up = np.repeat(np.repeat(part.X, 4, axis=2), 4, axis=3)  # 16 px -> 64 px
        pool[code] = ((up * 255).round().astype(np.uint8).transpose(0, 2, 3, 1), part.y, part.spurious)
    return pool


def _split_of(i):
    """Splits interleaved (3 train, 1 val, 1 test in every 5 rows), so any prefix of rows holds all three."""
    return (0, 0, 0, 1, 2)[i % 5]


def _row(i):
    code = _split_of(i)
    images, y, place = _POOL[code]
    j = (i // 5) % len(y)
    filename = f"images/{i // 1000:03d}.{'waterbird' if y[j] else 'landbird'}/{i:06d}.png"
    return i, filename, int(y[j]), code, int(place[j]), j


def _write_chunk(args):
    from PIL import Image

    root, start, stop = args
    for i in range(start, stop):
        _, filename, _, code, _, j = _row(i)
        image = np.roll(_POOL[code][0][j], shift=(i % 7 - 3, (i // 7) % 7 - 3), axis=(0, 1))
        path = Path(root) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path, compress_level=1)
    return stop - start


def _init_worker():
    _POOL.update(_pool())


def write_images(root: Path, n: int, processes: int = 2) -> float:
    """Write images 0..n-1 under ``root/images`` (skipping a complete earlier run); seconds spent."""
    done = root / f".written_{n}"
    if any(int(p.name.split("_")[-1]) >= n for p in root.glob(".written_*")):
        return 0.0
    t0 = time.perf_counter()
    chunks = [(str(root), s, min(s + 1000, n)) for s in range(0, n, 1000)]
    with get_context("fork").Pool(processes, initializer=_init_worker) as pool:
        for _ in pool.imap_unordered(_write_chunk, chunks):
            pass
    done.touch()
    return time.perf_counter() - t0


def write_metadata(root: Path, n: int) -> Path:
    """A release folder ``root/n<n>`` for the first n images: its metadata.csv and a link to the images."""
    release = root / f"n{n}"
    release.mkdir(exist_ok=True)
    if not (release / "images").exists():
        (release / "images").symlink_to(root / "images", target_is_directory=True)
    with open(release / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["img_id", "img_filename", "y", "split", "place", "place_filename"])
        for i in range(n):
            _, filename, y, code, place, _ = _row(i)
            writer.writerow([i + 1, filename, y, code, place, f"/{'ocean' if place else 'forest'}/{i:06d}.jpg"])
    return release


def train_erm(root: Path, n_erm: int, device: str, out: Path) -> dict:
    """A small ERM CNN on the first ``n_erm`` training images, pickled to ``out``."""
    import pickle

    import torch

    from skshortcut import ERMClassifier
    from skshortcut.datasets import load_waterbirds

    train = load_waterbirds(write_metadata(root, 5 * n_erm // 3 + 5), "train", image_size=IMAGE_SIZE)
    idx = np.arange(min(n_erm, len(train)))
    X = torch.stack([train[i][0] for i in idx]).numpy()
    t0 = time.perf_counter()
    erm = ERMClassifier(max_epochs=4, module__width=8, batch_size=128, device=device, random_state=0)
    erm.fit(X, train.y[idx])
    seconds = time.perf_counter() - t0
    with open(out, "wb") as f:
        pickle.dump(erm, f)
    return {"n_images": int(len(idx)), "seconds": round(seconds, 1), "train_accuracy": float(erm.score(X, train.y[idx]))}


# --------------------------------------------------------------------------- one size, in its own process
def _peak_rss_bytes() -> int:
    """Peak resident memory of this process: VmHWM (which ``_reset_peak`` resets), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    # getrusage keeps the largest peak of the process's life: it does not follow a reset
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux ``clear_refs``), so a stage's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(args) -> dict:
    import pickle

    import torch
    from sklearn.frozen import FrozenEstimator

    from skshortcut import DFRRetrainer, ExMapGrouper, worst_group_accuracy
    from skshortcut.datasets import load_waterbirds
    from skshortcut.embedding import Embedder

    torch.set_num_threads(1)
    n = args.child
    with open(Path(args.root) / "erm.pkl", "rb") as f:
        erm = pickle.load(f)
    ds = load_waterbirds(Path(args.root) / f"n{n}", "all", image_size=IMAGE_SIZE)
    codes = np.array([_split_of(i) for i in range(n)])
    out = {"n": n, "peak_imports_and_model": _peak_rss_bytes(), "peak_reset": _reset_peak()}
    out["rss_before_embedding"] = _rss_bytes()

    emb = Embedder(FrozenEstimator(erm), device=args.device, batch_size=args.batch_size, num_workers=args.workers)
    t0 = time.perf_counter()
    Z = emb.fit_transform(ds)
    out["embed_seconds"] = time.perf_counter() - t0
    out["embed_images_per_s"] = n / out["embed_seconds"]
    out["n_features"] = int(Z.shape[1])
    val, test = codes == 1, codes == 2
    t0 = time.perf_counter()
    dfr = DFRRetrainer(random_state=0).fit(Z[val], ds.y[val], groups=ds.groups[val])
    out["dfr_seconds"] = time.perf_counter() - t0
    out["dfr_worst_group_accuracy_test"] = float(worst_group_accuracy(ds.y[test], dfr.predict(Z[test]), groups=ds.groups[test]))
    out["peak_after_embedding_dfr"] = _peak_rss_bytes()
    out["rss_after_embedding_dfr"] = _rss_bytes()  # the embeddings still held
    del Z, dfr, emb

    if not args.no_exmap:
        _reset_peak()
        out["rss_before_exmap"] = _rss_bytes()
        seconds = {}

        class TimedExMap(ExMapGrouper):
            """ExMapGrouper that records how long its heatmap pass takes (the rest is clustering)."""

            def _heatmaps(self, X, **kwargs):
                t = time.perf_counter()
                result = super()._heatmaps(X, **kwargs)
                seconds["heatmaps"] = time.perf_counter() - t
                return result

        grouper = TimedExMap(
            FrozenEstimator(erm), heatmap_size=args.heatmap_size, heatmap_channels="sum", clustering="kmeans",
            n_clusters=2, batch_size=args.batch_size, device=args.device, random_state=0,
        )
        t0 = time.perf_counter()
        grouped = grouper.fit_transform(ds, ds.y)
        out["exmap_seconds"] = time.perf_counter() - t0
        out["heatmap_seconds"] = seconds["heatmaps"]
        out["heatmap_images_per_s"] = n / seconds["heatmaps"]
        out["exmap_n_groups"] = int(len(np.unique(grouped.groups)))
        out["heatmap_bytes"] = int(4 * args.heatmap_size**2)
        out["peak_after_exmap"] = _peak_rss_bytes()
        out["rss_after_exmap"] = _rss_bytes()  # heatmaps freed, embeddings and groups held
        del grouped, grouper
    return out


# --------------------------------------------------------------------------- growth per image
GROWTH = {
    # what the process holds before embedding: the data set's paths and labels
    "rss_before_embedding": lambda r: r["rss_before_embedding"],
    # the embedding + DFR stage: its peak, and its peak above its own start
    "peak_after_embedding_dfr": lambda r: r["peak_after_embedding_dfr"],
    "embedding_dfr_peak_above_start": lambda r: r["peak_after_embedding_dfr"] - r["rss_before_embedding"],
    "rss_after_embedding_dfr": lambda r: r["rss_after_embedding_dfr"],
    # ExMap: its peak, and its peak above its own start
    "peak_after_exmap": lambda r: r["peak_after_exmap"],
    "exmap_peak_above_start": lambda r: r["peak_after_exmap"] - r["rss_before_exmap"],
    "rss_after_exmap": lambda r: r["rss_after_exmap"],
}


def summarize(result) -> dict:
    """Growth per image of each memory figure: between consecutive sizes, and the least-squares slope."""
    runs = sorted(result["runs"], key=lambda r: r["n"])
    growth = {}
    for name, value in GROWTH.items():
        try:
            values = [value(r) for r in runs]
        except KeyError:
            continue
        ns = [r["n"] for r in runs]
        entry = {f"{a}->{b}": round((vb - va) / (b - a), 1) for a, b, va, vb in zip(ns, ns[1:], values, values[1:])}
        if len(runs) > 2:
            entry["slope"] = round(float(np.polyfit(ns, values, 1)[0]), 1)
        growth[name] = entry
    result["growth_bytes_per_image"] = growth
    d = runs[0]["n_features"]
    result["references_bytes_per_image"] = {
        "embedding_float32": 4 * d,
        "heatmap_float32": 4 * result["heatmap_size"] ** 2,
        "image_float32": 4 * 3 * IMAGE_SIZE**2,
    }
    return result


# --------------------------------------------------------------------------- driver
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[25000, 50000, 100000])
    parser.add_argument("--root", default=None, help="image folder (default: a temporary one, removed after)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--erm-n", type=int, default=3000)
    parser.add_argument("--heatmap-size", type=int, default=8)
    parser.add_argument("--no-exmap", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--summarize", default=None, help="recompute the growth figures of a saved result file")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.summarize:
        path = Path(args.summarize)
        result = summarize(json.loads(path.read_text()))
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["growth_bytes_per_image"], indent=1))
        return result
    import torch

    torch.set_num_threads(1)
    if args.child is not None:
        print(json.dumps(measure(args)))
        return None

    tmp = None
    if args.root is None:
        tmp = tempfile.TemporaryDirectory(prefix="skshortcut_scale_")
        args.root = tmp.name
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    sizes = sorted(args.n)
    result = {
        "benchmark": "scale", "machine": platform.platform(), "cpus": os.cpu_count(), "device": args.device,
        "torch_threads": 1, "dataloader_workers": args.workers, "batch_size": args.batch_size,
        "image_shape": [3, IMAGE_SIZE, IMAGE_SIZE], "image_bytes_float32": 4 * 3 * IMAGE_SIZE**2,
        "heatmap_size": args.heatmap_size, "sizes": sizes,
    }
    _POOL.update(_pool())
    t = write_images(root, sizes[-1])
    result["write_seconds"] = round(t, 1)
    result["write_images_per_s"] = round(sizes[-1] / t, 1) if t else None
    print(f"wrote {sizes[-1]} PNG files in {t:.0f} s", flush=True)
    if not (root / "erm.pkl").exists():
        result["erm"] = train_erm(root, args.erm_n, args.device, root / "erm.pkl")
        print(f"ERM: {result['erm']}", flush=True)
    runs = []
    for n in sizes:
        write_metadata(root, n)
        cmd = [sys.executable, __file__, "--child", str(n), "--root", str(root), "--device", args.device,
               "--batch-size", str(args.batch_size), "--workers", str(args.workers),
               "--heatmap-size", str(args.heatmap_size)] + (["--no-exmap"] if args.no_exmap else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"the run with n={n} failed")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        runs.append(run)
        msg = (f"n={n}: embedding {run['embed_images_per_s']:.0f} img/s, DFR wga {run['dfr_worst_group_accuracy_test']:.2f}, "
               f"peak RSS {run['peak_after_embedding_dfr'] / 2**20:.0f} MiB")
        if "heatmap_images_per_s" in run:
            msg += f"; heatmaps {run['heatmap_images_per_s']:.0f} img/s, peak RSS {run['peak_after_exmap'] / 2**20:.0f} MiB"
        print(msg, flush=True)
    result["runs"] = runs
    summarize(result)
    print("peak-RSS growth per image (bytes):", result["growth_bytes_per_image"],
          "references:", result["references_bytes_per_image"])
    out = Path(args.out or Path(__file__).parent / "results" / "scale.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")
    if tmp is not None:
        tmp.cleanup()
    return result


if __name__ == "__main__":
    main()
