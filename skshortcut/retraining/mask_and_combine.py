"""``MaskAndCombineRetrainer``: last-layer retraining on masked and recombined images.

HosseiniNoohdani, Samiei, Hosseini and Soleymani Baghshah, *Mitigating
Spurious Correlation in Images by Intervention* (Mask-and-Combine, "MaC").
This module holds the estimator; the interventions of Eqs. 1-2 and the top-K
masks are in ``_interventions``, the per-batch training data in
``_mac_batches``, the epoch selection in ``_mac_selection``, the paper's table
1 and the shortcut-under-the-masks diagnostic in ``_mac_diagnostics``. The
public functions are importable from here.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochTimer, LRScheduler, PrintLog
from skorch.dataset import unpack_data
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._balance import balanced_indices
from .._grouped import _take
from .._skorch import SKORCH_CONSTRAINTS, ShortcutNet, loss_term_callbacks, training_callbacks
from .._torch import _seed_from, dataset_targets, is_dataset, resolve_device
from .._validation import check_labels, check_same_length
from ..metrics import worst_group_accuracy
from ..base_model import predicted_index, resolve_base_model, unwrap_frozen
from ._interventions import _resolve_k, draw_partners, masked_combination, masked_removal, top_k_mask
from ._mac_batches import MaCLogits, MaskMaker, TrainCache
from ._mac_diagnostics import mask_region_table, shortcut_mask_overlap, validation_overlap, warn_if_no_use
from ._mac_selection import selection_callbacks

__all__ = [
    "MaskAndCombineRetrainer",
    "top_k_mask",
    "draw_partners",
    "masked_removal",
    "masked_combination",
    "mask_region_table",
    "shortcut_mask_overlap",
]


class MaskAndCombineRetrainer(ShortcutNet, NeuralNetClassifier):
    """Mask-and-Combine: retrain the last layer on XGradCAM-masked and recombined images.

    HosseiniNoohdani et al., *Mitigating Spurious Correlation in Images by
    Intervention*, section 3.2. Given a base classifier ``M = g o f`` trained
    by ERM:

    1. **Masks.** XGradCAM of ``M`` on its last convolutional layer (or
       ``layer``), upsampled bilinearly to the image; the ``top_k`` pixels
       with the highest scores form the binary mask ``m`` of each training
       image (:func:`top_k_mask`). They are computed once per sample, since
       ``f`` is frozen (``cache_masks=False`` recomputes them for every batch
       instead).
    2. **Interventions.** For each training batch ``B``: the removed images
       of Eq. 1 (:func:`masked_removal`), ``m x + (1 - m) b`` with ``b`` the
       per-channel mean of ``B``, and the combined images of Eq. 2
       (:func:`masked_combination`), pairing each sample with a random
       sample of another class of ``B``; the combined image keeps its own
       label. Samples whose batch holds no other class are left out of the
       combination term.
    3. **Retraining.** Only the head ``g`` is trained, on Eq. 6:
       ``L_CE + alpha * L_rmv + beta * L_comb`` (cross-entropies on the
       original, removed and combined images). The embeddings ``f(x)`` of
       the original images are computed once; per batch only the augmented
       images go through ``f``, without gradients.
    4. **Model selection.** With ``validation_data=(X_val, y_val,
       groups_val)``, the head of the epoch with the best validation
       worst-group accuracy is kept (appendix B). Group labels are needed for
       nothing else. ``alpha`` and ``beta`` are tuned the same way with
       :class:`~sklearn.model_selection.GridSearchCV` and
       :data:`~skshortcut.worst_group_scorer` (see the user guide).

    The defaults are the paper's (section 4.2): Adam with learning rate
    ``5e-3``, StepLR with step 5 and gamma 0.5, batches of 32, and its
    Waterbirds coefficients ``alpha=2, beta=3`` (CelebA: ``alpha=3, beta=0``
    with ``class_balanced=True``).

    Parameters
    ----------
    estimator : fitted skorch net, nn.Module, either in a FrozenEstimator, or None, default=None
        The base model. ``None`` fits an :class:`~skshortcut.ERMClassifier`
        on the training data first. Wrap a fitted net in
        :class:`sklearn.frozen.FrozenEstimator` for ``clone``,
        ``cross_validate`` and grid searches, which would otherwise get an
        unfitted copy of it.
    alpha : float, default=2.0
        Weight of the removal loss ``L_rmv`` (Eq. 6), finite and >= 0.
    beta : float, default=3.0
        Weight of the combination loss ``L_comb`` (Eq. 6), finite and >= 0.
    top_k : int or float, default=0.3
        Mask size ``K``: an int is a pixel count, a float in (0, 1] a fraction
        of the image (the paper: 15000 of 224 x 224 pixels, about 0.3).
    layer : str or nn.Module, optional
        Layer whose activations XGradCAM uses; default: the last ``nn.Conv2d``
        in forward order.
    cam_target : {"label", "predicted"}, default="label"
        Class whose XGradCAM makes the mask of a training image: its label, or
        the base model's prediction.
    module : {"fresh", "base"}, nn.Module class or instance, default="fresh"
        The head ``g`` to retrain: a new linear layer (``"fresh"``, as DFR
        retrains it), a copy of the base model's head (``"base"``), or any
        module mapping embeddings to logits (skorch's ``module__*``
        parameters apply). The paper does not say which; the two gave
        worst-group accuracies within a point of each other on the
        benchmarks, ``"fresh"`` slightly ahead.
    validation_data : tuple (X_val, y_val, groups_val), optional
        Validation images, labels and group labels for the per-epoch model
        selection. Without it, the last epoch is kept.
    class_balanced : bool, default=False
        Retrain on a class-balanced subsample (every class cut to the
        smallest class's size), as the paper does on CelebA.
    cache_masks : bool, default=True
        Compute the masks once per sample (stored as packed bits, one bit per
        pixel). ``False`` recomputes XGradCAM for every batch: no mask memory,
        much slower (see ``benchmarks/bench_mask_and_combine.py``).
    head : str, optional
        Name of the base model's linear head, if it cannot be found in forward order.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        The loss ``l`` of Eqs. 3-5, on logits.
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=5e-3
    step_size : int, default=5
        StepLR period in epochs.
    gamma : float, default=0.5
        StepLR decay, in (0, 1].
    max_epochs : int, default=10
        The paper: 10 on Waterbirds, 6 on CelebA.
    batch_size : int, default=32
        Samples per optimisation step (the batch ``B``: the removal fill
        ``b`` and the partners of Eq. 2 come from it) and per inference
        batch (embeddings, XGradCAM, prediction).
    train_split : None
        Must stay ``None``: the validation set is ``validation_data``.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the head initialisation, the batch order, the partners, the
        mask tie-breaking and the class-balanced subsample. The caller's
        torch RNG is left as it was.
    verbose : int, default=0
        ``0`` is silent; ``>= 1`` prints skorch's epoch table and a progress
        bar per epoch (and per embedding pass).
    **kwargs
        Any other skorch ``NeuralNetClassifier`` parameter (``callbacks``,
        ``optimizer__weight_decay``, ...).

    Attributes
    ----------
    classes_ : ndarray
    module_ : nn.Module
        The retrained head ``g``.
    base_model_ : BaseModel
        The frozen ``M = g o f`` the masks and embeddings come from.
    base_logit_index_ : ndarray of int or None
        The base model's logit of each class of ``classes_``
        (:func:`~skshortcut.base_model.class_to_logit`); ``None`` for a plain
        module whose logits are not needed.
    estimator_ : object
        The base estimator (the new ERMClassifier when ``estimator`` is None).
    mask_pixels_ : int
        ``K`` in pixels.
    input_shape_ : tuple
    best_epoch_ : int or None
        The kept epoch (1-based), when ``validation_data`` is given.
    best_score_ : float or None
        Its validation worst-group accuracy.
    base_valid_score_ : float or None
        The base model's validation worst-group accuracy. When ``best_score_``
        does not exceed it by 0.01, ``fit`` warns: the masks most likely keep
        the shortcut (check :func:`mask_region_table`).
    shortcut_overlap_ : list of dict or None
        With ``validation_data``: :func:`shortcut_mask_overlap` of (up to 256
        per group of) the validation images. ``fit`` warns when, in a class,
        the masks of one of two groups put 50 % or more of their pixels where
        the groups differ: the shortcut lies on the pixels the masks keep.
    history_ : skorch History
        Per epoch: ``train_loss`` (Eq. 6), ``train_loss_ce``,
        ``train_loss_rmv``, ``train_loss_comb``, ``dur`` and, with
        ``validation_data``, ``valid_loss``, ``valid_acc``, ``valid_wga`` and
        ``valid_wga_best``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skshortcut import ERMClassifier, MaskAndCombineRetrainer
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(64, 3, 8, 8).astype("float32")
    >>> y = np.array(["a", "b"] * 32)
    >>> erm = ERMClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> mac = MaskAndCombineRetrainer(FrozenEstimator(erm), max_epochs=2, random_state=0).fit(X, y)
    >>> mac.predict(X[:2]).shape, mac.decision_function(X[:2]).shape, mac.mask_pixels_
    ((2,), (2,), 19)
    """

    _parameter_constraints = {
        **SKORCH_CONSTRAINTS,
        "estimator": [None, nn.Module, HasMethods(["fit", "predict"])],
        "alpha": [Interval(Real, 0, np.inf, closed="left")],
        "beta": [Interval(Real, 0, np.inf, closed="left")],
        "top_k": [Interval(Integral, 1, None, closed="left"), Interval(RealNotInt, 0, 1, closed="right")],
        "layer": [None, str, nn.Module],
        "cam_target": [StrOptions({"label", "predicted"})],
        "module": [StrOptions({"fresh", "base"}), nn.Module, type],
        "validation_data": [tuple, list, None],
        "class_balanced": ["boolean"],
        "cache_masks": ["boolean"],
        "head": [None, str],
        "step_size": [Interval(Integral, 1, None, closed="left")],
        "gamma": [Interval(Real, 0, 1, closed="right")],
        # the partners and the fill of Eqs. 1-2 come from the batch: a batch size, not -1
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "train_split": [None],
    }

    def __init__(
        self,
        estimator=None,
        *,
        alpha=2.0,
        beta=3.0,
        top_k=0.3,
        layer=None,
        cam_target="label",
        module="fresh",
        validation_data=None,
        class_balanced=False,
        cache_masks=True,
        head=None,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=5e-3,
        step_size=5,
        gamma=0.5,
        max_epochs=10,
        batch_size=32,
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
        self.estimator = estimator
        self.alpha = alpha
        self.beta = beta
        self.top_k = top_k
        self.layer = layer
        self.cam_target = cam_target
        self.validation_data = validation_data
        self.class_balanced = class_balanced
        self.cache_masks = cache_masks
        self.head = head
        self.step_size = step_size
        self.gamma = gamma
        self.random_state = random_state

    # ------------------------------------------------------------------ skorch hooks
    def __setattr__(self, name, attr):
        # The base model and the CAM layer are parameters, not components skorch trains or moves.
        if name in ("estimator", "estimator_", "layer"):
            object.__setattr__(self, name, attr)
            return
        super().__setattr__(name, attr)

    @property
    def _default_callbacks(self):
        callbacks = [
            ("epoch_timer", EpochTimer()),
            *loss_term_callbacks(
                [("loss", True), ("loss_ce", True), ("loss_rmv", True), ("loss_comb", True)], [("loss", True)]
            ),
            ("lr_scheduler", LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=self.step_size, gamma=self.gamma)),
        ]
        if self.validation_data is not None:
            callbacks += selection_callbacks()
        callbacks.append(("print_log", PrintLog()))
        return callbacks + training_callbacks(verbose=self.verbose)

    def initialize_module(self):
        if isinstance(self.module, str):
            base = getattr(self, "base_model_", None)
            if base is None:
                raise RuntimeError("The head is built from the base model: call fit, not initialize.")
            if self.module == "base":
                head = base.copy_head()
                with torch.no_grad():  # rows in the order of classes_
                    head.weight.copy_(head.weight[self.base_logit_index_])
                    if head.bias is not None:
                        head.bias.copy_(head.bias[self.base_logit_index_])
            else:
                head = nn.Linear(base.n_features, self.n_classes_)
            self.module_ = head
            return self
        return super().initialize_module()

    def get_split_datasets(self, X, y=None, **fit_params):
        # Training batches are indices into the cached embeddings (``train_step_single``);
        # the validation set is the validation embeddings, computed once since f is frozen.
        valid = getattr(self, "valid_cache_", None)
        return self.get_dataset(X, y), None if valid is None else self.get_dataset(valid[0], valid[1])

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        # A DataLoader draws a seed from torch's RNG when iterated: the validation pass runs on
        # a forked RNG so that `validation_data` decides which epoch is kept, never the training.
        with torch.random.fork_rng(devices=[]):
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def train_step_single(self, batch, **fit_params):
        """One step of Eq. 6: original embeddings from the cache, augmented ones through frozen ``f``."""
        self._set_training(True)
        idx, yi = unpack_data(batch)
        cache = getattr(self, "train_cache_", None)
        if cache is None:
            raise RuntimeError("MaskAndCombineRetrainer trains through `fit`, which computes the masks and embeddings.")
        z, z_rm, z_comb, has_partner = cache.embeddings(idx, yi, removal=bool(self.alpha), combination=bool(self.beta))
        logits = MaCLogits(
            self.infer(z, **fit_params),
            None if z_rm is None else self.infer(z_rm, **fit_params),
            None if z_comb is None else self.infer(z_comb, **fit_params),
            has_partner,
        )
        loss = self.get_loss(logits, yi, X=idx, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": logits.original}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Eq. 6, ``L_CE + alpha * L_rmv + beta * L_comb``, for a training batch; plain cross-entropy otherwise."""
        if not isinstance(y_pred, MaCLogits):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        y_true = y_true.to(y_pred.original.device)
        ce = super().get_loss(y_pred.original, y_true, X=X, training=training)
        zero = ce.new_zeros(())
        rmv = zero if y_pred.removed is None else super().get_loss(y_pred.removed, y_true, X=X, training=training)
        comb = zero
        if y_pred.combined is not None and y_pred.combined.shape[0]:
            comb = super().get_loss(y_pred.combined, y_true[y_pred.has_partner], X=X, training=training)
        if training:
            self.history.record_batch("train_loss_ce", ce.item())
            self.history.record_batch("train_loss_rmv", rmv.item())
            self.history.record_batch("train_loss_comb", comb.item())
        return ce + self.alpha * rmv + self.beta * comb

    def _mask_maker(self):
        return MaskMaker(self.base_model_, self.layer, self.input_shape_, self.mask_pixels_, self.batch_size)

    # ------------------------------------------------------------------ validation
    def _check_estimator(self):
        est = unwrap_frozen(self.estimator)
        if hasattr(est, "module") and not isinstance(est, nn.Module) and not getattr(est, "initialized_", False):
            raise TypeError(
                f"The {type(est).__name__} passed as `estimator` is not fitted. Pass a fitted model wrapped in "
                "`sklearn.frozen.FrozenEstimator(fitted_net)`: `clone` (as in cross_validate or GridSearchCV) "
                "turns a bare fitted net into an unfitted copy."
            )

    def _check_validation_data(self):
        vd = self.validation_data
        if vd is None:
            return None
        if len(vd) != 3:
            raise ValueError(
                "`validation_data` must be a tuple (X_val, y_val, groups_val) of validation images, labels "
                f"and group labels; got one of length {len(vd)}."
            )
        Xv, yv, gv = vd
        if yv is None and is_dataset(Xv):
            yv = dataset_targets(Xv)
        Xv = self._validate_images(Xv, reset=False, name="validation_data[0]")
        yv = check_labels(yv, "validation_data[1]")
        gv = check_labels(gv, "validation_data[2]")
        check_same_length(X_val=Xv, y_val=yv, groups_val=gv)
        return Xv, self._transform_labels(yv, name="validation_data[1]"), gv

    def _logit_index(self, base):
        """:func:`~skshortcut.base_model.class_to_logit` of ``classes_``, where it is needed or known."""
        if base.classes is None and self.module != "base" and self.cam_target != "label":
            return None  # a plain module with other logits: only its features are used
        try:
            return base.class_to_logit(self.classes_)
        except ValueError as exc:
            if base.classes is not None:
                raise
            raise ValueError(f"{exc} Use module='fresh' and cam_target='predicted' for another head.") from exc

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X, y=None, **fit_params):
        """Compute masks and embeddings once, then retrain the head on Eq. 6.

        Parameters
        ----------
        X : ndarray or tensor of shape (n, channels, height, width), or torch Dataset
            Training images in [0, 1] (the paper: the base model's training set).
        y : array-like of shape (n,), optional
            Labels of any hashable type; may be omitted for a Dataset that
            carries them.
        **fit_params
            Passed to skorch's ``fit`` (and the head's forward).

        Returns
        -------
        self
        """
        self._check_params()
        self._check_estimator()
        if "groups" in fit_params:
            raise TypeError(
                "MaskAndCombineRetrainer trains without group labels: pass the validation groups as "
                "`validation_data=(X_val, y_val, groups_val)`. In cross_validate or GridSearchCV, enable "
                "metadata routing (sklearn.set_config(enable_metadata_routing=True)) so that `groups` reaches "
                "the scorer only."
            )
        X, y = self._images_and_labels(X, y)
        y_enc = self._encode_labels(y)
        h, w = self.input_shape_[1:]
        self.mask_pixels_ = _resolve_k(self.top_k, h * w)
        valid = self._check_validation_data()
        seed = _seed_from(self.random_state)
        rng = np.random.RandomState(seed)
        device = resolve_device(self.device)

        with self._seeded():
            self.base_model_, self.estimator_ = resolve_base_model(
                self.estimator, X, y, head=self.head, device=device, random_state=seed, verbose=self.verbose
            )
            base = self.base_model_
            self.base_logit_index_ = self._logit_index(base)

            sel = balanced_indices(y_enc, rng, min_group_size=1) if self.class_balanced else np.arange(len(y_enc))
            X_fit = X if len(sel) == len(y_enc) else _take(X, sel)
            y_fit = y_enc[sel]
            cam_target = self.base_logit_index_[y_fit] if self.cam_target == "label" else None

            Z = torch.as_tensor(base.embed(X_fit, batch_size=self.batch_size, progress=bool(self.verbose)))
            maker = self._mask_maker()
            masks = maker.packed(X_fit, cam_target, rng) if self.cache_masks and (self.alpha or self.beta) else None
            self.train_cache_ = TrainCache(X_fit, Z.to(device), masks, cam_target, maker, rng)
            self.base_valid_score_ = None
            if valid is not None:
                Xv, yv, gv = valid
                Zv = torch.as_tensor(base.embed(Xv, batch_size=self.batch_size)).to(device)
                self.valid_cache_ = (Zv, yv, gv)
                with torch.no_grad():
                    base_pred = predicted_index(base.head(Zv), self.base_logit_index_)
                self.base_valid_score_ = worst_group_accuracy(yv, base_pred, groups=gv)
            try:
                super().fit(np.arange(len(y_fit), dtype=np.int64), y_fit, **fit_params)
            finally:
                del self.train_cache_
                self.__dict__.pop("valid_cache_", None)
        selection = dict(self.callbacks_).get("worst_group_selection")
        best = getattr(selection, "best_epoch_", 0)
        self.best_epoch_ = int(best) if best else None
        self.best_score_ = None if self.best_epoch_ is None else float(self.history[self.best_epoch_ - 1, "valid_wga"])
        # after training, on a random stream of its own: the fit is the same with or without it
        self.shortcut_overlap_ = None if valid is None else validation_overlap(self, *valid, seed)
        warn_if_no_use(self)
        return self

    def _logits(self, X):
        check_is_fitted(self, "label_encoder_")
        Z = self.base_model_.embed(self._validate_images(X, reset=False), batch_size=self.batch_size)
        with torch.no_grad():
            return self.forward(Z, training=False).float().cpu().numpy()

    def decision_function(self, X):
        """Scores of the retrained model ``g(f(x))``, as scikit-learn's classifiers give them.

        Returns
        -------
        ndarray of shape (n,) for two classes (the logit of ``classes_[1]``
        minus that of ``classes_[0]``), else (n, n_classes) logits in
        ``classes_`` order.
        """
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), columns in ``classes_`` order."""
        return torch.softmax(torch.as_tensor(self._logits(X)), dim=1).numpy()

    def predict(self, X):
        """Predicted class labels, in the user's label type."""
        return self.classes_[predicted_index(self._logits(X))]

    def compute_masks(self, X, y=None, *, return_heatmaps=False):
        """The top-K XGradCAM masks of the base model for images ``X``.

        Parameters
        ----------
        X : ndarray, tensor or Dataset of images
        y : array-like, optional
            Labels, for ``cam_target="label"``; without them the base model's
            predictions are the targets.
        return_heatmaps : bool, default=False
            Also return the XGradCAM heatmaps the masks were taken from.

        Returns
        -------
        masks : ndarray of bool, shape (n, height, width)
        heatmaps : ndarray of shape (n, height, width), only if ``return_heatmaps``
        """
        check_is_fitted(self, "label_encoder_")
        X = self._validate_images(X, reset=False)
        target = None
        if y is not None and self.cam_target == "label":
            y = check_labels(y, "y")
            check_same_length(X=X, y=y)
            target = self.base_logit_index_[self._transform_labels(y)]
        maker = self._mask_maker()
        out = maker.packed(X, target, np.random.RandomState(_seed_from(self.random_state)), keep_heatmaps=return_heatmaps)
        masks = maker.unpack(out[0] if return_heatmaps else out)
        return (masks, out[1]) if return_heatmaps else masks
