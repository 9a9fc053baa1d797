"""``ChromaVAEClassifier``: a VAE classifier that sequesters the shortcut in a latent subspace.

Yang, Kirichenko, Goldblum and Wilson, *Chroma-VAE: Mitigating Shortcut
Learning with Generative Classifiers* (NeurIPS 2022).

A VAE is trained jointly with a classifier that sees only the first
``z_p * dim_z`` latent dimensions ``z1`` (Eq. 2). The classifier's loss pulls
the most compressible predictive feature, the shortcut, into ``z1``, while the
decoder reconstructs from all of ``z``; the rest of the image is left to
``z2``. A second classifier trained on the fixed ``mu(x)_2`` is then
shortcut-free (Algorithm 1).
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import to_tensor
from sklearn.base import ClassifierMixin, TransformerMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._torch import (
    ImageLabelDataset,
    _seed_from,
    dataset_targets,
    input_shape,
    is_dataset,
    iter_batches,
    restore_module_state,
    torch_seed,
)
from .._skorch import AutoDeviceMixin, loss_term_callbacks, training_callbacks
from .._validation import check_labels, check_positive_int, check_same_length
from ..nets import ConvDecoder, ConvEncoder

__all__ = ["ChromaVAEClassifier", "ChromaVAEModule", "latent_split", "default_n_down"]

_LIKELIHOODS = ("bernoulli", "gaussian")
_Z2_BUILTIN = ("knn", "mlp", "reconstruction")
_LOG_2PI = math.log(2 * math.pi)


def latent_split(dim_z, z_p):
    """Sizes ``(dim(z1), dim(z2))`` of the two latent subspaces.

    ``dim(z1) = round(z_p * dim_z)`` (halves rounded up), kept between 1 and
    ``dim_z - 1`` so that both subspaces exist (Section 3.3: ``z_p`` is the
    partition fraction ``dim(z1) / dim(z)``).

    Parameters
    ----------
    dim_z : int
        Latent size, at least 2.
    z_p : float in (0, 1)
        Partition fraction.

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> from skshortcut.generative.chroma_vae import latent_split
    >>> latent_split(32, 0.25), latent_split(4, 0.01), latent_split(4, 0.99)
    ((8, 24), (1, 3), (3, 1))
    """
    dim_z = check_positive_int(dim_z, "dim_z", minimum=2)
    if not isinstance(z_p, numbers.Real) or isinstance(z_p, bool):
        raise TypeError(f"`z_p` must be a real number in (0, 1), got {type(z_p).__name__}.")
    if not 0 < z_p < 1:
        raise ValueError(f"`z_p` must be in (0, 1), got {z_p!r}.")
    d1 = int(math.floor(z_p * dim_z + 0.5))
    d1 = min(max(d1, 1), dim_z - 1)
    return d1, dim_z - d1


def default_n_down(image_size):
    """Stride-2 blocks of the default encoder for images of ``(height, width)``.

    Halve the resolution until the smaller side is about 4 to 7 pixels: 2 blocks
    up to 31 pixels, then one more per doubling, at most 5.

    Examples
    --------
    >>> from skshortcut.generative.chroma_vae import default_n_down
    >>> default_n_down((28, 28)), default_n_down((56, 28)), default_n_down((64, 64)), default_n_down((224, 224))
    (2, 2, 4, 5)
    """
    side = min(image_size)
    return int(min(5, max(2, math.floor(math.log2(max(side, 1) / 4)))))


class ChromaVAEModule(nn.Module):
    """The VAE classifier of Chroma-VAE: encoder, decoder and z1-classifier.

    Parameters
    ----------
    encoder : nn.Module
        Maps images ``(n, c, h, w)`` to ``(n, 2 * dim_z)``: the posterior mean
        ``mu(x)`` followed by the log-variance.
    decoder : nn.Module
        Maps ``(n, dim_z)`` to images ``(n, c, h, w)``: Bernoulli logits, or
        the Gaussian mean.
    z1_head : nn.Module
        The z1-classifier: maps ``mu(x)_1`` of shape ``(n, dim_z1)`` to class logits.
    dim_z : int
    dim_z1 : int
        The z1-classifier sees ``mu(x)[:, :dim_z1]``.
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
        ``"gaussian"`` adds a learned scalar log standard deviation ``log_sigma``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skshortcut.generative.chroma_vae import ChromaVAEModule
    >>> from skshortcut.nets import ConvDecoder, ConvEncoder
    >>> m = ChromaVAEModule(ConvEncoder(3, (16, 16), 8), ConvDecoder(4, 3, (16, 16)), nn.Linear(1, 2), 4, 1)
    >>> [t.shape[1] for t in m(torch.zeros(2, 3, 16, 16))]
    [2, 4, 4, 3]
    """

    def __init__(self, encoder, decoder, z1_head, dim_z, dim_z1, likelihood="bernoulli"):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.z1_head = z1_head
        self.dim_z = int(dim_z)
        self.dim_z1 = int(dim_z1)
        self.likelihood = likelihood
        if likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.zeros(()))

    def encode(self, x):
        """Posterior mean ``mu(x)`` and log-variance, each ``(n, dim_z)``."""
        h = self.encoder(x)
        if h.ndim != 2 or h.shape[1] != 2 * self.dim_z:
            raise ValueError(
                f"`encoder` must output (n, 2 * dim_z) = (n, {2 * self.dim_z}) values; got shape {tuple(h.shape)}."
            )
        mu, logvar = h[:, : self.dim_z], h[:, self.dim_z :]
        return mu, logvar.clamp(-20.0, 10.0)

    def decode(self, z):
        """Decoder output for latents ``z``: Bernoulli logits or the Gaussian mean."""
        return self.decoder(z)

    def mean_image(self, z):
        """Mean of ``p(x | z)``: ``sigmoid(logits)`` (Bernoulli) or the decoded mean (Gaussian)."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def classify(self, mu):
        """z1-classifier logits ``C(mu(x)_1)``."""
        return self.z1_head(mu[:, : self.dim_z1])

    def forward(self, x):
        """One-sample ELBO pieces: ``(z1 logits, mu, logvar, decoder output)``.

        ``z`` is drawn with the reparameterisation trick in train and eval
        mode alike, so that the validation loss estimates the same objective.
        """
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.classify(mu), mu, logvar, self.decode(z)

    def negative_log_likelihood(self, out, x):
        """``-log p(x | z)`` per sample, summed over pixels."""
        if self.likelihood == "bernoulli":
            nll = nn.functional.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            log_sigma = self.log_sigma
            nll = 0.5 * ((x - out) * torch.exp(-log_sigma)) ** 2 + log_sigma + 0.5 * _LOG_2PI
        return nll.flatten(1).sum(1)


