"""Unit and property tests of ChromaVAEClassifier (Chroma-VAE, Yang et al. 2022)."""

import ast
import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from torch import nn

from skshortcut import ChromaVAEClassifier
from skshortcut.generative._chroma_vae_module import kl_standard_normal
from skshortcut.generative._chroma_vae_schedule import resolve_epochs
from skshortcut.generative.chroma_vae import ChromaVAEModule, default_n_down, latent_split
from skshortcut.nets import ConvDecoder, ConvEncoder

FAST = dict(max_epochs=1, batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def data():
    """Tiny images where class 1 is brighter in channel 0; string labels."""
    rng = np.random.RandomState(0)
    y_idx = rng.randint(0, 2, 64)
    X = rng.rand(64, 3, 8, 8).astype("float32") * 0.5
    X[:, 0] += 0.5 * y_idx[:, None, None]
    return X, np.array(["cat", "dog"])[y_idx]


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return ChromaVAEClassifier(dim_z=4, z_p=0.25, random_state=0, **FAST).fit(X, y)


# ---------------------------------------------------------------- latent split
@given(dim_z=st.integers(2, 512), z_p=st.floats(0.001, 0.999))
def test_latent_split_law(dim_z, z_p):
    d1, d2 = latent_split(dim_z, z_p)
    assert d1 + d2 == dim_z
    assert 1 <= d1 <= dim_z - 1
    if 1 <= z_p * dim_z <= dim_z - 1:
        assert abs(d1 - z_p * dim_z) <= 0.5 + 1e-9


@pytest.mark.parametrize(
    "dim_z, z_p, exc, match",
    [
        (1, 0.5, ValueError, "dim_z"),
        (2.5, 0.5, TypeError, "dim_z"),
        (8, 0.0, ValueError, "z_p"),
        (8, 1.0, ValueError, "z_p"),
        (8, "half", TypeError, "z_p"),
    ],
)
def test_latent_split_rejects(dim_z, z_p, exc, match):
    with pytest.raises(exc, match=match):
        latent_split(dim_z, z_p)


def test_default_n_down_fits_the_image():
    assert default_n_down((8, 8)) == 2
    assert default_n_down((28, 28)) == 2
    assert default_n_down((128, 128)) == 5
    enc = ConvEncoder(3, (56, 28), 8, n_down=default_n_down((56, 28)))
    assert enc(torch.zeros(1, 3, 56, 28)).shape == (1, 8)


# ---------------------------------------------------------------- loss (Eq. 2)
@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=2, max_size=6), st.lists(st.floats(-3, 3), min_size=2, max_size=6))
def test_kl_is_nonnegative_and_zero_at_the_prior(mu, logvar):
    n = min(len(mu), len(logvar))
    mu_t, lv_t = torch.tensor([mu[:n]]), torch.tensor([logvar[:n]])
    assert kl_standard_normal(mu_t, lv_t).item() >= -1e-6
    assert kl_standard_normal(torch.zeros(1, n), torch.zeros(1, n)).item() == pytest.approx(0.0)


def test_get_loss_is_equation_2(data):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, z_p=0.5, beta=0.7, beta_start=None, lambda_=13.0, random_state=0, **FAST)
    clf.fit(X, y)
    xb = torch.as_tensor(X[:8])
    yb = torch.as_tensor(clf.label_encoder_.transform(y[:8]))
    torch.manual_seed(1)
    out = clf.module_(xb)
    loss = clf.get_loss(out, yb, X=xb, training=True)
    logits, mu, logvar, dec = out
    recon = nn.functional.binary_cross_entropy_with_logits(dec, xb, reduction="none").sum((1, 2, 3))
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
    expected = (recon + 0.7 * kl).mean() + 13.0 * nn.functional.cross_entropy(logits, yb)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_beta_warmup_decays_linearly_to_beta(data):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, beta=1.0, beta_start=10.0, beta_warmup=0.5, random_state=0,
                              **{**FAST, "max_epochs": 4}).fit(X, y)
    np.testing.assert_allclose(clf.history[:, "beta"], [10.0, 5.5, 1.0, 1.0])
    constant = ChromaVAEClassifier(dim_z=4, beta=0.5, beta_start=None, random_state=0, **{**FAST, "max_epochs": 2})
    np.testing.assert_allclose(constant.fit(X, y).history[:, "beta"], [0.5, 0.5])


