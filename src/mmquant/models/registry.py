"""Named model sizes, timm-style: ``list_models()``, ``get_config(name)``, ``create_model(name)``.

Every family has a tiny ``test`` size that builds in well under a second for tests and smoke runs.
"""

from __future__ import annotations

import copy

from transformers import PretrainedConfig, PreTrainedModel

from .optvq import OptVQConfig, OptVQModel

__all__ = ["MODEL_SIZES", "create_model", "get_config", "list_models"]

_OPTVQ_PAPER_QUANTIZER = {  # reference configs/mnsit/optvq.yaml and configs/cifar10/optvq.yaml
    "type": "sinkhorn",
    "codebook_size": 1024,
    "num_heads": 4,
    "beta": 0.25,
    "use_affine": True,
    "epsilon": 10.0,
    "n_iters": 5,
    "normalize": "all",
}
_VQ_PAPER_QUANTIZER = {  # reference configs/mnsit/vqbase.yaml: the VQ-VAE baseline
    "type": "vq",
    "codebook_size": 1024,
    "num_heads": 1,
    "beta": 0.25,
    "use_affine": True,
}

# name -> (config class, model class, config kwargs, description)
MODEL_SIZES: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel], dict, str]] = {
    "optvq-mnist": (
        OptVQConfig,
        OptVQModel,
        dict(
            image_size=32,
            in_channels=1,
            block_out_channels=[16, 16, 32],
            embed_dim=8,
            quantizer_config=_OPTVQ_PAPER_QUANTIZER,
        ),
        "appendix-B CNN, MNIST 32x32, 1024 codes, 4 heads (paper Tab. 2)",
    ),
    "vq-mnist": (
        OptVQConfig,
        OptVQModel,
        dict(
            image_size=32,
            in_channels=1,
            block_out_channels=[16, 16, 32],
            embed_dim=8,
            quantizer_config=_VQ_PAPER_QUANTIZER,
        ),
        "the VQ-VAE baseline of Tab. 2 (nearest neighbour, same network)",
    ),
    "optvq-cifar10": (
        OptVQConfig,
        OptVQModel,
        dict(
            image_size=32,
            in_channels=3,
            block_out_channels=[16, 16, 32],
            embed_dim=8,
            quantizer_config=_OPTVQ_PAPER_QUANTIZER,
        ),
        "appendix-B CNN, CIFAR-10 32x32, 1024 codes, 4 heads",
    ),
    "optvq-vqgan-f16": (
        OptVQConfig,
        OptVQModel,
        dict(
            image_size=256,
            in_channels=3,
            backbone="vqgan",
            block_out_channels=[128, 128, 256, 256, 512],
            latent_channels=256,
            layers_per_block=2,
            norm_num_groups=32,
            embed_dim=256,
            quantizer_config={**_OPTVQ_PAPER_QUANTIZER, "codebook_size": 16384},
        ),
        "VQGAN-style f16 tokenizer, 256x256, 16384 codes, 4 heads (reference imagenet/optvq_256_f16_h4)",
    ),
    "test": (
        OptVQConfig,
        OptVQModel,
        dict(
            image_size=16,
            in_channels=3,
            block_out_channels=[8, 8, 16],
            embed_dim=8,
            quantizer_config={**_OPTVQ_PAPER_QUANTIZER, "codebook_size": 32, "num_heads": 2},
        ),
        "tiny OptVQ for tests and smoke runs",
    ),
    "test-vqgan": (
        OptVQConfig,
        OptVQModel,
        dict(
            image_size=32,
            in_channels=3,
            backbone="vqgan",
            block_out_channels=[8, 8, 16, 16, 16],
            latent_channels=16,
            layers_per_block=1,
            norm_num_groups=4,
            embed_dim=8,
            quantizer_config={**_OPTVQ_PAPER_QUANTIZER, "codebook_size": 32, "num_heads": 2},
        ),
        "tiny VQGAN-style f16 OptVQ for tests",
    ),
}


def list_models() -> list[str]:
    """Names of the registered sizes."""
    return sorted(MODEL_SIZES)


def get_config(name: str, **overrides) -> PretrainedConfig:
    """The config of size ``name``; keyword ``overrides`` replace its fields (e.g. ``in_channels=3``)."""
    if name not in MODEL_SIZES:
        raise ValueError(f"model name {name!r} is unknown; expected one of {list_models()}.")
    config_cls, _, kwargs, _ = MODEL_SIZES[name]
    return config_cls(**{**copy.deepcopy(kwargs), **overrides})


def create_model(name: str, **overrides) -> PreTrainedModel:
    """A freshly initialised model of size ``name`` (see :func:`get_config`)."""
    _, model_cls, _, _ = MODEL_SIZES[name] if name in MODEL_SIZES else (None, None, None, None)
    config = get_config(name, **overrides)
    return model_cls(config)
