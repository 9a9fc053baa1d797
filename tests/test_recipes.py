"""ERMClassifier's training recipes: fine-tuning (the DFR authors' SGD + crop/flip) and head-only training."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import LRScheduler

from skshortcut import ERMClassifier
from skshortcut.augment import crop_flip
from skshortcut.erm import RECIPES


@pytest.fixture
def images():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 3, 16, 16).astype("float32")
    y = np.arange(40) % 2
    X[:, 0] += 0.5 * y[:, None, None]
    return X, y


def test_head_only_leaves_the_backbone_bit_identical(images):
    X, y = images
    clf = ERMClassifier(recipe="head_only", max_epochs=3, lr=0.05, validation_fraction=0, device="cpu",
                        random_state=0, module__width=8)
    clf.initialize_module = _record_initial(clf)  # keep the weights as built, before any step
    clf.fit(X, y)
    before = clf.initial_state_
    after = clf.module_.state_dict()
    assert clf.head_name_ == "fc"
    for key, value in after.items():
        if key.startswith("fc."):
            assert not torch.equal(value, before[key]), "the head did not train"
        else:  # weights and BatchNorm statistics alike
            assert torch.equal(value, before[key]), key
    trained = [p for group in clf.optimizer_.param_groups for p in group["params"]]
    assert {id(p) for p in trained} == {id(p) for p in clf.module_.fc.parameters()}
    assert all(not p.requires_grad for n, p in clf.module_.named_parameters() if not n.startswith("fc."))


def _record_initial(clf):
    original = clf.initialize_module

    def initialize_module():
        original()
        clf.initial_state_ = {k: v.clone() for k, v in clf.module_.state_dict().items()}
        return clf

    return initialize_module


def test_full_training_changes_the_backbone(images):
    # the counterpart: without freezing, the same fit moves the backbone (so the test above can fail)
    X, y = images
    clf = ERMClassifier(recipe="finetune", max_epochs=1, validation_fraction=0, device="cpu", random_state=0,
                        module__width=8)
    clf.initialize_module = _record_initial(clf)
    clf.fit(X, y)
    assert not torch.equal(clf.module_.features[0].weight, clf.initial_state_["features.0.weight"])


class CountingTransform:
    def __init__(self):
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        assert image.shape == (3, 16, 16)
        return image


def test_augmentation_on_training_batches_only(images):
    X, y = images
    counter = CountingTransform()
    clf = ERMClassifier(augment=counter, max_epochs=2, validation_fraction=0.25, patience=None, device="cpu",
                        random_state=0, module__width=4).fit(X, y)
    n_train = len(X) - 10  # the stratified validation split holds a quarter
    assert counter.calls == 2 * n_train  # every training image, every epoch; no validation image
    counter.calls = 0
    clf.predict(X)
    clf.predict_proba(X)
    clf.decision_function(X)
    assert counter.calls == 0


def test_finetune_recipe_sets_sgd_momentum_and_the_dfr_settings(images):
    X, y = images
    clf = ERMClassifier(recipe="finetune", max_epochs=2, validation_fraction=0, device="cpu", random_state=0,
                        module__width=4).fit(X, y)
    opt = clf.optimizer_
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert group["momentum"] == 0.9 and group["weight_decay"] == 1e-4
    assert clf.recipe_["lr"] == 3e-3 and clf.recipe_["batch_size"] == 32 and clf.recipe_["augment"] == "crop_flip"
    assert isinstance(dict(clf.callbacks_)["lr_scheduler"], LRScheduler)
    # the cosine schedule ran: the learning rate after 2 of 2 epochs is annealed to 0
    assert group["lr"] == pytest.approx(0.0, abs=1e-12)
    train_loader = clf.get_iterator(clf.get_dataset(X, clf.label_encoder_.transform(y)), training=True)
    assert train_loader.batch_size == 32 and type(train_loader.dataset).__name__ == "Augmented"
    valid_loader = clf.get_iterator(clf.get_dataset(X, clf.label_encoder_.transform(y)), training=False)
    assert type(valid_loader.dataset).__name__ != "Augmented"


def test_parameters_the_user_sets_win_over_the_recipe(images):
    X, y = images
    clf = ERMClassifier(recipe="finetune", lr=0.01, momentum=0.5, augment=False, lr_schedule="constant",
                        max_epochs=1, validation_fraction=0, device="cpu", random_state=0, module__width=4).fit(X, y)
    group = clf.optimizer_.param_groups[0]
    assert group["lr"] == 0.01 and group["momentum"] == 0.5 and group["weight_decay"] == 1e-4
    assert "lr_scheduler" not in dict(clf.callbacks_)
    adam = ERMClassifier(recipe="finetune", optimizer=torch.optim.Adam, max_epochs=1, validation_fraction=0,
                         device="cpu", random_state=0, module__width=4).fit(X, y)
    assert isinstance(adam.optimizer_, torch.optim.Adam)  # the recipe's SGD momentum is not forced on Adam
    default = ERMClassifier(max_epochs=1, validation_fraction=0, device="cpu", random_state=0,
                            module__width=4).fit(X, y)
    assert isinstance(default.optimizer_, torch.optim.AdamW) and default.recipe_ == RECIPES["scratch"]


def test_crop_flip_is_the_dfr_augmentation():
    from torchvision.transforms import v2

    transform = crop_flip((16, 16))
    crop, flip = transform.transforms
    assert isinstance(crop, v2.RandomResizedCrop) and isinstance(flip, v2.RandomHorizontalFlip)
    assert crop.scale == (0.7, 1.0) and crop.ratio == pytest.approx((3 / 4, 4 / 3)) and flip.p == 0.5
    torch.manual_seed(0)
    x = torch.rand(3, 16, 16)
    outs = [transform(x) for _ in range(8)]
    assert all(o.shape == x.shape for o in outs) and any(not torch.equal(o, x) for o in outs)


def test_recipe_clone_and_bad_values(images):
    X, y = images
    clf = ERMClassifier(recipe="head_only", augment="crop_flip")
    assert clone(clf).get_params()["recipe"] == "head_only"
    with pytest.raises(ValueError, match="'recipe' parameter"):
        ERMClassifier(recipe="sgd").fit(X, y)
    with pytest.raises(ValueError, match="'augment' parameter"):
        ERMClassifier(augment="flip").fit(X, y)
    with pytest.raises(ValueError, match="'momentum' parameter"):
        ERMClassifier(momentum=1.5).fit(X, y)
    with pytest.raises(ValueError, match="`weights` applies to a backbone given by name"):
        ERMClassifier(torch.nn.Linear(3, 2), weights="DEFAULT").fit(X, y)
