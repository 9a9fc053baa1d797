"""The benchmark runner behind ``skshortcut benchmark``.

A *data set* is registered with :func:`register_dataset`: a function
``(seed, scale) -> Bunch`` with ``train`` / ``val`` / ``test`` splits, as the
``skshortcut.datasets.make_*`` functions return, plus the ERM settings that make
the shortcut show on it.

A *method* is registered with :func:`register_method`: a function
``(ctx: BenchmarkContext) -> ndarray | dict`` returning the predictions on
``ctx.data.test`` (or a dict with ``"y_pred"`` and extra numbers to report).
Every method module in :mod:`skshortcut.bench` registers itself on import; the
package imports them all.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..metrics import group_accuracies

__all__ = [
    "DatasetSpec",
    "MethodSpec",
    "BenchmarkContext",
    "MethodResult",
    "DATASETS",
    "METHODS",
    "register_dataset",
    "register_method",
    "run_benchmark",
    "format_table",
]


@dataclass
class DatasetSpec:
    """A benchmark data set: how to make it and how to train ERM on it."""

    name: str
    make: Callable
    description: str
    erm_params: dict = field(default_factory=dict)
    ceiling: float | None = None  # best achievable accuracy (e.g. label noise), for the table


@dataclass
class MethodSpec:
    """A method of the benchmark."""

    name: str
    run: Callable
    labels: str  # which group labels it uses, in words
    description: str
    datasets: tuple | None = None  # None: every data set
    default: bool = True


DATASETS: dict[str, DatasetSpec] = {}
METHODS: dict[str, MethodSpec] = {}


def register_dataset(name, *, description, erm_params=None, ceiling=None):
    """Decorator registering ``make(seed, scale) -> Bunch`` as data set ``name``.

    ``make`` returns a Bunch with ``train``, ``val`` and ``test`` splits, each
    holding ``X``, ``y`` and ``groups`` (what :mod:`skshortcut.datasets`
    returns); ``erm_params`` are the shared ERM model's settings and
    ``ceiling`` the best achievable accuracy, printed under the table.

    Examples
    --------
    >>> from skshortcut.bench import DATASETS, register_dataset
    >>> from skshortcut.datasets import make_colored_digits
    >>> @register_dataset("tiny-digits", description="200 coloured digits", erm_params={"max_epochs": 1})
    ... def tiny_digits(seed, scale):
    ...     return make_colored_digits(200, 100, 100, random_state=seed)
    >>> len(DATASETS["tiny-digits"].make(0, 1.0).train.y)
    200
    >>> _ = DATASETS.pop("tiny-digits")
    """

    def deco(fn):
        DATASETS[name] = DatasetSpec(name, fn, description, dict(erm_params or {}), ceiling)
        return fn

    return deco


def register_method(name, *, labels, description, datasets=None, default=True):
    """Decorator registering ``run(ctx) -> y_pred | dict`` as method ``name``.

    ``labels`` says which group labels the method uses (shown in the table),
    ``datasets`` restricts it to some data sets, and ``default=False`` runs it
    only when ``--methods`` names it. A returned dict holds ``"y_pred"`` and
    any other numbers to report.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.bench import METHODS, register_method, run_benchmark
    >>> @register_method("always-zero", labels="none", description="predicts class 0", default=False)
    ... def always_zero(ctx):
    ...     return np.zeros(len(ctx.data.test.y), dtype=int)
    >>> report = run_benchmark("colored-digits", ["always-zero"], scale=0.05, max_epochs=1, device="cpu",
    ...                        echo=None)
    >>> report["results"][0]["worst_group_accuracy"]
    0.0
    >>> _ = METHODS.pop("always-zero")
    """

    def deco(fn):
        METHODS[name] = MethodSpec(name, fn, labels, description, None if datasets is None else tuple(datasets), default)
        return fn

    return deco


@dataclass
class BenchmarkContext:
    """What a method gets: the data, the shared ERM model, and the run's settings."""

    dataset: str
    data: object
    seed: int
    device: str
    out: Path | None
    verbose: int = 0
    max_epochs: int | None = None
    cache: dict = field(default_factory=dict)

    @property
    def erm(self):
        """The ERM model trained on the train split (trained once, shared by all methods)."""
        if "erm" not in self.cache:
            from ..erm import ERMClassifier

            params = dict(DATASETS[self.dataset].erm_params)
            if self.max_epochs is not None:
                params["max_epochs"] = self.max_epochs
            params.setdefault("random_state", self.seed)
            erm = ERMClassifier(device=self.device, verbose=self.verbose, **params)
            start = time.perf_counter()
            erm.fit(self.data.train.X, self.data.train.y)
            self.cache["erm_seconds"] = time.perf_counter() - start
            self.cache["erm"] = erm
        return self.cache["erm"]


@dataclass
class MethodResult:
    """Test-split numbers of one method."""

    method: str
    labels: str
    accuracy: float
    worst_group_accuracy: float
    group_accuracy: dict
    seconds: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "labels": self.labels,
            "accuracy": self.accuracy,
            "worst_group_accuracy": self.worst_group_accuracy,
            "group_accuracy": self.group_accuracy,
            "seconds": self.seconds,
            **({"extra": self.extra} if self.extra else {}),
        }


