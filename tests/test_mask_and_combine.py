"""MaskAndCombineRetrainer: sklearn contract, skorch training, caching, model selection."""

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from torch.utils.data import TensorDataset

from _mac_data import blob_toy, tint_toy

from skshortcut import ERMClassifier, MaskAndCombineRetrainer, worst_group_scorer
from skshortcut.retraining import mask_and_combine as mac_module
from skshortcut.retraining._mac_batches import MaskMaker


@pytest.fixture(scope="module")
def toy():
    """Class = a bright blob on the left half; a spurious bright blob on the right half."""
    X, y, spurious = blob_toy()
    groups = y * 2 + spurious
    labels = np.array(["cat", "dog"])[y]
    erm = ERMClassifier(max_epochs=3, module__width=8, random_state=0, device="cpu").fit(X, labels)
    return X, labels, groups, erm


def small(erm, **kw):
    params = dict(max_epochs=2, random_state=0, device="cpu")
    params.update(kw)
    return MaskAndCombineRetrainer(FrozenEstimator(erm), **params)


def test_fit_predict_keeps_user_labels_and_history(toy):
    X, y, g, erm = toy
    mac = small(erm, validation_data=(X, y, g)).fit(X, y)
    pred = mac.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= {"cat", "dog"}
    proba = mac.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert list(mac.classes_) == ["cat", "dog"]
    assert 0.0 <= mac.score(X, y) <= 1.0
    h = mac.history
    for key in ("train_loss", "train_loss_ce", "train_loss_rmv", "train_loss_comb", "valid_wga", "dur"):
        assert len(h[:, key]) == 2
    # Eq. 6: the epoch loss is the weighted sum of its terms
    ce, rmv, comb = (np.array(h[:, k]) for k in ("train_loss_ce", "train_loss_rmv", "train_loss_comb"))
    np.testing.assert_allclose(h[:, "train_loss"], ce + 2.0 * rmv + 3.0 * comb, rtol=1e-5)
    assert mac.best_epoch_ in (1, 2)
    assert mac.best_score_ == pytest.approx(max(h[:, "valid_wga"]))
    assert mac.mask_pixels_ == round(0.3 * 144)
    assert not hasattr(mac, "train_cache_")


def test_best_epoch_head_is_kept(toy, monkeypatch):
    X, y, g, erm = toy
    mac = small(erm, max_epochs=4, lr=0.05, validation_data=(X, y, g)).fit(X, y)
    wga = mac.history[:, "valid_wga"]
    assert mac.best_epoch_ == int(np.argmax(wga)) + 1
    # the kept head reproduces the best epoch's validation worst-group accuracy
    from skshortcut import worst_group_accuracy

    assert worst_group_accuracy(y, mac.predict(X), groups=g) == pytest.approx(max(wga))


def test_pickle_round_trip(toy):
    import pickle

    X, y, g, erm = toy
    mac = small(erm).fit(X, y)
    again = pickle.loads(pickle.dumps(mac))
    np.testing.assert_array_equal(again.predict_proba(X), mac.predict_proba(X))


def test_random_state_makes_fits_reproducible(toy):
    X, y, g, erm = toy
    a = small(erm).fit(X, y).predict_proba(X)
    b = small(erm).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_masks_are_cached_once_not_recomputed_per_epoch(toy, monkeypatch):
    X, y, g, erm = toy
    calls = []
    original = MaskMaker.heatmaps

    def counting(self, X_, target):
        calls.append(len(X_))
        return original(self, X_, target)

    monkeypatch.setattr(MaskMaker, "heatmaps", counting)
    small(erm, max_epochs=3).fit(X, y)
    assert sum(calls) == len(X)  # once per sample
    calls.clear()
    small(erm, max_epochs=3, cache_masks=False).fit(X, y)
    assert sum(calls) == 3 * len(X)  # every sample, every epoch


def test_cached_and_recomputed_masks_train_the_same_head(toy):
    X, y, g, erm = toy
    # tie-breaking draws differ between the two paths, so compare with ties impossible: top_k=all pixels
    a = small(erm, top_k=1.0).fit(X, y).predict_proba(X)
    b = small(erm, top_k=1.0, cache_masks=False).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_compute_masks_and_table(toy):
    X, y, g, erm = toy
    mac = small(erm, top_k=20).fit(X, y)
    masks, heat = mac.compute_masks(X[:10], y[:10], return_heatmaps=True)
    assert masks.shape == (10, 12, 12) and masks.dtype == bool
    assert (masks.sum(axis=(1, 2)) == 20).all()
    assert heat.shape == (10, 12, 12)
    region = np.zeros((12, 12), bool)
    region[:, :6] = True
    table = mac_module.mask_region_table(masks, region, g[:10], heatmaps=heat)
    for row in table.values():
        assert row["mask_on_core"] + row["mask_on_spurious"] == pytest.approx(1.0)


