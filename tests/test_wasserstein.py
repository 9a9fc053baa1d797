"""WassersteinDisentangler (D3S section 5): API, Eqs. 8-10 mechanics, and section 6's protocol."""

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skshortcut import ERMClassifier, WassersteinDisentangler
from skshortcut.base_model import as_base_model
from skshortcut.datasets import make_foreground_background, make_shapes_on_tints
from skshortcut.generative._critics import ProjectionCritic
from skshortcut.generative.wasserstein import DisentanglerModule, wasserstein_terms
from skshortcut.nets import Critic, SmallCNN

FAST = dict(max_epochs=2, extractor_params={"width": 4}, n_background_features=4, random_state=0)
#: The defaults before the whitened sliced estimate (trained critics at the paper's batch of 64), for the tests
#: that measured them.
PREVIOUS = dict(critic="trained", batch_size=64, lr=1e-3)


@pytest.fixture(scope="module")
def toy():
    """Images whose channel 0 brightness is the foreground, channel 1 the background; some backgrounds unknown."""
    rng = np.random.RandomState(0)
    n = 96
    fg = rng.choice(["cat", "dog", "eel"], n)
    bg = rng.choice(["grass", "snow"], n).astype(object)
    X = rng.rand(n, 3, 8, 8).astype("float32") * 0.3
    X[:, 0] += 0.3 * (fg == "dog")[:, None, None] + 0.6 * (fg == "eel")[:, None, None]
    X[:, 1] += 0.6 * (bg == "snow")[:, None, None]
    bg[:10] = -1
    return X, np.stack([fg, bg], axis=1)


def test_fit_transform_predict_with_any_labels(toy):
    X, Y = toy
    wd = WassersteinDisentangler(**FAST).fit(X, Y)
    assert list(wd.classes_) == ["cat", "dog", "eel"]
    assert list(wd.background_classes_) == ["grass", "snow"]  # -1 is "unknown", not a class
    assert wd.n_features_ == 16 and wd.n_background_features_ == 4 and wd.n_foreground_features_ == 12
    assert wd.transform(X).shape == (96, 12)
    assert wd.transform(X, part="bg").shape == (96, 4)
    both = wd.transform(X, part="both")
    np.testing.assert_allclose(both, np.hstack([wd.transform(X), wd.transform(X, part="bg")]))
    assert set(wd.predict(X)) <= {"cat", "dog", "eel"}
    assert set(wd.predict_background(X)) <= {"grass", "snow"}
    np.testing.assert_allclose(wd.predict_proba(X).sum(1), 1, rtol=1e-5)
    assert wd.predict_background_proba(X).shape == (96, 2)
    assert wd.score(X, Y[:, 0]) == pytest.approx(np.mean(wd.predict(X) == Y[:, 0]))  # ClassifierMixin's accuracy


def test_paper_constants_are_the_defaults():
    params = WassersteinDisentangler().get_params()
    assert params["alpha"] == 1.0 and params["lambda_gp"] == 10.0 and params["critic_steps"] == 5
    assert params["critic_conditioning"] == "projection" and params["critic_lr"] == 0.01  # see the user guide
    assert params["betas"] == (0.0, 0.9) and params["critic_negative_slope"] == 0.1
    assert params["n_background_features"] == 250 / 2048
    assert params["criterion"] is torch.nn.CrossEntropyLoss and params["optimizer"] is torch.optim.Adam
    # the departures that take the cross probes to chance (user guide): the whitened sliced W2^2 estimate on
    # batches of 256 at lr 0.01; critic="trained", batch_size=64, lr=1e-3 are the paper's critics and schedule
    assert params["critic"] == "sliced" and params["sliced_whiten"] is True and params["sliced_power"] == 2
    assert params["batch_size"] == 256 and params["lr"] == 0.01