def test_n_steps_trains_a_small_data_set_as_long_as_a_large_one(data):
    # the default length is a number of optimisation steps, not of epochs: half the images, twice
    # the epochs, the same steps, and the KL warm-up over the first half of them
    X, y = data
    params = dict(dim_z=4, beta_start=10.0, n_steps=8, batch_size=16, device="cpu", random_state=0)
    full, half = ChromaVAEClassifier(**params).fit(X, y), ChromaVAEClassifier(**params).fit(X[:32], y[:32])
    assert (full.n_epochs_, half.n_epochs_) == (2, 4)
    for clf in (full, half):
        assert len(clf.history) == clf.n_epochs_
        assert sum(len(epoch["batches"]) for epoch in clf.history) == 8
    np.testing.assert_allclose(half.history[:, "beta"], [10.0, 5.5, 1.0, 1.0])
    # a set max_epochs wins, whatever the data size
    assert ChromaVAEClassifier(**{**params, "max_epochs": 3}).fit(X[:32], y[:32]).n_epochs_ == 3
    # the default: 1,920 steps, 60 epochs of 4,000 images at the default batch size (960, the former
    # default, left colour in z2: benchmarks/data_size_chroma_vae.py)
    default = ChromaVAEClassifier()
    assert default.max_epochs is None and default.n_steps == 1920
    assert resolve_epochs(None, default.n_steps, 4000, default.batch_size) == 60


def test_z1_input_sample_feeds_the_z1_classifier_the_drawn_z1():
    enc, dec = ConvEncoder(3, (8, 8), 8), ConvDecoder(4, 3, (8, 8))
    x = torch.rand(6, 3, 8, 8)
    mean = ChromaVAEModule(enc, dec, nn.Linear(1, 2), dim_z=4, dim_z1=1, z1_input="mean")
    sample = ChromaVAEModule(enc, dec, nn.Linear(1, 2), dim_z=4, dim_z1=1, z1_input="sample")
    sample.z1_head = mean.z1_head
    mu, _ = mean.encode(x)
    torch.manual_seed(0)
    assert torch.equal(mean(x)[0], mean.classify(mu))
    torch.manual_seed(0)
    logits, mu_s, logvar, _ = sample(x)
    torch.manual_seed(0)
    z = mu_s + torch.randn_like(mu_s) * torch.exp(0.5 * logvar)  # the draw the decoder gets
    assert torch.allclose(logits, sample.classify(z)) and not torch.allclose(logits, sample.classify(mu_s))


def test_z1_classifier_sees_only_z1():
    enc, dec = ConvEncoder(3, (8, 8), 8), ConvDecoder(4, 3, (8, 8))
    module = ChromaVAEModule(enc, dec, nn.Linear(1, 2), dim_z=4, dim_z1=1)
    mu = torch.randn(5, 4)
    changed = mu.clone()
    changed[:, 1:] = torch.randn(5, 3)
    assert torch.equal(module.classify(mu), module.classify(changed))


# ---------------------------------------------------------------- estimator API
def test_fit_predict_transform(data, fitted):
    X, y = data
    assert list(fitted.classes_) == ["cat", "dog"]
    assert (fitted.dim_z1_, fitted.dim_z2_) == (1, 3)
    assert fitted.transform(X).shape == (64, 3)
    assert fitted.latent_means(X).shape == (64, 4)
    np.testing.assert_allclose(fitted.latent_means(X)[:, 1:], fitted.transform(X))
    proba = fitted.predict_proba(X)
    assert proba.shape == (64, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    pred = fitted.predict(X)
    assert set(pred) <= {"cat", "dog"}
    assert fitted.score(X, y) == pytest.approx(np.mean(pred == y))
    assert set(fitted.predict_z1(X)) <= {"cat", "dog"}
    assert 0.0 <= fitted.z1_score(X, y) <= 1.0


def test_knn_uses_sqrt_n_neighbours(fitted):
    assert fitted.z2_classifier_.n_neighbors == 8  # round(sqrt(64))


def test_history_records_the_loss_terms(fitted):
    row = fitted.history[-1]
    for key in ("train_loss", "train_recon", "train_kl", "train_z1_loss", "train_z1_acc"):
        assert np.isfinite(row[key])


def test_clone_get_set_params(fitted):
    params = fitted.get_params()
    for name in ("dim_z", "z_p", "beta", "lambda_", "likelihood", "z2_classifier", "random_state"):
        assert name in params
    assert params["device"] == "cpu"
    est = clone(ChromaVAEClassifier(dim_z=6, lambda_=5.0, device="auto"))
    assert (est.dim_z, est.lambda_, est.device) == (6, 5.0, "auto")
    est.set_params(z_p=0.5, lambda_=2.0)
    assert (est.z_p, est.lambda_) == (0.5, 2.0)
    with pytest.raises(NotFittedError):
        est.predict(np.zeros((2, 3, 8, 8), dtype="float32"))


def test_device_auto_resolves_and_reports_auto(data):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, max_epochs=1, random_state=0).fit(X, y)
    assert clf.get_params()["device"] == "auto"
    assert str(next(clf.module_.parameters()).device).startswith("cuda" if torch.cuda.is_available() else "cpu")


