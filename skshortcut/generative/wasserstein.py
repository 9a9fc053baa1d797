"""``WassersteinDisentangler``: foreground and background features that carry no information about each other.

Kattakinda, Levine and Feizi, *Invariant Learning via Diffusion Dreamed
Distribution Shifts* (D3S), section 5. A feature extractor ``h`` maps an image
to ``z = (z_fg, z_bg)``; linear heads ``w_fg`` and ``w_bg`` predict the
foreground label from ``z_fg`` and the background label from ``z_bg``; two
label-conditioned critics estimate the Wasserstein distances between the
joint distributions ``P(z_fg, l_bg)``, ``P(z_bg, l_fg)`` and the products of
their marginals (Eqs. 7-8), and the extractor is trained to make both zero
(Eq. 10), i.e. to make ``z_fg`` independent of the background label and
``z_bg`` independent of the foreground label (Eq. 5).
"""

from __future__ import annotations

import contextlib
import copy
import numbers

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator
from sklearn.base import ClassifierMixin, TransformerMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._torch import (
    ImageLabelDataset,
    _seed_from,
    input_shape,
    is_dataset,
    iter_batches,
    restore_module_state,
    torch_seed,
)
from .._skorch import AutoDeviceMixin, loss_term_callbacks, training_callbacks
from .._validation import check_positive_int, check_same_length
from ..nets import Critic, SmallCNN, build_classifier

__all__ = ["WassersteinDisentangler", "DisentanglerModule", "wasserstein_terms", "UNKNOWN_BACKGROUND"]

#: Background label meaning "unknown": such samples skip every term that uses
#: the background label (the paper's ImageNet images, section 5).
UNKNOWN_BACKGROUND = -1

#: D3S's split of ResNet-50's 2048 features: 1798 foreground + 250 background.
_PAPER_BACKGROUND_FRACTION = 250 / 2048
_PARTS = ("fg", "bg", "both")
_BUILTIN_EXTRACTORS = ("cnn", "resnet18", "resnet34", "resnet50")


class DisentanglerModule(nn.Module):
    """Feature extractor ``h`` with the linear heads ``w_fg`` and ``w_bg`` of D3S (section 5).

    ``z = h(x)`` is split into ``z_fg = z[:, :n_foreground_features]`` and
    ``z_bg`` (the remaining ``n_background_features``); the forward pass
    returns ``(w_fg z_fg, w_bg z_bg, z)``.

    Parameters
    ----------
    extractor : nn.Module
        Maps images to ``(n, n_features)`` (or ``(n, n_features, 1, 1)``).
    n_features : int
    n_background_features : int
        Between 1 and ``n_features - 1``.
    n_classes : int
        Foreground classes.
    n_background_classes : int

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skshortcut.generative.wasserstein import DisentanglerModule
    >>> h = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    >>> m = DisentanglerModule(h, 10, 3, n_classes=4, n_background_classes=2)
    >>> [t.shape[1] for t in m(torch.zeros(5, 3, 8, 8))]
    [4, 2, 10]
    """

    def __init__(self, extractor, n_features, n_background_features, n_classes, n_background_classes):
        super().__init__()
        self.extractor = extractor
        self.n_features = int(n_features)
        self.n_background_features = int(n_background_features)
        self.n_foreground_features = self.n_features - self.n_background_features
        self.head_fg = nn.Linear(self.n_foreground_features, int(n_classes))
        self.head_bg = nn.Linear(self.n_background_features, int(n_background_classes))

    def features(self, x):
        """``z = h(x)`` as ``(n, n_features)``."""
        z = self.extractor(x)
        if isinstance(z, (tuple, list)):
            z = z[0]
        return z.flatten(1)

    def split(self, z):
        """``(z_fg, z_bg)``."""
        return z[:, : self.n_foreground_features], z[:, self.n_foreground_features :]

    def forward(self, x):
        z = self.features(x)
        z_fg, z_bg = self.split(z)
        return self.head_fg(z_fg), self.head_bg(z_bg), z