def test_two_adam_optimisers_with_the_papers_betas(toy):
    X, Y = toy
    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 1}, critic="trained", critic_lr=0.005).fit(X, Y)
    assert wd.optimizer_.defaults["betas"] == (0.0, 0.9) and wd.critic_optimizer_.defaults["betas"] == (0.0, 0.9)
    assert wd.critic_optimizer_.defaults["lr"] == 0.005 and wd.optimizer_.defaults["lr"] == 0.01
    critic_params = {id(p) for p in wd.critic_.parameters()}
    assert not critic_params & {id(p) for g in wd.optimizer_.param_groups for p in g["params"]}
    assert {id(p) for g in wd.critic_optimizer_.param_groups for p in g["params"]} == critic_params
    hist = wd.history[-1]
    assert {"train_ce_fg", "train_ce_bg", "train_critic_loss", "train_gp"} <= set(hist)


def test_warmup_trains_critics_but_keeps_wasserstein_terms_out_of_the_extractor_loss(toy):
    X, Y = toy
    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 2}, critic="trained", warmup_epochs=1).fit(X, Y)
    assert "train_w_fg" not in wd.history[0] and "train_critic_loss" in wd.history[0]
    assert "train_w_fg" in wd.history[1] and "train_w_bg" in wd.history[1]


def test_unknown_backgrounds_skip_the_background_terms(toy):
    X, Y = toy
    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 1}, warmup_epochs=5).fit(X, Y)
    torch.manual_seed(0)
    logits_fg, logits_bg, z = torch.randn(6, 3), torch.randn(6, 2), torch.randn(6, 16)
    y = torch.tensor([[0, 1], [1, -1], [2, 0], [0, -1], [1, 1], [2, 0]])
    loss = wd.get_loss((logits_fg, logits_bg, z), y, training=True)  # in the warm-up: alpha * (CE_fg + CE_bg)
    known = y[:, 1] >= 0
    expected = nn.functional.cross_entropy(logits_fg, y[:, 0]) + nn.functional.cross_entropy(
        logits_bg[known], y[known, 1]
    )
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-6)
    # the critic objective of the foreground critic only sees the samples with a known background
    z = torch.randn(6, 16)
    torch.manual_seed(1)
    loss_all, _ = wd.critic_loss(z, y)
    y_changed = y.clone()
    y_changed[~known, 0] = 2  # foreground labels of unknown-background samples still count for D_bg
    torch.manual_seed(1)
    assert float(wd.critic_loss(z, y_changed)[0].detach()) != pytest.approx(float(loss_all.detach()))


def test_clone_pickle_and_seeding(toy):
    X, Y = toy
    wd = WassersteinDisentangler(**FAST)
    assert clone(wd).get_params()["extractor_params"] == {"width": 4}
    state = torch.random.get_rng_state()
    a = wd.fit(X, Y).transform(X)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is untouched
    b = clone(wd).fit(X, Y).transform(X)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    restored = pickle.loads(pickle.dumps(wd))
    np.testing.assert_allclose(restored.transform(X), a, rtol=1e-5, atol=1e-6)


