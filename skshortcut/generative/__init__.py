"""Generative methods against shortcut learning."""

from .chroma_vae import ChromaVAEClassifier
from .diffusion import (
    D3S_BACKGROUNDS,
    D3S_PROMPT,
    DiffusionShiftGenerator,
    build_prompt,
    load_generated_shifts,
    make_guide,
)
from .wasserstein import WassersteinDisentangler
