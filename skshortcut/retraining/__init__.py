"""Mitigation by retraining the last layer of a base model."""

from .dfr import DFRRetrainer
from .mask_and_combine import MaskAndCombineRetrainer

__all__ = ["DFRRetrainer", "MaskAndCombineRetrainer"]