def test_score_takes_the_two_label_columns_fit_takes_so_model_selection_scores_every_fold(toy):
    from sklearn.model_selection import GridSearchCV, KFold, cross_validate

    X, Y = toy
    wd = WassersteinDisentangler(**FAST).fit(X, Y)
    accuracy = np.mean(wd.predict(X) == Y[:, 0])
    assert wd.score(X, Y) == pytest.approx(accuracy)  # the foreground column; unknown backgrounds ignored
    assert wd.score(X, Y[:, 0]) == pytest.approx(accuracy)
    weights = np.r_[np.ones(48), np.zeros(48)]
    assert wd.score(X, Y, sample_weight=weights) == pytest.approx(np.mean(wd.predict(X[:48]) == Y[:48, 0]))
    with pytest.raises(ValueError, match="two columns .* or one"):
        wd.score(X, np.c_[Y, Y])
    folds = KFold(2, shuffle=True, random_state=0)  # an int cv stratifies, which two label columns do not allow
    scores = cross_validate(WassersteinDisentangler(**FAST), X, Y, cv=folds)["test_score"]
    assert np.isfinite(scores).all()  # ClassifierMixin.score compared one column with two: NaN
    search = GridSearchCV(WassersteinDisentangler(**FAST), {"critic": ["sliced", "trained"]}, cv=folds).fit(X, Y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_works_in_a_pipeline_with_the_part_as_a_parameter(toy):
    X, Y = toy
    pipe = Pipeline([("wd", WassersteinDisentangler(**FAST, transform_part="bg")), ("pca", PCA(2))])
    assert pipe.fit(X, Y).transform(X).shape == (96, 2)
    pipe.set_params(wd__transform_part="both")
    assert pipe.fit(X, Y)[0].transform(X).shape == (96, 16)


def test_extractors_user_module_small_cnn_and_torchvision_resnet(toy):
    X, Y = toy
    user = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    before = user[1].weight.detach().clone()
    wd = WassersteinDisentangler(user, n_background_features=3, max_epochs=1, random_state=0).fit(X, Y)
    assert wd.n_features_ == 10 and wd.transform(X).shape == (96, 7)
    assert torch.equal(user[1].weight, before)  # a copy is trained, not the module passed
    assert not torch.equal(wd.module_.extractor[1].weight.cpu(), before)
    assert clone(wd).get_params()["extractor"] is not user  # a module parameter is copied by clone, as sklearn does
    wd.set_params(extractor=nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 8))).fit(X, Y)  # after fit, too
    assert wd.n_features_ == 8
    wd = WassersteinDisentangler(SmallCNN(3, 2, width=4), n_background_features=0.25, max_epochs=1).fit(X, Y)
    assert wd.n_features_ == 16 and wd.n_background_features_ == 4
    import torchvision

    X32 = np.repeat(np.repeat(X[:16], 4, axis=2), 4, axis=3)
    wd = WassersteinDisentangler(torchvision.models.resnet18(weights=None), max_epochs=1, batch_size=8).fit(X32, Y[:16])
    assert wd.n_features_ == 512 and wd.n_background_features_ == round(512 * 250 / 2048)
    assert wd.transform(X32[:2], part="bg").shape == (2, 62)


def test_fits_a_dataset_with_labels(toy):
    X, Y = toy

    class DS(torch.utils.data.Dataset):
        labels = Y

        def __len__(self):
            return len(X)

        def __getitem__(self, i):
            return torch.as_tensor(X[i]), 0

    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 1}).fit(DS())
    assert wd.transform(DS()).shape == (96, 12)
    with pytest.raises(ValueError, match="carries no"):
        WassersteinDisentangler(**FAST).fit(torch.utils.data.TensorDataset(torch.as_tensor(X)))


def test_disentanglement_report_has_the_four_probes(toy):
    X, Y = toy
    wd = WassersteinDisentangler(**FAST).fit(X, Y)
    rep = wd.disentanglement_report(X, Y, random_state=0)
    assert {"fg_from_fg", "bg_from_bg", "fg_from_bg", "bg_from_fg", "chance_fg", "chance_bg"} <= set(rep)
    assert all(0 <= rep[k] <= 1 for k in rep if k.startswith(("fg", "bg", "chance")))
    assert rep.n_train + rep.n_test == 96
    rep2 = wd.disentanglement_report(X[:50], Y[:50], X_test=X[50:], y_test=Y[50:])
    assert rep2.n_test == 46
    with pytest.raises(ValueError, match="y_test"):
        wd.disentanglement_report(X, Y, y_test=Y)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"extractor": "vgg"}, ValueError, "extractor"),
        ({"extractor": 3}, TypeError, "extractor"),
        ({"n_background_features": 1.5}, ValueError, "n_background_features"),
        ({"n_background_features": 0}, ValueError, "n_background_features"),
        ({"n_background_features": 16}, ValueError, "leaves no foreground"),
        ({"n_background_features": "half"}, TypeError, "n_background_features"),
        ({"alpha": -1.0}, ValueError, "alpha"),
        ({"lambda_gp": "ten"}, TypeError, "lambda_gp"),
        ({"critic_steps": -1}, ValueError, "critic_steps"),
        ({"critic": "learned"}, ValueError, "critic"),
        ({"transform_part": "all"}, ValueError, "transform_part"),
        ({"betas": (0.0,)}, ValueError, "betas"),
        ({"betas": (1.0, 0.9)}, ValueError, "betas"),
        ({"extractor_params": [16]}, TypeError, "extractor_params"),
        ({"critic_layers": 0}, ValueError, "critic_layers"),
        ({"critic_hidden": 2.5}, ValueError, "critic_hidden"),
        ({"critic_lr": 0.0}, ValueError, "critic_lr"),
        ({"sliced_power": 0.5}, ValueError, "sliced_power"),
        ({"sliced_whiten": "yes"}, ValueError, "sliced_whiten"),
        ({"warmup_epochs": -1}, ValueError, "warmup_epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"weights": 3}, ValueError, "weights"),
        ({"device": "tpu9"}, ValueError, "device"),
    ],
)
def test_bad_parameters_are_named(toy, params, error, match):
    X, Y = toy
    with pytest.raises(error, match=match):
        WassersteinDisentangler(**{**FAST, **params}).fit(X, Y)


