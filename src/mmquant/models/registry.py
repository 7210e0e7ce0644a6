"""Named model sizes, timm-style: ``list_models()``, ``get_config(name)``, ``create_model(name)``.

Every family has a tiny ``test`` size that builds in well under a second for tests and smoke runs.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import NamedTuple

from transformers import PretrainedConfig, PreTrainedModel

from .caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel
from .card_info import ModelCardInfo
from .jwae import JWAEConfig, JWAEModel
from .laviter import LaviterConfig, LaviterModel
from .mxqvae import MXQVAEConfig, MXQVAEModel
from .optvq import OptVQConfig, OptVQModel
from .optvq.configuration_optvq import DEFAULT_QUANTIZER_CONFIG

__all__ = [
    "MODEL_SIZES",
    "PAPER_QUANTIZERS",
    "ModelSize",
    "card_info",
    "create_model",
    "get_config",
    "list_models",
]


class ModelSize(NamedTuple):
    config_class: type[PretrainedConfig]
    model_class: type[PreTrainedModel]
    kwargs: dict
    description: str
    checkpoint: str | None = None  # the zoo checkpoint `pretrained=True` loads where several have this size


def _optvq(description: str, **kwargs) -> ModelSize:
    return ModelSize(OptVQConfig, OptVQModel, kwargs, description)


# The reference's MNIST/CIFAR-10 setting (configs/mnsit/optvq.yaml, the default OptVQConfig): appendix-B CNN,
# 32x32 images, 8-dim features split into 4 heads over 1024 shared codes.
_APPENDIX_B = dict(image_size=32, block_out_channels=[16, 16, 32], embed_dim=8)
# Its VQ-VAE baseline (configs/mnsit/vqbase.yaml): nearest neighbour, one head, same network.
_VQ_BASELINE = {"type": "vq", "codebook_size": 1024, "num_heads": 1, "beta": 0.25, "use_affine": True}
# The two quantizers of the paper's Tab. 2, by name (used by the training script's --quantizer).
PAPER_QUANTIZERS = {"optvq": DEFAULT_QUANTIZER_CONFIG, "vq": _VQ_BASELINE}
_TINY_OPTVQ = {**DEFAULT_QUANTIZER_CONFIG, "codebook_size": 32, "num_heads": 2}

# The reference's ImageNet tokenizers (configs/imagenet/optvq_256_f16_h*.yaml): taming's VQGAN encoder/decoder with
# ch 128, ch_mult [1, 1, 2, 2, 4], 2 ResNet blocks per level, attention at 16x16, z_channels 256, e_dim 256.
_REFERENCE_F16 = dict(
    image_size=256,
    backbone="vqgan",
    block_out_channels=[128, 128, 256, 256, 512],
    latent_channels=256,
    attention_resolutions=[16],
    embed_dim=256,
)

# VSE++ (Faghri et al. 2018) as a JWAEConfig: no decoders, no prior, only the max-hinge ranking loss
# Caption MNIST jWAE/VSE++ read 32x32 canvases through frozen grid features (a pretrained digit CNN per quadrant and
# colour channel: examples/jwae/pretrain_grid_features.py), as the paper's models read frozen ResNet features.
_JWAE_MNIST = dict(image_input="grid_features", image_size=32, grid_feature_channels=[32, 64], grid_feature_dim=64)
_VSEPP = dict(
    **_JWAE_MNIST,
    lambda_image_reconstruction=0.0,
    lambda_text_reconstruction=0.0,
    lambda_image_prior=0.0,
    lambda_text_prior=0.0,
)

MODEL_SIZES: dict[str, ModelSize] = {
    "optvq-mnist": _optvq(
        "appendix-B CNN, MNIST 32x32, 1024 codes, 4 heads (paper Tab. 2)", in_channels=1, **_APPENDIX_B
    ),
    "optvq-mnist-h1": _optvq(
        "optvq-mnist with one head: 1024 codes of dim 8 (the Tab. 2 network and quantizer otherwise)",
        in_channels=1,
        quantizer_config={**DEFAULT_QUANTIZER_CONFIG, "num_heads": 1},
        **_APPENDIX_B,
    ),
    "vq-mnist": _optvq(
        "the VQ-VAE baseline of Tab. 2 (nearest neighbour, same network)",
        in_channels=1,
        quantizer_config=_VQ_BASELINE,
        **_APPENDIX_B,
    ),
    "optvq-cifar10": _optvq("appendix-B CNN, CIFAR-10 32x32, 1024 codes, 4 heads", in_channels=3, **_APPENDIX_B),
    "optvq-vqgan-f16": _optvq(
        "VQGAN-style f16 tokenizer, 256x256, 16384 codes, 4 heads (reference imagenet/optvq_256_f16_h4, released as "
        "BorelTHU/optvq-16x16x4)",
        **_REFERENCE_F16,
        quantizer_config={**DEFAULT_QUANTIZER_CONFIG, "codebook_size": 16384},
    ),
    "optvq-vqgan-f16-h8": _optvq(
        "VQGAN-style f16 tokenizer, 256x256, 16384 codes, 8 heads (reference imagenet/optvq_256_f16_h8, released as "
        "BorelTHU/optvq-16x16x8)",
        **_REFERENCE_F16,
        quantizer_config={**DEFAULT_QUANTIZER_CONFIG, "codebook_size": 16384, "num_heads": 8},
    ),
    "test": _optvq(
        "tiny OptVQ for tests and smoke runs",
        image_size=16,
        block_out_channels=[8, 8, 16],
        quantizer_config=_TINY_OPTVQ,
    ),
    "test-vqgan": _optvq(
        "tiny VQGAN-style f16 OptVQ for tests",
        backbone="vqgan",
        block_out_channels=[8, 8, 16, 16, 16],
        latent_channels=16,
        layers_per_block=1,
        norm_num_groups=4,
        attention_resolutions=[2],  # at the last level, as the reference f16 tokenizers
        quantizer_config=_TINY_OPTVQ,
    ),
    # MXQ-VAE stage 1 (the default MXQVAEConfig is the reference's Caption MNIST model). The zoo's stage 1
    # (checkpoints/mxqvae-caption-mnist-quad4/stage1), trained by examples/mxqvae/configs/quad4_image_route.yaml: a
    # network sized for CPU training, the chunked text coder, and the Quad4 recipe. vocab_size, the special ids and
    # the corruption groups (digits, then colour words) are those of its tokenizer; the training script sets them
    # from the tokenizer it trains.
    "mxqvae-caption-mnist": ModelSize(
        MXQVAEConfig,
        MXQVAEModel,
        dict(
            image_channels=[32, 64, 64],
            image_res_layers=1,
            vocab_size=34,
            text_coder="chunk",
            text_latent_length=24,
            text_num_layers=2,
            text_embed_dim=64,
            hidden_size=64,
            num_fusion_layers=2,
            num_attention_heads=4,
            intermediate_size=256,
            fusion_input_norm=True,
            split_text_residual=True,
            quantizer_config={
                "type": "vq",
                "codebook_size": 512,
                "beta": 0.25,
                "kmeans_init": True,
                "dead_code_threshold": 0.5,
            },
            text_mask_ratio=0.75,
            text_corruption_groups=[[26, 23, 28, 25, 30, 32, 27, 24, 31, 29], [22, 11, 19, 20]],
            text_replace_ratio=0.5,
            image_loss_weight=10.0,
            text_loss_weight=10.0,
            text_loss_on_padding=True,
        ),
        "MXQ-VAE stage 1 for Caption MNIST as shipped: 64x64 images, 48-token captions in 2-token chunks, 64 + 24 "
        "joint codes of 512",
        checkpoint="mxqvae-caption-mnist-quad4",  # the Single and Quad2 pipelines share the size
    ),
    "mxqvae-test": ModelSize(
        MXQVAEConfig,
        MXQVAEModel,
        dict(
            image_channels=[8, 8, 8],
            image_res_layers=1,
            hidden_size=16,
            num_fusion_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            text_embed_dim=8,
            quantizer_config={"type": "vq", "codebook_size": 32},
        ),
        "tiny MXQ-VAE stage 1 for tests",
    ),
    # jWAE (examples/jwae/configs/; vocab_size and special ids come from the tokenizer)
    "jwae-caption-mnist": ModelSize(
        JWAEConfig,
        JWAEModel,
        dict(**_JWAE_MNIST, lambda_image_caption=1.0),
        "jWAE-MH for Caption MNIST: frozen grid features of 32x32 canvases and GRU captions, autoencoded into a "
        "128-d latent, a captioning head on image latents",
    ),
    "vsepp-caption-mnist": ModelSize(
        JWAEConfig,
        JWAEModel,
        _VSEPP,
        "the VSE++ baseline of jwae-caption-mnist: same encoders and latent, max-hinge loss only",
    ),
    "jwae-precomp": ModelSize(
        JWAEConfig,
        JWAEModel,
        dict(
            image_input="features",
            image_feature_dim=2048,
            latent_dim=1024,
            word_embed_dim=300,
            text_hidden_size=1024,
            max_text_length=64,
        ),
        "jWAE-MH on precomputed 2048-d image features (the reference's COCO/Flickr30k setting)",
    ),
    "jwae-test": ModelSize(
        JWAEConfig,
        JWAEModel,
        dict(
            image_size=16,
            image_channels=[4, 8],
            word_embed_dim=8,
            text_hidden_size=16,
            latent_dim=8,
            critic_hidden_size=16,
            max_text_length=12,
        ),
        "tiny jWAE for tests",
    ),
    # LAViTeR (examples/laviter/configs/; vocab_size and special ids come from the tokenizer)
    # sized for CPU training: images area-resized from 64x64 to 32x32, generator stages 8, 16, 32
    "laviter-caption-mnist": ModelSize(
        LaviterConfig,
        LaviterModel,
        dict(
            vision_config=dict(image_size=32, channels=[32, 64]),
            generator_channels=16,
            discriminator_channels=16,
        ),
        "LAViTeR for Caption MNIST at 32x32: CNN regions (8x8), 1-layer transformer text encoder, 3-stage generator "
        "(8, 16, 32), 2-layer captioner, 128-d features",
    ),
    "laviter-caption-mnist-grid": ModelSize(
        LaviterConfig,
        LaviterModel,
        dict(
            vision_config=dict(image_size=32, backbone="digit_grid", channels=[32, 64], grid_feature_dim=64),
            generator_channels=16,
            discriminator_channels=16,
        ),
        "LAViTeR for Caption MNIST at 32x32 on a frozen pretrained digit CNN (the paper's frozen ImageNet encoder's "
        "counterpart): 5 regions (quadrants, pooled canvas), 1-layer text encoder, 3-stage generator, 2-layer "
        "captioner",
    ),
    "laviter-test": ModelSize(
        LaviterConfig,
        LaviterModel,
        dict(
            vision_config=dict(image_size=16, channels=[8, 8], embed_dim=16),
            text_config=dict(max_length=12, embed_dim=16, num_heads=2, intermediate_size=32),
            noise_dim=4,
            condition_dim=4,
            generator_channels=4,
            num_generator_stages=2,
            discriminator_channels=4,
            captioner_num_layers=2,
            captioner_num_heads=2,
        ),
        "tiny LAViTeR for tests",
    ),
    "caption-mnist-judge": ModelSize(
        CaptionMnistJudgeConfig,
        CaptionMnistJudgeModel,
        {},
        "the Caption MNIST reader behind the semantic-consistency metric (examples/mxqvae/train_judge.py)",
    ),
    "caption-mnist-judge-test": ModelSize(
        CaptionMnistJudgeConfig,
        CaptionMnistJudgeModel,
        dict(hidden_channels=[4, 4, 8]),
        "tiny Caption MNIST judge for tests",
    ),
}


def list_models(model_type: str | None = None) -> list[str]:
    """Names of the registered sizes; with ``model_type`` (``"optvq"``, ``"mxqvae"``, ``"jwae"``, ``"laviter"``...)
    only that family's."""
    return sorted(n for n, s in MODEL_SIZES.items() if model_type in (None, s.config_class.model_type))


