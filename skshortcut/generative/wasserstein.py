"""``WassersteinDisentangler``: foreground and background features that carry no information about each other.

Kattakinda, Levine and Feizi, *Invariant Learning via Diffusion Dreamed
Distribution Shifts* (D3S), section 5 (Eqs. 5-10). This module holds the
estimator (skorch training, labels, outputs); the networks are in
:mod:`._extractor`, the critics and the terms of Eqs. 8-10 in :mod:`._critics`,
their closed-form estimate in :mod:`._sliced`, the label columns in
:mod:`._two_labels`, the linear probes of table 2 in
:mod:`._disentanglement_report`.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator
from sklearn.base import ClassifierMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._skorch import LatentFeaturesMixin, SKORCH_CONSTRAINTS, ShortcutNet, loss_term_callbacks, training_callbacks
from .._torch import is_dataset
from .._validation import check_same_length
from .._constraints import Satisfies
from ..backbones import check_backbone_name
from ._critics import CONDITIONINGS, critic_objective, critic_updates, make_critics, wasserstein_terms
from ._sliced import independence_terms
from ._disentanglement_report import disentanglement_report as _disentanglement_report
from ._extractor import DisentanglerModule, build_extractor, split_sizes
from ._two_labels import (
    UNKNOWN_BACKGROUND, ForegroundScoreMixin, dataset_labels, encode_label_columns, label_columns,
)

__all__ = ["WassersteinDisentangler", "DisentanglerModule", "wasserstein_terms", "UNKNOWN_BACKGROUND"]

#: D3S's split of ResNet-50's 2048 features: 1798 foreground + 250 background.
_PAPER_BACKGROUND_FRACTION = 250 / 2048


def _is_betas(value):
    return len(value) == 2 and all(isinstance(b, Real) and not isinstance(b, bool) and 0 <= b < 1 for b in value)


class WassersteinDisentangler(ShortcutNet, LatentFeaturesMixin, ForegroundScoreMixin, ClassifierMixin, TransformerMixin,
                              NeuralNet):
    """Wasserstein disentanglement of foreground and background features (D3S, section 5).

    A feature extractor ``h`` maps an image ``x`` to ``z = (z_fg, z_bg)``
    (the last ``n_background_features`` dimensions are ``z_bg``). Linear heads
    ``w_fg`` and ``w_bg`` learn the foreground label from ``z_fg`` and the
    background label from ``z_bg`` by cross-entropy. Two critics, label
    conditioned MLPs (:class:`~skshortcut.generative._critics.ProjectionCritic`
    by default), estimate the Wasserstein-1 distances of Eq. 7 in their
    Kantorovich-Rubinstein dual form (Eq. 8):

    * ``D_fg(z_fg, l_bg)`` between ``P(z_fg, l_bg)`` and ``P(z_fg) P(l_bg)``;
    * ``D_bg(z_bg, l_fg)`` between ``P(z_bg, l_fg)`` and ``P(z_bg) P(l_fg)``.

    Samples of the product of marginals are the batch's features with the
    labels shuffled within the batch. Each critic minimises Eq. 9,
    ``E_prod[D] - E_joint[D] + lambda_gp (||grad_z D(z~, l~)|| - 1)^2`` at
    random interpolates of a product and a joint sample, on the batch's
    features standardised (:func:`wasserstein_terms` says why); the
    extractor and the heads minimise Eq. 10,
    ``(E_joint[D_fg] - E_prod[D_fg]) + (E_joint[D_bg] - E_prod[D_bg]) +
    alpha (CE(w_fg z_fg, l_fg) + CE(w_bg z_bg, l_bg))`` (the paper prints the
    cross-entropy terms with a minus sign; they are minimised, and Eq. 10
    shows only the foreground critic while the text trains both).

    By default (``critic="sliced"``) the two distances are instead computed in
    closed form on every batch, without critics:
    ``sum_l p(l) SW_2^2(P(z | l), P(z))`` on the batch's features whitened
    (:func:`~skshortcut.generative._sliced.sliced_wasserstein`), which takes
    both cross probes to chance where the trained critics do not (user
    guide). ``critic="trained", batch_size=64, lr=1e-3`` gives the paper's
    critics and schedule.

    With ``critic="trained"``, training alternates: in every batch,
    ``critic_steps`` critic updates on the batch's (fixed) features, each with
    a fresh shuffle and fresh interpolates, then one update of the extractor
    and heads. During the first ``warmup_epochs`` the extractor update uses
    the cross-entropy terms alone, while the critics already learn. Both
    updates use Adam with ``betas=(0, 0.9)``.

    A background label of ``-1`` means unknown: such a sample (the paper mixes
    in ImageNet images, which have none) skips the background cross-entropy
    and the foreground critic's terms, and still takes part in the foreground
    cross-entropy and the background critic's terms. Each label column is
    checked as classification targets (continuous values are refused).
    ``score(X, y_fg)`` is the foreground accuracy of :meth:`predict`.

    Parameters
    ----------
    extractor : {"cnn", "resnet18", "resnet34", "resnet50"} or nn.Module, default="cnn"
        The feature extractor ``h``. ``"cnn"`` is the feature part of
        :class:`~skshortcut.nets.SmallCNN` sized to the input (options in
        ``extractor_params``); the ResNets come from torchvision without
        their ``fc`` (the paper uses ResNet-50, 2048 features), with random
        weights or ``weights=`` a local file. A module is copied (the one
        passed is never trained): a torchvision ResNet loses its ``fc``, a
        ``SmallCNN`` is cut to its ``features``, any other module must map
        images to ``(n, n_features)``.
    n_background_features : int or float in (0, 1), default=250/2048
        Size of ``z_bg``: a count, or a fraction of the extractor's output
        (the paper's ResNet-50 split, 1798 + 250 of 2048). At least one
        feature is left on each side.
    alpha : float, default=1.0
        Weight of the cross-entropy terms in Eq. 10.
    lambda_gp : float, default=10.0
        Gradient-penalty weight ``lambda`` of Eq. 9.
    critic_steps : int, default=5
        Critic updates per extractor update (``critic="trained"``).
    warmup_epochs : int, default=1
        Epochs at the start of training that update the extractor and heads by
        cross-entropy alone (the critics learn meanwhile).
    critic_conditioning : {"projection", "embedding"}, default="projection"
        How a critic takes the label: one output per label picked by the
        one-hot label (projection), or the label's embedding concatenated to
        the features (:class:`~skshortcut.nets.Critic`, the authors' critic,
        which learns far slower; see the user guide).
    critic : {"sliced", "trained"}, default="sliced"
        The Wasserstein terms in closed form per batch
        (:func:`~skshortcut.generative._sliced.sliced_wasserstein`; no critic
        is trained, ``critic_steps`` is unused), or from the paper's trained
        critics (Eqs. 8-9).
    sliced_whiten : bool, default=True
        The sliced estimate on the batch's features whitened (``False``:
        standardised only).
    sliced_power : float >= 1, default=2
        Order ``p`` of the sliced estimate's 1-D distances (``W_p^p``; ``1``:
        Wasserstein-1, as the critics estimate).
    critic_hidden : int, optional
        Width of the critics' first hidden layer (each further layer halves
        it); default: the input size rounded up to a power of two, 16 to 512.
    critic_layers : int, default=3
        Hidden layers of each critic.
    critic_negative_slope : float, default=0.1
        LeakyReLU slope of the critics.
    critic_lr : float or None, default=0.01
        Learning rate of the critics (``None``: ``lr``); with ``lr=1e-3`` ten
        times the extractor's, so that the critics keep up with the features
        they judge.
    betas : tuple of float, default=(0.0, 0.9)
        Adam's betas for both optimisers (the paper's ``beta1 = 0, beta2 = 0.9``).
    transform_part : {"fg", "bg", "both"}, default="fg"
        What :meth:`transform` returns when ``part`` is not given, so that the
        choice can be set (and searched) as a parameter in a ``Pipeline``.
    weights : str or Path, optional
        Local state-dict file for a ResNet extractor (never downloaded).
    extractor_params : dict, optional
        Options of the default CNN (``{"width": 16, "n_blocks": 3}``).
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        Loss of the heads, on logits.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Used for the extractor and heads (``optimizer__*``) and the critics
        (``critic_optimizer__*``).
    lr : float, default=0.01
        Learning rate of the extractor and heads (``1e-3`` with the trained
        critics, whose ``critic_lr`` is then ten times it).
    max_epochs : int, default=20
    batch_size : int, default=256
        Samples per optimisation step and per inference batch of
        :meth:`transform` and the predictions; ``-1``: all at once. Larger than
        the paper's 64, so that each label has enough samples in a batch for
        its distribution to be compared (user guide).
    train_split : callable or None, default=None
        A skorch ``train_split``; ``None`` trains on all the data.
    callbacks : list, optional
        skorch callbacks.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the weights, the batch order, the label shuffles and the
        interpolates; the caller's global torch RNG is left as it was.
    verbose : int, default=0
        ``0`` is silent; ``>= 1`` prints skorch's epoch table
        (cross-entropies, Wasserstein estimates, critic loss, gradient
        penalty) and a progress bar per epoch.
    **kwargs
        Other skorch ``NeuralNet`` parameters (``iterator_train__num_workers``,
        ``optimizer__weight_decay``, ...).

    Attributes
    ----------
    classes_ : ndarray
        Foreground labels, in the order of ``w_fg``'s logits.
    background_classes_ : ndarray
        Background labels (without the unknown marker).
    module_ : DisentanglerModule
        Extractor and heads.
    critic_ : nn.ModuleDict
        ``{"fg": D_fg, "bg": D_bg}``.
    n_features_, n_background_features_, n_foreground_features_ : int
    input_shape_ : tuple

    See Also
    --------
    skshortcut.generative.DiffusionShiftGenerator : makes D3S-style images with both labels.
    skshortcut.datasets.make_foreground_background : an embedded benchmark with both labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import WassersteinDisentangler
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(64, 3, 8, 8).astype("float32")
    >>> y = np.stack([rng.choice(["cat", "dog"], 64), rng.choice(["grass", "snow", -1], 64)], axis=1)
    >>> wd = WassersteinDisentangler(n_background_features=4, max_epochs=2, random_state=0,
    ...                              extractor_params={"width": 4}).fit(X, y)
    >>> wd.transform(X).shape, wd.transform(X, part="bg").shape, wd.predict(X[:2]).dtype.kind
    ((64, 12), (64, 4), 'U')
    """

    @property
    def _n_features_out(self):  # the columns of ``transform`` with the ``transform_part`` parameter
        if not hasattr(self, "n_foreground_features_"):
            raise AttributeError("_n_features_out")
        return {"fg": self.n_foreground_features_, "bg": self.n_background_features_}.get(
            self.transform_part, self.n_features_
        )

    _parameter_constraints = {
        **SKORCH_CONSTRAINTS,
        "extractor": [str, nn.Module],  # a name is checked by the backbone registry at fit
        "n_background_features": [Interval(Integral, 1, None, closed="left"), Interval(Real, 0, 1, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "lambda_gp": [Interval(Real, 0, None, closed="left")],
        "critic_steps": [Interval(Integral, 0, None, closed="left")],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "critic_conditioning": [StrOptions(set(CONDITIONINGS))],
        "critic": [StrOptions({"trained", "sliced"})],
        "sliced_whiten": ["boolean"],
        "sliced_power": [Interval(Real, 1, None, closed="left")],
        "critic_hidden": [Interval(Integral, 1, None, closed="left"), None],
        "critic_layers": [Interval(Integral, 1, None, closed="left")],
        "critic_negative_slope": [Interval(Real, 0, 1, closed="left")],
        "critic_lr": [Interval(Real, 0, None, closed="neither"), None],
        "betas": [Satisfies(_is_betas, "a pair of floats in [0, 1)")],
        "transform_part": [StrOptions({"fg", "bg", "both"})],
        "weights": [str, os.PathLike, None],
        "extractor_params": [dict, None],
        "train_split": [callable, None],
    }

    def __init__(
        self,
        extractor="cnn",
        *,
        n_background_features=_PAPER_BACKGROUND_FRACTION,
        alpha=1.0,
        lambda_gp=10.0,
        critic_steps=5,
        warmup_epochs=1,
        critic_conditioning="projection",
        critic="sliced",
        sliced_whiten=True,
        sliced_power=2.0,
        critic_hidden=None,
        critic_layers=3,
        critic_negative_slope=0.1,
        critic_lr=0.01,
        betas=(0.0, 0.9),
        transform_part="fg",
        weights=None,
        extractor_params=None,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=20,
        batch_size=256,
        train_split=None,
        callbacks=None,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        kwargs.pop("module", None)  # always DisentanglerModule; get_params lists it, so clone passes it back
        self.extractor = extractor
        super().__init__(
            DisentanglerModule,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.n_background_features = n_background_features
        self.alpha = alpha
        self.lambda_gp = lambda_gp
        self.critic_steps = critic_steps
        self.warmup_epochs = warmup_epochs
        self.critic_conditioning = critic_conditioning
        self.critic = critic
        self.sliced_whiten = sliced_whiten
        self.sliced_power = sliced_power
        self.critic_hidden = critic_hidden
        self.critic_layers = critic_layers
        self.critic_negative_slope = critic_negative_slope
        self.critic_lr = critic_lr
        self.betas = betas
        self.transform_part = transform_part
        self.weights = weights
        self.extractor_params = extractor_params
        self.random_state = random_state

    # ------------------------------------------------------------------ skorch hooks
    def __sklearn_is_fitted__(self):
        return hasattr(self, "label_encoder_") and getattr(self, "initialized_", False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output, tags.target_tags.single_output = True, False  # y: (foreground, background)
        return tags

    def get_params_for(self, prefix):
        params = super().get_params_for(prefix)
        if prefix == "iterator_train":  # shuffled batches unless the user says otherwise
            params.setdefault("shuffle", True)
        return params

    @property
    def _default_callbacks(self):
        terms = [("ce_fg", True), ("ce_bg", True), ("w_fg", True), ("w_bg", True)]
        return [
            *super()._default_callbacks,
            *loss_term_callbacks([*terms, ("critic_loss", True), ("gp", True)],
                                 terms if self.train_split is not None else ()),
            *training_callbacks(verbose=self.verbose),
        ]

    def initialize_module(self):
        if not hasattr(self, "input_shape_"):
            raise RuntimeError("WassersteinDisentangler sizes its networks to the data: call fit, not initialize.")
        extractor, n_features = build_extractor(
            self.extractor, self.input_shape_, weights=self.weights, params=self.extractor_params
        )
        n_fg, n_bg = split_sizes(self.n_background_features, n_features)
        self.n_features_, self.n_foreground_features_, self.n_background_features_ = n_features, n_fg, n_bg
        self.module_ = DisentanglerModule(extractor, n_features, n_bg, self.n_classes_, self.n_background_classes_)
        self.critic_ = make_critics(
            n_fg, n_bg, self.n_classes_, self.n_background_classes_, conditioning=self.critic_conditioning,
            hidden_features=self.critic_hidden, n_layers=self.critic_layers, negative_slope=self.critic_negative_slope,
        )
        return self

    def initialize_optimizer(self, *args, **kwargs):
        betas = tuple(float(b) for b in self.betas)
        args_, kwargs_ = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        kwargs_.setdefault("betas", betas)
        self.optimizer_ = self.optimizer(*args_, **kwargs_)
        args_, kwargs_ = self.get_params_for_optimizer("critic_optimizer", self.critic_.named_parameters())
        if self.critic_lr is not None and "lr" not in self.get_params_for("critic_optimizer"):
            kwargs_["lr"] = self.critic_lr
        kwargs_.setdefault("betas", betas)
        self.critic_optimizer_ = self.optimizer(*args_, **kwargs_)
        return self

    def _in_warmup(self) -> bool:
        # skorch adds the current epoch's row to the history before its batches run
        return len(self.history) <= int(self.warmup_epochs)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Eq. 10 on a batch: ``W_fg + W_bg + alpha (CE_fg + CE_bg)`` (CE alone during the warm-up)."""
        logits_fg, logits_bg, z = y_pred
        y_true = torch.as_tensor(y_true, device=logits_fg.device).long()
        y_fg, y_bg = y_true[:, 0], y_true[:, 1]
        known = y_bg >= 0
        ce_fg = self.criterion_(logits_fg, y_fg)
        ce_bg = self.criterion_(logits_bg[known], y_bg[known]) if bool(known.any()) else logits_bg.sum() * 0.0
        loss = self.alpha * (ce_fg + ce_bg)
        prefix = "train" if training else "valid"
        self.history.record_batch(f"{prefix}_ce_fg", ce_fg.item())
        self.history.record_batch(f"{prefix}_ce_bg", ce_bg.item())
        if not self._in_warmup():
            for name, w in independence_terms(self, *self.module_.split(z), y_true).items():
                loss = loss + w
                self.history.record_batch(f"{prefix}_{name}", w.item())
        return loss

    def critic_loss(self, z, y_true):
        """Eq. 9 for both critics on fixed features ``z``: ``(loss or None, summed gradient penalties)``.

        See :func:`skshortcut.generative._critics.critic_objective`.
        """
        return critic_objective(self.critic_, *self.module_.split(z), y_true, lambda_gp=self.lambda_gp)

    def train_step(self, batch, **fit_params):
        """One batch: ``critic_steps`` critic updates (Eq. 9), then one extractor update (Eq. 10)."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_true = torch.as_tensor(yi, device=self.device).long()
        y_pred = self.infer(Xi, **fit_params)
        if self.critic != "sliced":
            critic_updates(self, y_pred[2].detach(), y_true)  # also during the warm-up, to be ready when it ends
        self.optimizer_.zero_grad()
        loss = self.get_loss(y_pred, y_true, X=Xi, training=True)
        loss.backward()
        self.notify("on_grad_computed", named_parameters=TeeGenerator(self.module_.named_parameters()), batch=batch,
                    training=True)
        self.optimizer_.step()
        return {"loss": loss, "y_pred": y_pred}

    # ------------------------------------------------------------------ fit
    def _check_params(self):
        super()._check_params()
        if isinstance(self.extractor, str):
            check_backbone_name(self.extractor, "extractor")

    def fit(self, X, y=None, **fit_params):
        """Train extractor, heads and critics (Eqs. 9-10).

        Parameters
        ----------
        X : ndarray or tensor of shape (n, channels, height, width), or torch Dataset
            Images. A Dataset's items are an image or a tuple starting with one.
        y : array-like of shape (n, 2), optional
            Foreground and background labels, any hashable types; a
            background label of ``-1`` means unknown. May be omitted for a
            Dataset with a ``labels`` attribute of shape (n, 2), or with ``y``
            and ``spurious`` attributes (what
            :class:`~skshortcut.generative.DiffusionShiftGenerator` and the
            loaders of :mod:`skshortcut.datasets` return).
        **fit_params
            Passed to skorch's ``fit``.

        Returns
        -------
        self
        """
        self._check_params()
        X = self._validate_images(X, reset=True)
        if y is None and is_dataset(X):
            y = dataset_labels(X)
        Y, known = label_columns(y)
        check_same_length(X=X, y=Y)
        Y_enc = encode_label_columns(self, Y, known)
        with self._seeded():
            super().fit(self._as_skorch_input(X, Y_enc), Y_enc, **fit_params)
        return self

    # ------------------------------------------------------------------ outputs
    @property
    def background_classes_(self):
        check_is_fitted(self, "background_encoder_")
        return self.background_encoder_.classes_

    def _outputs(self, X):
        """``(logits_fg, logits_bg, z)`` of X as arrays, in batches of ``batch_size``, eval mode, no gradients."""
        check_is_fitted(self)
        X = self._as_skorch_input(self._validate_images(X, reset=False))
        # skorch's iterator (a DataLoader) draws a seed from torch's global RNG: keep the caller's
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            return tuple(t.float().numpy() for t in self.forward(X, training=False))

    def transform(self, X, part=None):
        """Disentangled features of X.

        Parameters
        ----------
        X : images or Dataset
        part : {"fg", "bg", "both"}, optional
            ``z_fg``, ``z_bg`` or all of ``z`` (foreground first). Default:
            the ``transform_part`` parameter.

        Returns
        -------
        ndarray of shape (n_samples, n_features_of_part)
        """
        part = self.transform_part if part is None else part
        if part not in ("fg", "bg", "both"):
            raise ValueError(f"`part` must be one of ('fg', 'bg', 'both'), got {part!r}.")
        z = self._outputs(X)[2]
        if part == "fg":
            return z[:, : self.n_foreground_features_]
        if part == "bg":
            return z[:, self.n_foreground_features_ :]
        return z

    def predict_proba(self, X):
        """Foreground class probabilities from ``w_fg z_fg``, columns in ``classes_`` order."""
        return torch.softmax(torch.from_numpy(self._outputs(X)[0]), 1).numpy()

    def predict(self, X):
        """Foreground labels from the foreground head ``w_fg z_fg``, in the user's label type."""
        return self.classes_[self._outputs(X)[0].argmax(1)]

    def predict_background_proba(self, X):
        """Background class probabilities from ``w_bg z_bg``, columns in ``background_classes_`` order."""
        return torch.softmax(torch.from_numpy(self._outputs(X)[1]), 1).numpy()

    def predict_background(self, X):
        """Background labels from the background head ``w_bg z_bg``."""
        return self.background_classes_[self._outputs(X)[1].argmax(1)]

    def disentanglement_report(self, X, y, *, X_test=None, y_test=None, probe=None, test_size=0.5, random_state=None):
        """Accuracies of linear probes across the feature split: D3S's table 2.

        Foreground from ``z_fg`` and background from ``z_bg`` (high is good),
        foreground from ``z_bg`` and background from ``z_fg`` (near chance is
        good); parameters and result in
        :func:`~skshortcut.generative._disentanglement_report.disentanglement_report`.
        """
        return _disentanglement_report(
            self, X, y, X_test=X_test, y_test=y_test, probe=probe, test_size=test_size, random_state=random_state
        )