def test_bad_data_is_named(toy):
    X, Y = toy
    wd = WassersteinDisentangler(**FAST)
    with pytest.raises(ValueError, match="two columns"):
        wd.fit(X, Y[:, 0])
    with pytest.raises(ValueError, match=r"y\[:, 0\] \(foreground\)` holds a single class"):
        wd.fit(X, np.stack([np.zeros(96), Y[:, 1]], 1))
    with pytest.raises(ValueError, match="two distinct known background"):
        wd.fit(X, np.stack([Y[:, 0], np.full(96, -1)], 1))
    with pytest.raises(ValueError, match="Inconsistent numbers"):
        wd.fit(X[:10], Y)
    with pytest.raises(ValueError, match="shape"):
        wd.fit(X[:, 0], Y)
    wd.fit(X, Y)
    with pytest.raises(ValueError, match="part"):
        wd.transform(X, part="foreground")
    with pytest.raises(ValueError, match="holds images of shape"):
        wd.transform(X[:, :, :4])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        WassersteinDisentangler().transform(X)


def test_continuous_labels_are_refused_in_either_column(toy):
    X, Y = toy
    rng = np.random.RandomState(0)
    with pytest.raises(ValueError, match=r"y\[:, 0\] \(foreground\)` must hold class labels"):
        WassersteinDisentangler(**FAST).fit(X, np.stack([rng.rand(96), rng.randint(0, 2, 96)], 1))
    with pytest.raises(ValueError, match=r"y\[:, 1\] \(known backgrounds\)` must hold class labels"):
        WassersteinDisentangler(**FAST).fit(X, np.stack([rng.randint(0, 2, 96), rng.rand(96)], 1))
    with pytest.raises(ValueError, match="NaN"):
        WassersteinDisentangler(**FAST).fit(X, np.stack([rng.randint(0, 2, 96), np.full(96, np.nan)], 1))


def test_integer_labels_beside_text_labels_are_class_labels(toy):
    """A (str, int) label table is an object array; each column is checked as what it holds."""
    X, Y = toy
    bg = np.where(Y[:, 1] == "snow", 1, np.where(Y[:, 1] == "grass", 0, -1))
    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 1}).fit(X, np.stack([Y[:, 0], bg], 1).astype(object))
    assert list(wd.background_classes_) == [0, 1] and list(wd.classes_) == ["cat", "dog", "eel"]


def test_tags_say_images_and_two_label_columns():
    tags = WassersteinDisentangler().__sklearn_tags__()
    assert tags.estimator_type == "classifier" and not tags.input_tags.two_d_array and not tags.input_tags.allow_nan
    assert tags.target_tags.multi_output and not tags.target_tags.single_output and tags.target_tags.required


def test_max_epochs_zero_is_refused(toy):
    X, Y = toy
    with pytest.raises(ValueError, match="max_epochs"):
        WassersteinDisentangler(**{**FAST, "max_epochs": 0}).fit(X, Y)


def test_non_finite_images_are_refused_at_fit_and_predict(toy):
    X, Y = toy
    bad = X.copy()
    bad[3, 0, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        WassersteinDisentangler(**FAST).fit(bad, Y)
    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 1}).fit(X, Y)
    bad[3, 0, 2, 2] = np.inf
    for method in (wd.transform, wd.predict, wd.predict_proba, wd.predict_background):
        with pytest.raises(ValueError, match="NaN or infinity"):
            method(bad)


def test_images_of_another_size_or_channel_count_are_refused_and_any_strides_accepted(toy):
    X, Y = toy
    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 1}).fit(X, Y)
    with pytest.raises(ValueError, match="holds images of shape"):
        wd.predict(np.zeros((4, 3, 16, 16), "float32"))
    with pytest.raises(ValueError, match="channel"):
        wd.transform(X[:, :2])
    flipped = X[::-1, :, ::-1]  # negative strides
    np.testing.assert_allclose(wd.transform(flipped), wd.transform(np.ascontiguousarray(flipped)), rtol=1e-6)
    assert wd.input_shape_ == (3, 8, 8)


def test_verbose_and_batch_size_mean_what_they_say(toy, capsys):
    X, Y = toy
    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 1}).fit(X, Y)
    assert capsys.readouterr().out == ""  # verbose=0: silent
    z = wd.transform(X)
    np.testing.assert_allclose(wd.set_params(batch_size=-1).transform(X), z, rtol=1e-5, atol=1e-6)
    WassersteinDisentangler(**{**FAST, "max_epochs": 1}, critic="trained", verbose=1).fit(X, Y)
    out = capsys.readouterr().out
    assert "train_ce_fg" in out and "train_critic_loss" in out and "train_gp" in out  # skorch's epoch table


def test_critic_halves_widths_and_takes_integer_or_one_hot_labels():
    critic = Critic(20, 5, hidden_features=64, n_layers=3)
    linears = [m for m in critic.net if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [64, 32, 16, 1]
    assert linears[0].in_features == 20 + 5
    assert all(m.negative_slope == 0.1 for m in critic.net if isinstance(m, nn.LeakyReLU))
    z, labels = torch.randn(7, 20), torch.randint(0, 5, (7,))
    torch.testing.assert_close(critic(z, labels), critic(z, critic.one_hot(labels)))
    with pytest.raises(ValueError, match="n_labels"):
        Critic(4, 0)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 40), d=st.integers(1, 6), label=st.integers(0, 2), seed=st.integers(0, 10_000))
def test_wasserstein_estimate_is_zero_when_labels_carry_no_information(n, d, label, seed):
    """With one label value the joint and product samples coincide, so ``E_joint[D] - E_prod[D] = 0``."""
    torch.manual_seed(seed)
    critic = Critic(d, 3)
    w, gp = wasserstein_terms(critic, torch.randn(n, d), torch.full((n,), label))
    assert abs(float(w.detach())) < 1e-5 and float(gp.detach()) >= 0


