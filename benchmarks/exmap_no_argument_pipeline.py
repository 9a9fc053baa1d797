"""The no-argument ExMap pipeline: shifted training images, in sample, cross-fitted, separate base model.

``Pipeline([("groups", ExMapGrouper()), ("clf", DFRRetrainer())]).fit(X, y)``
trains its own ERM base model on ``(X, y)``. The ways to get the pseudo-groups and the embeddings,
each fit on the validation split and scored on the test split (test worst-group accuracy, the true
groups used for scoring only):

* ``shift``: the no-argument form, ``ExMapGrouper()`` (``augment="shift"``): one ERM model fit on
  the validation split with randomly shifted training images (up to 1/8 of the side, edges
  repeated) explains and embeds the same images, as they are;
* ``in_sample``: ``ExMapGrouper(augment=False)``: the ERM model trained on the images as they
  are (run as ``ExMapGrouper(FrozenEstimator(erm))`` with
  the ERM model and the seeds the no-argument form fits, so it is that form bit for bit);
  ``in_sample_timed`` is the same form run and timed next to ``shift`` (``--shift-only``);
* ``cross_fit`` (``cv=5``), ``cross_fit_cv2`` (``cv=2``), with ``augment=False``, and
  ``cross_fit_cv2_shift`` (``cv=2``, the default ``augment``): each validation image explained
  and embedded by an ERM model fit on the other folds; DFR on the fold models' embeddings side by
  side (``CrossFittedModel``), which for new images averages the fold heads;
* ``separate``: the papers' workflow, an ERM model (no augmentation) fit on the training split
  (as many images as the validation split), ExMap + DFR on the validation split.

The ERM models are the library defaults (the no-argument form has no other), small CNN, up to 20
epochs with early stopping on a 10 % hold-out. Times: wall seconds of the pipeline's ``fit``
(ERM training included), and each ERM fit's epoch seconds from the skorch history. The ``shift``
runs also record how much the base model memorised: its worst-group accuracy on the images it was
fit on (``erm_in_sample_worst_group``) and on the test images.

Usage: ``python benchmarks/exmap_no_argument_pipeline.py [--datasets colored-digits,dominoes-95,shapes-on-tints]
[--seeds 0,1,2,3,4] [--n 800] [--n-test 900] [--image-size 16]`` (results merge into
``benchmarks/results/exmap_no_argument_pipeline.json``; ``--summarize`` prints the table of what is saved,
``--summarize --rst shift,in_sample_timed,...`` the guide's table).
The guide's runs: the default command, one process per data set; then ``--cv 2 --no-baselines``
(the ``cv=2, augment=False`` arm); then ``--cv 2 --no-baselines --mixed`` per data set, whose diagnostic arm
(``cv2_groups_in_sample_embeddings``: the cross-fitted pseudo-groups, DFR on the in-sample model's
embeddings) and reruns of the in-sample and ``cv=2`` arms (``*_rerun_worst_group``) are merged into
the saved runs by ``--merge``; then ``--shift-only`` (``shift`` and ``in_sample_timed``) and
``--cv 2 --cv-shift --no-baselines`` (``cross_fit_cv2_shift``), all three data sets in one process each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "results", "exmap_no_argument_pipeline.json")
ARMS = ("in_sample", "cross_fit", "separate")


def make_data(name, n, n_test, size, seed):
    from skshortcut import datasets

    if name == "colored-digits":  # the default preset: colour agrees with the label on 95 % of train / val
        return datasets.make_colored_digits(n, n, n_test, image_size=size, random_state=seed)
    if name == "dominoes-95":  # P(top digit agrees with the label) = (1 + 0.9) / 2 = 95 %
        return datasets.make_dominoes(n, n, n_test, correlation=0.9, image_size=size, random_state=seed)
    if name == "shapes-on-tints":  # 3 shapes on 3 tints, each shape on its tint for 95 % of train / val
        return datasets.make_shapes_on_tints(1, n, n, n_test, n_shapes=3, n_tints=3, agreement=0.95,
                                             image_size=size, random_state=seed)
    raise ValueError(f"unknown data set {name!r}")


def fit_seconds(erm):
    return float(sum(erm.history[:, "dur"]))


def arm_name(cv, shift=False):
    return ("cross_fit" if cv == 5 else f"cross_fit_cv{cv}") + ("_shift" if shift else "")


def run_shift(name, seed, *, n, n_test, size, device="cpu"):
    """The no-argument form, ``ExMapGrouper()`` (one ERM model with shifted training images), and
    ``ExMapGrouper(augment=False)`` (the in-sample form) timed in the same process."""
    from sklearn.metrics import adjusted_rand_score
    from sklearn.pipeline import Pipeline

    from skshortcut import DFRRetrainer, ExMapGrouper, group_accuracies

    data = make_data(name, n, n_test, size, seed)
    val, test = data.val, data.test
    out = {"dataset": name, "seed": seed}
    for arm, augment in (("shift", "shift"), ("in_sample_timed", False)):
        start = time.perf_counter()
        pipe = Pipeline([("groups", ExMapGrouper(augment=augment, device=device, random_state=seed)),
                         ("clf", DFRRetrainer(random_state=seed))]).fit(val.X, val.y)
        seconds = time.perf_counter() - start
        grouper = pipe.named_steps["groups"]
        pred = pipe.predict(test.X)
        erm = grouper.estimator_
        out[arm] = {
            "worst_group": float(group_accuracies(test.y, pred, groups=test.groups).worst),
            "mean_accuracy": float(np.mean(pred == test.y)),
            "n_clusters": int(grouper.n_clusters_),
            "ari_val_groups": float(adjusted_rand_score(val.groups, grouper.groups_)),
            "fit_seconds": float(seconds),
            "erm_fit_seconds": [fit_seconds(erm)],
            "erm_epochs": len(erm.history),
            # how much the base model memorised: its worst-group accuracy on the images it was fit on
            "erm_in_sample_worst_group": float(group_accuracies(val.y, erm.predict(val.X), groups=val.groups).worst),
            "erm_test_worst_group": float(group_accuracies(test.y, erm.predict(test.X), groups=test.groups).worst),
        }
    return out


def run(name, seed, *, n, n_test, size, device="cpu", cvs=(5,), baselines=True, mixed=False, cv_shift=False):
    from sklearn.frozen import FrozenEstimator
    from sklearn.metrics import adjusted_rand_score
    from sklearn.pipeline import Pipeline

    from skshortcut import DFRRetrainer, ERMClassifier, ExMapGrouper, group_accuracies

    data = make_data(name, n, n_test, size, seed)
    val, test = data.val, data.test

    def score(pipe, seconds):
        grouper = pipe.named_steps["groups"]
        pred = pipe.predict(test.X)
        acc = group_accuracies(test.y, pred, groups=test.groups)
        return {
            "worst_group": float(acc.worst),
            "mean_accuracy": float(np.mean(pred == test.y)),
            "n_clusters": int(grouper.n_clusters_),
            "ari_val_groups": float(adjusted_rand_score(val.groups, grouper.groups_)),
            "fit_seconds": float(seconds),
        }

    def erm_worst(erm):
        return float(group_accuracies(test.y, erm.predict(test.X), groups=test.groups).worst)

    out = {"dataset": name, "seed": seed, "n_val": len(val.y), "n_train": len(data.train.y), "n_test": len(test.y),
           "image_shape": list(val.X.shape[1:])}

    for cv in cvs:
        arm = arm_name(cv, cv_shift)
        start = time.perf_counter()
        augment = "shift" if cv_shift else False
        cross = Pipeline([("groups", ExMapGrouper(cv=cv, augment=augment, device=device, random_state=seed)),
                          ("clf", DFRRetrainer(random_state=seed))]).fit(val.X, val.y)
        out[arm] = score(cross, time.perf_counter() - start)
        grouper = cross.named_steps["groups"]
        out[arm]["erm_fit_seconds"] = [fit_seconds(e) for e in grouper.cv_estimators_]
        out[arm]["fold_erm_worst_group"] = [erm_worst(e) for e in grouper.cv_estimators_]
        groups_by_cv = {cv: grouper.groups_}
    if not baselines and not mixed:
        return out

    # the form before cross-fitting: an ERM model fit on all of the validation split (seeded as the
    # no-argument form seeded it) explains and embeds the same images
    start = time.perf_counter()
    old_seed = int(np.random.RandomState(seed).randint(0, 2**31 - 1))
    erm_val = ERMClassifier(device=device, random_state=old_seed).fit(val.X, val.y)  # = ExMapGrouper(augment=False)
    in_sample = Pipeline([("groups", ExMapGrouper(FrozenEstimator(erm_val), device=device, random_state=seed)),
                          ("clf", DFRRetrainer(random_state=seed))]).fit(val.X, val.y)
    out["in_sample"] = score(in_sample, time.perf_counter() - start)
    out["in_sample"]["erm_fit_seconds"] = [fit_seconds(erm_val)]
    out["erm_val_worst_group"] = erm_worst(erm_val)
    if mixed:
        # a diagnostic, not a library option: the cross-fitted pseudo-groups, DFR on the in-sample model's
        # embeddings (one feature map, fit and predict), to tell the groups' share from the embeddings'
        for cv, groups in groups_by_cv.items():
            dfr = DFRRetrainer(FrozenEstimator(erm_val), device=device, random_state=seed).fit(val.X, val.y, groups=groups)
            pred = dfr.predict(test.X)
            out[f"cv{cv}_groups_in_sample_embeddings"] = {
                "worst_group": float(group_accuracies(test.y, pred, groups=test.groups).worst),
                "mean_accuracy": float(np.mean(pred == test.y)), "n_clusters": out[arm_name(cv)]["n_clusters"],
                "ari_val_groups": float(adjusted_rand_score(val.groups, groups)), "fit_seconds": float("nan")}
    if not baselines:
        return out

    start = time.perf_counter()
    erm = ERMClassifier(device=device, random_state=seed).fit(data.train.X, data.train.y)
    separate = Pipeline([("groups", ExMapGrouper(FrozenEstimator(erm), device=device, random_state=seed)),
                         ("clf", DFRRetrainer(random_state=seed))]).fit(val.X, val.y)
    out["separate"] = score(separate, time.perf_counter() - start)
    out["separate"]["erm_fit_seconds"] = [fit_seconds(erm)]
    out["erm_train_worst_group"] = erm_worst(erm)
    return out


def load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"runs": []}


def summarize(results):
    lines = []
    arms_seen = [a for a in dict.fromkeys(k for r in results["runs"] for k in r if isinstance(r[k], dict))
                 if a not in ARMS and "worst_group" in next(r[a] for r in results["runs"] if a in r)]
    ARMS_ = ARMS + tuple(arms_seen)
    for name in dict.fromkeys(r["dataset"] for r in results["runs"]):
        runs = sorted((r for r in results["runs"] if r["dataset"] == name), key=lambda r: r["seed"])
        lines.append(f"{name} (n_val = n_train = {runs[0]['n_val']}, test {runs[0]['n_test']}, images {runs[0]['image_shape']})")
        lines.append("  seed  " + "  ".join(f"{a[-22:]:>22}" for a in ARMS_ if a in runs[0]) + "   ERM(val) ERM(train)")
        for r in runs:
            cells = [f"{r[a]['worst_group']:.3f} ({r[a]['n_clusters']} cl, {r[a]['fit_seconds']:5.0f}s)" for a in ARMS_ if a in runs[0]]
            lines.append(f"  {r['seed']:>4}  " + "  ".join(f"{c:>22}" for c in cells)
                         + f"   {r['erm_val_worst_group']:.3f}    {r['erm_train_worst_group']:.3f}")
        means = [np.mean([r[a]["worst_group"] for r in runs]) for a in ARMS_ if a in runs[0]]
        secs = [np.mean([r[a]["fit_seconds"] for r in runs]) for a in ARMS_ if a in runs[0]]
        lines.append("  mean  " + "  ".join(f"{m:>13.3f} ({s:5.0f}s)" for m, s in zip(means, secs)))
        lines.append("  mean accuracy " + "  ".join(f"{a}={np.mean([r[a]['mean_accuracy'] for r in runs]):.3f}" for a in ARMS_ if a in runs[0])
                     + "; mean ARI " + "  ".join(f"{a}={np.mean([r[a]['ari_val_groups'] for r in runs]):.3f}" for a in ARMS_ if a in runs[0]))
    return "\n".join(lines)


LABELS = {"shift": "``ExMapGrouper()``", "in_sample_timed": "``augment=False``",
          "in_sample": "``augment=False`` (earlier run)", "cross_fit": "``cv=5, augment=False``",
          "cross_fit_cv2": "``cv=2, augment=False``",
          "cross_fit_cv2_shift": "``cv=2``", "separate": "separate base model"}


def rst_table(results, arms):
    """The guide's table: test worst-group accuracy per data set and seed, means, mean fit seconds."""
    lines = [".. list-table::", "   :header-rows: 1", "", "   * - data set", "     - seed"]
    lines += [f"     - {LABELS.get(a, a)}" for a in arms]
    for name in dict.fromkeys(r["dataset"] for r in results["runs"]):
        runs = sorted((r for r in results["runs"] if r["dataset"] == name), key=lambda r: r["seed"])
        for r in runs:
            lines += [f"   * - {name}", f"     - {r['seed']}"] + [f"     - {r[a]['worst_group']:.3f}" for a in arms]
        lines += [f"   * - **{name}**", "     - **mean**"]
        lines += [f"     - **{np.mean([r[a]['worst_group'] for r in runs]):.3f}**" for a in arms]
        lines += [f"   * - {name}", "     - fit seconds"]
        lines += [f"     - {np.mean([r[a]['fit_seconds'] for r in runs]):.0f}" for a in arms]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="colored-digits,dominoes-95,shapes-on-tints")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--n", type=int, default=800, help="images in the training and in the validation split")
    parser.add_argument("--n-test", type=int, default=900)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--summarize", action="store_true")
    parser.add_argument("--rst", default="", help="with --summarize: comma-separated arms of an rst table")
    parser.add_argument("--cv", default="5", help="comma-separated folds of the cross-fitted arms (5: 'cross_fit')")
    parser.add_argument("--no-baselines", action="store_true", help="run the cross-fitted arms only (merged into saved runs)")
    parser.add_argument("--mixed", action="store_true",
                        help="also DFR on the in-sample model's embeddings with the cross-fitted pseudo-groups")
    parser.add_argument("--cv-shift", action="store_true",
                        help="cross-fitted arms with the default augment='shift' (arms '*_shift'); else augment=False")
    parser.add_argument("--shift-only", action="store_true",
                        help="only ExMapGrouper() and ExMapGrouper(augment=False), merged into the saved runs")
    parser.add_argument("--merge", default="", help="comma-separated result files to merge into --out")
    args = parser.parse_args(argv)

    results = load(args.out)
    if args.merge:
        for path in args.merge.split(","):
            other = load(path)
            saved = {(r["dataset"], r["seed"]): r for r in results["runs"]}
            for r in other["runs"]:  # a run's arms from several files are merged
                key = (r["dataset"], r["seed"])
                if any(k.endswith("_groups_in_sample_embeddings") for k in r) and key in saved:
                    # a --mixed run: its diagnostic arm, and its repeats of arms already saved as reruns
                    for arm in ("in_sample", *(k for k in r if k.startswith("cross_fit"))):
                        if arm in saved[key] and isinstance(r.get(arm), dict):
                            r[f"{arm}_rerun_worst_group"] = r.pop(arm)["worst_group"]
                    r = {k: v for k, v in r.items() if k not in saved[key] or k.endswith("_groups_in_sample_embeddings")
                         or k.endswith("_rerun_worst_group")}
                saved[key] = {**saved.get(key, {}), **r}
            results["runs"] = list(saved.values())
            results.setdefault("settings", other.get("settings"))
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    if args.summarize:
        print(summarize(results))
        if args.rst:
            print(rst_table(results, args.rst.split(",")))
        return results
    import torch

    results["settings"] = {"n": args.n, "n_test": args.n_test, "image_size": args.image_size, "device": args.device,
                           "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
                           "python": platform.python_version(), "torch": torch.__version__}
    for name in args.datasets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            if args.shift_only:
                r = run_shift(name, seed, n=args.n, n_test=args.n_test, size=args.image_size, device=args.device)
            else:
                r = run(name, seed, n=args.n, n_test=args.n_test, size=args.image_size, device=args.device,
                        cvs=[int(c) for c in args.cv.split(",")], baselines=not args.no_baselines, mixed=args.mixed,
                        cv_shift=args.cv_shift)
            old = [x for x in results["runs"] if (x["dataset"], x["seed"]) == (name, seed)]
            r = {**old[0], **r} if old else r
            results["runs"] = [x for x in results["runs"] if (x["dataset"], x["seed"]) != (name, seed)] + [r]
            print(f"{name} seed {seed}: " + ", ".join(
                f"{a} {r[a]['worst_group']:.3f} ({r[a]['n_clusters']} clusters, ARI {r[a]['ari_val_groups']:.2f}, "
                f"{r[a]['fit_seconds']:.0f}s)" for a in r if isinstance(r[a], dict) and "worst_group" in r[a]), flush=True)
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
    print(summarize(results))
    return results


if __name__ == "__main__":
    main()
