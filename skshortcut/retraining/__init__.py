"""Mitigation by retraining the last layer of a base model."""

from .dfr import DFRRetrainer
from .mask_and_combine import MaskAndCombineRetrainer
from .afr import AFRRetrainer
from .jtt import JTTRetrainer
from .group_dro import GroupDRORetrainer

__all__ = ["DFRRetrainer", "MaskAndCombineRetrainer", "AFRRetrainer", "JTTRetrainer", "GroupDRORetrainer"]
