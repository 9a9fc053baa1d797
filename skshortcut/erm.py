"""``ERMClassifier``: the base model every method starts from.

Empirical risk minimisation with sane defaults, as a skorch
``NeuralNetClassifier``: cross-entropy on logits, AdamW, a small CNN sized to
the input (or a torchvision ResNet), a stratified validation split with early
stopping that restores the best epoch, and ``random_state``.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring
from skorch.dataset import ValidSplit
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._skorch import SKORCH_CONSTRAINTS, ShortcutNet, training_callbacks
from ._torch import _seed_from
from .nets import build_classifier

__all__ = ["ERMClassifier"]


def _encoded_accuracy(net, X, y):
    """Validation accuracy on the encoded targets skorch trains with."""
    return float(np.mean(net.predict_proba(X).argmax(axis=1) == np.asarray(y)))


class ERMClassifier(ShortcutNet, NeuralNetClassifier):
    """A skorch image classifier trained by ERM, with working defaults.

    Parameters
    ----------
    module : {"cnn", "resnet18", "resnet34", "resnet50"}, nn.Module class or instance, default="cnn"
        ``"cnn"`` builds a :class:`~skshortcut.nets.SmallCNN` sized to the
        input and the number of classes; the ResNets come from torchvision
        with ``weights=None`` (or ``weights=`` a local file). A module class
        is instantiated with the ``module__*`` parameters, as in skorch.
    weights : str or Path, optional
        Local state-dict file for a ResNet backbone; never downloaded.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        The module returns logits, so the default is cross-entropy (skorch's
        own default, NLLLoss, expects probabilities).
    optimizer : torch optimizer class, default=torch.optim.AdamW
    lr : float, default=1e-3
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

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import ERMClassifier
    >>> X = np.random.RandomState(0).rand(64, 3, 16, 16).astype("float32")
    >>> y = np.array(["cat", "dog"] * 32)
    >>> clf = ERMClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).dtype.kind
    'U'
    """

    _parameter_constraints = {
        **SKORCH_CONSTRAINTS,
        "module": [StrOptions({"cnn", "resnet18", "resnet34", "resnet50"}), nn.Module, type],
        "weights": [str, os.PathLike, None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "train_split": [callable, None],
    }

    def __init__(
        self,
        module="cnn",
        *,
        weights=None,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
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
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state

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
        return callbacks + training_callbacks(verbose=self.verbose, patience=self.patience, has_validation=has_validation)

    def initialize_module(self):
        if isinstance(self.module, str):
            if not hasattr(self, "input_shape_"):
                raise RuntimeError("The default architectures are sized to the data: call fit, not initialize.")
            kwargs = self.get_params_for("module")
            self.module_ = build_classifier(self.module, self.input_shape_, self.n_classes_, weights=self.weights, **kwargs)
            return self
        return super().initialize_module()

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