def test_critic_distance_is_not_capped_by_the_label_and_ignores_the_feature_scale():
    """The penalty on the features only: a critic finds a distance above sqrt(2) P(l != l').

    With the label inside the penalised gradient the critic would be 1-Lipschitz
    along the label axis, so that ``W <= sqrt(2) P(l != l')`` (1.06 for four
    balanced labels) however far apart the features are; here the classes sit
    3.3 standard deviations apart (optimum about 2.4). Standardised inputs make
    the estimate the same for features scaled by 0.01.
    """
    torch.manual_seed(0)
    labels = torch.arange(256) % 4
    z = torch.randn(256, 6) * 0.1
    z[:, :4] += 3.0 * nn.functional.one_hot(labels, 4)
    critic = ProjectionCritic(6, 4)
    opt = torch.optim.Adam(critic.parameters(), lr=0.01, betas=(0.0, 0.9))
    for _ in range(200):
        w, gp = wasserstein_terms(critic, z, labels)
        opt.zero_grad()
        (-w + 10 * gp).backward()
        opt.step()
    torch.manual_seed(1)
    w_far = float(wasserstein_terms(critic, z, labels, penalty=False)[0].detach())
    torch.manual_seed(1)
    w_small = float(wasserstein_terms(critic, 0.01 * z, labels, penalty=False)[0].detach())
    assert w_far > 1.5 > np.sqrt(2) * 0.75  # measured 2.61
    assert w_small == pytest.approx(w_far, rel=2e-3)  # up to the 1e-5 guard of the standard deviation


def test_critic_conditioning_projection_or_embedding(toy):
    X, Y = toy
    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 1}).fit(X, Y)
    assert isinstance(wd.critic_["fg"], ProjectionCritic) and wd.critic_["fg"].n_labels == 2
    wd = WassersteinDisentangler(**{**FAST, "max_epochs": 1}, critic_conditioning="embedding").fit(X, Y)
    assert isinstance(wd.critic_["bg"], Critic) and wd.critic_["bg"].n_labels == 3
    with pytest.raises(ValueError, match="critic_conditioning"):
        WassersteinDisentangler(**FAST, critic_conditioning="concat").fit(X, Y)
    critic = ProjectionCritic(5, 3, hidden_features=8, n_layers=2)
    assert [m.out_features for m in critic.net if isinstance(m, nn.Linear)] == [8, 4, 3]
    z, labels = torch.randn(6, 5), torch.randint(0, 3, (6,))
    torch.testing.assert_close(critic(z, labels), critic.net(z).gather(1, labels[:, None]).squeeze(1))


def test_disentangler_module_splits_features():
    m = DisentanglerModule(nn.Flatten(), 12, 5, n_classes=3, n_background_classes=2)
    z = torch.arange(24.0).reshape(2, 12)
    z_fg, z_bg = m.split(z)
    assert z_fg.shape == (2, 7) and z_bg.shape == (2, 5) and torch.equal(torch.cat([z_fg, z_bg], 1), z)


def test_trained_critics_take_the_background_out_of_the_foreground_features():
    """End to end on digits over textures: the critics, not the rest of the objective, lower bg <- z_fg.

    The disentangler is trained on a small diverse split (every digit on every
    texture) with the default critics and with ``critic_steps=0`` (critics
    never trained), all else equal; a linear probe reads the background from
    ``z_fg`` (fit on the training latents, scored on the held-out test split;
    chance 0.10), at batch 64 and ``lr=1e-3``. Measured on seeds 0 / 1 / 2: with critics 0.80 / 0.83 / 0.80,
    without 0.96 / 0.96 / 0.93; the foreground from ``z_fg`` 0.87 / 0.90 /
    0.80 and the background from ``z_bg`` >= 0.99 with critics. The critics
    lower the cross probe but do not bring it to chance (see the user guide).
    """
    data = make_foreground_background(1000, 10, 10, 400, image_size=16, random_state=0)
    reports = {}
    for steps in (5, 0):
        wd = WassersteinDisentangler(max_epochs=6, extractor_params={"width": 16}, critic_steps=steps, random_state=0,
                                     **PREVIOUS)
        wd.fit(data.diverse.X, data.diverse.labels)
        reports[steps] = wd.disentanglement_report(
            data.diverse.X, data.diverse.labels, X_test=data.test.X, y_test=data.test.labels
        )
    assert reports[0].bg_from_fg >= 0.9  # measured 0.96: without critics z_fg holds the background
    assert reports[5].bg_from_fg <= reports[0].bg_from_fg - 0.1  # measured 0.80
    assert reports[5].fg_from_fg >= 0.75 and reports[5].bg_from_bg >= 0.95  # measured 0.87 and 0.99


