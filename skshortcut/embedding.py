"""``Embedder``: a base model's penultimate features as a scikit-learn transformer.

The last-layer methods (DFR: Kirichenko et al., ICLR 2023; ExMap's DFR stage,
Chakraborty et al., CVPR 2024, supplement sec. 2.3) retrain only the head
``g`` of a classifier ``M = g o f`` on the features ``f(x)``: the input of its
last linear layer. :class:`Embedder` computes ``f(x)`` once, in batches, so
that any scikit-learn estimator over feature tables, grid searches included,
can work on them::

    make_pipeline(Embedder(FrozenEstimator(erm)), DFRRetrainer())
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._skorch import DeviceConstraint
from ._torch import is_dataset, torch_seed
from ._validation import ImageInputMixin
from .base_model import as_base_model, unwrap_frozen

__all__ = ["Embedder"]


class Embedder(ImageInputMixin, TransformerMixin, BaseEstimator):
    """Images to a base model's penultimate features ``f(x)``, the input of its last linear layer.

    The base model ``M = g o f`` of the last-layer methods: DFR retrains
    ``g`` on ``f(x)`` (Kirichenko et al., ICLR 2023, sec. 5). ``transform``
    embeds images in batches of ``batch_size``, in eval mode, without
    gradients, on ``device``, and never changes the model it was given
    (:class:`~skshortcut.base_model.BaseModel`). ``fit`` embeds nothing: it
    only prepares the base model and reads one image to find the head, so
    ``fit_transform`` is one pass over ``X``.

    In a :class:`~sklearn.pipeline.Pipeline` with ``memory=``, the features
    of a training set are computed once and reused by every candidate of a
    grid search over the later steps' parameters.

    Parameters
    ----------
    estimator : fitted skorch net, nn.Module, FrozenEstimator of either, or str
        The base model. A string is a backbone name of
        :func:`skshortcut.nets.build_classifier` (``"cnn"``, ``"resnet18"``,
        ...), built at ``fit`` for the images' shape, with ``weights``. Being a
        parameter, the model is kept by :func:`~sklearn.base.clone` as
        scikit-learn keeps every parameter: a ``FrozenEstimator`` (and
        anything in it) is returned as it is, an ``nn.Module`` is deep-copied
        with its weights, but a bare skorch net is re-created *unfitted*
        (scikit-learn's rule for estimators), so wrap a fitted net in
        :class:`sklearn.frozen.FrozenEstimator` before a ``GridSearchCV`` or
        ``cross_validate``. With ``Pipeline(memory=...)`` wrap a module too:
        the cache is found by :func:`joblib.hash` of this step, which is the
        same for the same frozen model, but torch writes a storage's memory
        address into its pickle, so a copy of a model (the deep copy
        ``clone`` makes of a bare ``nn.Module``, a model sent to another
        process) hashes differently and misses the cache.
    weights : str, path or weights enum, optional
        The weights of a backbone named by ``estimator`` (passed to
        :func:`~skshortcut.nets.build_classifier`); only with a string
        ``estimator``. ``None``: randomly initialised, seeded by ``random_state``.
    head : str, optional
        Dotted name of the base model's last linear layer, if it is not the last
        ``nn.Linear`` reached in forward order (torchvision ResNets: ``"fc"``).
    batch_size : int, default=256
        Images per forward pass.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        Where the model runs; ``"auto"`` is CUDA when present. A model that
        lives elsewhere is copied there; the features come back as numpy.
    num_workers : int, default=0
        :class:`~torch.utils.data.DataLoader` workers that read a torch
        Dataset ``X`` (for example the image files of
        :func:`~skshortcut.datasets.load_waterbirds`) while the model runs.
    random_state : int, RandomState or None, default=None
        Seeds the initialisation of a backbone built from a name without weights.
    verbose : int, default=0
        ``>= 1`` shows a progress bar.

    Attributes
    ----------
    base_model_ : BaseModel
        The model and its head, on ``device``.
    n_features_out_ : int
        Dimension of the features (the head's ``in_features``).
    input_shape_ : tuple (channels, height, width)
        Shape of one image of ``X`` at fit.

    See Also
    --------
    skshortcut.DFRRetrainer : last-layer retraining on these features.
    skshortcut.base_model.as_base_model : the adapter behind ``base_model_``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.pipeline import make_pipeline
    >>> from skshortcut import DFRRetrainer, ERMClassifier
    >>> from skshortcut.embedding import Embedder
    >>> rng = np.random.RandomState(0)
    >>> y = np.arange(80) % 2
    >>> X = rng.rand(80, 3, 8, 8).astype("float32"); X[:, 0] += y[:, None, None]
    >>> erm = ERMClassifier(max_epochs=1, module__width=4, device="cpu", random_state=0).fit(X, y)
    >>> emb = Embedder(FrozenEstimator(erm), device="cpu").fit(X)
    >>> emb.transform(X).shape == (80, emb.n_features_out_)
    True
    >>> emb.get_feature_names_out()[:2]
    array(['embedding0', 'embedding1'], dtype=object)

    The features feed any estimator over feature tables:

    >>> pipe = make_pipeline(Embedder(FrozenEstimator(erm), device="cpu"),
    ...                      DFRRetrainer(Cs=[1.0], n_retrains=2, random_state=0))
    >>> pipe.fit(X, y).predict(X[:3]).shape
    (3,)

    A backbone by name, built for the images at fit:

    >>> Embedder("cnn", device="cpu", random_state=0).fit_transform(X).shape
    (80, 128)
    """

    _parameter_constraints: dict = {
        # a fitted net, an nn.Module, a FrozenEstimator or a backbone name: checked at fit by
        # as_base_model / build_classifier, which name the kinds they take
        "estimator": "no_validation",
        # a file, a weights name or a torchvision weights enum member: build_classifier checks it
        "weights": "no_validation",
        "head": [None, str],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [DeviceConstraint()],
        "num_workers": [Interval(numbers.Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        *,
        weights=None,
        head=None,
        batch_size=256,
        device="auto",
        num_workers=0,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.weights = weights
        self.head = head
        self.batch_size = batch_size
        self.device = device
        self.num_workers = num_workers
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _model(self, X):
        """What ``as_base_model`` takes: the given model, or the backbone built from its name."""
        if isinstance(self.estimator, str):
            from .nets import build_classifier

            with torch_seed(self.random_state):
                # the head's size does not matter: only the features before it are used
                return build_classifier(self.estimator, self.input_shape_, n_classes=2, weights=self.weights)
        if self.weights is not None:
            raise ValueError(
                "`weights` applies to a backbone named by a string `estimator`; the given "
                f"{type(unwrap_frozen(self.estimator)).__name__} already holds its weights."
            )
        # an unfitted net (for example the copy ``clone`` makes of a fitted one) is refused by
        # as_base_model, with the FrozenEstimator hint
        return self.estimator

    # ------------------------------------------------------------------ fit / transform
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Prepare the base model for images like ``X``; no image is embedded.

        Parameters
        ----------
        X : ndarray, tensor or torch Dataset of images ``(n, channels, height, width)``
            One image is read to find the head (unless ``head`` is given)
            and, with a backbone name, to build the network for its shape.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        X = self._check_images(X, reset=True)
        self.base_model_ = as_base_model(self._model(X), X, head=self.head, device=self.device)
        self.n_features_out_ = int(self.base_model_.n_features)
        return self

    def transform(self, X):
        """The features ``f(x)`` of ``X``, in batches.

        Parameters
        ----------
        X : ndarray, tensor or torch Dataset of images of the fitted shape
            A Dataset's items are an image or a tuple starting with one; it
            is read through a DataLoader with ``num_workers`` workers and never
            held whole.

        Returns
        -------
        Z : ndarray of float32, shape (n_samples, ``n_features_out_``)
        """
        check_is_fitted(self, "base_model_")
        X = self._check_images(X, reset=False)
        return self._embed(X)

    def _embed(self, X):
        return self.base_model_.embed(
            X,
            batch_size=self.batch_size,
            progress=bool(self.verbose),
            num_workers=self.num_workers,
            check_finite=is_dataset(X),
        )

    def get_feature_names_out(self, input_features=None):
        """Names of the features: ``embedding0`` ... ``embedding{n_features_out_ - 1}``.

        Parameters
        ----------
        input_features : None
            Images have no feature names; only ``None`` is accepted.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self, "n_features_out_")
        if input_features is not None:
            raise ValueError("`input_features` must be None: the input of Embedder is images, which have no feature names.")
        return np.asarray([f"embedding{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = True
        tags.non_deterministic = False
        tags.transformer_tags.preserves_dtype = []
        return tags