def test_module_options_and_class_balance(toy):
    X, y, g, erm = toy
    base = small(erm, module="base", alpha=0.0, beta=0.0, max_epochs=1, lr=1e-12).fit(X, y)
    # a head started from the base model's head and barely trained predicts as the base model
    np.testing.assert_array_equal(base.predict(X), erm.predict(X))
    fresh = small(erm, module="fresh").fit(X, y)
    assert isinstance(fresh.module_, torch.nn.Linear)
    custom = small(erm, module=torch.nn.Linear, module__in_features=erm.module_.fc.in_features, module__out_features=2)
    custom.fit(X, y)
    # a user's module class, built by skorch from module__*, is what is trained: an nn.Linear of the
    # same shape starts from the same seeded weights as the fresh head and ends where it ends
    assert type(custom.module_) is torch.nn.Linear and custom.module_.out_features == 2
    np.testing.assert_array_equal(custom.predict_proba(X), fresh.predict_proba(X))
    keep = np.r_[np.flatnonzero(y == "cat"), np.flatnonzero(y == "dog")[:20]]
    bal = small(erm, class_balanced=True).fit(X[keep], y[keep])
    assert bal.history[-1, "train_batch_count"] == 2  # 40 balanced samples in batches of 32


def test_works_on_datasets_and_tensors(toy):
    X, y, g, erm = toy
    y_idx = (y == "dog").astype(int)
    ds = TensorDataset(torch.from_numpy(X), torch.from_numpy(y_idx))
    # an nn.Module base model: its logits are taken to be the sorted classes (0, 1)
    params = dict(max_epochs=2, random_state=0, device="cpu")
    mac = MaskAndCombineRetrainer(erm.module_, validation_data=(ds, None, g), class_balanced=True, **params).fit(ds)
    assert mac.predict(ds).shape == (len(X),)
    mac_t = MaskAndCombineRetrainer(erm.module_, **params).fit(torch.from_numpy(X), y_idx)
    assert set(mac_t.predict(torch.from_numpy(X))) <= {0, 1}


def test_estimator_none_fits_erm_first(toy):
    X, y, g, _ = toy
    mac = MaskAndCombineRetrainer(max_epochs=1, random_state=0, device="cpu", top_k=0.5,
                                  estimator=None).set_params(batch_size=48)
    mac.fit(X, y)
    assert isinstance(mac.estimator_, ERMClassifier)
    assert mac.estimator is None


def test_nn_module_estimator_is_not_mutated(toy):
    X, y, g, erm = toy
    module = erm.module_
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    mac = MaskAndCombineRetrainer(module, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    assert module.training
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k])
    assert mac.predict(X[:3]).shape == (3,)


def test_clone_and_grid_search_over_alpha_beta(toy, routing):
    X, y, g, erm = toy
    n_train = 64
    est = small(erm, max_epochs=1, validation_data=(X[n_train:], y[n_train:], g[n_train:]))
    assert clone(est).get_params()["alpha"] == 2.0
    cv = PredefinedSplit(np.r_[-np.ones(n_train), np.zeros(len(X) - n_train)])
    search = GridSearchCV(est, {"alpha": [0.0, 1.0], "beta": [0.0, 2.0]}, scoring=worst_group_scorer, cv=cv, refit=False)
    search.fit(X, y, groups=g)
    # each setting is scored by the validation worst-group accuracy of the epoch it keeps (one epoch
    # here): validation_data reached every clone and the scorer got the groups of the test fold
    results = search.cv_results_
    for params, score in zip(results["params"], results["mean_test_score"]):
        fitted = clone(est).set_params(**params).fit(X[:n_train], y[:n_train])
        assert fitted.best_epoch_ == 1
        assert score == pytest.approx(fitted.best_score_)