def _kl_standard_normal(mu, logvar):
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per sample."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


class ChromaVAEClassifier(AutoDeviceMixin, ClassifierMixin, TransformerMixin, NeuralNet):
    """Chroma-VAE: a VAE classifier whose second stage learns on the shortcut-free latent subspace.

    Yang et al. (NeurIPS 2022), Algorithm 1:

    1. **VAE classifier** (Eq. 2). An encoder gives ``q(z | x) = N(mu(x),
       diag(sigma^2(x)))`` over ``dim_z`` latents; the decoder reconstructs
       ``x`` from all of ``z``; the *z1-classifier* sees only the posterior
       mean of the first ``dim(z1) = round(z_p * dim_z)`` dimensions. The
       loss per sample is ``-ELBO(x) - lambda_ * log p(y | mu(x)_1)``, with
       ``-ELBO = -log p(x | z) + beta * KL(q(z | x) || N(0, I))``, averaged over
       the batch. The shortcut, being the most compressible predictive
       feature, ends up in ``z1``. By default the KL weight starts high and
       decays to ``beta`` over the first half of training (``beta_start``).
    2. **z2-classifier**. A classifier trained on the fixed ``mu(x)_2`` (the
       other ``dim_z - dim(z1)`` dimensions), or on partial reconstructions
       ``x~2 = D([N(0, I), mu(x)_2])`` (Eq. 4). It makes the predictions.

    No group labels are used. To tune ``z_p`` and ``dim_z`` without them, the
    paper inspects :meth:`partial_reconstructions` (``x~2`` keeps the core
    feature and varies the shortcut; ``x~1`` the reverse) together with mean
    accuracy; with validation group labels, use ``GridSearchCV(...,
    scoring=worst_group_scorer)``.

    Parameters
    ----------
    dim_z : int, default=32
        Latent size ``dim(z)`` (the paper's best on ColoredMNIST: 32).
    z_p : float in (0, 1), default=0.25
        Partition fraction ``dim(z1) / dim(z)`` (the paper's best: 1/4).
        ``z1`` and ``z2`` always get at least one dimension each.
    beta : float, default=1.0
        Weight of the KL term once warmed up (Table 4: ``beta > 1`` hurts; 1
        is the ELBO).
    beta_start : float or None, default=100.0
        KL weight of the first epoch, decayed linearly to ``beta`` over the
        first ``beta_warmup`` share of ``max_epochs`` (recorded as ``beta`` in
        the history). Under the tight early bottleneck the VAE keeps only the
        most valuable information, so the z1-classifier's shortcut settles in
        ``z1`` first and ``z2`` then fills with the rest of the image instead
        of a second, colour-specific copy of the shortcut (Section 3.1's
        observation, used as a schedule). The objective at the end of the
        warm-up is Eq. 2 unchanged. ``None`` trains with the constant
        ``beta`` throughout, as the paper describes.
    beta_warmup : float in [0, 1], default=0.5
        Share of ``max_epochs`` over which the KL weight decays to ``beta``.
    lambda_ : float, default=100.0
        Weight ``lambda`` of the z1-classifier's cross-entropy in Eq. 2. The
        reconstruction term is summed over pixels, so ``lambda`` must be large
        for the label to matter (Section 2).
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
        ``p(x | z)``: Bernoulli on decoder logits for images in [0, 1], or a
        Gaussian around the decoder output with one learned standard deviation.
    encoder : nn.Module, optional
        Maps images to ``2 * dim_z`` values (mean, then log-variance). Default:
        :class:`~skshortcut.nets.ConvEncoder` sized to the input. A copy is
        trained; the module passed is left untouched.
    decoder : nn.Module, optional
        Maps ``dim_z`` latents to images of the input's shape. Default:
        :class:`~skshortcut.nets.ConvDecoder` with ``output="logits"``.
    z1_hidden : int, default=0
        Hidden units of the z1-classifier: 0 makes it linear, otherwise a
        one-hidden-layer ReLU MLP.
    z2_classifier : {"knn", "mlp", "reconstruction"} or sklearn classifier, default="knn"
        The second stage. ``"knn"``: k-nearest neighbours on ``mu(x)_2`` with
        ``k = round(sqrt(N))`` (the paper's best on ColoredMNIST); ``"mlp"``:
        standardisation and a one-hidden-layer MLP trained with Adam;
        ``"reconstruction"``: the x~2-classifier, an
        :class:`~skshortcut.ERMClassifier` CNN trained on partial
        reconstructions ``x~2`` (Eq. 4) and predicting on those of the test
        images. Any other scikit-learn classifier is cloned and fit on
        ``mu(x)_2``.
    z2_params : dict, optional
        Parameters set on the built-in z2-classifier (``{"n_neighbors": 15}``
        for ``"knn"``, ``{"hidden_layer_sizes": (32,)}`` for ``"mlp"``,
        ``{"max_epochs": 5}`` for ``"reconstruction"``).
    n_reconstructions : int, default=1
        With ``z2_classifier="reconstruction"``: partial reconstructions drawn
        per training image, and averaged over at prediction.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        Loss of the z1-classifier on its logits.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Algorithm 1 uses Adam.
    lr : float, default=1e-3
    max_epochs : int, default=30
    batch_size : int, default=128
        Also the batch size of :meth:`transform` and the diagnostics.
    train_split : callable or None, default=None
        A skorch ``train_split`` to monitor validation losses; ``None``
        trains on all the data, as the paper does.
    callbacks : list, optional
        skorch callbacks.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        ``"auto"`` uses CUDA when present.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the batch order, the reparameterisation noise, the
        z2-classifier and the noise of the partial reconstructions. The
        caller's global torch RNG is left as it was.
    verbose : int, default=0
        ``>= 1`` prints skorch's epoch table (total, reconstruction, KL and
        z1-classifier losses and accuracy) and a progress bar per epoch.
    **kwargs
        Other skorch ``NeuralNet`` parameters (``optimizer__weight_decay``,
        ``iterator_train__num_workers``, ...).

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    module_ : ChromaVAEModule
        The trained VAE classifier.
    dim_z1_, dim_z2_ : int
        Sizes of the two latent subspaces.
    z2_classifier_ : estimator
        The fitted second stage.
    input_shape_ : tuple
        Shape of one input image.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import ChromaVAEClassifier
    >>> X = np.random.RandomState(0).rand(60, 3, 8, 8).astype("float32")
    >>> y = np.array(["a", "b"] * 30)
    >>> clf = ChromaVAEClassifier(dim_z=4, z_p=0.25, max_epochs=1, random_state=0).fit(X, y)
    >>> clf.transform(X).shape, clf.predict(X[:2]).dtype.kind
    ((60, 3), 'U')
    """

    # user modules are parameters (templates copied at fit), not components skorch registers
    prefixes_ = [*NeuralNet.prefixes_, "encoder", "decoder"]

    def __init__(
        self,
        dim_z=32,
        z_p=0.25,
        *,
        beta=1.0,
        beta_start=100.0,
        beta_warmup=0.5,
        lambda_=100.0,
        likelihood="bernoulli",
        encoder=None,
        decoder=None,
        z1_hidden=0,
        z2_classifier="knn",
        z2_params=None,
        n_reconstructions=1,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=30,
        batch_size=128,
        train_split=None,
        callbacks=None,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        kwargs.pop("module", None)  # always ChromaVAEModule; listed by get_params, so clone passes it back
        super().__init__(
            ChromaVAEModule,
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
        self.dim_z = dim_z
        self.z_p = z_p
        self.beta = beta
        self.beta_start = beta_start
        self.beta_warmup = beta_warmup
        self.lambda_ = lambda_
        self.likelihood = likelihood
        self.encoder = encoder
        self.decoder = decoder
        self.z1_hidden = z1_hidden
        self.z2_classifier = z2_classifier
        self.z2_params = z2_params
        self.n_reconstructions = n_reconstructions
        self.random_state = random_state

    # ------------------------------------------------------------------ skorch hooks
    def _get_param_names(self):
        # skorch lists the instance attributes not ending in "_" as parameters;
        # ``lambda_`` (Eq. 2's lambda) is a parameter despite its trailing underscore.
        return [*super()._get_param_names(), "lambda_"]

    def __sklearn_is_fitted__(self):
        return hasattr(self, "z2_classifier_")

    @property
    def _default_callbacks(self):
        terms = [("recon", True), ("kl", True), ("z1_loss", True), ("z1_acc", False)]
        return [
            *super()._default_callbacks,
            *loss_term_callbacks(terms, terms if self.train_split is not None else ()),
            *training_callbacks(verbose=self.verbose),
        ]

    def initialize_module(self):
        if not hasattr(self, "input_shape_"):
            raise RuntimeError("ChromaVAEClassifier sizes its networks to the data: call fit, not initialize.")
        c, h, w = self.input_shape_
        dim_z = int(self.dim_z)
        if self.encoder is None:
            encoder = ConvEncoder(c, (h, w), 2 * dim_z, n_down=default_n_down((h, w)))
        else:
            encoder = copy.deepcopy(self.encoder)
        if self.decoder is None:
            decoder = ConvDecoder(dim_z, c, (h, w), n_up=default_n_down((h, w)), output="logits")
        else:
            decoder = copy.deepcopy(self.decoder)
        if self.z1_hidden:
            head = nn.Sequential(
                nn.Linear(self.dim_z1_, self.z1_hidden), nn.ReLU(), nn.Linear(self.z1_hidden, self.n_classes_)
            )
        else:
            head = nn.Linear(self.dim_z1_, self.n_classes_)
        module = ChromaVAEModule(encoder, decoder, head, dim_z, self.dim_z1_, self.likelihood)
        self._check_module_shapes(module)
        self.module_ = module
        return self

    def _check_module_shapes(self, module):
        with restore_module_state(module), torch.no_grad():
            module.eval()
            x = torch.zeros(2, *self.input_shape_)
            try:
                h = module.encoder(x)
            except Exception as exc:  # noqa: BLE001 - re-raised with the argument named
                raise ValueError(f"`encoder` failed on inputs of shape {tuple(x.shape)}: {exc}") from exc
            if h.ndim != 2 or h.shape[1] != 2 * module.dim_z:
                raise ValueError(
                    f"`encoder` must map images to (n, 2 * dim_z) = (n, {2 * module.dim_z}) values "
                    f"(mean and log-variance); got shape {tuple(h.shape)}."
                )
            try:
                out = module.decoder(torch.zeros(2, module.dim_z))
            except Exception as exc:  # noqa: BLE001
                raise ValueError(f"`decoder` failed on latents of shape (2, {module.dim_z}): {exc}") from exc
            if tuple(out.shape[1:]) != tuple(self.input_shape_):
                raise ValueError(
                    f"`decoder` must map (n, dim_z) latents to images of shape (n, {', '.join(map(str, self.input_shape_))}); "
                    f"got shape {tuple(out.shape)}."
                )

    def _epoch_beta(self, epoch):
        """KL weight of epoch ``epoch`` (0-based): the warm-up's linear decay, then ``beta``."""
        if self.beta_start is None or not self.beta_warmup:
            return float(self.beta)
        span = self.beta_warmup * self.max_epochs
        return float(self.beta + (self.beta_start - self.beta) * max(0.0, 1.0 - epoch / span))

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)
        self.current_beta_ = self._epoch_beta(len(self.history) - 1)
        self.history.record("beta", self.current_beta_)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Eq. 2 on a batch: ``mean(-log p(x|z) + beta KL) + lambda_ * CE(y, C(mu(x)_1))``.

        ``beta`` is the current epoch's KL weight (see ``beta_start``).
        """
        logits, mu, logvar, out = y_pred
        x = to_tensor(X, device=self.device).to(out.dtype)
        y_true = to_tensor(y_true, device=self.device)
        recon = self.module_.negative_log_likelihood(out, x)
        kl = _kl_standard_normal(mu, logvar)
        clf = self.criterion_(logits, y_true)
        beta = getattr(self, "current_beta_", self.beta)
        loss = (recon + beta * kl).mean() + self.lambda_ * clf
        prefix = "train" if training else "valid"
        with torch.no_grad():
            self.history.record_batch(f"{prefix}_recon", recon.mean().item())
            self.history.record_batch(f"{prefix}_kl", kl.mean().item())
            self.history.record_batch(f"{prefix}_z1_loss", clf.item())
            self.history.record_batch(f"{prefix}_z1_acc", (logits.argmax(1) == y_true).float().mean().item())
        return loss

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        self.dim_z1_, self.dim_z2_ = latent_split(self.dim_z, self.z_p)
        for name in ("beta", "lambda_"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise TypeError(f"`{name}` must be a non-negative real number, got {type(value).__name__}.")
            if not value >= 0:
                raise ValueError(f"`{name}` must be >= 0, got {value!r}.")
        if self.beta_start is not None:
            if not isinstance(self.beta_start, numbers.Real) or isinstance(self.beta_start, bool):
                raise TypeError(f"`beta_start` must be None or a non-negative real number, got {type(self.beta_start).__name__}.")
            if not self.beta_start >= 0:
                raise ValueError(f"`beta_start` must be >= 0, got {self.beta_start!r}.")
        if not isinstance(self.beta_warmup, numbers.Real) or isinstance(self.beta_warmup, bool) or not 0 <= self.beta_warmup <= 1:
            raise ValueError(f"`beta_warmup` must be a fraction in [0, 1], got {self.beta_warmup!r}.")
        if self.likelihood not in _LIKELIHOODS:
            raise ValueError(f"`likelihood` must be one of {_LIKELIHOODS}, got {self.likelihood!r}.")
        for name in ("encoder", "decoder"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, nn.Module):
                raise TypeError(f"`{name}` must be None or a torch.nn.Module instance, got {type(value).__name__}.")
        if not isinstance(self.z1_hidden, numbers.Integral) or isinstance(self.z1_hidden, bool) or self.z1_hidden < 0:
            raise ValueError(f"`z1_hidden` must be an integer >= 0, got {self.z1_hidden!r}.")
        z2 = self.z2_classifier
        if isinstance(z2, str):
            if z2 not in _Z2_BUILTIN:
                raise ValueError(
                    f"`z2_classifier` must be one of {_Z2_BUILTIN} or a scikit-learn classifier, got {z2!r}."
                )
        elif not (hasattr(z2, "fit") and hasattr(z2, "predict")):
            raise TypeError(
                "`z2_classifier` must be 'knn', 'mlp', 'reconstruction' or a scikit-learn classifier "
                f"(with fit and predict); got {type(z2).__name__}."
            )
        if self.z2_params is not None and not isinstance(self.z2_params, dict):
            raise TypeError(f"`z2_params` must be None or a dict, got {type(self.z2_params).__name__}.")
        if self.z2_params and not isinstance(z2, str):
            raise ValueError("`z2_params` applies to the built-in z2-classifiers; set the parameters on your estimator.")
        check_positive_int(self.n_reconstructions, "n_reconstructions")
        check_positive_int(self.batch_size, "batch_size")

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

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, **fit_params):
        """Train the VAE classifier (Eq. 2), then the z2-classifier on ``mu(x)_2`` (Algorithm 1).

        Parameters
        ----------
        X : ndarray or tensor of shape (n, channels, height, width), or torch Dataset
            Images; in [0, 1] for the Bernoulli likelihood. A Dataset's items
            are an image or a tuple starting with one.
        y : array-like of shape (n,), optional
            Labels of any hashable type; may be omitted for a Dataset with a
            ``y`` attribute or ``(image, label, ...)`` items.
        **fit_params
            Passed to skorch's ``fit``.

        Returns
        -------
        self
        """
        self._check_params()
        X = self._check_X(X, fitted=False)
        if is_dataset(X):
            y = dataset_targets(X) if y is None else y
        y = check_labels(y, "y")
        check_same_length(X=X, y=y)
        if self.likelihood == "bernoulli" and not is_dataset(X) and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                "`X` has values outside [0, 1]; the Bernoulli likelihood needs images in [0, 1] "
                "(rescale them, or use likelihood='gaussian')."
            )
        self.label_encoder_ = LabelEncoder().fit(y)
        if len(self.label_encoder_.classes_) < 2:
            raise ValueError("`y` has a single class; a classifier needs at least two.")
        y_enc = self.label_encoder_.transform(y).astype(np.int64)
        self.n_classes_ = len(self.label_encoder_.classes_)
        self.input_shape_ = tuple(int(s) for s in input_shape(X))
        if len(self.input_shape_) != 3:
            raise ValueError(f"`X` must hold images (channels, height, width); got sample shape {self.input_shape_}.")
        seed = _seed_from(self.random_state)
        rng = np.random.RandomState(seed)
        self.seeds_ = {k: int(rng.randint(0, 2**31 - 1)) for k in ("vae", "z2", "noise")}
        data = ImageLabelDataset(X, y_enc) if is_dataset(X) else X
        with torch_seed(self.seeds_["vae"] if seed is not None else None):
            super().fit(data, y_enc, **fit_params)
        self._fit_z2(X, y_enc)
        return self

    def fit_z2(self, X, y):
        """Refit only the second stage on the fixed VAE (Algorithm 1's z2-classifier step).

        Use it to try another ``z2_classifier`` (set it with ``set_params``
        first) without retraining the VAE classifier.

        Parameters
        ----------
        X : images or Dataset
        y : array-like of shape (n,)
            Labels among ``classes_``.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> from skshortcut import ChromaVAEClassifier
        >>> X = np.random.RandomState(0).rand(40, 3, 8, 8).astype("float32")
        >>> y = np.arange(40) % 2
        >>> clf = ChromaVAEClassifier(dim_z=4, max_epochs=1, random_state=0).fit(X, y)
        >>> type(clf.set_params(z2_classifier="mlp").fit_z2(X, y).z2_classifier_).__name__
        'Pipeline'
        """
        check_is_fitted(self, "module_")
        # compare before _check_params, which resets the fitted dim_z1_ / dim_z2_ from the parameters
        if latent_split(self.dim_z, self.z_p)[0] != self.module_.dim_z1 or int(self.dim_z) != self.module_.dim_z:
            raise ValueError("`dim_z` or `z_p` changed since the VAE was trained; call fit to retrain it.")
        self._check_params()
        y = check_labels(y, "y")
        check_same_length(X=X, y=y)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(f"`y` holds labels the VAE classifier was not trained on: {unknown.tolist()}.")
        self._fit_z2(self._check_X(X), self.label_encoder_.transform(y))
        return self

    def _build_z2(self):
        seed = self.seeds_["z2"] if self.random_state is not None else None
        params = dict(self.z2_params or {})
        z2 = self.z2_classifier
        if z2 == "knn":
            from sklearn.neighbors import KNeighborsClassifier

            return KNeighborsClassifier(**params)
        if z2 == "mlp":
            from sklearn.neural_network import MLPClassifier
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            mlp = dict(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=300, early_stopping=True, random_state=seed)
            mlp.update(params)
            return make_pipeline(StandardScaler(), MLPClassifier(**mlp))
        if z2 == "reconstruction":
            from ..erm import ERMClassifier

            erm = dict(max_epochs=self.max_epochs, batch_size=self.batch_size, device=self.device, random_state=seed)
            erm.update(params)
            return ERMClassifier(**erm)
        return clone(z2)

    def _fit_z2(self, X, y_enc):
        z2 = self._build_z2()
        if self.z2_classifier == "knn" and "n_neighbors" not in (self.z2_params or {}):
            z2.set_params(n_neighbors=max(1, int(round(math.sqrt(len(y_enc))))))
        if self.z2_classifier == "reconstruction":
            Xr = self._reconstruction_inputs(X, self.seeds_["noise"])
            z2.fit(Xr, np.tile(y_enc, self.n_reconstructions))
        else:
            z2.fit(self.transform(X), y_enc)
        self.z2_classifier_ = z2

    def _reconstruction_inputs(self, X, seed):
        """Partial reconstructions x~2, ``n_reconstructions`` per image, sample-major blocks."""
        rec = self.partial_reconstructions(X, keep="z2", n_samples=self.n_reconstructions, random_state=seed)
        return np.ascontiguousarray(np.swapaxes(rec, 0, 1).reshape(-1, *self.input_shape_))

    # ------------------------------------------------------------------ latents
    def _check_fitted(self):
        check_is_fitted(self, "z2_classifier_")

    def _encode(self, X):
        """``mu(x)`` of X in batches, eval mode, no gradients."""
        X = self._check_X(X)
        out = []
        with restore_module_state(self.module_), torch.no_grad():
            self.module_.eval()
            for xb in iter_batches(X, self.batch_size, device=self.device):
                out.append(self.module_.encode(xb)[0].float().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, int(self.dim_z)), dtype=np.float32)

    def latent_means(self, X):
        """Posterior means ``mu(x)`` of all ``dim_z`` latents, ``z1`` first.

        Parameters
        ----------
        X : images or Dataset

        Returns
        -------
        ndarray of shape (n_samples, dim_z)
        """
        check_is_fitted(self, "module_")
        return self._encode(X)

    def transform(self, X):
        """The shortcut-free representation ``mu(x)_2`` (Algorithm 1's z2-classifier input).

        Parameters
        ----------
        X : images or Dataset

        Returns
        -------
        ndarray of shape (n_samples, ``dim_z2_``)
        """
        check_is_fitted(self, "module_")
        return self._encode(X)[:, self.dim_z1_ :]

    # ------------------------------------------------------------------ prediction
    @property
    def classes_(self):
        check_is_fitted(self, "label_encoder_")
        return self.label_encoder_.classes_

    def predict_proba(self, X):
        """Class probabilities of the z2-classifier, columns in ``classes_`` order."""
        self._check_fitted()
        z2 = self.z2_classifier_
        if self.z2_classifier == "reconstruction":
            Xr = self._reconstruction_inputs(X, self.seeds_["noise"] + 1 if self.random_state is not None else None)
            proba = z2.predict_proba(Xr).reshape(self.n_reconstructions, -1, len(z2.classes_)).mean(0)
        else:
            proba = z2.predict_proba(self.transform(X))
        full = np.zeros((len(proba), self.n_classes_), dtype=np.float64)
        full[:, np.asarray(z2.classes_, dtype=int)] = proba
        return full

    def predict(self, X):
        """Labels predicted by the z2-classifier, in the user's label type."""
        self._check_fitted()
        if self.z2_classifier != "reconstruction" and not hasattr(self.z2_classifier_, "predict_proba"):
            return self.classes_[np.asarray(self.z2_classifier_.predict(self.transform(X)), dtype=int)]
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of the z2-classifier on ``X`` and ``y``."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)

    # ------------------------------------------------------------------ diagnostics
    def predict_z1(self, X):
        """Labels predicted by the z1-classifier ``C(mu(x)_1)``: the shortcut-reliant one."""
        check_is_fitted(self, "module_")
        mu = torch.as_tensor(self._encode(X), device=self.device)
        with restore_module_state(self.module_), torch.no_grad():
            self.module_.eval()
            logits = torch.cat([self.module_.classify(m) for m in mu.split(self.batch_size)])
        return self.classes_[logits.argmax(1).cpu().numpy()]

    def z1_score(self, X, y):
        """Accuracy of the z1-classifier.

        Section 5.1: when the shortcut sits in ``z1``, this classifier is as
        accurate as ERM in distribution and as poor out of distribution.
        """
        from sklearn.metrics import accuracy_score

        return accuracy_score(check_labels(y, "y"), self.predict_z1(X))

    def partial_reconstructions(self, X, *, keep="z2", n_samples=8, random_state=None):
        """Decode samples that keep one latent subspace of each image (Eqs. 3-4).

        ``keep="z1"`` decodes ``x~1 = D([mu(x)_1, eps])`` and ``keep="z2"``
        decodes ``x~2 = D([eps, mu(x)_2])``, ``eps ~ N(0, I)`` drawn afresh
        for each sample; ``keep="all"`` decodes ``D(mu(x))`` (the
        reconstruction; every sample is the same). If the shortcut was
        isolated, the ``x~1`` samples share the shortcut and vary the rest and
        the ``x~2`` samples keep the core feature with a varying shortcut.

        Parameters
        ----------
        X : images or Dataset
        keep : {"z1", "z2", "all"}, default="z2"
        n_samples : int, default=8
            Samples per image.
        random_state : int, RandomState or None, default=None
            Seeds the noise.

        Returns
        -------
        ndarray of shape (n_images, n_samples, channels, height, width)
            Means of ``p(x | z)`` (in [0, 1] for the Bernoulli likelihood).
        """
        check_is_fitted(self, "module_")
        if keep not in ("z1", "z2", "all"):
            raise ValueError(f"`keep` must be 'z1', 'z2' or 'all', got {keep!r}.")
        n_samples = check_positive_int(n_samples, "n_samples")
        mu = torch.as_tensor(self._encode(X))
        gen = torch.Generator()
        seed = _seed_from(random_state)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(seed)
        d1 = self.dim_z1_
        out = []
        with restore_module_state(self.module_), torch.no_grad():
            self.module_.eval()
            for m in mu.split(max(1, self.batch_size // n_samples)):
                z = m[:, None, :].repeat(1, n_samples, 1)
                noise = torch.randn(z.shape, generator=gen)
                if keep == "z1":
                    z[..., d1:] = noise[..., d1:]
                elif keep == "z2":
                    z[..., :d1] = noise[..., :d1]
                img = self.module_.mean_image(z.reshape(-1, z.shape[-1]).to(self.device))
                out.append(img.float().cpu().numpy().reshape(len(m), n_samples, *self.input_shape_))
        if not out:
            return np.empty((0, n_samples, *self.input_shape_), dtype=np.float32)
        return np.concatenate(out)

    def latent_shift(self, X, X_shifted):
        """Mean absolute change of each latent mean between X and a transformed copy (figure 4c).

        Pass X and the same images with the suspected shortcut changed (for
        example the colours swapped): the dimensions that move most hold the
        shortcut. If it was isolated, the ``z1`` dimensions (the first
        ``dim_z1_``) move and the ``z2`` ones barely do.

        Parameters
        ----------
        X, X_shifted : images or Datasets with the same number of samples

        Returns
        -------
        ndarray of shape (dim_z,)
            ``mean_i |mu(x_i)_d - mu(x'_i)_d|`` for every dimension ``d``.
        """
        check_is_fitted(self, "module_")
        a, b = self._encode(X), self._encode(X_shifted)
        if a.shape != b.shape:
            raise ValueError(f"`X` and `X_shifted` must hold the same number of samples; got {len(a)} and {len(b)}.")
        return np.abs(a - b).mean(axis=0)