def wasserstein_terms(critic, z, labels, *, penalty=True):
    """A critic's Wasserstein estimate (Eq. 8) and gradient penalty (Eq. 9) on one batch.

    The joint sample is the batch ``(z_i, l_i)``; the product-of-marginals
    sample is ``(z_i, l_s(i))`` with the labels shuffled by a random
    permutation ``s``. The gradient penalty (Gulrajani et al.) is evaluated
    at ``(eps z1 + (1 - eps) z2, eps l1 + (1 - eps) l2)``, ``eps ~ U(0, 1)``
    per sample, between a product sample ``(z1, l1)`` and an independently
    drawn joint sample ``(z2, l2)`` (labels as one-hot vectors), with the
    gradient taken with respect to both the features and the label. All
    three sets of inputs go through the critic in one pass.

    Parameters
    ----------
    critic : skshortcut.nets.Critic
    z : Tensor of shape (n, d)
    labels : Tensor of shape (n,)
        Integer labels.
    penalty : bool, default=True
        Also compute the gradient penalty (the critic's step needs it, the
        feature extractor's does not).

    Returns
    -------
    w : Tensor
        ``E_joint[D] - E_prod[D]``, a scalar.
    gp : Tensor or None
        ``mean((||grad D|| - 1)^2)``, differentiable with respect to the
        critic's parameters.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.nets import Critic
    >>> from skshortcut.generative.wasserstein import wasserstein_terms
    >>> _ = torch.manual_seed(0)
    >>> w, gp = wasserstein_terms(Critic(4, 3), torch.randn(8, 4), torch.randint(0, 3, (8,)))
    >>> w.shape, bool(gp.detach() >= 0)
    (torch.Size([]), True)
    """
    n = labels.shape[0]
    onehot = critic.one_hot(labels)
    shuffled = onehot[torch.randperm(n, device=labels.device)]
    feats, labs = [z, z], [onehot, shuffled]
    if penalty:
        other = torch.randperm(n, device=labels.device)  # an independent joint sample
        eps = torch.rand(n, 1, device=z.device, dtype=z.dtype)
        z_hat = (eps * z + (1 - eps) * z[other]).detach().requires_grad_(True)
        l_hat = (eps * shuffled + (1 - eps) * onehot[other]).detach().requires_grad_(True)
        feats.append(z_hat)
        labs.append(l_hat)
    scores = critic(torch.cat(feats), torch.cat(labs))
    w = scores[:n].mean() - scores[n : 2 * n].mean()
    if not penalty:
        return w, None
    grad_z, grad_l = torch.autograd.grad(scores[2 * n :].sum(), (z_hat, l_hat), create_graph=True)
    norm = torch.sqrt(grad_z.pow(2).sum(1) + grad_l.pow(2).sum(1) + 1e-12)
    return w, (norm - 1.0).pow(2).mean()


