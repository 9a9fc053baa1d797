"""Do the critics of WassersteinDisentangler remove the other label? Default settings against critic_steps=0.

D3S (Kattakinda et al.) Eqs. 8-10 make ``z_fg`` independent of the
background label and ``z_bg`` of the foreground label. This script trains the
disentangler on the ``diverse`` split (every foreground on every background,
both labels known: section 6's "all pairs") of two data sets with different
kinds of background:

* ``foreground-background``: :func:`skshortcut.datasets.make_foreground_background`,
  digits on 10 coloured textures (chance 0.10 for either label);
* ``shapes-on-tints``: :func:`skshortcut.datasets.make_shapes_on_tints`,
  3 shapes on 3 flat tints (chance 0.33);

then fits four linear probes (standardisation + logistic regression) on the
diverse split's latents and scores them on the held-out test split's latents:
fg <- z_fg and bg <- z_bg (should stay high), bg <- z_fg and fg <- z_bg (the
cross probes, should fall to chance). Each setting of :data:`VARIANTS` runs on
seeds 0, 1, 2 for 60 epochs: the default parameters (the whitened sliced
estimate, batches of 256, lr 0.01), ``critic="trained", critic_steps=0``
(critics never trained, so no usable Wasserstein term), the paper's trained
critics on the same schedule, and the trained critics at the paper's batch of
64 for 8 epochs (the earlier defaults, :data:`PREVIOUS`). On foreground-background
it also runs section 6's test: a probe for the digit trained on ``z_fg`` (and
on all of ``z``) of the correlated train split (each digit on one texture),
scored on the anti-correlated test split.

Run: ``OMP_NUM_THREADS=1 python benchmarks/ablation_wasserstein.py`` (24 runs
of 7-55 s on one core, about 12 minutes); ``--datasets foreground-background`` runs
one; ``--datasets --critic-diagnostics`` only trains critics alone on fixed
features (:func:`critic_diagnostics`: why the literal Eq. 9 fails). ``--datasets --sweep NAME ...``
runs settings of :data:`SWEEP` on seed 0 of ``--sweep-dataset`` (default shapes-on-tints);
``--datasets --frozen-critic`` trains a fitted extractor against its frozen critic
(:func:`frozen_critic`); ``--datasets --noise-floor`` compares per-batch estimates with
permuted labels (:func:`noise_floor`). Prints a table and saves ``benchmarks/results/ablation_wasserstein.json``
(runs of other data sets already in the file are kept).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skshortcut import WassersteinDisentangler
from skshortcut.datasets import make_foreground_background, make_shapes_on_tints

RESULTS = Path(__file__).resolve().parent / "results" / "ablation_wasserstein.json"
SEEDS = (0, 1, 2)
N_DIVERSE, N_TEST, IMAGE_SIZE = 2000, 900, 16
#: Correlated training images of foreground-background for section 6's probe (each digit on one texture).
N_CORRELATED = 1000
#: What every run shares; the variants change only what they name.
COMMON = {"max_epochs": 60, "extractor_params": {"width": 16}, "device": "cpu"}
#: The default (whitened sliced W2^2, batch 256, lr 0.01); the same without a usable Wasserstein term (critics
#: never trained); the paper's trained critics on the same batches and epochs (at lr 1e-3, critic_lr ten times
#: it); and the earlier default (trained critics at the paper's batch of 64, 8 epochs).
VARIANTS = {
    "default": {},
    "critic_steps=0": {"critic": "trained", "critic_steps": 0},
    'critic="trained"': {"critic": "trained", "lr": 1e-3},
    'critic="trained", batch 64, 8 epochs': {"critic": "trained", "lr": 1e-3, "batch_size": 64, "max_epochs": 8},
}
DATASETS = {
    "foreground-background": lambda seed: make_foreground_background(
        N_DIVERSE, N_CORRELATED, 10, N_TEST, image_size=IMAGE_SIZE, random_state=seed
    ),
    "shapes-on-tints": lambda seed: make_shapes_on_tints(
        N_DIVERSE, 10, 10, N_TEST, image_size=IMAGE_SIZE, random_state=seed
    ),
}
PROBES = ("fg<-z_fg", "bg<-z_bg", "bg<-z_fg", "fg<-z_bg")


def probe_accuracies(wd, train, test):
    """The four probes: logistic regression on the train latents, accuracy on the test latents."""
    z_train, z_test = wd.transform(train.X, part="both"), wd.transform(test.X, part="both")
    k = wd.n_foreground_features_
    parts = {"z_fg": slice(0, k), "z_bg": slice(k, None)}
    labels = {"fg": ("y",), "bg": ("background",)}
    out = {}
    for name in PROBES:
        target, source = name.split("<-")
        attr = labels[target][0]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(z_train[:, parts[source]], getattr(train, attr))
        out[name] = float(np.mean(model.predict(z_test[:, parts[source]]) == getattr(test, attr)))
    return out


class OptimisticAdam(torch.optim.Adam):
    """Adam fed the optimistic gradient ``2 g_t - g_{t-1}`` (Daskalakis et al., 2018), for the sweep."""

    def step(self, closure=None):
        previous_grads = self.__dict__.setdefault("previous_grads", {})
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                previous, previous_grads[p] = previous_grads.get(p), p.grad.detach().clone()
                if previous is not None:
                    p.grad.mul_(2).sub_(previous)
        return super().step(closure)


#: The defaults before the whitened sliced estimate: trained critics, the paper's batch of 64, lr 1e-3, 8 epochs;
#: the earlier sweep entries (and ``critic="sliced"`` there: standardised features, Wasserstein-1) start from them.
PREVIOUS = {"critic": "trained", "lr": 1e-3, "batch_size": 64, "max_epochs": 8,
            "sliced_whiten": False, "sliced_power": 1}

#: ``--sweep``: schedules and weights tried on one data set (``--sweep-dataset``), seed 0 (``alpha`` weighs the cross-entropy,
#: so a smaller alpha is a stronger Wasserstein term). The earlier entries start from :data:`PREVIOUS`.
_PREVIOUS_SWEEP = {
    "default": {},
    "alpha=0": {"alpha": 0.0},
    "alpha=10": {"alpha": 10.0},
    "alpha=0.1, lr=0.01": {"alpha": 0.1, "lr": 0.01},
    "alpha=0.1, betas=(0.5, 0.9)": {"alpha": 0.1, "betas": (0.5, 0.9)},
    "alpha=0.1, critic_lr=0.001": {"alpha": 0.1, "critic_lr": 0.001},
    "alpha=0.1, lr=3e-4, 16 epochs": {"alpha": 0.1, "lr": 3e-4, "max_epochs": 16},
    "alpha=0.1, batch 32, 30 epochs": {"alpha": 0.1, "batch_size": 32, "max_epochs": 30},
    "alpha=3, 30 epochs": {"alpha": 3.0, "max_epochs": 30},
    "alpha=1, 50 epochs": {"alpha": 1.0, "max_epochs": 50},
    "alpha=0.3, 50 epochs": {"alpha": 0.3, "max_epochs": 50},
    "alpha=1, batch 32, 40 epochs": {"alpha": 1.0, "batch_size": 32, "max_epochs": 40},
    "alpha=1, 150 epochs": {"alpha": 1.0, "max_epochs": 150},
    "critic_steps=0, alpha=1, 50 epochs": {"alpha": 1.0, "max_epochs": 50, "critic_steps": 0},
    "optimistic Adam": {"optimizer": OptimisticAdam},
    "optimistic Adam, alpha=1, 50 epochs": {"optimizer": OptimisticAdam, "max_epochs": 50},
    "sliced": {"critic": "sliced"},
    "sliced, alpha=0.3": {"critic": "sliced", "alpha": 0.3},
    "sliced, alpha=0.1": {"critic": "sliced", "alpha": 0.1},
    "sliced, alpha=0.03": {"critic": "sliced", "alpha": 0.03},
    "sliced, 30 epochs": {"critic": "sliced", "max_epochs": 30},
    "sliced, alpha=0.3, 30 epochs": {"critic": "sliced", "alpha": 0.3, "max_epochs": 30},
    "sliced, 60 epochs": {"critic": "sliced", "max_epochs": 60},
    "sliced, 120 epochs": {"critic": "sliced", "max_epochs": 120},
    "sliced, batch 256, 30 epochs": {"critic": "sliced", "batch_size": 256, "max_epochs": 30},
    "sliced, alpha=0.1, batch 256, 30 epochs": {"critic": "sliced", "alpha": 0.1, "batch_size": 256, "max_epochs": 30},
}
SWEEP = {name: {**PREVIOUS, **params} for name, params in _PREVIOUS_SWEEP.items()}
#: What the present default needs, each from the default (whitened sliced W2^2, batch 256, lr 0.01, 60 epochs).
SWEEP.update({
    "new default": {},
    "new, batch 64, 15 epochs (as many steps)": {"batch_size": 64, "max_epochs": 15},
    "new, standardised, p=1": {"sliced_whiten": False, "sliced_power": 1},
    "new, standardised, p=2": {"sliced_whiten": False},
    "new, whitened, p=1": {"sliced_power": 1},
    "new, lr=1e-3": {"lr": 1e-3},
    "new, 30 epochs": {"max_epochs": 30},
    "new, batch 512, 30 epochs": {"batch_size": 512, "max_epochs": 30},
    "new, batch 512, 30 epochs, p=1": {"batch_size": 512, "max_epochs": 30, "sliced_power": 1},
})


def run(dataset, variant, seed, params=None):
    data = DATASETS[dataset](seed)
    start = time.perf_counter()
    wd = WassersteinDisentangler(**{**COMMON, **(VARIANTS[variant] if params is None else params)}, random_state=seed)
    wd.fit(data.diverse.X, data.diverse.labels)
    row = probe_accuracies(wd, data.diverse, data.test)
    if len(data.train.y) >= 100:  # section 6: trained where the labels correlate, tested where they do not
        for name, part in (("sec6_fg<-z_fg", "fg"), ("sec6_fg<-z", "both")):
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            model.fit(wd.transform(data.train.X, part=part), data.train.y)
            row[name] = float(np.mean(model.predict(wd.transform(data.test.X, part=part)) == data.test.y))
    row["chance_fg"] = float(np.bincount(data.test.y).max() / len(data.test.y))
    row["chance_bg"] = float(np.bincount(data.test.background).max() / len(data.test.background))
    last = wd.history[-1]
    row["w_fg_last_epoch"] = float(last.get("train_w_fg", float("nan")))
    row["w_bg_last_epoch"] = float(last.get("train_w_bg", float("nan")))
    row["fit_seconds"] = round(time.perf_counter() - start, 1)
    return row


def _literal_terms(critic, z, labels):
    """Eq. 9 read literally: raw features, the gradient penalty also over the interpolated one-hot label."""
    n = labels.shape[0]
    onehot = critic.one_hot(labels)
    shuffled = onehot[torch.randperm(n)]
    other, eps = torch.randperm(n), torch.rand(n, 1)
    z_hat = (eps * z + (1 - eps) * z[other]).requires_grad_(True)
    l_hat = (eps * shuffled + (1 - eps) * onehot[other]).requires_grad_(True)
    scores = critic(torch.cat([z, z, z_hat]), torch.cat([onehot, shuffled, l_hat]))
    grads = torch.autograd.grad(scores[2 * n :].sum(), (z_hat, l_hat), create_graph=True)
    norm = torch.sqrt(sum(g.pow(2).sum(1) for g in grads) + 1e-12)
    return scores[:n].mean() - scores[n : 2 * n].mean(), (norm - 1.0).pow(2).mean()


def critic_diagnostics(seed=0, steps=400):
    """Critics trained alone on fixed features (of a disentangler fit with critic_steps=0), foreground-background.

    The distance each critic finds for ``(z_fg, l_bg)`` after 50, 100, 200 and
    400 steps (mean over the last 50): the literal Eq. 9 (penalty over the
    label too, raw features) with the concatenated-embedding critic and with
    the projection critic, and the library's terms (standardised features,
    penalty over the features) with both critics; and the distance of the
    best linear critic under the library's terms (the label-wise distance of
    the standardised class means), for scale.
    """
    from skshortcut.generative._critics import ProjectionCritic, standardize, wasserstein_terms
    from skshortcut.nets import Critic

    data = DATASETS["foreground-background"](seed)
    wd = WassersteinDisentangler(**{**COMMON, **PREVIOUS, "critic_steps": 0, "max_epochs": 2}, random_state=seed)
    wd.fit(data.diverse.X, data.diverse.labels)
    z = torch.as_tensor(wd.transform(data.diverse.X, part="fg"))
    labels = torch.as_tensor(data.diverse.background)
    zs = standardize(z)
    linear = sum(float((labels == c).float().mean() * zs[labels == c].mean(0).norm()) for c in labels.unique())
    out = {"linear_optimum_standardized": linear}
    for name, cls, terms in (
        ("literal_embedding", Critic, _literal_terms),
        ("literal_projection", ProjectionCritic, _literal_terms),
        ("library_embedding", Critic, wasserstein_terms),
        ("library_projection", ProjectionCritic, wasserstein_terms),
    ):
        torch.manual_seed(seed)
        critic = cls(z.shape[1], 10)
        opt = torch.optim.Adam(critic.parameters(), lr=0.01, betas=(0.0, 0.9))
        trace = []
        for _ in range(steps):
            idx = torch.randint(0, len(z), (64,))
            w, gp = terms(critic, z[idx], labels[idx])
            opt.zero_grad()
            (-w + 10.0 * gp).backward()
            opt.step()
            trace.append(float(w.detach()))
        out[name] = {str(k): float(np.mean(trace[k - 50 : k])) for k in (50, 100, 200, 400) if k <= steps}
    return out


def frozen_critic(seed=0, steps=300, lr=1e-3):
    """The extractor of a default fit (shapes-on-tints) trained against its critic ``D_fg`` frozen.

    ``steps`` extractor updates minimising the Wasserstein estimate of the
    fixed critic alone: the estimate every 100 steps (one batch of 64) and
    the background probe from ``z_fg`` before and after. A stale critic is
    beaten by moving the label's clusters, not by merging them.
    """
    from skshortcut.generative._critics import frozen, wasserstein_terms

    data = DATASETS["shapes-on-tints"](seed)
    wd = WassersteinDisentangler(**{**COMMON, **PREVIOUS}, random_state=seed).fit(data.diverse.X, data.diverse.labels)
    module, critic, k = wd.module_, wd.critic_["fg"], wd.n_foreground_features_
    X, y_bg = torch.as_tensor(data.diverse.X).float(), torch.as_tensor(data.diverse.background).long()
    out = {"bg<-z_fg_before": probe_accuracies(wd, data.diverse, data.test)["bg<-z_fg"], "w_estimate": {}}
    # the same probe on features normalised as in training (batch statistics of batches of 64), not eval mode
    state = {name: t.clone() for name, t in module.state_dict().items()}
    module.train()
    with torch.no_grad():
        z_train, z_test = (torch.cat([module.features(torch.as_tensor(x[i : i + 64]).float())[:, :k]
                                      for i in range(0, len(x), 64)]).numpy() for x in (data.diverse.X, data.test.X))
    module.load_state_dict(state)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(z_train, data.diverse.background)
    out["bg<-z_fg_before_train_mode"] = float(np.mean(probe.predict(z_test) == data.test.background))
    opt = torch.optim.Adam(module.parameters(), lr=lr, betas=(0.0, 0.9))
    torch.manual_seed(seed)
    module.train()
    for step in range(steps + 1):
        idx = torch.randint(0, len(X), (64,))
        with frozen(critic):
            w, _ = wasserstein_terms(critic, module.features(X[idx])[:, :k], y_bg[idx], penalty=False)
        if step % 100 == 0:
            out["w_estimate"][str(step)] = float(w.detach())
        if step < steps:
            opt.zero_grad()
            w.backward()
            opt.step()
    module.eval()
    out["bg<-z_fg_after"] = probe_accuracies(wd, data.diverse, data.test)["bg<-z_fg"]
    return out


def noise_floor(seed=0, n_batches=20):
    """Why a per-batch estimate needs large batches and whitening (shapes-on-tints, seed 0).

    Fits the earlier sliced setting (standardised Wasserstein-1, batch 64, 8
    epochs), then evaluates the sliced estimate of ``z_fg`` against the tint on
    batches of 64, 256 and 512 (mean of ``n_batches``) and on all 2,000 images,
    with the true labels and with the labels permuted (independent of the
    features: the estimate's noise floor), for the standardised W1 and the
    whitened W2^2 estimates; and the eigenvalue range of the correlation
    matrix of ``z_fg``.
    """
    from skshortcut.generative._sliced import sliced_wasserstein

    data = DATASETS["shapes-on-tints"](seed)
    wd = WassersteinDisentangler(**{**COMMON, **PREVIOUS, "critic": "sliced"}, random_state=seed)
    wd.fit(data.diverse.X, data.diverse.labels)
    z = torch.as_tensor(wd.transform(data.diverse.X))
    labels = torch.as_tensor(data.diverse.background)
    out = {"probes": probe_accuracies(wd, data.diverse, data.test)}
    eig = np.linalg.eigvalsh(np.corrcoef(z.numpy().T))
    out["correlation_eigenvalues_min_max"] = [float(eig.min()), float(eig.max())]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    for name, options in (("standardised_W1", {}), ("whitened_W2sq", {"whitened": True, "p": 2})):
        rows = {}
        for size in (64, 256, 512, len(labels)):
            true, permuted = [], []
            for _ in range(n_batches if size < len(labels) else 1):
                idx = torch.randperm(len(labels), generator=gen)[:size]
                true.append(float(sliced_wasserstein(z[idx], labels[idx], **options)))
                permuted.append(float(sliced_wasserstein(z[idx], labels[idx][torch.randperm(size, generator=gen)],
                                                         **options)))
            rows[str(size)] = {"true_labels": float(np.mean(true)), "permuted_labels": float(np.mean(permuted))}
        out[name] = rows
    return out


def _save(key, value):
    current = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    current.setdefault(key, {}).update(value) if isinstance(value, dict) else current.update({key: value})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(current, indent=2) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--critic-diagnostics", action="store_true", help="also train critics alone on fixed features")
    parser.add_argument("--sweep", nargs="*", choices=list(SWEEP), help="settings of SWEEP to run (seed 0)")
    parser.add_argument("--sweep-dataset", default="shapes-on-tints", choices=list(DATASETS))
    parser.add_argument("--frozen-critic", action="store_true", help="the extractor against a frozen critic")
    parser.add_argument("--noise-floor", action="store_true", help="the per-batch estimate against its noise floor")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.frozen_critic:
        out = frozen_critic()
        print("extractor against a frozen critic (shapes-on-tints, seed 0):", json.dumps(out), flush=True)
        _save("frozen_critic", out)
    if args.noise_floor:
        out = noise_floor()
        print("per-batch estimates against permuted labels (shapes-on-tints, seed 0):", json.dumps(out), flush=True)
        _save("noise_floor", out)
    for name in args.sweep or ():
        row = run(args.sweep_dataset, None, 0, params=SWEEP[name])
        print(f"sweep {name:<34}", "  ".join(f"{k} {row[k]:.3f}" for k in (*PROBES, "fit_seconds")), flush=True)
        params = {k: getattr(v, "__name__", v) for k, v in SWEEP[name].items()}  # a class by its name
        _save(f"sweep_{args.sweep_dataset.replace('-', '_')}_seed0", {name: {"params": params, **row}})
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.critic_diagnostics:
        diag = critic_diagnostics()
        print("critics on fixed features (foreground-background, seed 0):", json.dumps(diag), flush=True)
        current = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        current["critic_diagnostics"] = diag
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(current, indent=2) + "\n")
    results["settings"] = {
        "seeds": list(SEEDS),
        "n_diverse": N_DIVERSE,
        "n_test": N_TEST,
        "image_size": IMAGE_SIZE,
        "common": COMMON,
        "variants": VARIANTS,
        "previous_defaults": PREVIOUS,
        "probe": "StandardScaler + LogisticRegression(max_iter=2000), fit on the diverse split, scored on test",
    }
    for dataset in args.datasets:
        per = {}
        for variant in VARIANTS:
            rows = [run(dataset, variant, seed) for seed in SEEDS]
            per[variant] = {
                "per_seed": rows,
                "mean": {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if not k.startswith(("w_", "fit"))},
            }
            print(f"{dataset:<22} {variant:<15} " + "  ".join(
                f"{k} {per[variant]['mean'][k]:.3f} ({', '.join(f'{r[k]:.2f}' for r in rows)})"
                for k in (*PROBES, "sec6_fg<-z_fg", "sec6_fg<-z") if k in rows[0]
            ), flush=True)
        results[dataset] = per
        current = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        current.update({"settings": results["settings"], dataset: per})
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(current, indent=2) + "\n")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
