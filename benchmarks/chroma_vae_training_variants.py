"""Chroma-VAE at 2,000 training images: what the length of training, the warm-up, augmentation and the z1 KL weight do.

One :class:`~skshortcut.ChromaVAEClassifier` per variant is trained on 2,000
noisy coloured digits (Arjovsky's ColoredMNIST regime, as in
``benchmarks/data_size_chroma_vae.py``; ceiling 0.75), seed 0 by default.
Every variant states its length of training (``n_steps``) explicitly. Two
variants are not parameters of the estimator and are built here:

* ``augment``: random shifts of the training images by up to that many
  pixels (zero padding), a colour-preserving augmentation applied to each
  training batch (the reconstruction target is the shifted image);
* ``beta_z1``: the KL weight of the ``z1`` dimensions relative to ``z2``'s.

For each fitted model it scores second stages on the same ``mu(x)_2``: the kNN
with ``k = sqrt(N)`` (the estimator's), ``k`` of 15, 100 and 200, the kNN on
standardised ``mu(x)_2`` and on ``mu(x)_2`` minus its linear regression on
``mu(x)_1``. It also records linear probes of the colour and
of the clean digit label (``digit >= 5``) from ``mu(x)_2`` and of the colour
from ``mu(x)_1`` (fit on train, scored on test). As a reference it scores a kNN on
the grey-level pixels (the channels summed, so without the colour) trained on
the same noisy labels.

Run ``python benchmarks/chroma_vae_training_variants.py [--variants ...] [--seed 0]``;
it adds its rows to ``benchmarks/results/chroma_vae_training_variants.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {
    "steps960": {"n_steps": 960},
    "steps1920": {"n_steps": 1920},
    "steps3840": {"n_steps": 3840},
    "warmup0.9": {"n_steps": 960, "beta_warmup": 0.9},
    "shift2": {"n_steps": 960, "augment": 2},
    "sample_shift2": {"n_steps": 960, "z1_input": "sample", "augment": 2},
    "sample_beta_z1_0.1": {"n_steps": 960, "z1_input": "sample", "beta_z1": 0.1},
}


def shift_collate(max_shift):
    """A DataLoader ``collate_fn`` shifting each image by up to ``max_shift`` pixels (zero padding)."""
    from torch.utils.data import default_collate

    def collate(batch):
        X, y = default_collate(batch)
        n, _, h, w = X.shape
        padded = torch.nn.functional.pad(X, (max_shift,) * 4)
        dx = torch.randint(0, 2 * max_shift + 1, (n,))
        dy = torch.randint(0, 2 * max_shift + 1, (n,))
        return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)]), y

    return collate


def make_estimator_class():
    from skorch.utils import to_tensor

    from skshortcut import ChromaVAEClassifier
    from skshortcut.generative._chroma_vae_module import kl_standard_normal

    class SplitKL(ChromaVAEClassifier):
        """Eq. 2 with the KL of ``z1`` weighted by ``beta_z1`` times the current KL weight."""

        beta_z1 = None

        def get_loss(self, y_pred, y_true, X=None, training=False):
            if self.beta_z1 is None:
                return super().get_loss(y_pred, y_true, X, training)
            logits, mu, logvar, out = y_pred
            x = to_tensor(X, device=self.device).to(out.dtype)
            recon = self.module_.negative_log_likelihood(out, x)
            d1 = self.dim_z1_
            kl1, kl2 = kl_standard_normal(mu[:, :d1], logvar[:, :d1]), kl_standard_normal(mu[:, d1:], logvar[:, d1:])
            beta = getattr(self, "current_beta_", self.beta)
            self.history.record_batch("train_recon", recon.mean().item())
            self.history.record_batch("train_kl", (kl1 + kl2).mean().item())
            clf = self.criterion_(logits, to_tensor(y_true, device=self.device))
            return (recon + beta * self.beta_z1 * kl1 + beta * kl2).mean() + self.lambda_ * clf

    return SplitKL


def fit_one(name, seed, n=2000):
    torch.set_num_threads(1)
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    from skshortcut import group_accuracies
    from skshortcut.datasets import make_colored_digits

    params = dict(VARIANTS[name])
    augment, beta_z1 = params.pop("augment", 0), params.pop("beta_z1", None)
    data = make_colored_digits(n, 200, 2000, regime="arjovsky", random_state=seed)
    train, test = data.train, data.test
    if augment:
        params["iterator_train__collate_fn"] = shift_collate(augment)
    model = make_estimator_class()(dim_z=32, z_p=0.25, device="cpu", random_state=seed, **params)
    model.beta_z1 = beta_z1
    start = time.perf_counter()
    model.fit(train.X, train.y)
    seconds = time.perf_counter() - start
    d1 = model.dim_z1_
    mu_train, mu_test = model.latent_means(train.X), model.latent_means(test.X)
    z2_train, z2_test = mu_train[:, d1:], mu_test[:, d1:]
    row = {"variant": name, "params": VARIANTS[name], "seed": seed, "n_train": n, "seconds": seconds,
           "train_z1_clf": float(model.z1_score(train.X, train.y)), "test_z1_clf": float(model.z1_score(test.X, test.y)),
           "final_recon": float(model.history[-1, "train_recon"])}

    def score(tag, pred):
        res = group_accuracies(test.y, pred, groups=test.groups)
        row[tag] = {"test": round(float((pred == test.y).mean()), 4), "worst_group": round(float(res.worst), 4)}

    k = int(round(math.sqrt(n)))
    knn = lambda a, b, kk=k: KNeighborsClassifier(kk).fit(a, train.y).predict(b)  # noqa: E731
    score("knn", knn(z2_train, z2_test))
    for kk in (15, 100, 200):
        score(f"knn_k{kk}", knn(z2_train, z2_test, kk))
    std = z2_train.std(0) + 1e-8
    score("knn_standardised", knn(z2_train / std, z2_test / std))
    reg = LinearRegression().fit(mu_train[:, :d1], z2_train)
    score("knn_z1_regressed_out", knn(z2_train - reg.predict(mu_train[:, :d1]), z2_test - reg.predict(mu_test[:, :d1])))
    probe = lambda a, b, target: round(float(  # noqa: E731
        LogisticRegression(max_iter=3000).fit(a, target(train)).score(b, target(test))), 4)
    row["colour_from_z2"] = probe(z2_train, z2_test, lambda s: s.spurious)
    row["digit_from_z2"] = probe(z2_train, z2_test, lambda s: s.digit >= 5)
    row["colour_from_z1"] = probe(mu_train[:, :d1], mu_test[:, :d1], lambda s: s.spurious)
    return row


def grey_pixel_knn(seed, n=2000):
    """Reference: the kNN (``k = sqrt(N)``) on the grey-level pixels (channels summed: no colour), noisy labels."""
    from sklearn.neighbors import KNeighborsClassifier

    from skshortcut import group_accuracies
    from skshortcut.datasets import make_colored_digits

    data = make_colored_digits(n, 200, 2000, regime="arjovsky", random_state=seed)
    grey = lambda X: X.sum(1).reshape(len(X), -1)  # noqa: E731
    pred = KNeighborsClassifier(int(round(math.sqrt(n)))).fit(grey(data.train.X), data.train.y).predict(grey(data.test.X))
    res = group_accuracies(data.test.y, pred, groups=data.test.groups)
    return {"seed": seed, "test": round(float((pred == data.test.y).mean()), 4), "worst_group": round(float(res.worst), 4)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=sorted(VARIANTS), choices=sorted(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "chroma_vae_training_variants.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {"rows": []}
    rows = result["rows"]
    reference = [r for r in result.get("grey_pixel_knn", []) if r["seed"] != args.seed] + [grey_pixel_knn(args.seed)]
    print("kNN on grey-level pixels:", reference[-1], flush=True)
    for name in [None, *args.variants]:
        if name is not None:
            row = fit_one(name, args.seed)
            rows = [r for r in rows if (r["variant"], r["seed"]) != (name, args.seed)] + [row]
            print(json.dumps(row), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "benchmark": "Chroma-VAE variants at 2,000 noisy coloured digits (test accuracy, ceiling 0.75)",
            "data": "make_colored_digits(2000, 200, 2000, regime='arjovsky', random_state=seed)",
            "grey_pixel_knn": sorted(reference, key=lambda r: r["seed"]),
            "rows": sorted(rows, key=lambda r: (r["variant"], r["seed"])),
        }, indent=2))


if __name__ == "__main__":
    main()