@pytest.mark.slow
def test_critics_remove_label_information_across_the_split():
    """Eqs. 8-10 with alpha = 0: the Wasserstein terms alone strip the other label from each part.

    A linear extractor mixes a foreground and a background signal into all six
    features. With trained critics, linear probes predict the background from
    z_fg and the foreground from z_bg much worse than with untrained critics.
    Sum of the two cross accuracies (chance 0.5), the extractor's initial
    weights seeded with 0: untrained 1.47, trained 0.48 (before the critics
    were fixed, see the user guide: 1.21 and 0.54).
    """
    rng = np.random.RandomState(0)
    n = 1200
    fg, bg = rng.randint(0, 4, n), rng.randint(0, 4, n)
    X = rng.randn(n, 1, 2, 5).astype("float32")
    X[:, 0, 0, 0] += 2 * bg
    X[:, 0, 0, 1] -= 1.5 * bg
    X[:, 0, 1, 0] += 2 * fg
    X[:, 0, 1, 1] += 1.5 * fg
    Y = np.stack([fg, bg], 1)
    cross = {}
    for steps in (0, 5):
        with torch.random.fork_rng():  # the extractor passed in is built by the caller: seed it too
            torch.manual_seed(0)
            extractor = nn.Sequential(nn.Flatten(), nn.Linear(10, 6))
        wd = WassersteinDisentangler(
            extractor,
            n_background_features=3,
            alpha=0.0,
            critic_steps=steps,
            warmup_epochs=0,
            max_epochs=20,
            random_state=0,
            **PREVIOUS,
        ).fit(X[:800], Y[:800])
        rep = wd.disentanglement_report(X[:800], Y[:800], X_test=X[800:], y_test=Y[800:])
        cross[steps] = rep.fg_from_bg + rep.bg_from_fg
    assert cross[0] >= 1.1
    assert cross[5] <= 0.85
    assert cross[0] - cross[5] >= 0.4


@pytest.mark.slow
def test_section6_foreground_features_survive_the_broken_correlation():
    """D3S section 6 on the embedded foreground/background digits (seed 0 of the measured 0-2).

    The disentangler is trained on the diverse split (every digit on every
    texture); linear probes are trained on the correlated split (each digit on
    one texture) and tested on the anti-correlated split. Measured on seed 0
    (the earlier critics in parentheses): z_fg probe, foreground on
    anti-correlated 0.84 (0.72); all features 0.53 (0.41); ERM trained on the
    correlated split 0.00; z_bg probe, background on anti-correlated 1.00;
    table 2: foreground from z_bg 0.13 (0.13), chance 0.10, foreground from
    z_fg 0.92.
    """
    data = make_foreground_background(2000, 1000, 500, 1000, image_size=16, random_state=0)
    train, test = data.train, data.test

    def probe(Z_train, y_train, Z_test, y_test):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(Z_train, y_train)
        return float(np.mean(model.predict(Z_test) == y_test))

    wd = WassersteinDisentangler(max_epochs=8, extractor_params={"width": 16}, random_state=0, **PREVIOUS)
    wd.fit(data.diverse.X, data.diverse.labels)
    fg_correct = probe(wd.transform(train.X), train.y, wd.transform(test.X), test.y)
    fg_all = probe(wd.transform(train.X, part="both"), train.y, wd.transform(test.X, part="both"), test.y)
    bg_correct = probe(
        wd.transform(train.X, part="bg"), train.background, wd.transform(test.X, part="bg"), test.background
    )
    erm = ERMClassifier(max_epochs=8, module__width=16, validation_fraction=0, patience=None, random_state=0)
    base = as_base_model(erm.fit(train.X, train.y), train.X)
    fg_erm = probe(base.embed(train.X), train.y, base.embed(test.X), test.y)
    table2 = wd.disentanglement_report(data.diverse.X, data.diverse.labels, X_test=test.X, y_test=test.labels)

    assert fg_correct >= 0.55  # measured 0.84 (seeds 0-2 in benchmarks/ablation_wasserstein.py: >= 0.70)
    assert fg_erm <= 0.05  # measured 0.00: the plain ERM features are the background
    assert fg_correct - fg_all >= 0.15  # measured 0.31
    assert bg_correct >= 0.95  # measured 1.00
    assert table2.fg_from_bg <= 0.2 and table2.fg_from_fg >= 0.85  # measured 0.13 and 0.92