def test_bad_parameters_raise_named_errors(toy):
    X, y, g, erm = toy
    cases = [
        (dict(alpha=-1.0), ValueError, "'alpha' parameter"),
        (dict(alpha=float("inf")), ValueError, "'alpha' parameter"),
        (dict(beta="3"), TypeError, "'beta' parameter"),
        (dict(cam_target="true"), ValueError, "'cam_target' parameter"),
        (dict(module="linear"), ValueError, "'module' parameter"),
        (dict(top_k=0.0), ValueError, "'top_k' parameter"),
        (dict(top_k=10_000), ValueError, "`top_k`"),
        (dict(top_k="all"), TypeError, "'top_k' parameter"),
        (dict(step_size=0), ValueError, "'step_size' parameter"),
        (dict(gamma=2.0), ValueError, "'gamma' parameter"),
        (dict(max_epochs=0), ValueError, "'max_epochs' parameter"),
        (dict(batch_size=0), ValueError, "'batch_size' parameter"),
        (dict(batch_size=-1), ValueError, "'batch_size' parameter"),
        (dict(device="tpu9"), ValueError, "'device' parameter"),
        (dict(train_split=lambda ds, y: (ds, None)), ValueError, "'train_split' parameter"),
        (dict(validation_data="val"), ValueError, "'validation_data' parameter"),
        (dict(validation_data=(X, y)), ValueError, "`validation_data`"),
        (dict(validation_data=(X[:5], y, g)), ValueError, "Inconsistent"),
        (dict(validation_data=(X[:, :, :6], y, g)), ValueError, r"validation_data\[0\]"),
        (dict(validation_data=(X, np.array(["cow"] * len(X)), g)), ValueError, r"validation_data\[1\]"),
    ]
    for params, exc, match in cases:
        with pytest.raises(exc, match=match):
            small(erm, **params).fit(X, y)
    with pytest.raises(ValueError, match="`X` must be images"):
        small(erm).fit(X[:, 0], y)
    with pytest.raises(ValueError, match="`y` holds a single class"):
        small(erm).fit(X, np.array(["cat"] * len(X)))
    with pytest.raises(ValueError, match="Inconsistent"):
        small(erm).fit(X, y[:10])
    with pytest.raises(sklearn.exceptions.NotFittedError):
        MaskAndCombineRetrainer(erm).predict(X)


def test_every_constructor_parameter_is_constrained():
    import inspect

    names = [p for p in inspect.signature(MaskAndCombineRetrainer).parameters if p != "kwargs"]
    assert sorted(set(names) - set(MaskAndCombineRetrainer._parameter_constraints)) == []


def test_unfitted_base_model_error_says_to_freeze_the_fitted_one(toy):
    X, y, g, erm = toy
    with pytest.raises(TypeError, match="FrozenEstimator"):
        MaskAndCombineRetrainer(ERMClassifier()).fit(X, y)
    with pytest.raises(TypeError, match="FrozenEstimator"):  # what clone makes of a bare fitted net
        clone(MaskAndCombineRetrainer(erm)).fit(X, y)
    # a frozen fitted net survives clone: the retrainer works on the user's fitted module itself
    mac = clone(small(erm, max_epochs=1)).fit(X, y)
    assert mac.base_model_.module is erm.module_


def test_cross_validate_with_a_frozen_base_model_runs_every_fold(toy, routing):
    from sklearn.model_selection import cross_validate

    X, y, g, erm = toy
    mac = MaskAndCombineRetrainer(FrozenEstimator(erm), max_epochs=1, random_state=0, device="cpu")
    res = cross_validate(mac, X, y, params={"groups": g}, cv=3, error_score="raise",
                         scoring={"wga": worst_group_scorer, "acc": "accuracy"})
    assert len(res["test_wga"]) == 3 and np.isfinite(res["test_wga"]).all()
    assert np.isfinite(res["test_acc"]).all() and (res["test_acc"] > 0).all()


def test_groups_as_fit_parameter_get_an_error_that_says_where_they_go(toy):
    from sklearn.model_selection import cross_validate

    X, y, g, erm = toy
    with pytest.raises(TypeError, match="validation_data=.*metadata routing"):
        cross_validate(small(erm, max_epochs=1), X, y, params={"groups": g}, cv=2, error_score="raise")


def test_binary_decision_function_is_one_dimensional_and_roc_auc_works(toy):
    from sklearn.model_selection import cross_val_score

    X, y, g, erm = toy
    mac = small(erm, max_epochs=1).fit(X, y)
    scores = mac.decision_function(X)
    assert scores.shape == (len(X),)
    # positive for classes_[1], and the same ranking as predict_proba
    np.testing.assert_array_equal(mac.predict(X), mac.classes_[(scores > 0).astype(int)])
    proba = mac.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(scores, np.log(proba[:, 1]) - np.log(proba[:, 0]), rtol=1e-4, atol=1e-4)
    auc = cross_val_score(small(erm, max_epochs=1), X, y, cv=3, scoring="roc_auc", error_score="raise")
    assert np.isfinite(auc).all() and (auc > 0.5).all()


