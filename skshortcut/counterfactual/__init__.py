"""Counterfactual alignment with Latent Shift (Cohen et al., 2024).

:class:`LatentShift` makes counterfactuals of a base classifier through an
autoencoder (Eqs. 1-2), :class:`CFAlignmentScorer` measures how other
classifiers follow them (Eq. 3, figure 2a), :func:`rectify` repairs a
classifier by additive composition (Eqs. 5-6).
"""

from .alignment import (
    AdditiveClassifier,
    Alignment,
    AlignmentScorer,
    AlignmentTable,
    CFAlignmentScorer,
    aggregate_alignment,
    make_alignment_scorer,
    rectify,
)
from .autoencoder import Autoencoder, ConvAutoencoder
from .latent_shift import (
    STOP_REASONS,
    ClassifierOutput,
    LatentShift,
    as_autoencoder,
    as_classifier_output,
    relative_change,
)

__all__ = [
    "AdditiveClassifier",
    "Alignment",
    "AlignmentScorer",
    "AlignmentTable",
    "Autoencoder",
    "CFAlignmentScorer",
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
