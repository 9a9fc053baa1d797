"""A miniature, randomly initialised Stable Diffusion img2img pipeline, built offline.

Every step of :class:`~skshortcut.generative.DiffusionShiftGenerator`'s real
generation runs on it in milliseconds on a CPU: the tests, the examples and
the speed benchmark use it. Its images are noise.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["make_tiny_pipeline"]

_TINY_WORDS = (
    "a", "photo", "of", "in", "on", "at", "the", "snow", "grass", "road", "forest", "water", "cave", "sand",
    "indoors", "rain", "night", "cat", "dog", "digit",
)


def make_tiny_pipeline(save_to=None, *, random_state=0):
    """A randomly initialised, miniature ``StableDiffusionImg2ImgPipeline`` (offline).

    Every component is built from a small config in code: a two-level
    ``UNet2DConditionModel`` (8 and 16 channels), a two-level
    ``AutoencoderKL``, a two-layer ``CLIPTextModel`` and a ``CLIPTokenizer``
    over an in-memory vocabulary (letters and a few words), with a
    ``DDIMScheduler``; no safety checker. Its images are noise, but every
    step of real generation runs, in milliseconds on a CPU: for tests,
    examples and timing the machinery.

    Parameters
    ----------
    save_to : path-like, optional
        If given, the pipeline is written there with ``save_pretrained`` (a
        directory :class:`DiffusionShiftGenerator` can load offline) and the
        path is returned instead of the object.
    random_state : int, default=0
        Seeds the weights.

    Returns
    -------
    StableDiffusionImg2ImgPipeline or pathlib.Path

    Examples
    --------
    >>> from skshortcut.generative.diffusion import make_tiny_pipeline
    >>> pipe = make_tiny_pipeline()
    >>> type(pipe).__name__, list(pipe.vae.config.block_out_channels)
    ('StableDiffusionImg2ImgPipeline', [8, 16])
    """
    import tempfile

    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from .._torch import torch_seed

    with torch_seed(random_state):
        unet = UNet2DConditionModel(
            block_out_channels=(8, 16),
            layers_per_block=1,
            sample_size=8,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=16,
            norm_num_groups=4,
            attention_head_dim=2,
        )
        vae = AutoencoderKL(
            block_out_channels=(8, 16),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            norm_num_groups=4,
            sample_size=64,
        )
        vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
        for token in [*"abcdefghijklmnopqrstuvwxyz,.-'0123456789", *_TINY_WORDS]:
            for piece in (token, token + "</w>"):
                vocab.setdefault(piece, len(vocab))
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
                hidden_size=16,
                intermediate_size=32,
                num_attention_heads=2,
                num_hidden_layers=2,
                vocab_size=len(vocab),
                max_position_embeddings=77,
                layer_norm_eps=1e-5,
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = Path(tmp) / "vocab.json", Path(tmp) / "merges.txt"
        vocab_file.write_text(json.dumps(vocab))
        merges_file.write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if save_to is None:
        return pipe
    path = Path(save_to)
    pipe.save_pretrained(path)
    return path
