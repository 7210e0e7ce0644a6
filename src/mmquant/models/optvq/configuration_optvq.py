"""Configuration of the OptVQ image tokenizer ("Preventing Local Pitfalls in Vector Quantization via Optimal
Transport", Zhang et al., arXiv:2412.15195; reference code github.com/zbr17/OptVQ)."""

from __future__ import annotations

from transformers import PretrainedConfig

__all__ = ["OptVQConfig"]

_BACKBONES = ("simple_cnn", "vqgan")
_QUANTIZER_TYPES = ("vq", "sinkhorn", "optvq", "residual")

DEFAULT_QUANTIZER_CONFIG = {
    "type": "sinkhorn",
    "codebook_size": 1024,
    "num_heads": 4,
    "beta": 0.25,
    "use_affine": True,
    "epsilon": 10.0,
    "n_iters": 5,
    "normalize": "all",
}


class OptVQConfig(PretrainedConfig):
    r"""Configuration of [`OptVQModel`]: an image encoder, a quantizer and an image decoder.

    The defaults build the appendix-B CNN tokenizer of the paper for 32x32 RGB images (CIFAR-10) with the reference
    code's quantizer (1024 codes of dimension 2 = 8 / 4 heads, affine codebook transform, Sinkhorn with epsilon 10
    and 5 iterations). Named sizes live in `mmquant.models.registry`.

    Args:
        image_size (`int`, *optional*, defaults to 32):
            Height and width of the input images.
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the input (and reconstructed) images.
        backbone (`str`, *optional*, defaults to `"simple_cnn"`):
            `"simple_cnn"` (appendix B) or `"vqgan"` (VQGAN ResNet encoder/decoder from diffusers).
        block_out_channels (`list[int]`, *optional*, defaults to `[16, 16, 32]`):
            Channels per resolution level; the image is downsampled by `2 ** (len(block_out_channels) - 1)`.
        latent_channels (`int`, *optional*, defaults to 256):
            Encoder output channels of the `"vqgan"` backbone (`"simple_cnn"` outputs `block_out_channels[-1]`).
        layers_per_block (`int`, *optional*, defaults to 2):
            ResNet blocks per level (`"vqgan"` only).
        norm_num_groups (`int`, *optional*, defaults to 32):
            Group-norm groups (`"vqgan"` only).
        attention_resolutions (`list[int]`, *optional*, defaults to `[]`):
            Feature-map sizes at which the `"vqgan"` encoder and decoder add self-attention after every ResNet block
            of that resolution level (the reference's `attn_resolutions`; the released ImageNet tokenizers use
            `[16]`); each must be one of `image_size / 2**i`. Empty: attention only in the middle blocks.
        embed_dim (`int`, *optional*, defaults to 8):
            Dimension of the quantized features (the 1x1 `quant_conv` maps the encoder output to it).
        quantizer_config (`dict`, *optional*):
            The quantizer: `type` (`"sinkhorn"` for OptVQ, `"vq"` for nearest neighbour, `"residual"`) and its
            keyword arguments (`codebook_size`, `num_heads`, `beta`, `use_affine`, `epsilon`, `n_iters`, ...;
            see `mmquant.quantizers`). Swapping VQ for OptVQ is a change of this dict alone.
        reconstruction_l1_weight (`float`, *optional*, defaults to 1.0):
            Weight of the L1 pixel loss.
        reconstruction_l2_weight (`float`, *optional*, defaults to 1.0):
            Weight of the L2 pixel loss.
        quantizer_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the quantizer loss (codebook + beta * commitment).

    Example:
    >>> import mmquant
    >>> from transformers import AutoModel
    >>> config = mmquant.OptVQConfig(
    ...     image_size=16, block_out_channels=[8, 8, 16], quantizer_config={"type": "vq", "codebook_size": 32}
    ... )
    >>> model = AutoModel.from_config(config)
    >>> model.config.tokens_per_image
    16
    """

    model_type = "optvq"

    def __init__(
        self,
        image_size: int = 32,
        in_channels: int = 3,
        backbone: str = "simple_cnn",
        block_out_channels: list[int] | tuple[int, ...] = (16, 16, 32),
        latent_channels: int = 256,
        layers_per_block: int = 2,
        norm_num_groups: int = 32,
        attention_resolutions: list[int] | tuple[int, ...] = (),
        embed_dim: int = 8,
        quantizer_config: dict | None = None,
        reconstruction_l1_weight: float = 1.0,
        reconstruction_l2_weight: float = 1.0,
        quantizer_loss_weight: float = 1.0,
        **kwargs,
    ):
        quantizer_config = dict(DEFAULT_QUANTIZER_CONFIG if quantizer_config is None else quantizer_config)
        for name, value in (("image_size", image_size), ("in_channels", in_channels), ("embed_dim", embed_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive integer.")
        if backbone not in _BACKBONES:
            raise ValueError(f"backbone={backbone!r}: expected one of {_BACKBONES}.")
        if quantizer_config.get("type") not in _QUANTIZER_TYPES:
            raise ValueError(
                f"quantizer_config['type']={quantizer_config.get('type')!r}: unknown quantizer type; expected one "
                f"of {_QUANTIZER_TYPES}."
            )
        if "dim" in quantizer_config:
            raise ValueError("quantizer_config['dim']: set embed_dim instead; the quantizer's dim is embed_dim.")
        block_out_channels = list(block_out_channels)
        if not block_out_channels:
            raise ValueError("block_out_channels: expected at least one level, got an empty list.")
        factor = 2 ** (len(block_out_channels) - 1)
        if image_size % factor:
            raise ValueError(
                f"image_size={image_size}: must be divisible by the downsampling factor {factor} given by "
                f"block_out_channels={block_out_channels}."
            )
        attention_resolutions = list(attention_resolutions)
        level_sizes = [image_size // 2**i for i in range(len(block_out_channels))]
        if attention_resolutions and backbone != "vqgan":
            raise ValueError(
                f"attention_resolutions={attention_resolutions}: only the 'vqgan' backbone has attention levels, "
                f"got backbone={backbone!r}; leave it empty."
            )
        for size in attention_resolutions:
            if size not in level_sizes:
                raise ValueError(
                    f"attention_resolutions={attention_resolutions}: {size!r} is not a feature-map size of this "
                    f"network; expected values among {level_sizes} (image_size / 2**level)."
                )
        num_heads = quantizer_config.get("num_heads", 1)
        if embed_dim % num_heads:
            raise ValueError(f"quantizer_config['num_heads']={num_heads}: must divide embed_dim={embed_dim}.")
        self.image_size = image_size
        self.in_channels = in_channels
        self.backbone = backbone
        self.block_out_channels = block_out_channels
        self.latent_channels = latent_channels
        self.layers_per_block = layers_per_block
        self.norm_num_groups = norm_num_groups
        self.attention_resolutions = attention_resolutions
        self.embed_dim = embed_dim
        self.quantizer_config = quantizer_config
        self.reconstruction_l1_weight = reconstruction_l1_weight
        self.reconstruction_l2_weight = reconstruction_l2_weight
        self.quantizer_loss_weight = quantizer_loss_weight
        super().__init__(**kwargs)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def attention_levels(self) -> list[bool]:
        """Per resolution level (from the input side): whether the `"vqgan"` blocks of that level add attention."""
        return [self.image_size // 2**i in self.attention_resolutions for i in range(len(self.block_out_channels))]

    @property
    def latent_size(self) -> int:
        """Height (= width) of the token grid."""
        return self.image_size // self.downsample_factor

    @property
    def tokens_per_image(self) -> int:
        """Discrete tokens per image: grid cells times heads (times stages for a residual quantizer)."""
        q = self.quantizer_config
        stages = q.get("num_stages", 1) if q.get("type") == "residual" else 1
        return self.latent_size**2 * q.get("num_heads", 1) * stages
