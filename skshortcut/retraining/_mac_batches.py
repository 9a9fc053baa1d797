"""The training data of Mask-and-Combine's Eq. 6: masks and embeddings, once or per batch.

HosseiniNoohdani et al., *Mitigating Spurious Correlation in Images by
Intervention*, section 3.2. ``f`` is frozen, so a fit computes once what does
not change between epochs: the embeddings ``f(x)`` of the training images and
their top-K XGradCAM masks (:class:`MaskMaker`, packed to one bit per pixel).
Per training batch, :meth:`TrainCache.embeddings` then builds the removed
(Eq. 1) and combined (Eq. 2) images and embeds them, without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._grouped import _take
from .._torch import iter_batches, n_samples, restore_module_state
from ._interventions import _combination, _removal, draw_partners, top_k_mask

__all__ = ["MaskMaker", "TrainCache", "MaCLogits"]

#: Images whose XGradCAM heatmaps are held at once while the masks of a whole set are computed.
_MASK_CHUNK = 1024


@dataclass
class MaskMaker:
    """Top-K XGradCAM masks of a base model.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skshortcut.base_model import as_base_model
    >>> from skshortcut.nets import SmallCNN
    >>> from skshortcut.retraining._mac_batches import MaskMaker
    >>> base = as_base_model(SmallCNN(n_classes=2), torch.zeros(2, 3, 8, 8), device="cpu")
    >>> maker = MaskMaker(base, layer=None, shape=(3, 8, 8), k=10, batch_size=4)
    >>> packed = maker.packed(np.random.RandomState(0).rand(5, 3, 8, 8), None, np.random.RandomState(0))
    >>> maker.unpack(packed).sum(axis=(1, 2)).tolist()
    [10, 10, 10, 10, 10]
    """

    base: object  # BaseModel
    layer: object  # XGradCAM layer (None: the last Conv2d in forward order)
    shape: tuple  # (channels, height, width)
    k: int  # pixels per mask
    batch_size: int

    def heatmaps(self, X, target):
        """XGradCAM of the base model, upsampled to the image."""
        from ..explain import attribute

        return attribute(
            self.base,
            X,
            method="xgradcam",
            target=target,
            layer=self.layer,
            size=tuple(self.shape[1:]),
            normalize=None,
            batch_size=self.batch_size,
            device=self.base.device,
        )

    def batch(self, x, target, rng):
        """Masks of one batch of images (a tensor on the device)."""
        return top_k_mask(torch.as_tensor(self.heatmaps(x, target)), self.k, random_state=rng).to(x.device)

    def packed(self, X, cam_target, rng, *, keep_heatmaps=False):
        """Masks of all of X, packed to bits, computed in chunks so memory stays small."""
        n = n_samples(X)
        h, w = self.shape[1:]
        packed, heat_all = [], []
        for start in range(0, n, _MASK_CHUNK):
            idx = np.arange(start, min(start + _MASK_CHUNK, n))
            target = "predicted" if cam_target is None else cam_target[idx]
            heat = self.heatmaps(_take(X, idx), target)
            masks = top_k_mask(torch.as_tensor(heat), self.k, random_state=rng).cpu().numpy()
            packed.append(np.packbits(masks.reshape(len(idx), h * w), axis=1))
            if keep_heatmaps:
                heat_all.append(np.asarray(heat, dtype=np.float32))
        packed = np.concatenate(packed) if packed else np.zeros((0, -(-h * w // 8)), np.uint8)
        return (packed, np.concatenate(heat_all)) if keep_heatmaps else packed

    def unpack(self, packed):
        """Boolean masks (n, height, width) from packed bits."""
        h, w = self.shape[1:]
        return np.unpackbits(packed, axis=1, count=h * w).reshape(len(packed), h, w).astype(bool)


@dataclass
class MaCLogits:
    """Logits of one training batch: originals, removed and combined images."""

    original: torch.Tensor
    removed: torch.Tensor | None
    combined: torch.Tensor | None
    has_partner: torch.Tensor | None


@dataclass
class TrainCache:
    """What a fit computes once: images, embeddings and masks of the training set."""

    X: object  # images: array, tensor or Dataset
    Z: torch.Tensor  # f(x) of every training image, on the device
    masks: np.ndarray | None  # packed top-K masks (n, ceil(H * W / 8)), or None to recompute per batch
    cam_target: np.ndarray | None  # XGradCAM target of each image (base-model logit index), None: predicted
    maker: MaskMaker
    rng: np.random.RandomState  # partners of Eq. 2, tie-breaking of recomputed masks

    def batch_masks(self, idx, x):
        """Top-K masks of a batch: unpacked from the cache, or recomputed by XGradCAM."""
        if self.masks is not None:
            return torch.from_numpy(self.maker.unpack(self.masks[idx])).to(x.device)
        target = "predicted" if self.cam_target is None else self.cam_target[idx]
        return self.maker.batch(x, target, self.rng)

    def embeddings(self, idx, y, *, removal: bool, combination: bool):
        """Cached ``f(x)`` of a batch, and ``f`` of its removed (Eq. 1) and combined (Eq. 2) images.

        Returns
        -------
        z, z_removed, z_combined, has_partner
            ``None`` for a term that is off; ``has_partner`` marks the
            samples of the batch in the combination term.
        """
        idx = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        z = self.Z[torch.as_tensor(idx, device=self.Z.device)]
        if not removal and not combination:
            return z, None, None, None
        base = self.maker.base
        x = next(iter_batches(_take(self.X, idx), len(idx), device=base.device))
        m = self.batch_masks(idx, x).to(x.dtype)[:, None]
        b = x.mean(dim=(0, 2, 3)).reshape(1, -1, 1, 1)
        parts, has_partner = [], None
        if removal:
            parts.append(_removal(x, m, b))
        if combination:
            y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
            partners = draw_partners(y, self.rng)
            keep = partners >= 0
            has_partner = torch.as_tensor(keep, device=x.device)
            p = torch.as_tensor(partners[keep], device=x.device)
            parts.append(_combination(x[has_partner], m[has_partner], p, b) if keep.any() else x[:0])
        with restore_module_state(base.module), torch.no_grad():
            base.module.eval()
            feats = base.features_and_logits(torch.cat(parts))[0].to(z.dtype)
        z_rm = feats[: len(idx)] if removal else None
        z_comb = feats[len(idx) :] if removal else feats
        return z, z_rm, (z_comb if combination else None), has_partner
