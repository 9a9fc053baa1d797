"""Generative methods against shortcut learning."""

from .chroma_vae import ChromaVAEClassifier