@contextlib.contextmanager
def _frozen(module):
    """Switch off ``requires_grad`` of a module's parameters for a block."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _is_unknown(values) -> np.ndarray:
    """Where a background label column says "unknown" (-1, or "-1" for string labels)."""
    values = np.asarray(values)
    if values.dtype.kind in "iuf":
        return values == UNKNOWN_BACKGROUND
    return np.asarray([(v == UNKNOWN_BACKGROUND) or (v == str(UNKNOWN_BACKGROUND)) for v in values], dtype=bool)


class WassersteinDisentangler(AutoDeviceMixin, ClassifierMixin, TransformerMixin, NeuralNet):
    """Wasserstein disentanglement of foreground and background features (D3S, section 5).

    A feature extractor ``h`` maps an image ``x`` to ``z = (z_fg, z_bg)``
    (the last ``n_background_features`` dimensions are ``z_bg``). Linear heads
    ``w_fg`` and ``w_bg`` learn the foreground label from ``z_fg`` and the
    background label from ``z_bg`` by cross-entropy. Two critics, label
    conditioned MLPs (:class:`~skshortcut.nets.Critic`), estimate the
    Wasserstein-1 distances of Eq. 7 in their Kantorovich-Rubinstein dual form
    (Eq. 8):

    * ``D_fg(z_fg, l_bg)`` between ``P(z_fg, l_bg)`` and ``P(z_fg) P(l_bg)``;
    * ``D_bg(z_bg, l_fg)`` between ``P(z_bg, l_fg)`` and ``P(z_bg) P(l_fg)``.

    Samples of the product of marginals are the batch's features with the
    labels shuffled within the batch. Each critic minimises Eq. 9,
    ``E_prod[D] - E_joint[D] + lambda_gp (||grad D(z~, l~)|| - 1)^2`` at
    random interpolates of a product and a joint sample (see
    :func:`wasserstein_terms`); the extractor and the heads minimise Eq. 10,
    ``(E_joint[D_fg] - E_prod[D_fg]) + (E_joint[D_bg] - E_prod[D_bg]) +
    alpha (CE(w_fg z_fg, l_fg) + CE(w_bg z_bg, l_bg))`` (the paper prints the
    cross-entropy terms with a minus sign; they are minimised, and Eq. 10
    shows only the foreground critic while the text trains both).

    Training alternates: in every batch, ``critic_steps`` critic updates on
    the batch's (fixed) features, each with a fresh shuffle and fresh
    interpolates, then one update of the extractor and heads against the
    updated critics. During the first ``warmup_epochs`` the extractor update
    uses the cross-entropy terms alone, while the critics already learn, so
    that they are trained when the Wasserstein terms start. Both updates use
    Adam with ``betas=(0, 0.9)``.

    A background label of ``-1`` means unknown: such a sample (the paper mixes
    in ImageNet images, which have none) skips the background cross-entropy
    and the foreground critic's terms, and still takes part in the foreground
    cross-entropy and the background critic's terms.

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
        Critic updates per extractor update.
    warmup_epochs : int, default=1
        Epochs at the start of training that update the extractor and heads by
        cross-entropy alone (the critics learn meanwhile).
    critic_hidden : int, optional
        Width of the critics' first hidden layer (each further layer halves
        it); default: see :class:`~skshortcut.nets.Critic`.
    critic_layers : int, default=3
        Hidden layers of each critic.
    critic_negative_slope : float, default=0.1
        LeakyReLU slope of the critics.
    critic_lr : float, optional
        Learning rate of the critics; default ``lr``.
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
    lr : float, default=1e-3
    max_epochs : int, default=20
    batch_size : int, default=64
        The paper's batch size; also the batch size of :meth:`transform`.
    train_split : callable or None, default=None
        A skorch ``train_split``; ``None`` trains on all the data.
    callbacks : list, optional
        skorch callbacks.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the weights, the batch order, the label shuffles and the
        interpolates; the caller's global torch RNG is left as it was.
    verbose : int, default=0
        ``>= 1`` prints skorch's epoch table (cross-entropies, Wasserstein
        estimates, critic loss, gradient penalty) and a progress bar.
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

    def __init__(
        self,
        extractor="cnn",
        *,
        n_background_features=_PAPER_BACKGROUND_FRACTION,
        alpha=1.0,
        lambda_gp=10.0,
        critic_steps=5,
        warmup_epochs=1,
        critic_hidden=None,
        critic_layers=3,
        critic_negative_slope=0.1,
        critic_lr=None,
        betas=(0.0, 0.9),
        transform_part="fg",
        weights=None,
        extractor_params=None,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=20,
        batch_size=64,
        train_split=None,
        callbacks=None,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        kwargs.pop("module", None)  # always DisentanglerModule; get_params lists it, so clone passes it back
        kwargs.setdefault("iterator_train__shuffle", True)
        # plain attributes first: skorch refuses torch modules set after its own __init__
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

    @property
    def _default_callbacks(self):
        terms = [("ce_fg", True), ("ce_bg", True), ("w_fg", True), ("w_bg", True)]
        return [
            *super()._default_callbacks,
            *loss_term_callbacks([*terms, ("critic_loss", True), ("gp", True)],
                                 terms if self.train_split is not None else ()),
            *training_callbacks(verbose=self.verbose),
        ]

    def _build_extractor(self):
        ex = self.extractor
        params = dict(self.extractor_params or {})
        if isinstance(ex, str):
            net = build_classifier(ex, self.input_shape_, 2, weights=self.weights, **params)
        else:
            net = copy.deepcopy(ex)
        if isinstance(net, SmallCNN):
            return net.features
        import torchvision

        if isinstance(net, torchvision.models.ResNet):
            net.fc = nn.Identity()
        return net

    def _probe_features(self, extractor) -> int:
        with restore_module_state(extractor), torch.no_grad():
            extractor.eval()
            x = torch.zeros(2, *self.input_shape_)
            try:
                z = extractor(x)
            except Exception as exc:  # noqa: BLE001 - re-raised naming the argument
                raise ValueError(f"`extractor` failed on inputs of shape {tuple(x.shape)}: {exc}") from exc
        if isinstance(z, (tuple, list)):
            z = z[0]
        if not isinstance(z, torch.Tensor) or z.ndim < 2 or z.shape[0] != 2:
            raise ValueError("`extractor` must map images (n, c, h, w) to features (n, n_features).")
        return int(z[0].numel())

    def initialize_module(self):
        if not hasattr(self, "input_shape_"):
            raise RuntimeError("WassersteinDisentangler sizes its networks to the data: call fit, not initialize.")
        extractor = self._build_extractor()
        n_features = self._probe_features(extractor)
        if n_features < 2:
            raise ValueError(f"`extractor` must output at least 2 features to split; it outputs {n_features}.")
        n_bg = self._resolve_n_background(n_features)
        self.n_features_ = n_features
        self.n_background_features_ = n_bg
        self.n_foreground_features_ = n_features - n_bg
        self.module_ = DisentanglerModule(extractor, n_features, n_bg, self.n_classes_, self.n_background_classes_)
        critic_args = dict(
            hidden_features=self.critic_hidden, n_layers=self.critic_layers, negative_slope=self.critic_negative_slope
        )
        self.critic_ = nn.ModuleDict(
            {
                "fg": Critic(n_features - n_bg, self.n_background_classes_, **critic_args),
                "bg": Critic(n_bg, self.n_classes_, **critic_args),
            }
        )
        return self

    def initialize_optimizer(self, *args, **kwargs):
        betas = tuple(float(b) for b in self.betas)
        named = self.module_.named_parameters()
        args_, kwargs_ = self.get_params_for_optimizer("optimizer", named)
        kwargs_.setdefault("betas", betas)
        self.optimizer_ = self.optimizer(*args_, **kwargs_)
        named = self.critic_.named_parameters()
        args_, kwargs_ = self.get_params_for_optimizer("critic_optimizer", named)
        if self.critic_lr is not None and "lr" not in self.get_params_for("critic_optimizer"):
            kwargs_["lr"] = self.critic_lr
        kwargs_.setdefault("betas", betas)
        self.critic_optimizer_ = self.optimizer(*args_, **kwargs_)
        return self

    def _in_warmup(self) -> bool:
        # skorch adds the current epoch's row to the history before its batches run
        return len(self.history) <= int(self.warmup_epochs)

    def _wasserstein(self, critic, z, labels, known=None):
        """``E_joint[D] - E_prod[D]`` on a batch (labels shuffled for the product), or None."""
        if known is not None:
            z, labels = z[known], labels[known]
        if labels.shape[0] < 2:
            return None
        return wasserstein_terms(critic, z, labels, penalty=False)[0]

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
            z_fg, z_bg = self.module_.split(z)
            with _frozen(self.critic_):
                w_fg = self._wasserstein(self.critic_["fg"], z_fg, y_bg, known)
                w_bg = self._wasserstein(self.critic_["bg"], z_bg, y_fg)
            for name, w in (("w_fg", w_fg), ("w_bg", w_bg)):
                if w is not None:
                    loss = loss + w
                    self.history.record_batch(f"{prefix}_{name}", w.item())
        return loss

    def critic_loss(self, z, y_true):
        """Eq. 9 for both critics on fixed features ``z``: ``sum(E_prod[D] - E_joint[D] + lambda_gp GP)``.

        Returns
        -------
        loss : Tensor or None
            None when no critic has two samples to compare.
        gp : float
            The summed gradient penalties, for the record.
        """
        y_fg, y_bg = y_true[:, 0], y_true[:, 1]
        known = y_bg >= 0
        z_fg, z_bg = self.module_.split(z)
        total, gp_sum = None, 0.0
        for critic, feats, labels in ((self.critic_["fg"], z_fg[known], y_bg[known]), (self.critic_["bg"], z_bg, y_fg)):
            if labels.shape[0] < 2:
                continue
            w, gp = wasserstein_terms(critic, feats, labels)
            term = -w + self.lambda_gp * gp
            total = term if total is None else total + term
            gp_sum += float(gp.detach())
        return total, gp_sum

    def train_step(self, batch, **fit_params):
        """One batch: ``critic_steps`` critic updates (Eq. 9), then one extractor update (Eq. 10)."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_true = torch.as_tensor(yi, device=self.device).long()
        y_pred = self.infer(Xi, **fit_params)
        if self.critic_steps > 0:  # the critics also learn during the warm-up, to be ready when it ends
            z = y_pred[2].detach()
            for _ in range(int(self.critic_steps)):
                loss_c, gp = self.critic_loss(z, y_true)
                if loss_c is None:
                    break
                self.critic_optimizer_.zero_grad()
                loss_c.backward()
                self.critic_optimizer_.step()
            if loss_c is not None:
                self.history.record_batch("train_critic_loss", loss_c.item())
                self.history.record_batch("train_gp", gp)
        self.optimizer_.zero_grad()
        loss = self.get_loss(y_pred, y_true, X=Xi, training=True)
        loss.backward()
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.module_.named_parameters()),
            batch=batch,
            training=True,
        )
        self.optimizer_.step()
        return {"loss": loss, "y_pred": y_pred}

    # ------------------------------------------------------------------ validation
    def _get_param_names(self):
        return sorted(set(super()._get_param_names()) | {"extractor"})

    def _check_params(self):
        ex = self.extractor
        if isinstance(ex, str):
            if ex not in _BUILTIN_EXTRACTORS:
                raise ValueError(f"`extractor` must be one of {_BUILTIN_EXTRACTORS} or an nn.Module; got {ex!r}.")
        elif not isinstance(ex, nn.Module):
            raise TypeError(f"`extractor` must be a string or a torch.nn.Module instance, got {type(ex).__name__}.")
        nb = self.n_background_features
        if isinstance(nb, bool) or not isinstance(nb, numbers.Real):
            raise TypeError(f"`n_background_features` must be an int or a float in (0, 1), got {nb!r}.")
        if isinstance(nb, numbers.Integral):
            if nb < 1:
                raise ValueError(f"`n_background_features` must be >= 1, got {nb}.")
        elif not 0 < nb < 1:
            raise ValueError(f"`n_background_features` as a fraction must be in (0, 1), got {nb!r}.")
        for name in ("alpha", "lambda_gp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"`{name}` must be a non-negative real number, got {type(value).__name__}.")
            if not value >= 0:
                raise ValueError(f"`{name}` must be >= 0, got {value!r}.")
        check_positive_int(self.critic_steps, "critic_steps", minimum=0)
        check_positive_int(self.warmup_epochs, "warmup_epochs", minimum=0)
        check_positive_int(self.critic_layers, "critic_layers")
        check_positive_int(self.batch_size, "batch_size")
        if self.critic_hidden is not None:
            check_positive_int(self.critic_hidden, "critic_hidden")
        if self.transform_part not in _PARTS:
            raise ValueError(f"`transform_part` must be one of {_PARTS}, got {self.transform_part!r}.")
        try:
            b1, b2 = self.betas
        except (TypeError, ValueError):
            raise ValueError(f"`betas` must be a pair of floats in [0, 1), got {self.betas!r}.") from None
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"`betas` must be a pair of floats in [0, 1), got {self.betas!r}.")
        if self.extractor_params is not None and not isinstance(self.extractor_params, dict):
            raise TypeError(f"`extractor_params` must be None or a dict, got {type(self.extractor_params).__name__}.")

    def _resolve_n_background(self, n_features) -> int:
        nb = self.n_background_features
        if isinstance(nb, numbers.Integral):
            if nb >= n_features:
                raise ValueError(
                    f"`n_background_features={nb}` leaves no foreground feature: the extractor outputs {n_features}."
                )
            return int(nb)
        return int(min(max(int(round(nb * n_features)), 1), n_features - 1))

    def _check_X(self, X, *, fitted=True):
        if is_dataset(X):
            return X
        if hasattr(X, "detach"):
            X = X.detach().cpu().numpy()
        try:
            X = np.ascontiguousarray(X, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`X` must be an array or tensor of images or a torch Dataset; got {type(X).__name__}.") from exc
        if X.ndim != 4:
            raise ValueError(f"`X` must be images of shape (n, channels, height, width); got shape {X.shape}.")
        if fitted and tuple(X.shape[1:]) != tuple(self.input_shape_):
            raise ValueError(f"`X` must have shape (n, {', '.join(map(str, self.input_shape_))}); got {X.shape}.")
        if not np.isfinite(X).all():
            raise ValueError("`X` contains NaN or infinite values.")
        return X

    @staticmethod
    def _dataset_labels(X):
        """(foreground, background) labels a Dataset carries: ``labels``, or ``y`` with ``spurious``."""
        if hasattr(X, "labels"):
            return np.asarray(X.labels)
        if hasattr(X, "y") and hasattr(X, "spurious"):
            return np.stack([np.asarray(X.y), np.asarray(X.spurious)], axis=1)
        raise ValueError(
            "`y` is None and the Dataset carries no (foreground, background) labels: give `y` with two columns, "
            "or a Dataset with a `labels` attribute (n, 2) or `y` and `spurious` attributes."
        )

    @staticmethod
    def _check_y(y) -> np.ndarray:
        if y is None:
            raise ValueError("`y` is required: two columns, the foreground and the background label.")
        if hasattr(y, "detach"):
            y = y.detach().cpu().numpy()
        Y = np.asarray(y)
        if Y.ndim != 2 or Y.shape[1] != 2:
            raise ValueError(
                "`y` must have two columns (foreground label, background label; -1 = unknown background); "
                f"got shape {Y.shape}."
            )
        if Y.shape[0] == 0:
            raise ValueError("`y` is empty; at least one sample is needed.")
        for j, name in ((0, "foreground"), (1, "background")):
            col = Y[:, j]
            if col.dtype.kind == "f" and np.isnan(col.astype(float)).any():
                raise ValueError(f"`y` has NaN {name} labels; use -1 for an unknown background.")
            if col.dtype.kind == "O" and any(v is None for v in col):
                raise ValueError(f"`y` has missing {name} labels (None); use -1 for an unknown background.")
        return Y

    # ------------------------------------------------------------------ fit
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
        X = self._check_X(X, fitted=False)
        if is_dataset(X) and y is None:
            y = self._dataset_labels(X)
        Y = self._check_y(y)
        check_same_length(X=X, y=Y)
        fg, bg = Y[:, 0], Y[:, 1]
        unknown = _is_unknown(bg)
        if _is_unknown(fg).all() and fg.dtype.kind in "iu":
            raise ValueError("`y`'s first column (foreground) must be known for every sample.")
        self.label_encoder_ = LabelEncoder().fit(fg)
        if len(self.label_encoder_.classes_) < 2:
            raise ValueError("`y` has a single foreground class; at least two are needed.")
        if (~unknown).sum() < 2 or len(np.unique(bg[~unknown])) < 2:
            raise ValueError("`y` needs at least two distinct known background labels (-1 marks unknown ones).")
        self.background_encoder_ = LabelEncoder().fit(bg[~unknown])
        Y_enc = np.full((len(fg), 2), UNKNOWN_BACKGROUND, dtype=np.int64)
        Y_enc[:, 0] = self.label_encoder_.transform(fg)
        Y_enc[~unknown, 1] = self.background_encoder_.transform(bg[~unknown])
        self.n_classes_ = len(self.label_encoder_.classes_)
        self.n_background_classes_ = len(self.background_encoder_.classes_)
        self.input_shape_ = tuple(int(s) for s in input_shape(X))
        if len(self.input_shape_) != 3:
            raise ValueError(f"`X` must hold images (channels, height, width); got sample shape {self.input_shape_}.")
        seed = _seed_from(self.random_state)
        data = ImageLabelDataset(X, Y_enc) if is_dataset(X) else X
        with torch_seed(seed):
            super().fit(data, Y_enc, **fit_params)
        return self

    # ------------------------------------------------------------------ outputs
    @property
    def classes_(self):
        check_is_fitted(self, "label_encoder_")
        return self.label_encoder_.classes_

    @property
    def background_classes_(self):
        check_is_fitted(self, "background_encoder_")
        return self.background_encoder_.classes_

    def _outputs(self, X):
        """``(logits_fg, logits_bg, z)`` of X, in batches, eval mode, no gradients."""
        check_is_fitted(self)
        X = self._check_X(X)
        outs = ([], [], [])
        with restore_module_state(self.module_), torch.no_grad():
            self.module_.eval()
            for xb in iter_batches(X, self.batch_size, device=self.device):
                for store, t in zip(outs, self.module_(xb)):
                    store.append(t.float().cpu().numpy())
        sizes = (self.n_classes_, self.n_background_classes_, self.n_features_)
        return tuple(np.concatenate(o) if o else np.empty((0, s), np.float32) for o, s in zip(outs, sizes))

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
        if part not in _PARTS:
            raise ValueError(f"`part` must be one of {_PARTS}, got {part!r}.")
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

    def score(self, X, y, sample_weight=None):
        """Foreground accuracy; ``y`` is the foreground labels or the two label columns."""
        from sklearn.metrics import accuracy_score

        Y = np.asarray(y)
        if Y.ndim == 2 and Y.shape[1] == 2:
            Y = Y[:, 0]
        return accuracy_score(Y, self.predict(X), sample_weight=sample_weight)

    # ------------------------------------------------------------------ diagnostics
    def disentanglement_report(self, X, y, *, X_test=None, y_test=None, probe=None, test_size=0.5,
                               random_state=None):
        """Accuracies of linear probes across the feature split: D3S's table 2.

        Four probes are trained on the frozen features: foreground from
        ``z_fg`` (high is good), background from ``z_bg`` (high is good),
        foreground from ``z_bg`` and background from ``z_fg`` (both should
        be near chance). Samples with an unknown background are left out of
        the background probes.

        Parameters
        ----------
        X : images or Dataset
            Data to train the probes on (and to test them on, split, when
            ``X_test`` is not given).
        y : array-like of shape (n, 2)
            Foreground and background labels.
        X_test, y_test : optional
            Separate data to measure the probes on.
        probe : sklearn classifier, optional
            Cloned for each probe. Default: standardisation then
            ``LogisticRegression(max_iter=2000)``.
        test_size : float, default=0.5
            Share of X held out to score the probes when ``X_test`` is None.
        random_state : int, RandomState or None, default=None
            Seeds the split.

        Returns
        -------
        report : :class:`~sklearn.utils.Bunch`
            ``fg_from_fg``, ``bg_from_bg``, ``fg_from_bg``, ``bg_from_fg``
            (test accuracies), ``chance_fg``, ``chance_bg`` (the accuracy of
            always predicting the most frequent training label), ``n_train``
            and ``n_test``.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        check_is_fitted(self)
        Y = self._check_y(y)
        z = self.transform(X, part="both")
        check_same_length(X=z, y=Y)
        if X_test is None:
            if y_test is not None:
                raise ValueError("`y_test` was given without `X_test`.")
            idx_train, idx_test = train_test_split(np.arange(len(Y)), test_size=test_size, random_state=random_state)
            z_tr, Y_tr, z_te, Y_te = z[idx_train], Y[idx_train], z[idx_test], Y[idx_test]
        else:
            z_tr, Y_tr = z, Y
            z_te, Y_te = self.transform(X_test, part="both"), self._check_y(y_test)
            check_same_length(X_test=z_te, y_test=Y_te)
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)) if probe is None else probe
        k = self.n_foreground_features_
        parts = {"fg": slice(0, k), "bg": slice(k, None)}
        out = Bunch(n_train=len(Y_tr), n_test=len(Y_te))
        for target, col in (("fg", 0), ("bg", 1)):
            known_tr = ~_is_unknown(Y_tr[:, col]) if col == 1 else np.ones(len(Y_tr), bool)
            known_te = ~_is_unknown(Y_te[:, col]) if col == 1 else np.ones(len(Y_te), bool)
            labels_tr = Y_tr[known_tr, col].astype(str)
            labels_te = Y_te[known_te, col].astype(str)
            values, counts = np.unique(labels_tr, return_counts=True)
            out[f"chance_{target}"] = float(np.mean(labels_te == values[counts.argmax()]))
            for source, sl in parts.items():
                model = clone(probe).fit(z_tr[known_tr][:, sl], labels_tr)
                out[f"{target}_from_{source}"] = float(np.mean(model.predict(z_te[known_te][:, sl]) == labels_te))
        return out
