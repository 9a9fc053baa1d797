"""``ChromaVAEClassifier``: a VAE classifier that sequesters the shortcut in a latent subspace.

Yang, Kirichenko, Goldblum and Wilson, *Chroma-VAE: Mitigating Shortcut
Learning with Generative Classifiers* (NeurIPS 2022).

A VAE is trained jointly with a classifier that sees only the first
``z_p * dim_z`` latent dimensions ``z1`` (Eq. 2). The classifier's loss pulls
the most compressible predictive feature, the shortcut, into ``z1``, while the
decoder reconstructs from all of ``z``; the rest of the image is left to
``z2``. A second classifier trained on the fixed ``mu(x)_2`` is then
shortcut-free (Algorithm 1).

The network (:class:`ChromaVAEModule`, :func:`latent_split`) lives in
``_chroma_vae_module`` and the second stage in ``_chroma_vae_z2``; this
module holds the estimator.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import to_tensor
from sklearn.base import ClassifierMixin, TransformerMixin
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._skorch import LatentFeaturesMixin, SKORCH_CONSTRAINTS, ShortcutNet, loss_term_callbacks, training_callbacks
from .._torch import _seed_from, is_dataset, iter_batches, n_samples, restore_module_state, torch_seed
from ._chroma_vae_module import (
    ChromaVAEModule,
    build_chroma_vae_module,
    default_n_down,
    kl_standard_normal,
    latent_split,
)
from . import _chroma_vae_diagnostics as _diagnostics, _chroma_vae_z2 as _z2
from ._chroma_vae_schedule import epoch_beta, resolve_epochs

__all__ = ["ChromaVAEClassifier", "ChromaVAEModule", "latent_split", "default_n_down"]


class ChromaVAEClassifier(ShortcutNet, LatentFeaturesMixin, ClassifierMixin, TransformerMixin, NeuralNet):
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
        first ``beta_warmup`` share of the epochs (recorded as ``beta`` in
        the history). Under the tight early bottleneck the VAE keeps only the
        most valuable information, so the z1-classifier's shortcut settles in
        ``z1`` first and ``z2`` then fills with the rest of the image instead
        of a second, colour-specific copy of the shortcut (Section 3.1's
        observation, used as a schedule). The objective at the end of the
        warm-up is Eq. 2 unchanged. ``None`` trains with the constant
        ``beta`` throughout, as the paper describes.
    beta_warmup : float in [0, 1], default=0.5
        Share of the epochs over which the KL weight decays to ``beta``.
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
    z1_input : {"mean", "sample"}, default="mean"
        What the z1-classifier reads in training: ``mu(x)_1`` (Eq. 2 as
        written), or the reparameterised ``z1`` that the decoder reads too,
        so that the shortcut is held where the decoder can use it (see the
        guide's data-size table). Predictions use ``mu(x)_1`` either way.
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
    max_epochs : int or None, default=None
        Epochs of the VAE classifier; ``None``: as many as ``n_steps`` takes.
    n_steps : int, default=1920
        Optimisation steps of the VAE classifier when ``max_epochs`` is None,
        in whole epochs of ``ceil(N / batch_size)`` steps (1920: 60 epochs of
        4,000 images), so that a small data set is trained as long as a
        large one; the epochs used are ``n_epochs_``. After the warm-up the
        KL term slowly removes ``z2``'s copy of the shortcut; 960 steps stop
        before it is gone (see the guide's data-size table).
    batch_size : int, default=128
        Samples per optimisation step and per inference batch (:meth:`transform`,
        :meth:`predict` and the diagnostics); ``-1``: all samples at once.
    train_split : callable or None, default=None
        A skorch ``train_split`` to monitor validation losses; ``None``
        trains on all the data, as the paper does.
    callbacks : list, optional
        skorch callbacks.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        ``"auto"`` uses CUDA when present.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the batch order, the reparameterisation noise, the
        z2-classifier and the noise of the partial reconstructions (one seed
        each, drawn from ``random_state``). The caller's global torch RNG is
        left as it was.
    verbose : int, default=0
        ``0`` is silent; ``>= 1`` prints skorch's epoch table (total,
        reconstruction, KL and z1-classifier losses and accuracy) and a
        progress bar per epoch, and passes ``verbose`` on to the
        ``"reconstruction"`` z2-classifier.
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
    n_epochs_ : int
        Epochs the VAE classifier was trained for.
    z2_classifier_ : estimator
        The fitted second stage.
    label_encoder_ : LabelEncoder
        Maps the user's labels to the z1-classifier's logits.
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

    @property
    def _n_features_out(self):  # the columns of ``transform``: mu(x)_2
        if not hasattr(self, "z2_classifier_"):
            raise AttributeError("_n_features_out")
        return self.dim_z2_

    _parameter_constraints = {
        **SKORCH_CONSTRAINTS,
        "dim_z": [Interval(Integral, 2, None, closed="left")],
        "z_p": [Interval(Real, 0, 1, closed="neither")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "beta_start": [Interval(Real, 0, None, closed="left"), None],
        "beta_warmup": [Interval(Real, 0, 1, closed="both")],
        "lambda_": [Interval(Real, 0, None, closed="left")],
        "likelihood": [StrOptions({"bernoulli", "gaussian"})],
        "encoder": [nn.Module, None],
        "decoder": [nn.Module, None],
        "z1_hidden": [Interval(Integral, 0, None, closed="left")],
        "z1_input": [StrOptions({"sample", "mean"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "z2_classifier": [StrOptions(set(_z2.BUILTIN_Z2)), HasMethods(["fit", "predict"])],
        "z2_params": [dict, None],
        "n_reconstructions": [Interval(Integral, 1, None, closed="left")],
        "train_split": [callable, None],
    }

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
        z1_input="mean",
        z2_classifier="knn",
        z2_params=None,
        n_reconstructions=1,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=None,
        n_steps=1920,
        batch_size=128,
        train_split=None,
        callbacks=None,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
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
        self.z1_input = z1_input
        self.n_steps = n_steps
        self.z2_classifier = z2_classifier
        self.z2_params = z2_params
        self.n_reconstructions = n_reconstructions
        self.random_state = random_state

    # ------------------------------------------------------------------ skorch hooks
    def _get_param_names(self):
        # skorch lists the instance attributes not ending in "_" as parameters;
        # ``lambda_`` (Eq. 2's lambda) is a parameter despite its trailing underscore;
        # ``module`` is always ChromaVAEModule, not a parameter.
        return [*(k for k in super()._get_param_names() if k != "module"), "lambda_"]

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
        if not hasattr(self, "dim_z1_"):
            raise RuntimeError("ChromaVAEClassifier sizes its networks to the data: call fit, not initialize.")
        self.module_ = build_chroma_vae_module(
            self.input_shape_,
            self.n_classes_,
            dim_z=self.dim_z,
            dim_z1=self.dim_z1_,
            likelihood=self.likelihood,
            encoder=self.encoder,
            decoder=self.decoder,
            z1_hidden=self.z1_hidden,
            z1_input=self.z1_input,
        )
        return self

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        return super().fit_loop(X, y, epochs=self.n_epochs_ if epochs is None else epochs, **fit_params)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)
        warm = dict(beta=self.beta, beta_start=self.beta_start, beta_warmup=self.beta_warmup, n_epochs=self.n_epochs_)
        self.current_beta_ = epoch_beta(len(self.history) - 1, **warm)
        self.history.record("beta", self.current_beta_)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Eq. 2 on a batch: ``mean(-log p(x|z) + beta KL) + lambda_ * CE(y, C(mu(x)_1))``.

        ``beta`` is the current epoch's KL weight (see ``beta_start``).
        """
        logits, mu, logvar, out = y_pred
        x = to_tensor(X, device=self.device).to(out.dtype)
        y_true = to_tensor(y_true, device=self.device)
        recon = self.module_.negative_log_likelihood(out, x)
        kl = kl_standard_normal(mu, logvar)
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

    def _check_params(self):
        super()._check_params()
        if self.z2_params and not isinstance(self.z2_classifier, str):
            raise ValueError("`z2_params` applies to the built-in z2-classifiers; set the parameters on your estimator.")

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, **fit_params):
        """Train the VAE classifier (Eq. 2), then the z2-classifier on ``mu(x)_2`` (Algorithm 1).

        Parameters
        ----------
        X : ndarray or tensor of shape (n, channels, height, width), or torch Dataset
            Images; in [0, 1] for the Bernoulli likelihood. A Dataset's items
            are an image or a tuple starting with one.
        y : array-like of shape (n,), optional
            Class labels of any hashable type; may be omitted for a Dataset
            with a ``y`` attribute or ``(image, label, ...)`` items.
        **fit_params
            Passed to skorch's ``fit``.

        Returns
        -------
        self
        """
        self._check_params()
        X, y = self._images_and_labels(X, y)
        if self.likelihood == "bernoulli" and not is_dataset(X) and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                "`X` has values outside [0, 1]; the Bernoulli likelihood needs images in [0, 1] "
                "(rescale them, or use likelihood='gaussian')."
            )
        y_enc = self._encode_labels(y)
        self.dim_z1_, self.dim_z2_ = latent_split(self.dim_z, self.z_p)
        self.n_epochs_ = resolve_epochs(self.max_epochs, self.n_steps, n_samples(X), self.batch_size)
        # one seed per random stage (VAE, z2-classifier, noise of the partial
        # reconstructions), drawn from ``random_state``; the VAE's through
        # ``torch_seed`` as ``_seeded`` does, which takes only offsets of one seed
        seed = _seed_from(self.random_state)
        rng = np.random.RandomState(seed)
        self.seeds_ = {k: None if seed is None else int(rng.randint(0, 2**31 - 1)) for k in ("vae", "z2", "noise")}
        with torch_seed(self.seeds_["vae"]):
            super().fit(self._as_skorch_input(X, y_enc), y_enc, **fit_params)
        self._fit_z2(X, y_enc)
        return self

    def fit_z2(self, X, y=None):
        """Refit only the second stage on the fixed VAE (Algorithm 1's z2-classifier step).

        Use it to try another ``z2_classifier`` (set it with ``set_params``
        first) without retraining the VAE classifier.

        Parameters
        ----------
        X : images or Dataset
        y : array-like of shape (n,), optional
            Labels among ``classes_``; may be omitted for a Dataset that carries them.

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
        if int(self.dim_z) != self.module_.dim_z or latent_split(self.dim_z, self.z_p)[0] != self.dim_z1_:
            raise ValueError("`dim_z` or `z_p` changed since the VAE was trained; call fit to retrain it.")
        self._check_params()
        X, y = self._images_and_labels(X, y, reset=False)
        self._fit_z2(X, self._transform_labels(y))
        return self

    # ------------------------------------------------------------------ latents
    def _map_batches(self, X, fn, *, checked=False):
        """``fn`` applied to the images of X in batches of ``batch_size``, eval mode, no gradients."""
        check_is_fitted(self, "module_")
        if not checked:
            X = self._validate_images(X, reset=False)
        # sliced by ``iter_batches``: skorch's DataLoader would draw from the caller's torch RNG
        batch = n_samples(X) if self.batch_size == -1 else self.batch_size
        out = []
        with restore_module_state(self.module_), torch.no_grad():
            self.module_.eval()
            for xb in iter_batches(X, batch, device=self.device):
                out.append(fn(xb).float().cpu().numpy())
        return np.concatenate(out)

    def _encode(self, X, *, checked=False):
        """``mu(x)`` of X, ``(n, dim_z)``."""
        return self._map_batches(X, lambda xb: self.module_.encode(xb)[0], checked=checked)

    def latent_means(self, X):
        """Posterior means ``mu(x)`` of all ``dim_z`` latents, ``z1`` first.

        Parameters
        ----------
        X : images or Dataset

        Returns
        -------
        ndarray of shape (n_samples, dim_z)
        """
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
        return self._encode(X)[:, self.dim_z1_ :]

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, X):
        """Class probabilities of the z2-classifier, columns in ``classes_`` order."""
        check_is_fitted(self, "z2_classifier_")
        X = self._validate_images(X, reset=False)
        z2, proba = self.z2_classifier_, _z2.second_stage_proba(self, X)
        full = np.zeros((len(proba), self.n_classes_), dtype=np.float64)
        full[:, np.asarray(z2.classes_, dtype=int)] = proba
        return full

    def predict(self, X):
        """Labels predicted by the z2-classifier, in the user's label type."""
        check_is_fitted(self, "z2_classifier_")
        if self.z2_classifier != "reconstruction" and not hasattr(self.z2_classifier_, "predict_proba"):
            return self.classes_[np.asarray(self.z2_classifier_.predict(self.transform(X)), dtype=int)]
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # ------------------------------------------------------------------ diagnostics
    # Section 5's diagnostics live in their own module; assigned here, they are
    # methods of the class itself (and documented with it).
    _fit_z2 = _z2.fit_second_stage
    _reconstruction_inputs = _z2.reconstruction_inputs
    predict_z1 = _diagnostics.predict_z1
    z1_score = _diagnostics.z1_score
    partial_reconstructions = _diagnostics.partial_reconstructions
    latent_shift = _diagnostics.latent_shift