def test_random_state_reproducible_and_leaves_global_rng(data):
    X, y = data
    state = torch.random.get_rng_state()
    a = ChromaVAEClassifier(dim_z=4, random_state=3, **FAST).fit(X, y)
    assert torch.equal(state, torch.random.get_rng_state())
    b = ChromaVAEClassifier(dim_z=4, random_state=3, **FAST).fit(X, y)
    np.testing.assert_allclose(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_refit_starts_fresh(data):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, random_state=0, **FAST)
    first = clf.fit(X, y).transform(X)
    second = clf.fit(X, y).transform(X)
    np.testing.assert_allclose(first, second)


def test_pickle_round_trip(data, fitted):
    X, _ = data
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(loaded.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


@pytest.mark.parametrize(
    "z2, kind",
    [("mlp", "Pipeline"), (LogisticRegression(), "LogisticRegression")],
)
def test_other_z2_classifiers(data, z2, kind):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, z2_classifier=z2, random_state=0, **FAST).fit(X, y)
    assert type(clf.z2_classifier_).__name__ == kind
    assert clf.predict_proba(X).shape == (64, 2)
    if not isinstance(z2, str):
        assert clf.z2_classifier_ is not z2  # cloned


def test_z2_params_set_the_builtin(data):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, z2_params={"n_neighbors": 3}, random_state=0, **FAST).fit(X, y)
    assert clf.z2_classifier_.n_neighbors == 3


def test_reconstruction_classifier(data):
    X, y = data
    clf = ChromaVAEClassifier(
        dim_z=4, z2_classifier="reconstruction", n_reconstructions=2, z2_params={"max_epochs": 1},
        random_state=0, **FAST,
    ).fit(X, y)
    from skshortcut import ERMClassifier

    assert isinstance(clf.z2_classifier_, ERMClassifier)
    assert clf._reconstruction_inputs(X, 0).shape == (128, 3, 8, 8)  # 2 samples per image
    proba = clf.predict_proba(X[:5])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X[:5]), clf.predict(X[:5]))  # seeded noise


def test_gaussian_likelihood_accepts_any_range(data):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, likelihood="gaussian", random_state=0, **FAST).fit(X * 4 - 1, y)
    assert hasattr(clf.module_, "log_sigma")
    assert np.isfinite(clf.history[-1, "train_loss"])


def test_user_modules_are_copied_not_trained(data):
    X, y = data
    enc, dec = ConvEncoder(3, (8, 8), 12), ConvDecoder(6, 3, (8, 8))
    before = [p.detach().clone() for p in enc.parameters()]
    clf = ChromaVAEClassifier(dim_z=6, z_p=0.5, encoder=enc, decoder=dec, random_state=0, **FAST).fit(X, y)
    assert clf.module_.encoder is not enc
    assert all(torch.equal(a, b) for a, b in zip(before, enc.parameters()))
    assert clf.transform(X).shape == (64, 3)


def test_mlp_z1_head(data):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, z1_hidden=16, random_state=0, **FAST).fit(X, y)
    assert isinstance(clf.module_.z1_head, nn.Sequential)


def test_torch_dataset_input(data):
    X, y = data
    from torch.utils.data import TensorDataset

    ds = TensorDataset(torch.as_tensor(X), torch.as_tensor(np.arange(64) % 2))
    clf = ChromaVAEClassifier(dim_z=4, random_state=0, **FAST).fit(ds)
    assert list(clf.classes_) == [0, 1]
    assert clf.transform(ds).shape == (64, 3)
    assert clf.predict(ds).shape == (64,)


def test_pipeline_transformer(data):
    X, y = data
    pipe = Pipeline([("vae", ChromaVAEClassifier(dim_z=4, random_state=0, **FAST)), ("clf", LogisticRegression())])
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (64,)
    assert pipe.named_steps["clf"].coef_.shape == (1, 3)


