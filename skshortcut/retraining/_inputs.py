"""The input of the last-layer retrainers: a feature table, or images embedded by a base model.

Shared by :class:`~skshortcut.DFRRetrainer` and the retrainers built on
:class:`~skshortcut.retraining._last_layer.LastLayerRetrainer` (AFR, JTT, Group DRO).

Without a base model (``estimator=None``) ``X`` is a feature table, checked by
scikit-learn's ``validate_data`` (``n_features_in_``, ``feature_names_in_``,
dense and finite values). With one, ``X`` holds images (checked by
:func:`~skshortcut._validation.check_images`: 4-D, finite, the shape of fit at
predict) or a torch Dataset of them, embedded in batches by the base model
(:func:`~skshortcut.base_model.as_base_model`). Labels must be class labels.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._grouped import GroupedData
from .._torch import is_dataset
from .._validation import ImageInputMixin, check_labels, check_same_length
from ..base_model import as_base_model

__all__ = []


class _FeaturesOrImages(ImageInputMixin):
    """Mixin of the retrainers: their ``X`` and ``y`` checked and turned into features.

    Reads the parameters ``estimator``, ``head``, ``device``, ``batch_size``
    and ``verbose``; sets ``base_model_`` and ``input_shape_`` (images) or
    ``n_features_in_`` / ``feature_names_in_`` (features).
    """

    def _check_not_images(self, X):
        """Without ``estimator``: refuse what is plainly not a feature table, with a hint."""
        if is_dataset(X):
            raise TypeError(
                f"`X` is a torch Dataset ({type(X).__name__}); without `estimator`, {type(self).__name__} expects a 2-D "
                "feature matrix (n_samples, n_features). To retrain on images, pass the base model as `estimator=`."
            )
        ndim = getattr(X, "ndim", None)
        if isinstance(ndim, int) and ndim > 2:
            raise ValueError(
                f"`X` has shape {tuple(X.shape)}; without `estimator`, {type(self).__name__} expects a 2-D feature "
                "matrix (n_samples, n_features). To retrain on images, pass the base model as `estimator=`."
            )
        return X.detach().cpu().numpy() if hasattr(X, "detach") else X

    def _base_model(self, X):
        return as_base_model(self.estimator, X, head=self.head, device=self.device)

    def _embed(self, X, *, return_logits=False):
        out = self.base_model_.embed(
            X, batch_size=self.batch_size, progress=bool(self.verbose), return_logits=return_logits
        )
        Z = out[0] if return_logits else out
        if not np.isfinite(Z).all():
            raise ValueError(
                "The base model's embeddings of `X` contain NaN or infinity; check the images (they must be "
                "finite) and the model."
            )
        Z = Z.astype(np.float64, copy=False)
        return (Z, out[1]) if return_logits else Z

    def _fit_inputs(self, X, y):
        """Checked features (embeddings with ``estimator``) and class labels for fit."""
        if self.estimator is None:
            self.base_model_ = None
            Z, y = validate_data(self, self._check_not_images(X), y, accept_sparse=False, dtype=np.float64)
            y = self._class_labels(y)
            return Z, y
        y = self._class_labels(y)
        X = self._check_images(X, reset=True)
        check_same_length(X=X, y=y)
        self.base_model_ = self._base_model(X)
        return self._embed(X), y

    @staticmethod
    def _class_labels(y):
        y = check_labels(y, "y")
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise ValueError(f"`y` must hold class labels: {exc}") from exc
        return y

    def _predict_features(self, X):
        check_is_fitted(self, "coef_")
        # only the samples are read: the groups of a GroupedData are not needed to predict
        if isinstance(X, GroupedData):
            X = X.X
        if self.estimator is None:
            return validate_data(self, self._check_not_images(X), reset=False, accept_sparse=False, dtype=np.float64)
        return self._embed(self._check_images(X, reset=False))