def _methods_for(dataset, names):
    if names is None:
        return [m for m in METHODS.values() if m.default and (m.datasets is None or dataset in m.datasets)]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; available: {sorted(METHODS)}.")
    bad = [n for n in names if METHODS[n].datasets is not None and dataset not in METHODS[n].datasets]
    if bad:
        raise ValueError(f"Method(s) {bad} do not apply to data set {dataset!r}.")
    return [METHODS[n] for n in names]


def run_benchmark(dataset="colored-digits", methods=None, *, seed=0, device="auto", out=None, scale=1.0,
                  max_epochs=None, verbose=0, echo=print):
    """Run methods on a data set and report test accuracies.

    Parameters
    ----------
    dataset : str
        A registered data set (``skshortcut benchmark --help`` lists them).
    methods : list of str, optional
        Registered methods; default: every default method that applies.
    seed : int, default=0
    device : str, default="auto"
    out : str or Path, optional
        Folder for ``results.json`` and ``group_accuracies.png``.
    scale : float, default=1.0
        Multiplies the data set sizes (small values make quick runs).
    max_epochs : int, optional
        Overrides the data set's ERM epochs.
    verbose : int, default=0
    echo : callable, default=print
        Where progress lines and the table go (``None``: silent).

    Returns
    -------
    dict
        ``{"dataset", "seed", "results": [MethodResult.as_dict(), ...], ...}``

    Examples
    --------
    >>> from skshortcut.bench import run_benchmark
    >>> report = run_benchmark("colored-digits", ["erm", "dfr"], scale=0.05, max_epochs=1, device="cpu", echo=None)
    >>> [r["method"] for r in report["results"]]
    ['erm', 'dfr']
    >>> 0 <= report["results"][1]["worst_group_accuracy"] <= 1
    True
    """
    echo = echo or (lambda *a, **k: None)
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; available: {sorted(DATASETS)}.")
    if scale <= 0:
        raise ValueError(f"`scale` must be > 0, got {scale}.")
    spec = DATASETS[dataset]
    chosen = _methods_for(dataset, methods)
    start = time.perf_counter()
    data = spec.make(seed, scale)
    echo(f"data set {dataset!r}: {len(data.train.y)} train / {len(data.val.y)} val / {len(data.test.y)} test "
         f"({time.perf_counter() - start:.1f} s)")
    out = Path(out) if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    ctx = BenchmarkContext(dataset, data, seed, device, out, verbose, max_epochs)
    echo("training ERM on the train split ...")
    ctx.erm  # trained once, shared by every method; its time counts for the erm row only
    results = []
    for m in chosen:
        echo(f"running {m.name} ...")
        t0 = time.perf_counter()
        res = m.run(ctx)
        seconds = time.perf_counter() - t0
        if m.name == "erm":
            seconds += ctx.cache["erm_seconds"]
        extra = {}
        if isinstance(res, dict):
            extra = {k: v for k, v in res.items() if k != "y_pred"}
            res = res["y_pred"]
        ga = group_accuracies(data.test.y, np.asarray(res), groups=data.test.groups)
        names = getattr(data, "group_names", None)
        per_group = {
            (names[int(g)] if names is not None else str(g)): round(float(a), 4)
            for g, a in zip(ga.groups, ga.accuracy)
        }
        results.append(
            MethodResult(
                m.name,
                m.labels,
                float(np.mean(np.asarray(res) == data.test.y)),
                ga.worst,
                per_group,
                seconds,
                extra,
            )
        )
    report = {
        "dataset": dataset,
        "description": spec.description,
        "seed": seed,
        "scale": scale,
        "erm_seconds": ctx.cache.get("erm_seconds"),
        "ceiling": spec.ceiling,
        "results": [r.as_dict() for r in results],
    }
    echo("")
    echo(format_table(report))
    if out is not None:
        (out / "results.json").write_text(json.dumps(report, indent=2))
        from ..plotting import plot_group_accuracies

        fig = plot_group_accuracies(report)
        fig.savefig(out / "group_accuracies.png", dpi=120, bbox_inches="tight")
        echo(f"\nwrote {out / 'results.json'} and {out / 'group_accuracies.png'}")
    return report


def format_table(report) -> str:
    """The benchmark table as text: one row per method, one column per group."""
    results = report["results"]
    groups = list(results[0]["group_accuracy"]) if results else []
    head = ["method", "group labels", "mean acc", "worst-group", *groups, "seconds"]
    rows = []
    for r in results:
        rows.append(
            [
                r["method"],
                r["labels"],
                f"{r['accuracy']:.3f}",
                f"{r['worst_group_accuracy']:.3f}",
                *(f"{r['group_accuracy'].get(g, float('nan')):.3f}" for g in groups),
                f"{r['seconds']:.1f}",
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    lines = [f"{report['dataset']} (seed {report['seed']}): test accuracies", line(head), line(["-" * w for w in widths])]
    lines += [line(r) for r in rows]
    if report.get("ceiling") is not None:
        lines.append(f"ceiling (label noise): {report['ceiling']:.3f}")
    extras = [(r["method"], r["extra"]) for r in results if r.get("extra")]
    for name, extra in extras:
        lines.append(f"{name}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in extra.items()))
    return "\n".join(lines)


def _fmt(v):
    return f"{v:.3f}" if isinstance(v, float) else str(v)
