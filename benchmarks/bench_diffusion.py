"""Throughput of ``DiffusionShiftGenerator``: generated images per second.

The pipeline is :func:`skshortcut.generative.diffusion.make_tiny_pipeline`, a
randomly initialised miniature Stable Diffusion img2img pipeline (UNet and VAE
with 8/16 channels, a two-layer CLIP text encoder), saved with
``save_pretrained`` and loaded offline from that directory, as a user's local
pipeline would be. It measures the generator's machinery (guides, prompts,
tokenisation, the img2img loop, PNG and CSV writing, the plan), not the speed of
a real Stable Diffusion model, which is dominated by its UNet.

For each batch size, each run generates ``--images`` images of 2 foregrounds x
4 backgrounds into a fresh folder; the script reports the median over
``--repeats`` runs of the images per second end to end (``generate``) and in
the pipeline calls alone, and the ratios against batch size 1 measured in the
same run. With ``--device cuda`` the same runs go to the GPU.

Usage: ``python benchmarks/bench_diffusion.py [--repeats 5] [--images 16] [--size 64] [--steps 10]
[--device cpu] [--out benchmarks/results/diffusion.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from skshortcut.generative import DiffusionShiftGenerator  # noqa: E402
from skshortcut.generative.diffusion import make_tiny_pipeline  # noqa: E402


def inputs(size, seed=0):
    rng = np.random.RandomState(seed)
    foregrounds = {name: [rng.rand(48, 40, 3)] for name in ("cat", "dog")}
    backgrounds = {name: [rng.rand(size, size, 3)] for name in ("on grass", "in snow", "at night", "in water")}
    definitions = {"cat": "a small domesticated feline", "dog": "a domesticated canine"}
    return foregrounds, backgrounds, definitions


def run_once(pipeline_dir, batch_size, args, folder):
    fgs, bgs, defs = inputs(args.size)
    gen = DiffusionShiftGenerator(
        pipeline_dir,
        image_size=args.size,
        num_inference_steps=args.steps,
        n_samples=args.images,
        batch_size=batch_size,
        device=args.device,
        random_state=0,
        verbose=0,
    )
    start = time.perf_counter()
    data = gen.generate(folder, fgs, bgs, defs)
    total = time.perf_counter() - start
    assert len(data) == args.images and gen.n_generated_ == args.images
    return args.images / total, args.images / gen.seconds_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "diffusion.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        pipeline_dir = make_tiny_pipeline(Path(tmp) / "pipeline")
        run_once(pipeline_dir, batch_sizes[0], args, Path(tmp) / "warmup")  # imports, first-call allocations
        results = {}
        for b in batch_sizes:
            runs = [run_once(pipeline_dir, b, args, Path(tmp) / f"b{b}-{r}") for r in range(args.repeats)]
            results[b] = {
                "images_per_second": statistics.median(r[0] for r in runs),
                "pipeline_images_per_second": statistics.median(r[1] for r in runs),
                "runs": [[round(x, 3) for x in r] for r in runs],
            }
    base = results[batch_sizes[0]]
    for b, r in results.items():
        r["ratio_vs_batch_%d" % batch_sizes[0]] = r["images_per_second"] / base["images_per_second"]

    device = torch.device(args.device)
    report = {
        "benchmark": "DiffusionShiftGenerator.generate with the tiny offline pipeline",
        "settings": {
            "images_per_run": args.images,
            "image_size": args.size,
            "num_inference_steps": args.steps,
            "strength": 0.9,
            "denoising_steps_run": int(0.9 * args.steps),
            "guidance_scale": 5.0,
            "repeats": args.repeats,
            "torch_threads": args.threads,
        },
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_1min_at_end": os.getloadavg()[0],  # the cores may be shared
            "torch": torch.__version__,
        },
        "results_by_batch_size": {str(b): r for b, r in results.items()},
        "gpu": (
            {"measured": True}
            if device.type == "cuda"
            else {
                "measured": False,
                "note": "no GPU was available to this run; the numbers above are CPU numbers "
                "(run with --device cuda on a GPU machine to add them)",
            }
        ),
    }
    print(f"{report['benchmark']} on {report['device']} ({args.size} px, {args.steps} steps, median of {args.repeats}):")
    for b, r in results.items():
        print(
            f"  batch {b:>2}: {r['images_per_second']:6.2f} images/s end to end "
            f"({r['pipeline_images_per_second']:6.2f} in the pipeline), "
            f"x{r['ratio_vs_batch_%d' % batch_sizes[0]]:.2f} vs batch {batch_sizes[0]}"
        )
    if not report["gpu"]["measured"]:
        print("  GPU: not measured -", report["gpu"]["note"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
