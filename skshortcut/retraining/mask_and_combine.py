"""``MaskAndCombineRetrainer``: last-layer retraining on masked and recombined images.

HosseiniNoohdani, Samiei, Hosseini and Soleymani Baghshah, *Mitigating
Spurious Correlation in Images by Intervention* (Mask-and-Combine, "MaC").

The base classifier ``M = g o f`` (feature extractor ``f``, linear head ``g``)
was trained by ERM. Its XGradCAM heatmaps mostly cover the core (causal) part
of an image, so the top-K pixels of each heatmap form a binary *mask*
``m``. Two interventions on the non-core part break the spurious correlation:

* **removal** (Eq. 1): ``m * x + (1 - m) * b``, where ``b`` is the per-channel
  mean of the batch;
* **combination** (Eq. 2): the core of ``x_i`` with the non-core part of an
  image ``x_j`` of another class of the batch,
  ``m_i x_i + (1 - m_i)(1 - m_j) x_j + (1 - m_i) m_j b``, labelled ``y_i``.

Only ``g`` is retrained, with the loss of Eq. 6,
``L_CE + alpha * L_rmv + beta * L_comb``; ``f`` stays frozen. Group labels
are needed only to choose the epoch (and ``alpha``, ``beta``) by validation
worst-group accuracy.

This module holds the augmentation functions (pixel-exact implementations of
Eqs. 1 and 2), the top-K masks, the retrainer and the paper's table 1
diagnostic (:func:`mask_region_table`).
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EpochTimer, LRScheduler, PrintLog
from skorch.dataset import unpack_data
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._balance import balanced_indices
from .._grouped import _take
from .._torch import (
    _seed_from,
    dataset_targets,
    input_shape,
    is_dataset,
    iter_batches,
    n_samples,
    resolve_device,
    restore_module_state,
    torch_seed,
)
from .._skorch import AutoDeviceMixin, loss_term_callbacks, training_callbacks
from .._validation import check_labels, check_same_length
from ..base_model import resolve_base_model
from ..metrics import worst_group_accuracy

__all__ = [
    "MaskAndCombineRetrainer",
    "top_k_mask",
    "draw_partners",
    "masked_removal",
    "masked_combination",
    "mask_region_table",
]


# =========================================================================== augmentations
def _as_tensor(a, dtype=None):
    """``(tensor, was_numpy)`` for an array-like or tensor."""
    if isinstance(a, torch.Tensor):
        return (a if dtype is None else a.to(dtype)), False
    return torch.as_tensor(np.asarray(a), dtype=dtype), True


def _resolve_k(k, n_pixels: int, name: str = "top_k") -> int:
    """K as a pixel count: an int is a count, a float in (0, 1] a fraction of the image."""
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise TypeError(f"`{name}` must be an int (pixel count) or a float in (0, 1] (fraction); got {k!r}.")
    if isinstance(k, numbers.Integral):
        if not 1 <= k <= n_pixels:
            raise ValueError(f"`{name}` as a pixel count must be in [1, {n_pixels}] for these images; got {k}.")
        return int(k)
    if not 0.0 < float(k) <= 1.0:
        raise ValueError(f"`{name}` as a fraction of the image must be in (0, 1]; got {k}.")
    return max(1, int(round(float(k) * n_pixels)))


def top_k_mask(scores, k, *, random_state=None):
    """Binary masks of the ``K`` highest-scoring pixels of each heatmap.

    The mask of Mask-and-Combine (section 3.2): "a H x W x 1 binary mask is
    made by selecting the top-K pixels with the highest scores". Every mask
    has exactly ``K`` ones. Ties (for example the zeros of a rectified CAM)
    are broken at random, so that they do not favour one corner of the image.

    Parameters
    ----------
    scores : ndarray or tensor of shape (n, height, width)
        Heatmaps, for example XGradCAM upsampled to the image.
    k : int or float
        An int is the number of pixels ``K``; a float in (0, 1] is a fraction
        of the ``height * width`` pixels (rounded, at least one).
    random_state : int, RandomState or None, default=None
        Seeds the tie-breaking.

    Returns
    -------
    masks : ndarray or tensor of bool, shape (n, height, width)
        Same kind (numpy or torch) as ``scores``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.mask_and_combine import top_k_mask
    >>> top_k_mask(np.array([[[0.1, 0.9], [0.5, 0.2]]]), 2).astype(int)
    array([[[0, 1],
            [1, 0]]])
    """
    t, was_numpy = _as_tensor(scores)
    if t.ndim != 3:
        raise ValueError(f"`scores` must have shape (n, height, width); got {tuple(t.shape)}.")
    if not torch.is_floating_point(t):
        t = t.float()
    n, h, w = t.shape
    kk = _resolve_k(k, h * w, "k")
    flat = t.reshape(n, h * w)
    seed = _seed_from(check_random_state(random_state)) if random_state is not None else None
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    # random pixel order first, then a stable sort: equal scores keep a random order
    perm = torch.randperm(h * w, generator=gen).to(flat.device)
    order = torch.argsort(flat[:, perm], dim=1, descending=True, stable=True)[:, :kk]
    masks = torch.zeros(n, h * w, dtype=torch.bool, device=flat.device)
    masks.scatter_(1, perm[order], True)
    masks = masks.reshape(n, h, w)
    return masks.cpu().numpy() if was_numpy else masks


def draw_partners(y, random_state=None) -> np.ndarray:
    """For each sample, a random sample of another class (the ``j`` of Eq. 2).

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels of the batch.
    random_state : int, RandomState or None, default=None

    Returns
    -------
    partners : ndarray of int, shape (n,)
        ``partners[i]`` is an index ``j`` with ``y[j] != y[i]``, drawn
        uniformly among them; ``-1`` where the batch holds no other class.

    Examples
    --------
    >>> from skshortcut.retraining.mask_and_combine import draw_partners
    >>> draw_partners([0, 0, 1], random_state=0).tolist()
    [2, 2, 0]
    """
    y = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)
    if y.ndim != 1:
        raise ValueError(f"`y` must be one-dimensional; got shape {y.shape}.")
    rng = check_random_state(random_state)
    partners = np.full(len(y), -1, dtype=np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        others = np.flatnonzero(y != c)
        if len(others):
            partners[members] = others[rng.randint(len(others), size=len(members))]
    return partners


def _check_aug_inputs(X, masks, fill):
    x, was_numpy = _as_tensor(X)
    if x.ndim != 4:
        raise ValueError(f"`X` must have shape (n, channels, height, width); got {tuple(x.shape)}.")
    if not torch.is_floating_point(x):
        x = x.float()
    m, _ = _as_tensor(masks)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3 or tuple(m.shape) != (x.shape[0], x.shape[2], x.shape[3]):
        raise ValueError(
            f"`masks` must have shape (n, height, width) = {(x.shape[0], x.shape[2], x.shape[3])}; "
            f"got {tuple(m.shape)}."
        )
    m = m.to(device=x.device, dtype=x.dtype)[:, None]
    if fill is None:
        b = x.mean(dim=(0, 2, 3))
    else:
        b, _ = _as_tensor(fill)
        b = b.to(device=x.device, dtype=x.dtype).reshape(-1)
        if b.numel() not in (1, x.shape[1]):
            raise ValueError(f"`fill` must be a scalar or hold one value per channel ({x.shape[1]}); got {b.numel()}.")
    return x, m, b.reshape(1, -1, 1, 1).expand(1, x.shape[1], 1, 1), was_numpy


def _removal(x, m, b):
    """Eq. 1 on tensors: ``m * x + (1 - m) * b`` (``m`` of shape (n, 1, H, W))."""
    return m * x + (1 - m) * b


def _combination(x, m, partners, b):
    """Eq. 2 on tensors: ``m_i x_i + (1 - m_i)(1 - m_j) x_j + (1 - m_i) m_j b``."""
    xj, mj = x[partners], m[partners]
    return m * x + (1 - m) * (1 - mj) * xj + (1 - m) * mj * b


def masked_removal(X, masks, *, fill=None):
    """Remove the non-core part of images (Eq. 1 of Mask-and-Combine).

    ``X_rm = m * X + (1 - m) * b``: pixels outside the mask are set to ``b``,
    by default the batch's per-channel mean "to change the statistics of the
    batch as insignificantly as possible".

    Parameters
    ----------
    X : ndarray or tensor of shape (n, channels, height, width)
        The batch.
    masks : ndarray or tensor of shape (n, height, width)
        Binary (or soft) masks, 1 on the core.
    fill : scalar or sequence of float (one per channel), optional
        ``b``; default: ``X.mean(axis=(0, 2, 3))``.

    Returns
    -------
    ndarray or tensor of shape (n, channels, height, width)
        Same kind as ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.mask_and_combine import masked_removal
    >>> X = np.array([[[[1.0, 3.0]]]])             # one 1x2 image, one channel
    >>> masked_removal(X, np.array([[[1, 0]]])).tolist()   # b = mean = 2
    [[[[1.0, 2.0]]]]
    """
    x, m, b, was_numpy = _check_aug_inputs(X, masks, fill)
    out = _removal(x, m, b)
    return out.cpu().numpy() if was_numpy else out


def masked_combination(X, masks, partners, *, fill=None):
    """Combine the core of each image with the non-core part of another (Eq. 2 of Mask-and-Combine).

    ``X_ij = m_i X_i + (1 - m_i)(1 - m_j) X_j + (1 - m_i) m_j b``: the core of
    ``X_i``, the non-core part of its partner ``X_j`` where it does not cover
    the core of ``X_i``, and ``b`` where the core of ``X_j`` would have been.
    The combined image keeps the label of ``X_i``.

    Parameters
    ----------
    X : ndarray or tensor of shape (n, channels, height, width)
        The batch.
    masks : ndarray or tensor of shape (n, height, width)
        Masks of the batch, 1 on the core.
    partners : array-like of int, shape (n,)
        ``partners[i] = j``, an index into the batch (usually of another
        class, see :func:`draw_partners`).
    fill : scalar or sequence of float (one per channel), optional
        ``b``; default: ``X.mean(axis=(0, 2, 3))``.

    Returns
    -------
    ndarray or tensor of shape (n, channels, height, width)
        Same kind as ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.mask_and_combine import masked_combination
    >>> X = np.array([[[[1.0, 1.0, 1.0]]], [[[5.0, 5.0, 5.0]]]])  # two 1x3 images
    >>> masks = np.array([[[1, 0, 0]], [[0, 1, 0]]])
    >>> masked_combination(X, masks, [1, 0])[0].tolist()        # b = mean = 3
    [[[1.0, 3.0, 5.0]]]
    """
    x, m, b, was_numpy = _check_aug_inputs(X, masks, fill)
    p = np.asarray(partners.detach().cpu() if hasattr(partners, "detach") else partners)
    if p.shape != (x.shape[0],) or p.dtype.kind not in "iu":
        raise ValueError(f"`partners` must be {x.shape[0]} integer indices into the batch; got {p!r}.")
    if len(p) and (p.min() < 0 or p.max() >= x.shape[0]):
        raise ValueError(f"`partners` must index the batch (0 to {x.shape[0] - 1}); got values {p.min()} to {p.max()}.")
    out = _combination(x, m, torch.as_tensor(p, device=x.device), b)
    return out.cpu().numpy() if was_numpy else out


# =========================================================================== diagnostic
def mask_region_table(masks, region, groups, *, heatmaps=None, group_names=None):
    """Where the masks fall, per group: the paper's table 1 for a known core region.

    For data sets where the core region is known (dominoes: the bottom half;
    Waterbirds: the bird segmentation), this measures how much of each mask
    covers the core. The paper's table 1 reports, per group, the mean
    normalised XGradCAM score on the foreground and the background (FGS,
    BGS) and the share of foreground and background pixels covered by the
    mask (Mask/FG, Mask/BG).

    Parameters
    ----------
    masks : array-like of bool, shape (n, height, width)
    region : array-like of bool, shape (height, width) or (n, height, width)
        True on the core region.
    groups : array-like of shape (n,)
    heatmaps : array-like of shape (n, height, width), optional
        The scores the masks came from; adds the mean score on each region,
        each heatmap divided by its own max ``|value|``.
    group_names : sequence of str, optional
        Names indexed by the (integer) group labels.

    Returns
    -------
    table : dict
        ``{group: {"n": int, "mask_on_core": float, "mask_on_spurious": float,
        "core_covered": float, "spurious_covered": float[, "core_score": float,
        "spurious_score": float]}}``. ``mask_on_core`` is the share of mask
        pixels on the core region (``mask_on_spurious = 1 - mask_on_core``);
        ``core_covered`` / ``spurious_covered`` are the paper's Mask/FG and
        Mask/BG (share of the region's pixels inside the mask).

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining.mask_and_combine import mask_region_table
    >>> region = np.array([[False, False], [True, True]])        # bottom row is core
    >>> masks = np.array([[[0, 0], [1, 1]], [[1, 0], [1, 0]]], bool)
    >>> t = mask_region_table(masks, region, groups=[0, 1])
    >>> t[0]["mask_on_core"], t[1]["mask_on_core"], t[1]["core_covered"]
    (1.0, 0.5, 0.5)
    """
    m = np.asarray(masks).astype(bool)
    if m.ndim != 3:
        raise ValueError(f"`masks` must have shape (n, height, width); got {m.shape}.")
    r = np.asarray(region).astype(bool)
    if r.shape == m.shape[1:]:
        r = np.broadcast_to(r, m.shape)
    if r.shape != m.shape:
        raise ValueError(f"`region` must have shape {m.shape[1:]} or {m.shape}; got {r.shape}.")
    groups = check_labels(groups, "groups")
    check_same_length(masks=m, groups=groups)
    n = len(m)
    flat_m, flat_r = m.reshape(n, -1), r.reshape(n, -1)
    on_core = (flat_m & flat_r).sum(1)
    mask_size = np.maximum(flat_m.sum(1), 1)
    core_size, spur_size = flat_r.sum(1), (~flat_r).sum(1)
    per_sample = {
        "mask_on_core": on_core / mask_size,
        "mask_on_spurious": (flat_m & ~flat_r).sum(1) / mask_size,
        "core_covered": np.where(core_size > 0, on_core / np.maximum(core_size, 1), np.nan),
        "spurious_covered": np.where(spur_size > 0, (flat_m & ~flat_r).sum(1) / np.maximum(spur_size, 1), np.nan),
    }
    if heatmaps is not None:
        h = np.asarray(heatmaps, dtype=np.float64)
        if h.shape != m.shape:
            raise ValueError(f"`heatmaps` must have the shape of `masks` {m.shape}; got {h.shape}.")
        h = h.reshape(n, -1)
        h = h / np.maximum(np.abs(h).max(1, keepdims=True), 1e-12)
        per_sample["core_score"] = np.where(core_size > 0, (h * flat_r).sum(1) / np.maximum(core_size, 1), np.nan)
        per_sample["spurious_score"] = np.where(
            spur_size > 0, (h * ~flat_r).sum(1) / np.maximum(spur_size, 1), np.nan
        )
    table = {}
    for g in np.unique(groups):
        sel = groups == g
        key = group_names[int(g)] if group_names is not None else (g.item() if hasattr(g, "item") else g)
        row = {"n": int(sel.sum())}
        row.update({k: float(np.nanmean(v[sel])) for k, v in per_sample.items()})
        table[key] = row
    return table


# =========================================================================== training pieces
@dataclass
class _TrainCache:
    """What a fit computes once: images, cached embeddings and masks of the training set."""

    X: object  # images: array, tensor or Dataset
    Z: torch.Tensor  # f(x) of every training image, on the device
    masks: np.ndarray | None  # packed top-K masks (n, ceil(H * W / 8)), or None to recompute per batch
    cam_target: np.ndarray | None  # XGradCAM target of each image (base-model logit index), None: predicted
    shape: tuple  # (channels, height, width)
    k: int
    rng: np.random.RandomState


@dataclass
class _MaCLogits:
    """Logits of one training batch: originals, removed and combined images."""

    original: torch.Tensor
    removed: torch.Tensor | None
    combined: torch.Tensor | None
    has_partner: torch.Tensor | None


class _WorstGroupSelection(Callback):
    """Score validation worst-group accuracy after each epoch; keep the best epoch's head.

    The model selection of the paper (section 4.2 and appendix B): "the
    results of the model with the highest worst group accuracy on the
    validation set" are kept. Validation embeddings are computed once (``f``
    is frozen), so scoring an epoch only runs the head.
    """

    def on_train_begin(self, net, **kwargs):
        self.best_score_ = -np.inf
        self.best_state_ = None
        self.best_epoch_ = None

    def on_epoch_end(self, net, **kwargs):
        cache = getattr(net, "valid_cache_", None)
        if cache is None:
            return
        Z, y, groups = cache
        with torch.no_grad():
            net.module_.eval()
            pred = net.module_(Z).argmax(dim=1).cpu().numpy()
        wga = worst_group_accuracy(y, pred, groups=groups)
        net.history.record("valid_acc", float(np.mean(pred == y)))
        net.history.record("valid_wga", float(wga))
        better = wga > self.best_score_
        net.history.record("valid_wga_best", bool(better))
        if better:
            self.best_score_ = float(wga)
            self.best_epoch_ = len(net.history)
            self.best_state_ = copy.deepcopy(net.module_.state_dict())

    def on_train_end(self, net, **kwargs):
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)


def _load_images(X, idx, device):
    """Images ``X[idx]`` as one tensor batch, for arrays, tensors and Datasets alike."""
    return next(iter_batches(_take(X, np.asarray(idx)), len(idx), device=device))


# =========================================================================== estimator
class MaskAndCombineRetrainer(AutoDeviceMixin, NeuralNetClassifier):
    """Mask-and-Combine: retrain the last layer on XGradCAM-masked and recombined images.

    HosseiniNoohdani et al., *Mitigating Spurious Correlation in Images by
    Intervention*, section 3.2. Given a base classifier ``M = g o f`` trained
    by ERM:

    1. **Masks.** XGradCAM of ``M`` on its last convolutional layer (or
       ``layer``), upsampled bilinearly to the image; the ``top_k`` pixels
       with the highest scores form the binary mask ``m`` of each training
       image. They are computed once per sample, since ``f`` is frozen
       (``cache_masks=False`` recomputes them for every batch instead).
    2. **Interventions.** For each training batch ``B``: the removed images
       of Eq. 1, ``m x + (1 - m) b`` with ``b`` the per-channel mean of
       ``B``, and the combined images of Eq. 2, pairing each sample with a
       random sample of another class of ``B``; the combined image keeps its
       own label. Samples whose batch holds no other class are left out of
       the combination term.
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
    estimator : fitted skorch net, nn.Module or None, default=None
        The base model. ``None`` fits an :class:`~skshortcut.ERMClassifier`
        on the training data first. In a grid search, wrap a fitted net in
        :class:`sklearn.frozen.FrozenEstimator` (``clone`` would otherwise
        return an unfitted copy).
    alpha : float, default=2.0
        Weight of the removal loss ``L_rmv`` (Eq. 6).
    beta : float, default=3.0
        Weight of the combination loss ``L_comb`` (Eq. 6).
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
        StepLR decay.
    max_epochs : int, default=10
        The paper: 10 on Waterbirds, 6 on CelebA.
    batch_size : int, default=32
        Training batch ``B`` (the removal fill ``b`` and the partners of Eq. 2
        come from it).
    embed_batch_size : int, default=256
        Batch size for embedding and XGradCAM passes.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the head initialisation, the batch order, the partners, the
        mask tie-breaking and the class-balanced subsample.
    verbose : int, default=0
        ``>= 1`` prints the epoch table and a progress bar.
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
    estimator_ : object
        The base estimator (the new ERMClassifier when ``estimator`` is None).
    mask_pixels_ : int
        ``K`` in pixels.
    input_shape_ : tuple
    best_epoch_ : int or None
        The kept epoch (1-based), when ``validation_data`` is given.
    best_score_ : float or None
        Its validation worst-group accuracy.
    history_ : skorch History
        Per epoch: ``train_loss`` (Eq. 6), ``train_loss_ce``,
        ``train_loss_rmv``, ``train_loss_comb``, ``valid_wga``, ``valid_acc``, ``dur``.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import ERMClassifier, MaskAndCombineRetrainer
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(64, 3, 8, 8).astype("float32")
    >>> y = np.array(["a", "b"] * 32)
    >>> erm = ERMClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> mac = MaskAndCombineRetrainer(erm, max_epochs=2, random_state=0).fit(X, y)
    >>> mac.predict(X[:2]).shape, mac.mask_pixels_
    ((2,), 19)
    """

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
        embed_batch_size=256,
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
        self.embed_batch_size = embed_batch_size
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
            *loss_term_callbacks([("loss", True), ("loss_ce", True), ("loss_rmv", True), ("loss_comb", True)]),
            ("lr_scheduler", LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=self.step_size, gamma=self.gamma)),
            ("worst_group_selection", _WorstGroupSelection()),
            ("print_log", PrintLog()),
        ]
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
                head = nn.Linear(base.n_features, len(self.classes_))
            self.module_ = head
            return self
        return super().initialize_module()

    def train_step_single(self, batch, **fit_params):
        """One step of Eq. 6: original embeddings from the cache, augmented ones through frozen ``f``."""
        self._set_training(True)
        idx, yi = unpack_data(batch)
        z, z_rm, z_comb, has_partner = self._batch_embeddings(idx, yi)
        logits = _MaCLogits(
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
        if not isinstance(y_pred, _MaCLogits):
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

    # ------------------------------------------------------------------ batch work
    def _batch_masks(self, idx_np, x):
        """Top-K masks of a batch: unpacked from the cache, or recomputed by XGradCAM."""
        cache = self.train_cache_
        c, h, w = cache.shape
        if cache.masks is not None:
            bits = np.unpackbits(cache.masks[idx_np], axis=1, count=h * w)
            return torch.from_numpy(bits.reshape(len(idx_np), h, w)).to(x.device)
        target = "predicted" if cache.cam_target is None else cache.cam_target[idx_np]
        heat = self._xgradcam(x, target)
        return top_k_mask(torch.as_tensor(heat), cache.k, random_state=cache.rng).to(x.device)

    def _batch_embeddings(self, idx, yi):
        """Cached ``f(x)``, and ``f`` of the removed (Eq. 1) and combined (Eq. 2) images."""
        cache = getattr(self, "train_cache_", None)
        if cache is None:
            raise RuntimeError("MaskAndCombineRetrainer trains through `fit`, which computes the masks and embeddings.")
        idx_np = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        z = cache.Z[torch.as_tensor(idx_np, device=cache.Z.device)]
        if not self.alpha and not self.beta:
            return z, None, None, None
        base = self.base_model_
        x = _load_images(cache.X, idx_np, base.device)
        m = self._batch_masks(idx_np, x).to(x.dtype)[:, None]
        b = x.mean(dim=(0, 2, 3)).reshape(1, -1, 1, 1)
        parts, has_partner = [], None
        if self.alpha:
            parts.append(_removal(x, m, b))
        if self.beta:
            y_np = yi.cpu().numpy() if isinstance(yi, torch.Tensor) else np.asarray(yi)
            partners = draw_partners(y_np, cache.rng)
            keep = partners >= 0
            has_partner = torch.as_tensor(keep, device=x.device)
            p = torch.as_tensor(partners[keep], device=x.device)
            parts.append(_combination(x[has_partner], m[has_partner], p, b) if keep.any() else x[:0])
        with restore_module_state(base.module), torch.no_grad():
            base.module.eval()
            feats = base.features_and_logits(torch.cat(parts))[0].to(z.dtype)
        z_rm = feats[: len(idx_np)] if self.alpha else None
        z_comb = feats[len(idx_np) :] if self.alpha else feats
        return z, z_rm, (z_comb if self.beta else None), has_partner

    def _xgradcam(self, X, target):
        from ..explain import attribute

        h, w = self.input_shape_[1:]
        return attribute(
            self.base_model_,
            X,
            method="xgradcam",
            target=target,
            layer=self.layer,
            size=(h, w),
            normalize=None,
            batch_size=self.embed_batch_size,
            device=self.base_model_.device,
        )

    def _packed_masks(self, X, cam_target, rng, *, keep_heatmaps=False):
        """Top-K masks of all of X, packed to bits, computed in chunks so memory stays small."""
        n = n_samples(X)
        h, w = self.input_shape_[1:]
        chunk = max(self.embed_batch_size, 1) * 4
        packed, heat_all = [], []
        for start in range(0, n, chunk):
            idx = np.arange(start, min(start + chunk, n))
            target = "predicted" if cam_target is None else cam_target[idx]
            heat = self._xgradcam(_take(X, idx), target)
            masks = top_k_mask(torch.as_tensor(heat), self.mask_pixels_, random_state=rng).cpu().numpy()
            packed.append(np.packbits(masks.reshape(len(idx), h * w), axis=1))
            if keep_heatmaps:
                heat_all.append(np.asarray(heat, dtype=np.float32))
        packed = np.concatenate(packed) if packed else np.zeros((0, -(-h * w // 8)), np.uint8)
        return (packed, np.concatenate(heat_all)) if keep_heatmaps else packed

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"`{name}` must be a real number >= 0; got {type(v).__name__}.")
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"`{name}` must be a finite real number >= 0; got {v!r}.")
        if self.cam_target not in ("label", "predicted"):
            raise ValueError(f"`cam_target` must be 'label' or 'predicted'; got {self.cam_target!r}.")
        if isinstance(self.module, str) and self.module not in ("base", "fresh"):
            raise ValueError(f"`module` must be 'base', 'fresh', or an nn.Module class or instance; got {self.module!r}.")
        for name in ("step_size", "embed_batch_size", "batch_size", "max_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; got {v!r}.")
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, numbers.Real) or not 0 < self.gamma <= 1:
            raise ValueError(f"`gamma` must be a float in (0, 1]; got {self.gamma!r}.")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, numbers.Real):
            raise TypeError(f"`top_k` must be an int (pixel count) or a float in (0, 1] (fraction); got {self.top_k!r}.")
        if self.estimator is not None and not isinstance(self.estimator, nn.Module):
            if hasattr(self.estimator, "module") and not getattr(self.estimator, "initialized_", False):
                raise TypeError(
                    f"The {type(self.estimator).__name__} passed as `estimator` is not fitted. Fit it first; in a "
                    "grid search or after `clone`, pass `sklearn.frozen.FrozenEstimator(fitted_net)` so that the "
                    "fitted base model is kept."
                )

    @staticmethod
    def _check_images(X, name="X"):
        if is_dataset(X):
            return X
        if hasattr(X, "detach"):
            X = X.detach().cpu().numpy()
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
            raise TypeError(f"`{name}` must be an image array (n, channels, height, width) or a torch Dataset; got {type(X).__name__}.")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 4:
            raise ValueError(f"`{name}` must be images of shape (n, channels, height, width); got shape {X.shape}.")
        return X

    def _check_validation_data(self):
        vd = self.validation_data
        if vd is None:
            return None
        if not isinstance(vd, (tuple, list)) or len(vd) != 3:
            raise ValueError(
                "`validation_data` must be a tuple (X_val, y_val, groups_val) of validation images, labels "
                f"and group labels; got {type(vd).__name__}"
                + (f" of length {len(vd)}." if isinstance(vd, (tuple, list)) else ".")
            )
        Xv, yv, gv = vd
        Xv = self._check_images(Xv, "validation_data[0]")
        if yv is None and is_dataset(Xv):
            yv = dataset_targets(Xv)
        yv = check_labels(yv, "validation_data[1] (y_val)")
        gv = check_labels(gv, "validation_data[2] (groups_val)")
        check_same_length(X_val=Xv, y_val=yv, groups_val=gv)
        if not is_dataset(Xv) and tuple(Xv.shape[1:]) != tuple(self.input_shape_):
            raise ValueError(f"`validation_data[0]` has images of shape {Xv.shape[1:]}; the training images are {self.input_shape_}.")
        unseen = np.setdiff1d(np.unique(yv), self.classes_)
        if len(unseen):
            raise ValueError(f"`validation_data[1]` holds labels absent from `y`: {unseen.tolist()}.")
        return Xv, yv, gv

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
        X = self._check_images(X)
        if y is None and is_dataset(X):
            y = dataset_targets(X)
        y = check_labels(y, "y")
        check_same_length(X=X, y=y)
        self.label_encoder_ = LabelEncoder().fit(y)
        if len(self.classes_) < 2:
            raise ValueError("`y` has a single class; a classifier needs at least two.")
        y_enc = self.label_encoder_.transform(y).astype(np.int64)
        self.input_shape_ = tuple(input_shape(X))
        if len(self.input_shape_) != 3:
            raise ValueError(f"`X` must hold images (channels, height, width); got sample shape {self.input_shape_}.")
        h, w = self.input_shape_[1:]
        self.mask_pixels_ = _resolve_k(self.top_k, h * w)
        valid = self._check_validation_data()
        seed = _seed_from(self.random_state)
        rng = np.random.RandomState(seed)
        device = resolve_device(self.device)

        with torch_seed(seed):
            self.base_model_, self.estimator_ = resolve_base_model(
                self.estimator, X, y, head=self.head, device=device, random_state=seed, verbose=self.verbose
            )
            base = self.base_model_
            self.base_logit_index_ = self._base_logit_index(base)

            if self.class_balanced:
                sel = balanced_indices(y_enc, rng, min_group_size=1)
            else:
                sel = np.arange(len(y_enc))
            X_fit = X if len(sel) == len(y_enc) else _take(X, sel)
            y_fit = y_enc[sel]
            cam_target = self.base_logit_index_[y_fit] if self.cam_target == "label" else None

            Z = torch.as_tensor(base.embed(X_fit, batch_size=self.embed_batch_size, progress=bool(self.verbose)))
            masks = self._packed_masks(X_fit, cam_target, rng) if self.cache_masks and (self.alpha or self.beta) else None
            self.train_cache_ = _TrainCache(
                X=X_fit, Z=Z.to(device), masks=masks, cam_target=cam_target,
                shape=self.input_shape_, k=self.mask_pixels_, rng=rng,
            )
            self.valid_cache_ = None
            if valid is not None:
                Xv, yv, gv = valid
                Zv = torch.as_tensor(base.embed(Xv, batch_size=self.embed_batch_size)).to(device)
                self.valid_cache_ = (Zv, self.label_encoder_.transform(yv), gv)
            try:
                super().fit(np.arange(len(y_fit), dtype=np.int64), y_fit, **fit_params)
            finally:
                del self.train_cache_
                self.valid_cache_ = None
        selection = dict(self.callbacks_).get("worst_group_selection")
        self.best_epoch_ = getattr(selection, "best_epoch_", None)
        self.best_score_ = None if self.best_epoch_ is None else selection.best_score_
        return self

    def _base_logit_index(self, base):
        """For each class of ``classes_``, the index of its logit in the base model."""
        n_classes = len(self.classes_)
        if base.classes is not None:
            pos = {c: i for i, c in enumerate(base.classes.tolist())}
            missing = [c for c in self.classes_.tolist() if c not in pos]
            if missing:
                raise ValueError(f"`y` holds labels the base model does not predict: {missing}.")
            return np.array([pos[c] for c in self.classes_.tolist()], dtype=np.int64)
        needs_base_order = self.module == "base" or self.cam_target == "label"
        if needs_base_order and base.n_outputs != n_classes:
            raise ValueError(
                f"The base model has {base.n_outputs} logits but `y` has {n_classes} classes; its logits are taken to "
                "be the classes in sorted order. Use module='fresh' and cam_target='predicted' for another head."
            )
        return np.arange(n_classes, dtype=np.int64)

    @property
    def classes_(self):
        check_is_fitted(self, "label_encoder_")
        return self.label_encoder_.classes_

    def _embed(self, X):
        check_is_fitted(self, "label_encoder_")
        X = self._check_images(X)
        if not is_dataset(X) and tuple(X.shape[1:]) != tuple(self.input_shape_):
            raise ValueError(f"`X` must have images of shape {self.input_shape_}; got {X.shape[1:]}.")
        return self.base_model_.embed(X, batch_size=self.embed_batch_size)

    def decision_function(self, X):
        """Logits of the retrained model ``g(f(x))``, columns in ``classes_`` order."""
        Z = self._embed(X)
        with torch.no_grad():
            return self.forward(Z, training=False).float().cpu().numpy()

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), columns in ``classes_`` order."""
        return torch.softmax(torch.as_tensor(self.decision_function(X)), dim=1).numpy()

    def predict(self, X):
        """Predicted class labels, in the user's label type."""
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on ``X`` and ``y``."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)

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
        X = self._check_images(X)
        target = None
        if y is not None and self.cam_target == "label":
            y = check_labels(y, "y")
            check_same_length(X=X, y=y)
            target = self.base_logit_index_[self.label_encoder_.transform(y)]
        rng = np.random.RandomState(_seed_from(self.random_state))
        out = self._packed_masks(X, target, rng, keep_heatmaps=return_heatmaps)
        packed = out[0] if return_heatmaps else out
        h, w = self.input_shape_[1:]
        masks = np.unpackbits(packed, axis=1, count=h * w).reshape(-1, h, w).astype(bool)
        return (masks, out[1]) if return_heatmaps else masks