# ---------------------------------------------------------------- diagnostics
def test_partial_reconstructions(data, fitted):
    X, _ = data
    for keep in ("z1", "z2"):
        rec = fitted.partial_reconstructions(X[:3], keep=keep, n_samples=4, random_state=0)
        assert rec.shape == (3, 4, 3, 8, 8)
        assert rec.min() >= 0 and rec.max() <= 1
        np.testing.assert_array_equal(rec, fitted.partial_reconstructions(X[:3], keep=keep, n_samples=4, random_state=0))
        assert not np.allclose(rec[:, 0], rec[:, 1])  # the resampled half varies
    full = fitted.partial_reconstructions(X[:3], keep="all", n_samples=2)
    np.testing.assert_allclose(full[:, 0], full[:, 1])


def test_partial_reconstructions_keep_the_right_half(data, fitted):
    """x~1 depends only on mu(x)_1 and x~2 only on mu(x)_2 (Eqs. 3-4)."""
    X, _ = data
    mu = torch.as_tensor(fitted.latent_means(X[:2]))
    # two images with the same z1 (replaced) decode to the same x~1 with the same noise
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        eps = torch.randn(2, 4, generator=gen)
        z_a = torch.cat([mu[:1, :1], eps[:1, 1:]], 1)
        z_b = torch.cat([mu[:1, :1], eps[:1, 1:]], 1)
        np.testing.assert_allclose(fitted.module_.mean_image(z_a).numpy(), fitted.module_.mean_image(z_b).numpy())
    x1 = fitted.partial_reconstructions(X[:1], keep="z1", n_samples=2, random_state=5)
    x1_again = fitted.partial_reconstructions(X[:1], keep="z1", n_samples=2, random_state=5)
    np.testing.assert_array_equal(x1, x1_again)


def test_latent_shift(data, fitted):
    X, _ = data
    flipped = X[:, [1, 0, 2]]
    shift = fitted.latent_shift(X, flipped)
    assert shift.shape == (4,)
    expected = np.abs(fitted.latent_means(X) - fitted.latent_means(flipped)).mean(axis=0)
    np.testing.assert_allclose(shift, expected, rtol=1e-5, atol=1e-7)
    assert shift.max() > 1e-3  # swapping two colour channels moves the latents
    assert fitted.latent_shift(X, X[::-1]).max() > 1e-3  # samples are paired in order, not pooled
    with pytest.raises(ValueError, match="same number"):
        fitted.latent_shift(X, X[:10])


class _ChannelMeans(nn.Module):
    """A hand-made encoder: mu = the mean of channels (0, 1, 2, 0), log-variance 0."""

    def forward(self, x):
        m = x.mean((2, 3))
        mu = torch.cat([m, m[:, :1]], 1)
        return torch.cat([mu, torch.zeros_like(mu)], 1)


def test_latent_shift_moves_only_the_dimensions_that_read_the_change(data, fitted):
    X, _ = data
    clf = copy.deepcopy(fitted)
    clf.module_.encoder = _ChannelMeans()
    brighter = X.copy()
    brighter[:, 1] += 0.1  # channel 1 only: latent 1 reads it
    np.testing.assert_allclose(clf.latent_shift(X, brighter), [0.0, 0.1, 0.0, 0.0], atol=1e-6)
    brighter[:, 0] -= 0.2  # channel 0: latents 0 and 3
    np.testing.assert_allclose(clf.latent_shift(X, brighter), [0.2, 0.1, 0.0, 0.2], atol=1e-6)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "params, exc, match",
    [
        ({"z_p": 1.5}, ValueError, "z_p"),
        ({"dim_z": 1}, ValueError, "dim_z"),
        ({"beta": -1.0}, ValueError, "beta"),
        ({"beta_start": -1.0}, ValueError, "beta_start"),
        ({"beta_start": "high"}, TypeError, "beta_start"),
        ({"beta_warmup": 1.5}, ValueError, "beta_warmup"),
        ({"lambda_": "big"}, TypeError, "lambda_"),
        ({"likelihood": "poisson"}, ValueError, "likelihood"),
        ({"z2_classifier": "svm"}, ValueError, "z2_classifier"),
        ({"z2_classifier": 3}, TypeError, "z2_classifier"),
        ({"z2_params": [1]}, TypeError, "z2_params"),
        ({"z2_classifier": LogisticRegression(), "z2_params": {"C": 1}}, ValueError, "z2_params"),
        ({"encoder": "conv"}, TypeError, "encoder"),
        ({"encoder": nn.Sequential(nn.Flatten(), nn.Linear(192, 5))}, ValueError, "encoder"),
        ({"decoder": nn.Sequential(nn.Linear(4, 192), nn.Unflatten(1, (3, 8, 8))), "dim_z": 5}, ValueError, "decoder"),
        ({"z1_hidden": -1}, ValueError, "z1_hidden"),
        ({"n_reconstructions": 0}, ValueError, "n_reconstructions"),
        ({"n_steps": 0}, ValueError, "n_steps"),
        ({"z1_input": "noise"}, ValueError, "z1_input"),
        ({"max_epochs": None, "n_steps": 2.5}, TypeError, "n_steps"),
    ],
)
def test_bad_parameters(data, params, exc, match):
    X, y = data
    with pytest.raises(exc, match=match):
        ChromaVAEClassifier(**{"dim_z": 4, **FAST, **params}).fit(X, y)


