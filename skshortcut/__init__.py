"""skshortcut: detect, measure and mitigate shortcut learning, the scikit-learn way."""

from ._grouped import GroupedData, unpack_grouped
from .erm import ERMClassifier
from .embedding import Embedder
from .counterfactual import CFAlignmentScorer, CFRectifier, LatentShift, make_alignment_scorer, rectify
from .generative.chroma_vae import ChromaVAEClassifier
from .grouping import ExMapGrouper, FeatureClusterGrouper
from .generative.diffusion import DiffusionShiftGenerator
from .generative.wasserstein import WassersteinDisentangler
from .retraining import AFRRetrainer, DFRRetrainer, GroupDRORetrainer, JTTRetrainer, MaskAndCombineRetrainer
from .metrics import (
    PseudoGroupScorer,
    group_accuracies,
    group_balanced_accuracy,
    group_balanced_scorer,
    make_group_scorer,
    make_pseudo_group_scorer,
    worst_class_accuracy,
    worst_class_scorer,
    worst_group_accuracy,
    worst_group_accuracy_ci,
    worst_group_scorer,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AFRRetrainer",
    "ChromaVAEClassifier",
    "DFRRetrainer",
    "DiffusionShiftGenerator",
    "Embedder",
    "ERMClassifier",
    "ExMapGrouper",
    "FeatureClusterGrouper",
    "GroupDRORetrainer",
    "GroupedData",
    "JTTRetrainer",
    "MaskAndCombineRetrainer",
    "WassersteinDisentangler",
    "unpack_grouped",
    "group_accuracies",
    "group_balanced_accuracy",
    "group_balanced_scorer",
    "make_group_scorer",
    "worst_group_accuracy",
    "worst_group_accuracy_ci",
    "worst_group_scorer",
    "worst_class_accuracy",
    "worst_class_scorer",
    "make_pseudo_group_scorer",
    "PseudoGroupScorer",
    "CFAlignmentScorer",
    "CFRectifier",
    "LatentShift",
    "make_alignment_scorer",
    "rectify",
]
