"""The default autoencoder of Latent Shift on the package's skorch base: parameters, images, score, verbose, batches."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torch.utils.data import TensorDataset

from skshortcut.counterfactual import Autoencoder

FAST = dict(latent_dim=4, max_epochs=2, validation_fraction=0, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def images():
    """Blobs whose brightness and position vary: something an autoencoder can learn."""
    rng = np.random.RandomState(0)
    X = np.zeros((64, 1, 8, 8), dtype=np.float32)
    for i in range(64):
        r, c = rng.randint(0, 5, 2)
        X[i, 0, r : r + 3, c : c + 3] = rng.uniform(0.5, 1.0)
    return X


@pytest.fixture(scope="module")
def fitted(images):
    return Autoencoder(**FAST).fit(images)


def test_max_epochs_zero_is_refused(images):
    """An untrained autoencoder was returned as if fitted."""
    with pytest.raises(ValueError, match="max_epochs"):
        Autoencoder(**{**FAST, "max_epochs": 0}).fit(images)


@pytest.mark.parametrize(
    "params",
    [
        {"latent_dim": 0},
        {"latent_dim": 2.5},
        {"validation_fraction": 1.0},
        {"patience": 0},
        {"module": "conv"},
        {"batch_size": 0},
        {"lr": 0.0},
    ],
)
def test_bad_parameters_are_refused_at_fit(images, params):
    name = next(iter(params))
    with pytest.raises(ValueError, match=name):
        Autoencoder(**{**FAST, **params}).fit(images)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_images_are_refused_at_fit_and_transform(images, fitted, bad):
    X = images.copy()
    X[5, 0, 3, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        Autoencoder(**FAST).fit(X)
    for method in ("transform", "reconstruct", "score"):
        with pytest.raises(ValueError, match="NaN or infinity"):
            getattr(fitted, method)(X)


@pytest.mark.parametrize("shape", [(2, 1, 12, 12), (2, 3, 8, 8)])
def test_another_image_shape_is_refused_after_fit(fitted, shape):
    for method in ("transform", "reconstruct", "score"):
        with pytest.raises(ValueError, match="shape"):
            getattr(fitted, method)(np.zeros(shape, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        fitted.transform(TensorDataset(torch.zeros(shape)))


def test_negative_strides_are_accepted(images, fitted):
    flipped = images[::-1, :, ::-1, ::-1]
    np.testing.assert_allclose(fitted.transform(flipped), fitted.transform(np.ascontiguousarray(flipped)))
    a = Autoencoder(**FAST).fit(flipped)
    b = Autoencoder(**FAST).fit(np.ascontiguousarray(flipped))
    np.testing.assert_allclose(a.transform(images), b.transform(images), rtol=1e-5, atol=1e-6)


def test_score_is_greater_is_better(images, fitted):
    """Negative mean squared error: longer training reconstructs better and scores higher, and a grid search picks it."""
    assert fitted.score(images) == pytest.approx(-np.mean((fitted.reconstruct(images) - images) ** 2))
    longer = Autoencoder(**{**FAST, "max_epochs": 25}).fit(images)
    assert longer.score(images) > fitted.score(images)
    assert fitted.score(images) < 0
    search = GridSearchCV(Autoencoder(**FAST), {"max_epochs": [1, 25]}, cv=2).fit(images)
    assert search.best_params_ == {"max_epochs": 25}


def test_score_reads_datasets_in_batches(images, fitted):
    ds = TensorDataset(torch.as_tensor(images), torch.zeros(len(images)))
    assert fitted.score(ds) == pytest.approx(fitted.score(images), rel=1e-6)


def test_verbose_zero_is_silent_and_one_prints_the_epoch_table(images, capsys):
    Autoencoder(**{**FAST, "verbose": 0}).fit(images)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    Autoencoder(**{**FAST, "verbose": 1}).fit(images)
    loud = capsys.readouterr()
    assert "train_loss" in loud.out and "epoch" in loud.out  # skorch's epoch table
    assert loud.err  # tqdm's progress bar


def test_batch_size_is_the_optimisation_and_inference_batch(images):
    ae = Autoencoder(**{**FAST, "batch_size": 24}).fit(images)
    assert [b["train_batch_size"] for b in ae.history[-1, "batches"]] == [24, 24, 16]
    sizes = []
    handle = ae.module_.encoder.register_forward_hook(lambda m, inp, out: sizes.append(len(inp[0])))
    ae.transform(images)
    assert sizes == [24, 24, 16]
    sizes.clear()
    ae.set_params(batch_size=-1).transform(images)
    assert sizes == [64]
    handle.remove()


def test_inference_leaves_the_callers_torch_rng(images, fitted):
    state = torch.random.get_rng_state()
    fitted.transform(images)
    fitted.inverse_transform(fitted.transform(images[:3]))
    fitted.score(images)
    assert torch.equal(state, torch.random.get_rng_state())


def test_repr_clone_and_sklearn_parameters():
    ae = Autoencoder(latent_dim=8, lr=1e-2)
    assert repr(ae) in ("Autoencoder(latent_dim=8, lr=0.01)", "Autoencoder(lr=0.01, latent_dim=8)")
    assert clone(ae).get_params()["latent_dim"] == 8
