"""The one base of the package's skorch estimators.

:class:`ShortcutNet` is mixed in front of a skorch ``NeuralNet`` (or
``NeuralNetClassifier``) class. It holds what every network of the package
shares, so that each estimator overrides only what differs (its
``initialize_module``, ``get_loss`` or ``train_step``, its own parameters):

* ``device="auto"`` (CUDA when present), reported back as ``"auto"`` by
  ``get_params`` so that ``clone`` is faithful;
* scikit-learn parameter constraints (``_parameter_constraints``) checked
  at fit and at ``initialize`` (not at ``set_params``), beside skorch's own
  check of argument names;
* image validation (:func:`~skshortcut._validation.check_images`): 4-D,
  finite, any strides, the channel count and image size of fit at predict;
  ``input_shape_``;
* label encoding: ``label_encoder_``, ``classes_``, ``n_classes_``, a clear
  error for continuous or single-class targets;
* seeding from ``random_state`` without touching the caller's torch RNG;
* the default callbacks (early stopping, progress bar, loss-term columns);
* a scikit-learn ``repr`` that shows the parameters a user set, and tags that
  say what input the estimator takes.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, Options, validate_parameter_constraints
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._constraints import Satisfies
from ._torch import ImageLabelDataset, _seed_from, dataset_targets, is_dataset, resolve_device, torch_seed
from ._validation import ImageInputMixin, check_labels, check_same_length

__all__ = [
    "AutoDeviceMixin",
    "LatentFeaturesMixin",
    "ShortcutNet",
    "DeviceConstraint",
    "SKORCH_CONSTRAINTS",
    "training_callbacks",
    "loss_term_callbacks",
]


def _is_device(val) -> bool:
    if val is None or isinstance(val, bool):
        return False
    try:
        resolve_device(val)
    except (ValueError, TypeError):
        return False
    return True


def DeviceConstraint():
    """A scikit-learn parameter constraint: ``"auto"`` or anything ``torch.device`` accepts.

    Examples
    --------
    >>> from skshortcut._skorch import DeviceConstraint
    >>> DeviceConstraint().is_satisfied_by("cpu"), DeviceConstraint().is_satisfied_by("tpu9")
    (True, False)
    """
    return Satisfies(_is_device, "'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device")


#: The constraints of skorch's own parameters, shared by every network.
SKORCH_CONSTRAINTS = {
    "lr": [Interval(Real, 0, None, closed="neither")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
    "device": [DeviceConstraint(), None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "callbacks": [list, None, Options(str, {"disable"})],
    "optimizer": [callable],
    "criterion": [callable],
}


class AutoDeviceMixin:
    """Let a skorch net accept ``device="auto"``.

    skorch reads ``self.device`` everywhere it moves tensors. The mixin
    resolves ``"auto"`` when the net is initialised and keeps reporting
    ``"auto"`` through ``get_params`` so that ``clone`` and grid searches see
    the parameter the user set.
    """

    def initialize(self):
        if isinstance(self.device, str) and self.device == "auto":
            self.device = str(resolve_device("auto"))
            self.device_auto_ = True
        return super().initialize()

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        if getattr(self, "device_auto_", False) and "device" in params:
            params["device"] = "auto"
        return params

    def set_params(self, **kwargs):
        if "device" in kwargs:
            self.device_auto_ = False
        return super().set_params(**kwargs)

    def __setstate__(self, state):
        # skorch maps tensors to ``state["device"]``, which torch cannot read while it is still
        # "auto" (an unfitted net, as joblib and Dask ship them to workers): load on the CPU, then
        # keep reporting "auto"
        if state.get("device") == "auto":
            super().__setstate__({**state, "device": "cpu"})
            self.device = "auto"
            return
        super().__setstate__(state)


def training_callbacks(*, verbose, patience=None, has_validation=False):
    """The skorch callbacks every network of the package adds to skorch's defaults.

    Early stopping on the validation loss (restoring the best epoch) when
    ``patience`` is set and there is validation data, and a progress bar per
    epoch when ``verbose``.

    Returns
    -------
    list of (name, callback)

    Examples
    --------
    >>> from skshortcut._skorch import training_callbacks
    >>> [name for name, _ in training_callbacks(verbose=1, patience=3, has_validation=True)]
    ['early_stopping', 'progress_bar']
    >>> training_callbacks(verbose=0)
    []
    """
    from skorch.callbacks import EarlyStopping, ProgressBar

    callbacks = []
    try:  # read by skorch's ``get_params`` too, where a parameter may still hold anything
        verbose = bool(verbose)
    except (TypeError, ValueError):
        verbose = False
    if patience is not None and has_validation:
        callbacks.append(("early_stopping", EarlyStopping(monitor="valid_loss", patience=patience, load_best=True)))
    if verbose:
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks


def loss_term_callbacks(train_terms, valid_terms=()):
    """History columns for the terms of a composite loss, recorded by ``get_loss``.

    A network whose loss has several terms stores each batch's value with
    ``self.history.record_batch(f"train_{name}", value)``; these skorch
    ``PassthroughScoring`` callbacks average them per epoch into
    ``train_<name>`` (and ``valid_<name>``) columns of the history and the
    printed epoch table.

    Parameters
    ----------
    train_terms, valid_terms : iterable of (name, lower_is_better)

    Returns
    -------
    list of (name, callback)

    Examples
    --------
    >>> from skshortcut._skorch import loss_term_callbacks
    >>> [name for name, _ in loss_term_callbacks([("kl", True)], [("kl", True)])]
    ['train_kl', 'valid_kl']
    """
    from skorch.callbacks import PassthroughScoring

    callbacks = [
        (f"train_{name}", PassthroughScoring(f"train_{name}", lower_is_better=lower, on_train=True))
        for name, lower in train_terms
    ]
    callbacks += [(f"valid_{name}", PassthroughScoring(f"valid_{name}", lower_is_better=lower)) for name, lower in valid_terms]
    return callbacks


def _init_parameter_names(cls) -> frozenset:
    import inspect

    names = cls.__dict__.get("_init_parameter_names_cache")
    if names is None:
        names = frozenset(
            p.name
            for klass in cls.__mro__
            if "__init__" in klass.__dict__
            for p in inspect.signature(klass.__dict__["__init__"]).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
        )
        type.__setattr__(cls, "_init_parameter_names_cache", names)
    return names


class LatentFeaturesMixin(ClassNamePrefixFeaturesOutMixin):
    """``get_feature_names_out`` (``<classname>0``, ``<classname>1``, ...) for the networks that transform.

    With it, scikit-learn's ``set_output`` works on their ``transform`` (``"pandas"``
    gives a DataFrame with those column names) and in a ``Pipeline``. A subclass
    sets ``_n_features_out`` (a property raising AttributeError before fit).
    """


class ShortcutNet(ImageInputMixin, AutoDeviceMixin):
    """Mixin base of the package's skorch estimators (put it first in the bases).

    Subclasses set ``_parameter_constraints`` (``SKORCH_CONSTRAINTS`` merged
    with their own), call :meth:`_check_params` first in ``fit``, then
    :meth:`_validate_images` / :meth:`_encode_labels`, and train inside
    :meth:`_seeded`. At predict they call ``_validate_images(X, reset=False)``.

    ``verbose`` means the same everywhere: ``0`` silent, ``>= 1`` skorch's
    epoch table and a progress bar per epoch. ``batch_size`` is the number of
    samples per optimisation step and per inference batch.
    """

    _parameter_constraints: dict = dict(SKORCH_CONSTRAINTS)
    #: Whether ``X`` may be a torch Dataset.
    _accepts_datasets = True

    # skorch's ``__init__`` sets three state attributes; scikit-learn's rule is that
    # ``__init__`` only stores parameters (and ``check_is_fitted`` reads attributes
    # ending in "_" as fitted state). Their unfitted values live on the class instead.
    history_ = None
    initialized_ = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.__dict__.get("history_", 0) is None:
            del self.__dict__["history_"]
        if self.__dict__.get("initialized_", 0) is False:
            del self.__dict__["initialized_"]
        if self.__dict__.get("virtual_params_", 0) == {}:
            del self.__dict__["virtual_params_"]

    @property
    def virtual_params_(self):
        return self.__dict__.setdefault("_virtual_params", {})

    @virtual_params_.setter
    def virtual_params_(self, value):
        self.__dict__["_virtual_params"] = value

    def __setattr__(self, name, value):
        # A constructor parameter holding a torch module (a template copied when the net is
        # built: an extractor, an encoder) is a parameter, not a component of the net; skorch's
        # own ``__setattr__`` would refuse it once ``initialized_`` exists.
        if name in _init_parameter_names(type(self)):
            self.__dict__[name] = value
            return
        super().__setattr__(name, value)

    def set_params(self, **kwargs):
        # skorch rebuilds the callbacks on ``set_params(callbacks=...)``; before fit they are only
        # stored (scikit-learn's rule: validation at fit, where the constraints check them)
        if not self.initialized_ and "callbacks" in kwargs:
            self.__dict__["callbacks"] = kwargs.pop("callbacks")
        return super().set_params(**kwargs)

    def _get_param_names(self):
        # skorch lists every instance attribute not ending in "_" (``_params_to_validate``
        # included); private attributes are not parameters.
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    # ------------------------------------------------------------------ parameters
    def initialize(self):
        # scikit-learn's constraints on the parameters' values (skorch checks their names),
        # when the net is built: at fit, or by a direct ``initialize()``
        self._check_params()
        return super().initialize()

    def _check_params(self):
        """Check the parameters against ``_parameter_constraints`` (scikit-learn's machinery)."""
        from sklearn import get_config

        if get_config().get("skip_parameter_validation"):
            return
        params = self.get_params(deep=False)
        validate_parameter_constraints(
            {k: v for k, v in self._parameter_constraints.items() if k in params},
            params,
            caller_name=type(self).__name__,
        )

    # ------------------------------------------------------------------ data
    def _validate_images(self, X, *, reset: bool, name: str = "X"):
        """Checked images: float32 C-contiguous arrays, or a Dataset whose first item is checked.

        With ``reset=True`` (fit) records ``input_shape_``; otherwise checks X
        against it (:class:`~skshortcut._validation.ImageInputMixin`).
        """
        if is_dataset(X) and not self._accepts_datasets:
            raise TypeError(f"{type(self).__name__} takes arrays or tensors for `{name}`, not a Dataset.")
        if not reset:
            check_is_fitted(self, "input_shape_")
        return self._check_images(X, reset=reset, name=name)

    def _encode_labels(self, y, *, name: str = "y", min_classes: int = 2) -> np.ndarray:
        """Fit ``label_encoder_`` on classification labels and return them encoded as int64."""
        y = check_labels(y, name)
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise ValueError(f"`{name}` must hold class labels: {exc}") from exc
        self.label_encoder_ = LabelEncoder().fit(y)
        self.n_classes_ = len(self.label_encoder_.classes_)
        if self.n_classes_ < min_classes:
            held = "a single class" if self.n_classes_ == 1 else f"{self.n_classes_} classes"
            raise ValueError(f"`{name}` holds {held}; {type(self).__name__} needs at least {min_classes}.")
        return self.label_encoder_.transform(y).astype(np.int64)

    def _transform_labels(self, y, *, name: str = "y") -> np.ndarray:
        """Encode labels with the fitted ``label_encoder_``; unknown classes are an error."""
        check_is_fitted(self, "label_encoder_")
        y = check_labels(y, name)
        known = set(self.label_encoder_.classes_.tolist())
        unknown = sorted({v for v in y.tolist() if v not in known}, key=repr)
        if unknown:
            raise ValueError(f"`{name}` holds classes {unknown} unseen at fit (classes: {sorted(known, key=repr)}).")
        return self.label_encoder_.transform(y).astype(np.int64)

    def _images_and_labels(self, X, y, *, reset: bool = True):
        """Checked images and labels for fit: y may come from a Dataset; lengths must agree."""
        if y is None and is_dataset(X):
            y = dataset_targets(X)
        X = self._validate_images(X, reset=reset)
        y = check_labels(y, "y")
        check_same_length(X=X, y=y)
        return X, y

    @staticmethod
    def _as_skorch_input(X, y_enc=None):
        """What skorch iterates over: arrays as they are, Datasets paired with (encoded) labels."""
        if is_dataset(X):
            return ImageLabelDataset(X, np.zeros(len(X), dtype=np.int64) if y_enc is None else y_enc)
        return X

    # ------------------------------------------------------------------ seeds
    def _seeded(self, offset: int = 0, *, seed=None):
        """Context manager seeding torch, restoring the caller's RNG after.

        The seed is ``random_state``'s plus ``offset``, or ``seed`` when given (an
        estimator with several random stages draws one seed per stage).
        """
        if seed is None:
            seed = _seed_from(self.random_state)
            seed = None if seed is None else seed + offset
        return torch_seed(seed)

    def forward_iter(self, X, training=False, device="cpu"):
        # skorch's DataLoader draws a seed from the caller's global torch RNG on every pass;
        # inference must leave the caller's RNG as it was.
        if training:
            yield from super().forward_iter(X, training=training, device=device)
            return
        with torch.random.fork_rng(devices=[]):
            yield from super().forward_iter(X, training=training, device=device)

    # ------------------------------------------------------------------ sklearn
    @property
    def classes_(self):
        check_is_fitted(self, "label_encoder_")
        return self.label_encoder_.classes_

    def __repr__(self):
        # scikit-learn's style (the parameters a user set), not skorch's list of modules
        import inspect

        defaults = {}
        for klass in reversed(type(self).__mro__):
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.default is not inspect.Parameter.empty:
                    defaults[p.name] = p.default
        parts = []
        for key, value in self.get_params(deep=False).items():
            if key.startswith("_") or (key in defaults and repr(defaults[key]) == repr(value)):
                continue
            if key == "module" and "module" not in inspect.signature(type(self).__init__).parameters:
                continue  # the estimator always builds its own module
            if key == "device" and value == "auto" and defaults.get("device") == "auto":
                continue
            parts.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # images (n, channels, height, width) or a Dataset of them, not 2-D feature tables
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = False
        tags.input_tags.allow_nan = False
        tags.non_deterministic = self.random_state is None
        return tags