def test_bad_inputs(data, fitted):
    X, y = data
    with pytest.raises(ValueError, match="X"):
        ChromaVAEClassifier(**FAST).fit(X[:, 0], y)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ChromaVAEClassifier(dim_z=4, **FAST).fit(X * 3, y)
    with pytest.raises(ValueError, match="single class"):
        ChromaVAEClassifier(dim_z=4, **FAST).fit(X, np.zeros(64))
    with pytest.raises(ValueError, match="Inconsistent"):
        ChromaVAEClassifier(dim_z=4, **FAST).fit(X, y[:10])
    with pytest.raises(ValueError, match="NaN"):
        ChromaVAEClassifier(dim_z=4, **FAST).fit(np.full_like(X, np.nan), y)
    with pytest.raises(ValueError, match="shape"):
        fitted.predict(np.zeros((2, 3, 9, 9), dtype="float32"))
    with pytest.raises(ValueError, match="keep"):
        fitted.partial_reconstructions(X[:2], keep="z3")
    with pytest.raises(ValueError, match="n_samples"):
        fitted.partial_reconstructions(X[:2], n_samples=0)


def test_pickled_on_one_device_loads_on_a_cpu_only_machine(data, tmp_path):
    """A model pickled with ``device="cuda"`` loads and predicts where CUDA is hidden.

    With a GPU the model is trained there; without one the pickle carries
    ``device="cuda"`` on CPU weights, which still exercises skorch's mapping
    of the device on load.
    """
    X, y = data
    device = "cuda" if torch.cuda.is_available() else "cpu"
    clf = ChromaVAEClassifier(dim_z=4, random_state=0, max_epochs=1, batch_size=32, device=device).fit(X, y)
    clf.device = "cuda"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X[:6])
    script = (
        "import pickle, sys, warnings, numpy as np, torch\n"
        "assert not torch.cuda.is_available()\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')\n"
        f"    clf = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "assert str(clf.device) == 'cpu', clf.device\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        "np.save(sys.argv[1], clf.transform(X))\n"
        "print(clf.predict(X).tolist())\n"
    )
    out = tmp_path / "Z.npy"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    clf.device = device
    np.testing.assert_allclose(np.load(out), clf.transform(X[:6]), rtol=1e-4, atol=1e-5)
    assert ast.literal_eval(res.stdout.strip().splitlines()[-1]) == clf.predict(X[:6]).tolist()


def test_fit_z2_refits_only_the_second_stage(data):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, random_state=0, **FAST).fit(X, y)
    Z = clf.transform(X)
    clf.set_params(z2_classifier=LogisticRegression()).fit_z2(X, y)
    assert isinstance(clf.z2_classifier_, LogisticRegression)
    np.testing.assert_allclose(clf.transform(X), Z)
    with pytest.raises(ValueError, match="unseen at fit"):
        clf.fit_z2(X, np.array(["cat", "bird"] * 32))
    with pytest.raises(ValueError, match="changed since"):
        clf.set_params(z_p=0.75).fit_z2(X, y)
    assert (clf.dim_z1_, clf.dim_z2_) == (1, 3)  # the refused call leaves the fitted model as it was
    np.testing.assert_allclose(clf.transform(X), Z)
    with pytest.raises(ValueError, match="changed since"):
        clf.set_params(z_p=0.25, dim_z=6).fit_z2(X, y)