def test_score_is_scikit_learns_accuracy(toy):
    from sklearn.base import ClassifierMixin

    X, y, g, erm = toy
    assert MaskAndCombineRetrainer.score is ClassifierMixin.score
    mac = small(erm, max_epochs=1).fit(X, y)
    assert mac.score(X, y) == np.mean(mac.predict(X) == y)


def test_non_finite_images_are_refused_at_fit_and_predict(toy):
    X, y, g, erm = toy
    bad = X.copy()
    bad[3, 1, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        small(erm, max_epochs=1).fit(bad, y)
    mac = small(erm, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="NaN or infinity"):
        mac.predict(bad)
    bad[3, 1, 2, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        mac.predict_proba(bad)
    with pytest.raises(ValueError, match="NaN or infinity"):
        small(erm, max_epochs=1, validation_data=(bad, y, g)).fit(X, y)


def test_images_of_another_shape_at_predict_are_refused_and_any_strides_accepted(toy):
    X, y, g, erm = toy
    mac = small(erm, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="`X` holds images of shape"):
        mac.predict(X[:, :, :6])
    with pytest.raises(ValueError, match="channel"):
        mac.decision_function(X[:, :2])
    with pytest.raises(ValueError, match="`X` holds images of shape"):
        mac.compute_masks(X[:, :, :, :6])
    flipped = X[::-1, :, ::-1, ::-1]  # negative strides
    np.testing.assert_array_equal(mac.predict_proba(flipped), mac.predict_proba(np.ascontiguousarray(flipped)))
    np.testing.assert_array_equal(small(erm, max_epochs=1).fit(flipped, y[::-1]).predict_proba(X),
                                  small(erm, max_epochs=1).fit(np.ascontiguousarray(flipped), y[::-1]).predict_proba(X))


def test_continuous_targets_are_refused(toy):
    X, y, g, erm = toy
    with pytest.raises(ValueError, match="`y` must hold class labels"):
        small(erm, max_epochs=1).fit(X, np.linspace(0, 1, len(X)))


def test_validation_data_chooses_the_epoch_but_does_not_change_training(toy):
    X, y, g, erm = toy
    plain = small(erm, max_epochs=3).fit(X, y)
    selected = small(erm, max_epochs=3, validation_data=(X, y, g)).fit(X, y)
    np.testing.assert_array_equal(plain.history[:, "train_loss"], selected.history[:, "train_loss"])
    assert plain.best_epoch_ is None and selected.best_epoch_ in (1, 2, 3)
    assert selected.history[:, "valid_wga_best"].count(True) >= 1


def test_verbose_zero_is_silent_and_one_prints_the_epoch_table(toy, capsys):
    X, y, g, erm = toy
    small(erm, max_epochs=1, validation_data=(X, y, g), verbose=0).fit(X, y).predict(X)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    small(erm, max_epochs=1, validation_data=(X, y, g), verbose=1).fit(X, y)
    loud = capsys.readouterr()
    assert "valid_wga" in loud.out and "train_loss_comb" in loud.out


def test_batch_size_is_the_training_and_the_inference_batch(toy):
    X, y, g, erm = toy
    mac = small(erm, max_epochs=1, batch_size=20).fit(X, y)
    assert mac.history[-1, "train_batch_count"] == 5  # 96 samples in steps of 20
    seen = []
    handle = mac.base_model_.module.register_forward_pre_hook(lambda mod, inp: seen.append(len(inp[0])))
    try:
        mac.predict(X)
        mac.compute_masks(X)
    finally:
        handle.remove()
    assert max(seen) == 20 and sum(seen) >= 2 * len(X)


def test_fit_warns_when_validation_worst_group_does_not_rise_above_the_base_model():
    # a tint over the whole image: the shortcut is under every mask, Mask-and-Combine cannot remove it
    from sklearn.frozen import FrozenEstimator

    from skshortcut import ERMClassifier, MaskAndCombineRetrainer

    X, y, tint = tint_toy(agreement=0.97, tint_strength=0.7)  # red tint everywhere, agreeing with y
    groups = 2 * y + tint
    erm = ERMClassifier(max_epochs=3, module__width=8, random_state=0, device="cpu").fit(X, y)
    Xv, yv, gv = X[:80], y[:80], groups[:80]
    mac = MaskAndCombineRetrainer(FrozenEstimator(erm), max_epochs=2, validation_data=(Xv, yv, gv), random_state=0,
                                  device="cpu")
    with pytest.warns(UserWarning, match=r"did not lift the validation worst-group accuracy above the base model's"):
        mac.fit(X[80:], y[80:])
    assert mac.best_score_ <= mac.base_valid_score_ + 0.01
