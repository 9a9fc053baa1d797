"""``ExMapGrouper``: pseudo-groups from clustered explanation heatmaps.

Chakraborty, Anders, Heinrich et al., *ExMap: Leveraging Explainability
Heatmaps for Unsupervised Group Robustness to Spurious Correlations*,
CVPR 2024.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._constraints import Satisfies
from ..base_model import as_base_model
from ..explain import METHODS, attribute
from ._base import BaseGrouper
from ._cross_fit import CrossFittedModel, check_cv_splits, out_of_fold

__all__ = ["ExMapGrouper"]


def _is_size_pair(val) -> bool:
    return (
        isinstance(val, (tuple, list))
        and len(val) == 2
        and all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in val)
    )


class ExMapGrouper(BaseGrouper):
    """ExMap: cluster the base model's heatmaps; pseudo-group = class x cluster.

    The two stages of ExMap (sec. 4, Algorithm 1):

    1. **Heatmaps** (sec. 4.1). For every sample, the relevance of its pixels
       for the class the base model predicts, by LRP (Eq. 3 on dense layers,
       the gamma rule on convolutions; :class:`skshortcut.explain.LRP`),
       downsized bilinearly to ``heatmap_size`` (supplement sec. 2.1), channels
       kept, flattened and divided by its own maximum absolute value. Computed
       in batches: memory holds only the downsized heatmaps.
    2. **Clustering** (sec. 4.2). Global ExMap (``scope="global"``, the paper's
       choice) clusters all heatmaps at once, by default with spectral
       clustering on a sparse ``int(ln n)``-nearest-neighbour graph, the number
       of clusters the one whose clustering is most stable across subsamples
       (the authors' eigengap of the normalised Laplacian is
       ``SpectralEigengap(n_clusters_rule="eigengap")``) and labels by
       cluster-QR (:class:`~skshortcut.grouping.SpectralEigengap`); the
       pseudo-group of a sample is then its class x its cluster,
       ``group = class_index * n_clusters_ + cluster``
       (:math:`\\hat G = L \\times \\hat A`). Local ExMap (``scope="local"``)
       clusters each class separately.

    The pseudo-groups go to any method that needs group labels, through a
    :class:`~skshortcut.GroupedData`: in the paper's workflow
    ``Pipeline([("groups", ExMapGrouper(estimator=erm)), ("clf", DFRRetrainer())])``
    fit on the validation split.

    **Without a base model** (``estimator=None``, the no-argument form
    ``Pipeline([("groups", ExMapGrouper()), ("clf", DFRRetrainer())]).fit(X, y)``)
    the grouper trains its own :class:`~skshortcut.ERMClassifier` on
    ``(X, y)``, which then explains and embeds the images it was trained on.
    A model that has memorised its training images explains and embeds them
    by what it memorised of each, not only by the shortcut it applies to new
    images, and a head retrained on such embeddings learns the memorised
    features too. By default (``augment="shift"``) that model is therefore
    trained on randomly shifted images
    (:class:`~skshortcut.augment.RandomShift`, up to 1/8 of the side,
    another offset of each image every epoch): on the images it was fit on
    it stays about as wrong on the minority groups as on new ones (the user
    guide's table). ``augment=False`` trains it on the images as they are.

    ``cv`` *cross-fits* instead, as
    :func:`~sklearn.model_selection.cross_val_predict` does: ``X`` is split
    into ``cv`` stratified folds, and for each fold an ERM model fit on the
    other folds gives the heatmaps *and* the embeddings of the held-out fold
    (one pass). The fold models together are the base model
    (:class:`~skshortcut.grouping._cross_fit.CrossFittedModel`): the
    embeddings that flow on are theirs side by side (``cv * d`` columns), at
    fit each sample's held-out embedding in its fold's block and the fold
    means elsewhere, at ``transform`` ``m_j + (f_j(x) - m_j) / cv`` in block
    ``j``, so that a head affine in them (:class:`~skshortcut.DFRRetrainer`)
    predicts new samples by exactly the average of what it learnt on each
    fold's held-out embeddings. New samples take the fold models' mean
    logits (predicted class) and mean heatmap (cluster). That is ``cv``
    base-model fits, each on ``(cv - 1) / cv`` of the data, and each fold's
    head sees ``1 / cv`` of the retraining data, which costs it more than
    cross-fitting gains on dominoes and shapes on tints (the user guide's
    table), so it is not the default.

    New samples (``transform``) are assigned to
    the fitted clusters and take their *predicted* class; ``transform``
    computes their embeddings at once and their heatmaps and pseudo-groups
    only when the result's ``groups`` is read, so a pipeline's ``predict``
    costs one embedding pass. At fit, the heatmaps and the embeddings come
    from the same forward pass.

    Parameters
    ----------
    estimator : fitted skorch net, nn.Module, FrozenEstimator or None, default=None
        The base model (ERM). ``None`` fits an :class:`~skshortcut.ERMClassifier`
        on ``(X, y)`` first. With a plain ``nn.Module`` the logits must be the
        sorted classes of ``y``. :func:`~sklearn.base.clone` (and so
        ``GridSearchCV`` and ``cross_validate``) replaces a fitted skorch net
        by an unfitted copy; pass ``FrozenEstimator(fitted_net)``
        (:class:`sklearn.frozen.FrozenEstimator`) to keep it. A given model is
        used as it is (no cross-fitting, no ``augment``): the papers'
        workflow trains it on other data than the grouper's.
    cv : None, int, cross-validation generator or iterable, default=None
        With ``estimator=None``: ``None`` fits one ERM model on all of
        ``(X, y)``, which explains and embeds them; otherwise the folds of
        the cross-fitting (one ERM model per fold, see above). An int is a
        :class:`~sklearn.model_selection.StratifiedKFold` with that many
        folds (>= 2), shuffled with ``random_state``; a splitter or an
        iterable of ``(train, test)`` index pairs must give test parts that
        partition the samples, and every training part must hold every
        class. Ignored when ``estimator`` is given.
    augment : "shift", "crop_flip", False or callable, default="shift"
        With ``estimator=None``: the augmentation of the training images of
        the ERM model(s) the grouper fits, passed on as
        ``ERMClassifier(augment=...)`` (heatmaps and embeddings are always
        of the images as given). ``"shift"``:
        :class:`~skshortcut.augment.RandomShift` (a random translation by up
        to 1/8 of the height and width, edges repeated); ``"crop_flip"``:
        :func:`~skshortcut.augment.crop_flip` (it breaks dominoes, whose
        label sits in one half of the image); ``False``: none; a callable
        maps one image tensor ``(channels, height, width)`` to another.
        Ignored when ``estimator`` is given.
    method : {"lrp", "xgradcam", "gradcam", "integrated_gradients", "saliency"}, default="lrp"
        The attribution method (:func:`skshortcut.explain.attribute`).
    method_params : dict, optional
        Parameters of the attribution class (e.g. ``{"gamma": 0.25}``).
    heatmap_size : None, int or (int, int), default=None
        Bilinear downsizing of each heatmap (the authors: none for 28 px
        MNIST, 20 for CelebA, 112 for Waterbirds). ``None`` keeps the input
        size (CAM methods: the layer's size).
    heatmap_channels : {"keep", "sum"}, default="keep"
        Keep the colour channels of the relevance (the authors' choice), or
        sum them.
    clustering : {"spectral", "kmeans", "umap_kmeans"} or scikit-learn clusterer, default="spectral"
        ``"kmeans"``: KMeans with 10 restarts; ``"umap_kmeans"``: UMAP to 2
        dimensions (``int(ln n)`` neighbours) then KMeans. A clusterer is cloned;
        its ``n_clusters`` is set when ``n_clusters`` is an int; new samples go
        to its ``predict``, or to the cluster of their nearest fitted heatmaps.
    n_clusters : "auto" or int, default="auto"
        ``"auto"``: estimated from the heatmaps (2 to 10 clusters) by
        :class:`~skshortcut.grouping.SpectralEigengap`'s default rule (the most
        stable count across subsamples), for every built-in clustering.
    scope : {"global", "local"}, default="global"
        Global ExMap (cluster all heatmaps, then split by class) or local
        ExMap (cluster each class).
    output : {"embeddings", "inputs"}, default="embeddings"
        What ``transform`` passes on in the GroupedData: the base model's
        embeddings (for :class:`~skshortcut.DFRRetrainer`), or the inputs
        (for a downstream learner that needs images).
    head : str, optional
        Name of the base model's linear head.
    batch_size : int, default=256
        Images per batch for the heatmaps and the embeddings.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the base models' training and the folds (``estimator=None``)
        and the clustering.
    verbose : int, default=0
        ``>= 1`` shows progress bars.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_clusters_ : int, or ndarray of shape (n_classes,) with ``scope="local"``
        Clusters found (per class with ``scope="local"``).
    cluster_labels_ : ndarray of shape (n_samples,)
        Cluster of each fitted sample (within its class with ``scope="local"``).
    groups_ : ndarray of shape (n_samples,)
        Pseudo-group of each fitted sample: class x cluster.
    group_names_ : ndarray of str
        ``group_names_[g]`` describes pseudo-group ``g`` as ``"<class> / cluster <k>"``.
    group_offsets_ : ndarray of shape (n_classes,)
        First pseudo-group id of each class.
    clusterers_ : list of (clusterer, labels)
        The fitted clusterer(s): one (global) or one per class (local).
    base_model_ : BaseModel or CrossFittedModel
        The base model (cross-fitted: the fold models as one).
    estimator_ : estimator or list of ERMClassifier
        The base model's source: the given model, the ERMClassifier fit on
        ``(X, y)``, or, cross-fitted, :attr:`cv_estimators_`.
    cv_splits_ : list of (ndarray, ndarray) or None
        Cross-fitted: the ``(train, test)`` indices of each fold;
        the heatmap of sample ``i`` came from the model of the fold whose
        test part holds ``i``. Otherwise ``None``.
    cv_estimators_ : list of ERMClassifier or None
        Cross-fitted: the ERM model fit on the training part of each fold.
        Otherwise ``None``.
    logit_index_ : ndarray of shape (n_classes,)
        The logit of each class.
    representation_shape_ : tuple
        Shape of one heatmap.
    input_shape_ : tuple (channels, height, width)
        Shape of one image of ``X``; ``transform`` refuses images of another shape.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut import ExMapGrouper
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 3, 8, 8).astype("float32")
    >>> y = rng.randint(0, 2, 40)
    >>> grouper = ExMapGrouper(SmallCNN(n_blocks=2, width=4), clustering="kmeans", n_clusters=2,
    ...                        heatmap_size=4, random_state=0)
    >>> data = grouper.fit_transform(X, y)
    >>> data.X.shape, grouper.n_clusters_, sorted(set(grouper.groups_)) == sorted(set(data.groups))
    ((40, 8), 2, True)
    """

    def __init__(
        self,
        estimator=None,
        *,
        cv=None,
        augment="shift",
        method="lrp",
        method_params=None,
        heatmap_size=None,
        heatmap_channels="keep",
        clustering="spectral",
        n_clusters="auto",
        scope="global",
        output="embeddings",
        head=None,
        batch_size=256,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.cv = cv
        self.augment = augment
        self.method = method
        self.method_params = method_params
        self.heatmap_size = heatmap_size
        self.heatmap_channels = heatmap_channels
        self.clustering = clustering
        self.n_clusters = n_clusters
        self.scope = scope
        self.output = output
        self.head = head
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints: dict = {
        **BaseGrouper._parameter_constraints,
        "cv": ["cv_object"],
        "augment": [StrOptions({"shift", "crop_flip"}), callable, Options(bool, {False})],
        "method": [StrOptions(set(METHODS))],
        "method_params": [None, dict],
        "heatmap_size": [
            None,
            Interval(Integral, 1, None, closed="left"),
            Satisfies(_is_size_pair, "a pair (height, width) of ints >= 1"),
        ],
        "heatmap_channels": [StrOptions({"keep", "sum"})],
    }

    def _heatmaps(self, X, *, return_embeddings=False, base_model=None):
        """Max-abs-normalised heatmaps (Algorithm 1, lines 4-12), with the embeddings of the same pass."""
        model = self.base_model_ if base_model is None else base_model
        if isinstance(model, CrossFittedModel):  # new samples: the fold models' mean heatmap, normalised again
            maps = sum(self._heatmaps(X, base_model=m) for m in model.models)
            scale = np.abs(maps.reshape(len(maps), -1)).max(axis=1)
            maps = maps / np.where(scale > 0, scale, 1.0).reshape(-1, *([1] * (maps.ndim - 1)))
            return maps.astype(np.float32, copy=False)
        return attribute(
            model,
            X,
            method=self.method,
            target="predicted",
            size=self.heatmap_size,
            channels=self.heatmap_channels,
            normalize="max_abs",
            batch_size=self.batch_size,
            progress=bool(self.verbose),
            method_params=self.method_params,
            return_embeddings=return_embeddings,
        )

    def _fit_erm(self, X, y, seed):
        """The base model the grouper trains itself (``estimator=None``): ERM, with ``augment``."""
        from ..erm import ERMClassifier

        erm = ERMClassifier(augment=self.augment, device=self.device, random_state=seed, verbose=self.verbose).fit(X, y)
        return as_base_model(erm, X, head=self.head, device=self.device), erm

    def _resolve_base_model(self, X, y, seed):
        if self.estimator is not None:
            self.cv_splits_ = self.cv_estimators_ = None
            return super()._resolve_base_model(X, y, seed)
        if self.cv is None:
            self.cv_splits_ = self.cv_estimators_ = None
            return self._fit_erm(X, y, seed)
        splits = check_cv_splits(self.cv, y, random_state=seed)
        fold_seeds = np.random.RandomState(seed).randint(0, 2**31 - 1, size=len(splits))

        def fit(X_train, y_train, k):
            return self._fit_erm(X_train, y_train, int(fold_seeds[k]))

        def compute(model, X_test):  # heatmaps and embeddings of the held-out fold, one forward pass
            return self._heatmaps(X_test, return_embeddings=True, base_model=model[0])

        (R, Z), models = out_of_fold(X, y, splits, fit, compute)
        folds = np.empty(len(y), dtype=np.int64)
        for k, (_, test) in enumerate(splits):
            folds[test] = k
        model = CrossFittedModel.from_out_of_fold([base for base, _ in models], Z, folds)
        self.cv_splits_ = splits
        self.cv_estimators_ = [erm for _, erm in models]
        self._out_of_fold = (R, model.fit_features(Z, folds))  # read once by _fit_representation
        return model, self.cv_estimators_

    def _fit_representation(self, X, *, embeddings):
        if self.cv_splits_ is not None:
            R, F = self._out_of_fold
            del self._out_of_fold
            return R, (F if embeddings else None)
        if embeddings:
            return self._heatmaps(X, return_embeddings=True)
        return self._heatmaps(X), None

    def _new_representation(self, X, Z):
        return self._heatmaps(X)

    def heatmaps(self, X):
        """The heatmaps ExMap clusters, for inspection and plots: ``(n, c, h, w)`` or ``(n, h, w)``.

        They are the base model's (``base_model_``): what new samples are
        assigned by. Cross-fitted (``cv``): the mean of the fold models'
        heatmaps, normalised again; the fitted samples were clustered by
        their held-out heatmap instead (from the model in
        ``cv_estimators_`` whose fold held them out).

        Parameters
        ----------
        X : ndarray, tensor or torch Dataset of images

        Returns
        -------
        ndarray of float32
        """
        check_is_fitted(self, "groups_")
        return self._heatmaps(self._check_images(X, reset=False))