def card_info(model_type: str) -> ModelCardInfo:
    """What the model card of a ``model_type`` checkpoint says: the ``card_info`` of its registered model class (set
    in ``models/<name>/card_<name>.py``); an empty :class:`~mmquant.models.card_info.ModelCardInfo` for a type with
    no registered size. A citation borrowed from another type (``citation_from``) is filled in."""
    info = next(
        (s.model_class.card_info for s in MODEL_SIZES.values() if s.config_class.model_type == model_type),
        ModelCardInfo(),
    )
    if not info.citation and info.citation_from:
        info = replace(info, citation=card_info(info.citation_from).citation)
    return info


def _merge(base, override, key: str):
    """``override`` merged into ``base`` key by key when both are dicts (a sub-config such as ``quantizer_config`` or
    ``vision_config``), else ``override``. A quantizer config whose ``type`` changes keeps only the old keys that the
    new quantizer takes (``epsilon`` of Sinkhorn is dropped for ``"vq"``, ``codebook_size`` is kept)."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return copy.deepcopy(override)
    merged = {k: copy.deepcopy(v) for k, v in base.items()}
    if key.endswith("quantizer_config") and override.get("type", base.get("type")) != base.get("type"):
        import inspect

        from ..quantizers.factory import quantizer_class

        accepted = {"type"}  # the keyword arguments of the new class and of its bases (a subclass passes **kwargs on)
        for cls in quantizer_class(override["type"]).__mro__:
            if "__init__" in vars(cls) and cls.__module__.startswith("mmquant."):
                accepted |= set(inspect.signature(cls.__init__).parameters)
        merged = {k: v for k, v in merged.items() if k in accepted}
    for sub_key, value in override.items():
        merged[sub_key] = _merge(merged.get(sub_key), value, sub_key)
    return merged


def get_config(name: str, **overrides) -> PretrainedConfig:
    """The config of size ``name``; keyword ``overrides`` replace its fields (e.g. ``in_channels=3``). A dict given for
    a sub-config field (``quantizer_config``, ``vision_config``, ``text_config``...) is merged into the size's own, so
    ``get_config("optvq-mnist", quantizer_config={"num_heads": 1})`` changes one key and
    ``get_config("optvq-mnist", quantizer_config={"type": "vq"})`` swaps the quantizer and keeps its codebook size
    (keys the new quantizer type does not take are dropped). Pass a complete dict through the config class to
    replace a sub-config outright."""
    if name not in MODEL_SIZES:
        raise ValueError(f"model name {name!r} is unknown; expected one of {list_models()}.")
    size = MODEL_SIZES[name]
    kwargs = copy.deepcopy(size.kwargs)
    for key, value in overrides.items():
        kwargs[key] = _merge(kwargs.get(key, _config_default(size.config_class, key)), value, key)
    return size.config_class(**kwargs)


def _config_default(config_class: type[PretrainedConfig], key: str):
    """The value of ``key`` in a default ``config_class()`` (a sub-config dict a size leaves to the config)."""
    value = getattr(config_class(), key, None)
    return copy.deepcopy(value.to_dict() if isinstance(value, PretrainedConfig) else value)


def create_model(name: str, pretrained: bool = False, **overrides) -> PreTrainedModel:
    """A model of size ``name`` (see :func:`get_config`), timm-style: randomly initialised by default;
    ``pretrained=True`` loads the trained weights of the zoo checkpoint of that size (shipped inside the package,
    offline; see ``mmquant.zoo``), and raises ``ValueError`` for a size that has no trained checkpoint or with
    ``overrides`` (a trained checkpoint has one architecture)."""
    if not pretrained:
        config = get_config(name, **overrides)
        return MODEL_SIZES[name].model_class(config)
    from .. import zoo_catalog as zoo

    if name not in MODEL_SIZES:
        raise ValueError(f"model name {name!r} is unknown; expected one of {list_models()}.")
    entries = [e for e in zoo.list_checkpoints() if e.size == name]  # the zoo checkpoint(s) of this size
    if not entries:
        trained = sorted({e.size for e in zoo.list_checkpoints()})
        raise ValueError(
            f"create_model({name!r}, pretrained=True): no trained weights for this size; sizes with weights: "
            f"{trained} (see `mmquant zoo list`); pretrained=False gives a randomly initialised model."
        )
    if overrides:
        raise ValueError(
            f"create_model({name!r}, pretrained=True, {', '.join(f'{k}=...' for k in overrides)}): the trained "
            "checkpoint has a fixed architecture; drop the overrides, or use pretrained=False."
        )
    if len(entries) > 1:  # e.g. one MXQ-VAE pipeline per Caption MNIST layout, all of one stage-1 size
        chosen = MODEL_SIZES[name].checkpoint
        entries = [e for e in entries if e.name == chosen]
        if len(entries) != 1:
            raise ValueError(
                f"create_model({name!r}, pretrained=True): several zoo checkpoints have this size and "
                f"the registry names none of them ({chosen!r}); load one by name with from_pretrained."
            )
    entry = entries[0]
    folder = zoo.resolve(entry.name)
    if entry.kind == "pipeline":  # a pipeline folder (MXQ-VAE): the size is its stage-1 model
        return MODEL_SIZES[name].model_class.from_pretrained(folder, subfolder="stage1")
    return MODEL_SIZES[name].model_class.from_pretrained(folder)
