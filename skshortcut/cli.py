"""The ``skshortcut`` command."""

from __future__ import annotations

import argparse
import sys

from .bench.core import MAX_SCALE

__all__ = ["main"]


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    from .bench import DATASETS, METHODS

    parser = argparse.ArgumentParser(prog="skshortcut", description="Detect, measure and mitigate shortcut learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser(
        "benchmark",
        help="run methods on an embedded benchmark and print a table of test accuracies",
        description="Train ERM on the train split, run each method, and report mean, worst-group and per-group "
        "test accuracies. Writes results.json and group_accuracies.png under --out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="data sets:\n"
        + "\n".join(f"  {d.name:24s} {d.description}" for d in DATASETS.values())
        + "\n\nmethods:\n"
        + "\n".join(f"  {m.name:24s} [{m.labels}] {m.description}" for m in METHODS.values()),
    )
    bench.add_argument("--dataset", default="colored-digits", choices=sorted(DATASETS))
    bench.add_argument("--methods", default=None, help="comma-separated methods (default: all that apply)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--device", default="auto", help="'auto' (CUDA when present), 'cpu', 'cuda', ...")
    bench.add_argument("--out", default="benchmark-output", help="folder for results.json and figures")
    bench.add_argument("--scale", type=_positive_float, default=1.0,
                       help=f"multiply the data set sizes (quick runs: 0.2; at most {MAX_SCALE:g})")
    bench.add_argument("--max-epochs", type=_positive_int, default=None, help="override the ERM epochs (>= 1)")
    net = bench.add_argument_group(
        "backbone", "the shared ERM model every method that takes a base model starts from (default: the data "
        "set's from-scratch SmallCNN)")
    net.add_argument("--backbone", default=None, metavar="NAME",
                     help="a backbone name of skshortcut.nets.build_classifier: 'efficientnet_lite0', 'resnet18', "
                     "any torchvision architecture, 'timm:<name>'")
    net.add_argument("--weights", default=None, metavar="W",
                     help="its pretrained weights: 'DEFAULT' (the default with --finetune / --frozen), a torchvision "
                     "weights name ('IMAGENET1K_V1'), or a local state-dict file")
    recipe = net.add_mutually_exclusive_group()
    recipe.add_argument("--finetune", dest="recipe", action="store_const", const="finetune",
                        help="fine-tune the whole pretrained network (SGD, momentum 0.9, crop + flip)")
    recipe.add_argument("--frozen", dest="recipe", action="store_const", const="head_only",
                        help="train only the head on the frozen pretrained backbone")
    net.add_argument("--image-size", type=_positive_int, default=None, metavar="N",
                     help="resize the images to N x N pixels inside the network (e.g. 48 for digits)")
    bench.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``skshortcut`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "benchmark":
        from .bench import run_benchmark
        from .bench.core import check_benchmark_args

        methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
        settings = dict(seed=args.seed, device=args.device, out=args.out, scale=args.scale, max_epochs=args.max_epochs,
                        backbone=args.backbone, weights=args.weights, recipe=args.recipe, image_size=args.image_size)
        try:
            check_benchmark_args(args.dataset, methods, **settings)
        except (ValueError, ImportError) as exc:
            # a usage error: one line and exit status 2, as argparse reports its own
            parser.exit(2, f"{parser.prog} benchmark: error: {exc}\n")
        # past the checks, an error is a fault worth its traceback, not a usage error
        run_benchmark(args.dataset, methods, verbose=args.verbose, **settings)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
