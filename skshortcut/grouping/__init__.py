"""Pseudo-groups without group labels.

* :class:`ExMapGrouper`: cluster explanation heatmaps (ExMap, CVPR 2024);
* :class:`FeatureClusterGrouper`: cluster embeddings (the GEORGE baseline);
* :class:`SpectralEigengap`: spectral clustering with the eigengap heuristic
  on a sparse nearest-neighbour graph.

Both groupers return :class:`~skshortcut.GroupedData` (embeddings or inputs,
plus pseudo-groups = class x cluster) for the next pipeline step.
"""

from ._base import estimate_n_clusters
from .exmap import ExMapGrouper
from .feature_cluster import FeatureClusterGrouper
from .spectral import SpectralEigengap

__all__ = ["ExMapGrouper", "FeatureClusterGrouper", "SpectralEigengap", "estimate_n_clusters"]
