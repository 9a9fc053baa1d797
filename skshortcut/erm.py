"""``ERMClassifier``: the base model every method starts from.

Empirical risk minimisation with sane defaults, as a skorch
``NeuralNetClassifier``: cross-entropy on logits, AdamW, a small CNN sized to
the input (or any backbone of :func:`~skshortcut.nets.build_classifier`), a
stratified validation split with early stopping that restores the best epoch,
and ``random_state``. The papers' recipes (fine-tuning a pretrained network,
training the head of a frozen one) are presets of the same estimator.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring, LRScheduler
from skorch.dataset import ValidSplit
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torchvision.models import WeightsEnum

from ._skorch import SKORCH_CONSTRAINTS, ShortcutNet, training_callbacks
from ._torch import _seed_from
from .augment import Augmented, training_transform
from .backbones import check_backbone_name
from .base_model import find_last_layer, module_device
from .nets import build_classifier

__all__ = ["ERMClassifier", "RECIPES"]

#: The training recipes, by name. ``"scratch"`` is the package's default for a
#: network trained from scratch. ``"finetune"`` is the DFR authors' ERM recipe
#: for ImageNet-pretrained networks (Kirichenko et al., 2023; Izmailov et al.,
#: 2022, whose code builds on DFR's: its README's Waterbirds command,
#: ``--init_lr=3e-3 --weight_decay=1e-4 --batch_size=32
#: --scheduler=cosine_lr_scheduler --data_transform=AugWaterbirdsCelebATransform``,
#: SGD with ``--momentum_decay`` 0.9; the ExMap paper's appendix lists the same
#: values). ``"head_only"`` trains the head of a frozen backbone with the same
#: optimiser and no augmentation (DFR embeds without augmentation).
RECIPES = {
    "scratch": {"optimizer": torch.optim.AdamW, "lr": 1e-3, "batch_size": 128, "momentum": None,
                "weight_decay": None, "augment": False, "lr_schedule": "constant", "freeze_backbone": False},
    "finetune": {"optimizer": torch.optim.SGD, "lr": 3e-3, "batch_size": 32, "momentum": 0.9,
                 "weight_decay": 1e-4, "augment": "crop_flip", "lr_schedule": "cosine", "freeze_backbone": False},
    "head_only": {"optimizer": torch.optim.SGD, "lr": 3e-3, "batch_size": 32, "momentum": 0.9,
                  "weight_decay": 1e-4, "augment": False, "lr_schedule": "cosine", "freeze_backbone": True},
}


_DEFAULTS = {"optimizer": torch.optim.AdamW, "lr": 1e-3, "batch_size": 128}


def _encoded_accuracy(net, X, y):
    """Validation accuracy on the encoded targets skorch trains with."""
    return float(np.mean(net.predict_proba(X).argmax(axis=1) == np.asarray(y)))


class ERMClassifier(ShortcutNet, NeuralNetClassifier):
    """A skorch image classifier trained by ERM, with working defaults.

    Parameters
    ----------
    module : str, nn.Module class or instance, default="cnn"
        A backbone name of :func:`~skshortcut.nets.build_classifier`, built
        for the data's shape and classes: ``"cnn"`` (a
        :class:`~skshortcut.nets.SmallCNN`), any torchvision classification
        architecture (``"resnet50"``, ``"efficientnet_b0"``, ...),
        ``"efficientnet_lite0"`` or ``"timm:<name>"``; its options go in
        ``module__*`` (``module__image_size=64``). A module class is
        instantiated with the ``module__*`` parameters, as in skorch.
    weights : str, torchvision weights enum member or path, optional
        The backbone's pretrained weights (``"DEFAULT"``,
        ``"IMAGENET1K_V1"``, an enum member or a local state-dict file; see
        :func:`~skshortcut.nets.build_classifier`); their normalisation is
        applied inside the module, so ``X`` stays in [0, 1].
    recipe : {"scratch", "finetune", "head_only"} or None, default=None
        A preset (:data:`RECIPES`) for the parameters left at their
        defaults: ``optimizer``, ``lr``, ``batch_size`` (when equal to the
        defaults below) and ``momentum``, ``weight_decay``, ``augment``,
        ``lr_schedule``, ``freeze_backbone`` (when ``None``). ``None`` is
        ``"scratch"``: AdamW, lr 1e-3, batch 128, no augmentation.
        ``"finetune"``: the DFR authors' recipe for an ImageNet-pretrained
        network (SGD, momentum 0.9, weight decay 1e-4, lr 3e-3, batch 32,
        cosine schedule, random resized crop and flip; Kirichenko et al.,
        2023, and Izmailov et al., 2022, code). ``"head_only"``: the same
        optimiser on the head of a frozen backbone, without augmentation.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        The module returns logits, so the default is cross-entropy (skorch's
        own default, NLLLoss, expects probabilities).
    optimizer : torch optimizer class, default=torch.optim.AdamW
    lr : float, default=1e-3
    momentum : float, optional
        ``optimizer__momentum`` (SGD); ``None``: the recipe's.
    weight_decay : float, optional
        ``optimizer__weight_decay``; ``None``: the recipe's (or the
        optimizer's own default).
    augment : "crop_flip", "shift", callable, False or None, default=None
        Augmentation of the training batches only (never validation or
        prediction): ``"crop_flip"`` is :func:`~skshortcut.augment.crop_flip`,
        ``"shift"`` :class:`~skshortcut.augment.RandomShift`; a callable maps one
        image tensor ``(channels, height, width)`` to another; ``False``
        none; ``None`` the recipe's.
    lr_schedule : {"constant", "cosine"} or None, default=None
        ``"cosine"``: cosine annealing over ``max_epochs`` (skorch's
        ``LRScheduler``); ``None``: the recipe's.
    freeze_backbone : bool or None, default=None
        Train only the head (the last ``nn.Linear`` in forward order): every
        other parameter has ``requires_grad=False``, the optimizer sees only
        the head's, and the backbone stays in eval mode (BatchNorm
        statistics and dropout untouched). ``None``: the recipe's.
    max_epochs : int, default=20
    batch_size : int, default=128
    validation_fraction : float, default=0.1
        Stratified share of the training data held out to monitor
        ``valid_loss``; ``0`` trains on everything without early stopping.
        Ignored when ``train_split`` is given.
    patience : int or None, default=5
        Early-stopping patience in epochs on ``valid_loss``; the best epoch's
        weights are restored. ``None`` disables early stopping.
    train_split : callable, optional
        A skorch ``train_split`` that replaces ``validation_fraction``.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        ``"auto"`` uses CUDA when present.
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, batch order and the validation split.
        The caller's global torch RNG is left as it was.
    verbose : int, default=0
        ``>= 1`` prints skorch's epoch table and a progress bar per epoch.
    **kwargs
        Any other skorch ``NeuralNetClassifier`` parameter
        (``callbacks``, ``module__width``, ``optimizer__weight_decay``, ...).

    Attributes
    ----------
    classes_ : ndarray
        The class labels, in the order of the logits.
    module_ : nn.Module
        The trained network.
    input_shape_ : tuple
        Shape of one input sample.
    recipe_ : dict
        The training settings used: the recipe's, with the parameters set.
    head_name_ : str
        Dotted name of the head inside ``module_`` (when the backbone is frozen).

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import ERMClassifier
    >>> X = np.random.RandomState(0).rand(64, 3, 16, 16).astype("float32")
    >>> y = np.array(["cat", "dog"] * 32)
    >>> clf = ERMClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).dtype.kind
    'U'

    A preset recipe: the head of a frozen backbone, with SGD.

    >>> head = ERMClassifier(recipe="head_only", max_epochs=1, random_state=0).fit(X, y)
    >>> head.recipe_["optimizer"].__name__, head.head_name_
    ('SGD', 'fc')
    """

    _parameter_constraints = {
        **SKORCH_CONSTRAINTS,
        # names are checked by the backbone registry in ``_check_params`` (closest names listed)
        "module": [str, nn.Module, type],
        "weights": [str, os.PathLike, WeightsEnum, None],
        "recipe": [StrOptions(set(RECIPES)), None],
        "momentum": [Interval(Real, 0, 1, closed="both"), None],
        "weight_decay": [Interval(Real, 0, None, closed="left"), None],
        "augment": [StrOptions({"crop_flip", "shift"}), callable, Options(bool, {False}), None],
        "lr_schedule": [StrOptions({"constant", "cosine"}), None],
        "freeze_backbone": ["boolean", None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "train_split": [callable, None],
    }

    def __init__(
        self,
        module="cnn",
        *,
        weights=None,
        recipe=None,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        momentum=None,
        weight_decay=None,
        augment=None,
        lr_schedule=None,
        freeze_backbone=None,
        max_epochs=20,
        batch_size=128,
        validation_fraction=0.1,
        patience=5,
        train_split=None,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.weights = weights
        self.recipe = recipe
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.augment = augment
        self.lr_schedule = lr_schedule
        self.freeze_backbone = freeze_backbone
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state

    # ------------------------------------------------------------------ recipe
    def _check_params(self):
        super()._check_params()
        if isinstance(self.module, str):
            check_backbone_name(self.module, "module")
        elif self.weights is not None:
            raise ValueError("`weights` applies to a backbone given by name (`module='resnet50'`, ...); a module "
                             "instance or class loads its own.")

    def _resolve_recipe(self) -> dict:
        """The training settings: the recipe's, overridden by the parameters the user set."""
        recipe = RECIPES["scratch" if self.recipe is None else self.recipe]
        resolved = dict(recipe)
        for name, default in _DEFAULTS.items():
            value = getattr(self, name)
            if value is not default and value != default:
                resolved[name] = value
        if resolved["optimizer"] is not recipe["optimizer"]:  # the recipe's SGD settings are for its SGD only
            resolved["momentum"] = resolved["weight_decay"] = None
        for name in ("momentum", "weight_decay", "augment", "lr_schedule", "freeze_backbone"):
            if getattr(self, name) is not None:
                resolved[name] = getattr(self, name)
        return resolved

    def initialize(self):
        self._check_params()
        self.recipe_ = self._resolve_recipe()
        return super().initialize()

    # ------------------------------------------------------------------ skorch hooks
    @property
    def _default_callbacks(self):
        callbacks = [
            (name, EpochScoring(_encoded_accuracy, name="valid_acc", lower_is_better=False))
            if name == "valid_acc"
            else (name, cb)
            for name, cb in super()._default_callbacks
        ]
        has_validation = self.train_split is not None or bool(self.validation_fraction)
        callbacks += training_callbacks(verbose=self.verbose, patience=self.patience, has_validation=has_validation)
        try:  # read by skorch's ``get_params`` too, where a parameter may still hold anything (checked at fit)
            cosine = isinstance(self._resolve_recipe()["lr_schedule"], str) and (
                self._resolve_recipe()["lr_schedule"] == "cosine")
        except Exception:  # noqa: BLE001 - invalid parameters are reported by fit's checks, not by get_params
            cosine = False
        if cosine:
            epochs = self.max_epochs if isinstance(self.max_epochs, Integral) else 1
            callbacks.append(("lr_scheduler", LRScheduler(policy="CosineAnnealingLR", T_max=epochs)))
        return callbacks

    def initialize_module(self):
        if isinstance(self.module, str):
            if not hasattr(self, "input_shape_"):
                raise RuntimeError("The default architectures are sized to the data: call fit, not initialize.")
            kwargs = self.get_params_for("module")
            self.module_ = build_classifier(self.module, self.input_shape_, self.n_classes_, weights=self.weights, **kwargs)
        else:
            super().initialize_module()
        self.head_name_ = None
        if self._resolve_recipe()["freeze_backbone"]:
            self._freeze_backbone()
        return self

    def _freeze_backbone(self):
        """``requires_grad=False`` on everything but the head (the last nn.Linear in forward order)."""
        if not hasattr(self, "input_shape_"):
            raise RuntimeError("Finding the head to train needs the data's shape: call fit, not initialize.")
        example = torch.zeros(2, *self.input_shape_, device=module_device(self.module_))
        self.head_name_, head = find_last_layer(
            self.module_, example, nn.Linear, hint="; freeze_backbone=True trains the last linear layer only."
        )
        head_params = {id(p) for p in head.parameters()}
        for p in self.module_.parameters():
            p.requires_grad_(id(p) in head_params)

    def get_all_learnable_params(self):
        # a frozen backbone's parameters never reach the optimizer
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    def _set_training(self, training=True):
        super()._set_training(training)
        if training and getattr(self, "head_name_", None) is not None:
            # the frozen backbone runs in eval mode: BatchNorm statistics and dropout untouched
            self.module_.eval()
            self.module_.get_submodule(self.head_name_).train()

    def initialize_optimizer(self, triggered_directly=None):
        recipe = self._resolve_recipe()
        args, kwargs = self.get_params_for_optimizer("optimizer", self.get_all_learnable_params())
        if "lr" not in self.get_params_for("optimizer"):
            kwargs["lr"] = recipe["lr"]
        for name in ("momentum", "weight_decay"):
            if recipe[name] is not None:
                kwargs.setdefault(name, recipe[name])
        self.optimizer_ = recipe["optimizer"](*args, **kwargs)
        return self

    def get_iterator(self, dataset, training=False):
        recipe = self._resolve_recipe()
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        iterator = self.iterator_train if training else self.iterator_valid
        kwargs.setdefault("batch_size", recipe["batch_size"])
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        augment = recipe["augment"]
        if training and augment is not False:
            dataset = Augmented(dataset, training_transform(augment, self.input_shape_[1:]))
        return iterator(dataset, **kwargs)

    def get_split_datasets(self, X, y=None, **fit_params):
        if self.train_split is not None or not self.validation_fraction:
            return super().get_split_datasets(X, y, **fit_params)
        split = ValidSplit(self.validation_fraction, stratified=True, random_state=self.split_seed_)
        dataset = self.get_dataset(X, y)
        return split(dataset, y, **fit_params)

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X, y=None, **fit_params):
        """Train the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : ndarray or tensor of shape (n, channels, height, width), or torch Dataset
            Images in [0, 1]. A Dataset's items are an image or a tuple
            starting with one.
        y : array-like of shape (n,), optional
            Labels of any hashable type. May be omitted for a Dataset with a
            ``y`` attribute or ``(image, label, ...)`` items.
        **fit_params
            Passed to skorch's ``fit``.

        Returns
        -------
        self
        """
        self._check_params()
        X, y = self._images_and_labels(X, y)
        y_enc = self._encode_labels(y)
        self.split_seed_ = _seed_from(self.random_state)
        with self._seeded():
            return super().fit(self._as_skorch_input(X, y_enc), y_enc, **fit_params)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """One more epoch on ``X``, ``y`` (the first call fits the label encoder and sizes the network).

        Parameters
        ----------
        X, y
            As for :meth:`fit`.
        classes : array-like, optional
            All classes, when the first batch does not hold every one of them.
        **fit_params
            Passed to skorch's ``partial_fit``.

        Returns
        -------
        self
        """
        if "_routing_method" in fit_params:  # skorch's ``fit`` trains through ``partial_fit``: data already prepared
            return super().partial_fit(X, y, classes=classes, **fit_params)
        first = not (getattr(self, "initialized_", False) and hasattr(self, "label_encoder_"))
        if first:
            self._check_params()
        X, y = self._images_and_labels(X, y, reset=first)
        if first:
            self._encode_labels(y if classes is None else np.concatenate([np.asarray(classes), y]))
            self.split_seed_ = _seed_from(self.random_state)
        y_enc = self._transform_labels(y)
        with self._seeded(offset=len(getattr(self, "history_", []) or [])):
            return super().partial_fit(self._as_skorch_input(X, y_enc), y_enc, **fit_params)

    def _as_input(self, X):
        return self._as_skorch_input(self._validate_images(X, reset=False))

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), columns in ``classes_`` order."""
        check_is_fitted(self, "label_encoder_")
        with torch.no_grad():
            logits = self.forward(self._as_input(X), training=False)
        return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def predict(self, X):
        """Predicted class labels, in the user's label type."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def decision_function(self, X):
        """Scores as scikit-learn's classifiers give them.

        Returns
        -------
        ndarray of shape (n,) for two classes (the logit of ``classes_[1]``
        minus that of ``classes_[0]``, positive for ``classes_[1]``), else
        (n, n_classes) logits in ``classes_`` order.
        """
        check_is_fitted(self, "label_encoder_")
        with torch.no_grad():
            logits = self.forward(self._as_input(X), training=False).float().cpu().numpy()
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits
