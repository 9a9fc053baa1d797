"""The default autoencoder of Latent Shift, trained through skorch.

Latent Shift (Cohen et al., *Gifsplanation via Latent Shift*, MIDL 2021; used
by *Identifying Spurious Correlations using Counterfactual Alignment*, Cohen
et al., 2024, section 3) needs an encoder ``E`` and a decoder ``D`` trained on
the image domain, independently of the classifiers. The paper uses a VQ-GAN
for faces; for the embedded benchmarks a small convolutional autoencoder
(:class:`~skshortcut.nets.ConvEncoder` and
:class:`~skshortcut.nets.ConvDecoder` with a sigmoid output) is enough.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import ValidSplit
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._skorch import LatentFeaturesMixin, SKORCH_CONSTRAINTS, ShortcutNet, training_callbacks
from .._torch import _seed_from, is_dataset, iter_batches, n_samples, restore_module_state
from ..nets import ConvDecoder, ConvEncoder

__all__ = ["ConvAutoencoder", "Autoencoder"]


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder with ``encode`` and ``decode``.

    ``encode`` is a :class:`~skshortcut.nets.ConvEncoder` to a ``latent_dim``
    vector; ``decode`` a :class:`~skshortcut.nets.ConvDecoder` with a sigmoid
    output, so reconstructions lie in [0, 1] like the images.

    Parameters
    ----------
    in_channels : int
    image_size : tuple of int
        ``(height, width)`` of the images.
    latent_dim : int, default=32
    width : int, default=32
        Channels of the first encoder block (each further block doubles them).
    n_down : int, default=2
        Stride-2 blocks of the encoder, mirrored by the decoder.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import ConvAutoencoder
    >>> ae = ConvAutoencoder(3, (16, 16), latent_dim=8)
    >>> ae.encode(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 8])
    >>> ae(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 3, 16, 16])
    """

    def __init__(self, in_channels, image_size, latent_dim=32, width=32, n_down=2):
        super().__init__()
        self.encoder = ConvEncoder(in_channels, image_size, latent_dim, width=width, n_down=n_down)
        self.decoder = ConvDecoder(latent_dim, in_channels, image_size, width=width, n_up=n_down, output="sigmoid")

    def encode(self, x):
        """Latent code ``z = E(x)``."""
        return self.encoder(x)

    def decode(self, z):
        """Image ``D(z)`` in [0, 1]."""
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class Autoencoder(ShortcutNet, LatentFeaturesMixin, TransformerMixin, NeuralNet):
    """A skorch autoencoder for images: ``fit(X)``, ``transform`` to codes, ``inverse_transform`` to images.

    The reconstruction loss compares the decoder output with the input
    (binary cross-entropy on [0, 1] pixels, or mean squared error). A
    stratification-free validation split monitors ``valid_loss`` with early
    stopping that restores the best epoch.

    Parameters
    ----------
    module : nn.Module class or instance, optional
        Any module with ``encode`` and ``decode`` whose ``forward`` returns the
        reconstruction. ``None``: a :class:`ConvAutoencoder` sized to the data
        (``module__latent_dim``, ``module__width``, ``module__n_down`` set it).
    latent_dim : int, default=32
        Size of the code of the default module.
    criterion : torch loss class, default=torch.nn.BCELoss
        Reconstruction loss between output and input: binary cross-entropy on
        [0, 1] pixels (the default module's decoder ends with a sigmoid), or
        ``torch.nn.MSELoss``.
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=3e-3
    max_epochs : int, default=20
    batch_size : int, default=128
        Samples per optimisation step and per inference batch
        (:meth:`transform`, :meth:`inverse_transform`, :meth:`score`);
        ``-1``: all samples at once.
    validation_fraction : float in [0, 1), default=0.1
        Share of the data held out to monitor ``valid_loss``; ``0`` trains on
        everything without early stopping. Ignored when ``train_split`` is given.
    patience : int or None, default=5
        Early-stopping patience on ``valid_loss`` (best weights restored).
    train_split : callable, optional
        A skorch ``train_split`` replacing ``validation_fraction``.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batch order and the validation split; the
        caller's torch RNG is left untouched.
    verbose : int, default=0
        ``0`` is silent; ``>= 1`` prints skorch's epoch table and a progress
        bar per epoch.
    **kwargs
        Other skorch ``NeuralNet`` parameters.

    Attributes
    ----------
    module_ : nn.Module
        The trained autoencoder.
    input_shape_ : tuple
        Shape of one image.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.counterfactual import Autoencoder
    >>> X = np.random.RandomState(0).rand(32, 3, 8, 8).astype("float32")
    >>> ae = Autoencoder(latent_dim=4, max_epochs=2, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (32, 4)
    >>> ae.inverse_transform(ae.transform(X[:2])).shape
    (2, 3, 8, 8)
    >>> ae.score(X) <= 0  # negative mean squared error: greater is better
    True
    """

    @property
    def _n_features_out(self):  # the columns of ``transform``: the latent code
        if not getattr(self, "initialized_", False) or not hasattr(self, "input_shape_"):
            raise AttributeError("_n_features_out")
        return int(self.latent_dim)

    _parameter_constraints = {
        **SKORCH_CONSTRAINTS,
        "module": [nn.Module, type, None],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "train_split": [callable, None],
    }

    def __init__(
        self,
        module=None,
        *,
        latent_dim=32,
        criterion=nn.BCELoss,
        optimizer=torch.optim.Adam,
        lr=3e-3,
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
        self.latent_dim = latent_dim
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state

    # ------------------------------------------------------------------ skorch hooks
    @property
    def _default_callbacks(self):
        has_validation = self.train_split is not None or bool(self.validation_fraction)
        return [
            *super()._default_callbacks,
            *training_callbacks(verbose=self.verbose, patience=self.patience, has_validation=has_validation),
        ]

    def initialize_module(self):
        if self.module is None:
            if not hasattr(self, "input_shape_"):
                raise RuntimeError("The default autoencoder is sized to the data: call fit, not initialize.")
            shape = self.input_shape_
            kwargs = {"latent_dim": self.latent_dim, **self.get_params_for("module")}
            self.module_ = ConvAutoencoder(shape[0], tuple(shape[1:]), **kwargs)
            return self
        return super().initialize_module()

    def get_split_datasets(self, X, y=None, **fit_params):
        if self.train_split is not None or not self.validation_fraction:
            return super().get_split_datasets(X, y, **fit_params)
        split = ValidSplit(self.validation_fraction, stratified=False, random_state=self.split_seed_)
        return split(self.get_dataset(X, y), y, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Reconstruction loss between the output and the input images ``X``."""
        target = X if isinstance(X, torch.Tensor) else torch.as_tensor(X)
        return self.criterion_(y_pred, target.to(y_pred.device, y_pred.dtype))

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X, y=None, **fit_params):
        """Train the autoencoder to reconstruct the images ``X``.

        Parameters
        ----------
        X : ndarray or tensor of shape (n, channels, height, width), or torch Dataset
            Images in [0, 1]; a Dataset's items are an image or a tuple starting with one.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        X = self._validate_images(X, reset=True)
        self.split_seed_ = _seed_from(self.random_state)
        with self._seeded():
            return super().fit(self._as_skorch_input(X), None, **fit_params)

    def _coder(self):
        check_is_fitted(self, "module_")
        module = self.module_
        if not (callable(getattr(module, "encode", None)) and callable(getattr(module, "decode", None))):
            raise TypeError(f"The autoencoder module {type(module).__name__} has no `encode`/`decode` methods.")
        return module

    def _batches(self, X):
        """X in batches of ``batch_size`` (``-1``: all at once) on ``device``."""
        # sliced by ``iter_batches``: skorch's DataLoader would draw from the caller's torch RNG
        return iter_batches(X, n_samples(X) if self.batch_size == -1 else self.batch_size, device=self.device)

    def encode(self, x):
        """Differentiable ``E(x)`` for a tensor batch on ``device``."""
        return self._coder().encode(x)

    def decode(self, z):
        """Differentiable ``D(z)`` for a tensor batch on ``device``."""
        return self._coder().decode(z)

    def transform(self, X):
        """Latent codes of images X, in batches, in eval mode.

        Returns
        -------
        ndarray of shape (n_samples, latent_dim)
        """
        module = self._coder()
        X = self._validate_images(X, reset=False)
        with restore_module_state(module), torch.no_grad():
            module.eval()
            return np.concatenate([module.encode(xb).float().cpu().numpy() for xb in self._batches(X)])

    def inverse_transform(self, Z):
        """Images decoded from latent codes Z, in batches, in eval mode.

        Returns
        -------
        ndarray of shape (n_samples, channels, height, width)
        """
        module = self._coder()
        Z = np.asarray(Z.detach().cpu() if hasattr(Z, "detach") else Z, dtype=np.float32)
        if Z.ndim != 2:
            raise ValueError(f"`Z` must be latent codes of shape (n, latent_dim); got shape {Z.shape}.")
        if len(Z) == 0:
            return np.empty((0, *self.input_shape_), dtype=np.float32)
        with restore_module_state(module), torch.no_grad():
            module.eval()
            return np.concatenate([module.decode(zb).float().cpu().numpy() for zb in self._batches(Z)])

    def reconstruct(self, X):
        """``D(E(x))`` for images X, as a numpy array."""
        return self.inverse_transform(self.transform(X))

    def score(self, X, y=None):
        """Negative mean squared reconstruction error per pixel: greater is better, 0 is perfect.

        Scikit-learn's model selection maximises scores, so ``GridSearchCV``
        over an ``Autoencoder`` picks the one that reconstructs best.

        Parameters
        ----------
        X : images or Dataset
        y : ignored

        Returns
        -------
        float
            ``-mean((D(E(x)) - x) ** 2)`` over images and pixels.
        """
        X = self._validate_images(X, reset=False)
        rec = self.reconstruct(X)
        if is_dataset(X):
            ref = np.concatenate([xb.cpu().numpy() for xb in self._batches(X)])
        else:
            ref = X
        return -float(np.mean((rec - ref) ** 2))
