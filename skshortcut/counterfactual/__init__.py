"""Counterfactual alignment with Latent Shift (Cohen et al., 2024).

:class:`LatentShift` makes counterfactuals of a base classifier through an
autoencoder (Eqs. 1-2), :class:`CFAlignmentScorer` measures how other
classifiers follow them (Eq. 3, figure 2a), :class:`CFRectifier` (and its
shorthand :func:`rectify`) repairs a classifier by additive composition
(Eqs. 5-6).
"""

from .additive import AdditiveClassifier
from .adapters import ClassifierOutput, as_autoencoder, as_classifier_output
from .autoencoder import Autoencoder, ConvAutoencoder
from .latent_shift import STOP_REASONS, LatentShift, relative_change
from .rectifier import CFRectifier, rectify
from .scorer import AlignmentScorer, CFAlignmentScorer, make_alignment_scorer
from .tables import Alignment, AlignmentTable, aggregate_alignment

__all__ = [
    "AdditiveClassifier",
    "Alignment",
    "AlignmentScorer",
    "AlignmentTable",
    "Autoencoder",
    "CFAlignmentScorer",
    "CFRectifier",
    "ClassifierOutput",
    "ConvAutoencoder",
    "LatentShift",
    "STOP_REASONS",
    "aggregate_alignment",
    "as_autoencoder",
    "as_classifier_output",
    "make_alignment_scorer",
    "rectify",
    "relative_change",
]
