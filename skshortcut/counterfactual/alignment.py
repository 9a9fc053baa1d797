"""Counterfactual alignment: find, quantify and repair spurious correlations.

Cohen, Blankemeier and Chaudhari, *Identifying Spurious Correlations using
Counterfactual Alignment* (2024). The names once defined here live in one
module per job, and are imported from here as well:

* :mod:`~skshortcut.counterfactual.tables`: :func:`aggregate_alignment`,
  :class:`Alignment`, :class:`AlignmentTable` (section 4.1, figure 2a);
* :mod:`~skshortcut.counterfactual.additive`: :class:`AdditiveClassifier` (Eqs. 4-5);
* :mod:`~skshortcut.counterfactual.scorer`: :class:`CFAlignmentScorer`,
  :class:`AlignmentScorer`, :func:`make_alignment_scorer` (Eq. 3);
* :mod:`~skshortcut.counterfactual.rectifier`: :class:`CFRectifier`,
  :func:`rectify` (Eqs. 5-6).
"""

from .additive import AdditiveClassifier
from .rectifier import CFRectifier, rectify
from .scorer import AlignmentScorer, CFAlignmentScorer, make_alignment_scorer
from .tables import Alignment, AlignmentTable, aggregate_alignment

__all__ = [
    "AdditiveClassifier",
    "Alignment",
    "AlignmentScorer",
    "AlignmentTable",
    "CFAlignmentScorer",
    "CFRectifier",
    "aggregate_alignment",
    "make_alignment_scorer",
    "rectify",
]