def test_sliced_estimate_trains_no_critic_and_takes_the_background_out_of_the_foreground_features():
    """``critic="sliced"`` on standardised features (Wasserstein-1, batch 64): it lowers bg <- z_fg, no critic trained.

    The same small diverse split as above; the earlier sliced estimate
    (``sliced_whiten=False, sliced_power=1``) in place of the critics against
    ``critic_steps=0`` (no Wasserstein signal), both at batch 64 and
    ``lr=1e-3``. The critics' optimiser never steps. Measured at seed 0:
    bg <- z_fg with the sliced estimate 0.56, without critics 0.96 (the
    trained critics: 0.80, above); fg <- z_fg 0.87 and bg <- z_bg 0.99.
    """
    data = make_foreground_background(1000, 10, 10, 400, image_size=16, random_state=0)
    reports = {}
    for params in ({"critic": "sliced", "sliced_whiten": False, "sliced_power": 1}, {"critic_steps": 0}):
        wd = WassersteinDisentangler(max_epochs=6, extractor_params={"width": 16}, random_state=0,
                                     **{**PREVIOUS, **params})
        wd.fit(data.diverse.X, data.diverse.labels)
        if params.get("critic") == "sliced":  # the estimate reaches the extractor; the critics never step
            assert "train_w_fg" in wd.history[-1] and not wd.critic_optimizer_.state
        reports[params.get("critic", "none")] = wd.disentanglement_report(
            data.diverse.X, data.diverse.labels, X_test=data.test.X, y_test=data.test.labels
        )
    assert reports["none"].bg_from_fg >= 0.9  # measured 0.96
    assert reports["sliced"].bg_from_fg <= 0.7  # measured 0.56
    assert reports["sliced"].fg_from_fg >= 0.75 and reports["sliced"].bg_from_bg >= 0.95


def test_default_takes_both_labels_across_the_split_to_chance():
    """The default (whitened sliced W2^2, batch 256, lr 0.01) against ``critic_steps=0`` on shapes over tints.

    1,000 diverse images (every shape on every tint), 60 epochs; linear probes
    fit on the training latents, scored on the held-out test split (chance
    0.33 for either label). Measured at seed 0: bg <- z_fg 0.47 and
    fg <- z_bg 0.42 with the default, 1.00 and 0.99 with untrained critics
    (``critic="trained", critic_steps=0``), the direct probes 1.00. The
    benchmark's 2,000 images reach 0.40 / 0.39 on three seeds (user guide);
    the earlier default (trained critics, batch 64, 8 epochs) gave 0.95 / 0.66
    there.
    """
    data = make_shapes_on_tints(1000, 10, 10, 300, image_size=16, random_state=0)
    reports = {}
    for name, params in (("default", {}), ("none", {"critic": "trained", "critic_steps": 0})):
        wd = WassersteinDisentangler(max_epochs=60, extractor_params={"width": 16}, random_state=0, **params)
        wd.fit(data.diverse.X, data.diverse.labels)
        reports[name] = wd.disentanglement_report(
            data.diverse.X, data.diverse.labels, X_test=data.test.X, y_test=data.test.labels
        )
    assert reports["none"].bg_from_fg >= 0.95 and reports["none"].fg_from_bg >= 0.95  # measured 1.00, 0.99
    assert reports["default"].bg_from_fg <= 0.55 and reports["default"].fg_from_bg <= 0.5  # measured 0.47, 0.42
    assert reports["default"].fg_from_fg >= 0.95 and reports["default"].bg_from_bg >= 0.95  # measured 1.00, 1.00
