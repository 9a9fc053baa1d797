"""Mitigation by retraining the last layer of a base model."""

from .dfr import DFRRetrainer

__all__ = ["DFRRetrainer"]