# ---------------------------------------------------------------- the shared estimator base
def test_max_epochs_zero_is_refused(data):
    """An untrained VAE would hand a random encoding to the z2-classifier."""
    X, y = data
    with pytest.raises(ValueError, match="max_epochs"):
        ChromaVAEClassifier(dim_z=4, **{**FAST, "max_epochs": 0}).fit(X, y)


@pytest.mark.parametrize("params", [{"batch_size": 0}, {"lr": -1.0}, {"device": "tpu9"}, {"z2_classifier": object()}])
def test_skorch_and_second_stage_parameters_are_checked_at_fit(data, params):
    X, y = data
    name = next(iter(params))
    with pytest.raises(ValueError, match=name):
        ChromaVAEClassifier(dim_z=4, **{**FAST, **params}).fit(X, y)


def test_continuous_y_is_refused(data):
    X, _ = data
    y = np.random.RandomState(0).rand(len(X))
    with pytest.raises(ValueError, match="continuous"):
        ChromaVAEClassifier(dim_z=4, **FAST).fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_images_are_refused_at_fit_and_predict(data, fitted, bad):
    X, y = data
    X_bad = X.copy()
    X_bad[3, 0, 2, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        ChromaVAEClassifier(dim_z=4, **FAST).fit(X_bad, y)
    for method in ("predict", "predict_proba", "transform", "latent_means", "predict_z1"):
        with pytest.raises(ValueError, match="NaN or infinity"):
            getattr(fitted, method)(X_bad)


@pytest.mark.parametrize("shape", [(2, 3, 9, 9), (2, 1, 8, 8)])
def test_another_image_shape_is_refused_after_fit(fitted, shape):
    X_other = np.zeros(shape, dtype="float32")
    for method in ("predict", "predict_proba", "transform", "latent_means", "partial_reconstructions"):
        with pytest.raises(ValueError, match="shape"):
            getattr(fitted, method)(X_other)
    from torch.utils.data import TensorDataset

    with pytest.raises(ValueError, match="shape"):
        fitted.transform(TensorDataset(torch.zeros(shape)))


def test_negative_strides_are_accepted(data, fitted):
    X, y = data
    flipped = X[::-1, :, ::-1]
    np.testing.assert_allclose(fitted.transform(flipped), fitted.transform(np.ascontiguousarray(flipped)))
    a = ChromaVAEClassifier(dim_z=4, random_state=0, **FAST).fit(flipped, y[::-1])
    b = ChromaVAEClassifier(dim_z=4, random_state=0, **FAST).fit(np.ascontiguousarray(flipped), y[::-1].copy())
    np.testing.assert_allclose(a.transform(X), b.transform(X))


def test_score_is_classifier_mixins_accuracy(data, fitted):
    from sklearn.base import ClassifierMixin

    X, y = data
    assert ChromaVAEClassifier.score is ClassifierMixin.score
    assert fitted.score(X, y) == pytest.approx(np.mean(fitted.predict(X) == y))


def test_verbose_zero_is_silent_and_one_prints_the_epoch_table(data, capsys):
    X, y = data
    ChromaVAEClassifier(dim_z=4, random_state=0, verbose=0, **FAST).fit(X, y)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    ChromaVAEClassifier(dim_z=4, random_state=0, verbose=1, **FAST).fit(X, y)
    loud = capsys.readouterr()
    assert "train_recon" in loud.out and "train_z1_acc" in loud.out  # skorch's epoch table
    assert "/" in loud.err or "it" in loud.err  # tqdm's progress bar


def test_batch_size_is_the_optimisation_and_inference_batch(data):
    X, y = data
    clf = ChromaVAEClassifier(dim_z=4, random_state=0, **{**FAST, "batch_size": 24}).fit(X, y)
    sizes = []
    handle = clf.module_.encoder.register_forward_hook(lambda m, inp, out: sizes.append(len(inp[0])))
    for method in ("transform", "predict", "predict_z1"):
        sizes.clear()
        getattr(clf, method)(X)
        assert sizes == [24, 24, 16], method
    handle.remove()
    assert clf.history[-1, "batches"][-1]["train_batch_size"] == 16  # 64 = 24 + 24 + 16 per epoch
    whole = clf.set_params(batch_size=-1)
    assert whole.transform(X).shape == (64, 3)


def test_repr_shows_the_parameters_a_user_set():
    assert repr(ChromaVAEClassifier(dim_z=8, lambda_=5.0)) == "ChromaVAEClassifier(dim_z=8, lambda_=5.0)"
