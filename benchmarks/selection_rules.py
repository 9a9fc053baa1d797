"""Which hyperparameter-selection rule can be trusted without group labels?

For DFR, AFR, JTT and Group DRO on the last layer of the benchmark's ERM model,
every configuration of a small grid is fit on half of the validation split and
picked by one of four rules on the other half (true-group worst-group
accuracy, ExMap pseudo-group worst-group accuracy, worst-class accuracy, mean
accuracy); the script prints and saves the test worst-group accuracy of each
rule's pick, per data set and seed (see :mod:`skshortcut.bench.selection`).

    python benchmarks/selection_rules.py [--seeds 0 1 2] [--datasets ...] [--scale 1.0]

Writes ``benchmarks/results/selection_rules.json``; the numbers are in
``docs/user_guide/selection.rst``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from skshortcut.bench.selection import compare_selection_rules, format_selection_table, summarize_selection

DATASETS = ("colored-digits", "colored-digits-cmnist", "dominoes-95", "patch-digits-95")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "selection_rules.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    if args.out.exists():  # resume: keep the runs already done
        results = [r for r in json.loads(args.out.read_text())["runs"]]
    done = {(r["dataset"], r["seed"]) for r in results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets:
        for seed in args.seeds:
            if (dataset, seed) in done:
                continue
            res = compare_selection_rules(dataset, seed=seed, scale=args.scale, device="cpu")
            results.append(res)
            print(f"{dataset} seed {seed}: {res['seconds']:.0f} s, pseudo-group ARI {res['pseudo_group_ari']:.2f}", flush=True)
            summary = summarize_selection(results)
            args.out.write_text(json.dumps({
                "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": args.threads,
                            "cpu_count": os.cpu_count()},
                "scale": args.scale, "summary": summary, "runs": results,
            }, indent=1))
    print(format_selection_table(summarize_selection(results)))


if __name__ == "__main__":
    main()
