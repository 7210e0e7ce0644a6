"""OptVQ image tokenizer: "Preventing Local Pitfalls in Vector Quantization via Optimal Transport" (Zhang et al.,
arXiv:2412.15195; reference code github.com/zbr17/OptVQ).

encoder -> 1x1 ``quant_conv`` -> quantizer (Sinkhorn/OptVQ or nearest-neighbour VQ, chosen by config) -> 1x1
``post_quant_conv`` -> decoder, trained with L1 + L2 pixel losses plus the quantizer loss (eq. 5), as the
reference's ``VQModel`` with ``AELoss`` (perceptual and GAN terms belong to the training recipe, not the model).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel

from ...modeling_outputs import VQAutoencoderOutput
from ...modules.conv_autoencoder import build_image_decoder, build_image_encoder
from ...quantizers import QuantizerOutput, build_quantizer
from ..input_checks import check_batch_sizes, check_finite, check_pixel_values
from ..modeling_utils import PushToHubWithCardMixin
from .card_optvq import OPTVQ_CARD
from .configuration_optvq import OptVQConfig

__all__ = ["OptVQModel", "OptVQPreTrainedModel"]


def _check_latents(latents: Tensor, embed_dim: int, name: str) -> None:
    if not isinstance(latents, Tensor) or not latents.is_floating_point():
        raise TypeError(
            f"{name}: expected a float tensor (batch, {embed_dim}, h, w), got {type(latents).__name__} "
            f"{getattr(latents, 'dtype', '')}."
        )
    if latents.ndim != 4 or latents.shape[1] != embed_dim:
        raise ValueError(f"{name}: expected (batch, {embed_dim}, h, w), got {tuple(latents.shape)}.")
    check_finite(latents, name)


class OptVQPreTrainedModel(PushToHubWithCardMixin, PreTrainedModel):
    """Base class of OptVQ / VQ image tokenizers (:class:`OptVQModel`): ties them to :class:`OptVQConfig`
    (``model_type="optvq"``), initialises their weights (``_init_weights``) and gives them transformers'
    ``save_pretrained`` / ``from_pretrained`` (safetensors only; a zoo name loads the checkpoint shipped with
    mmquant) and ``push_to_hub`` with a generated model card. Use a subclass; ``import mmquant`` registers them
    with the Auto classes."""

    config_class = OptVQConfig
    base_model_prefix = "optvq"
    card_info = OPTVQ_CARD  # what its model card says (card_optvq.py)
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False

    def _init_weights(self, module: nn.Module) -> None:
        """Layers keep PyTorch's default initialisation, the codebook its own (see ``BaseQuantizer``)."""


class OptVQModel(OptVQPreTrainedModel):
    """Image tokenizer: ``encode`` -> ``quantize`` -> ``decode``, plus ``encode_to_indices``/``decode_indices``.

    Example:
    >>> import torch, mmquant
    >>> model = mmquant.create_model("test").eval()
    >>> images = torch.rand(2, 3, 16, 16)
    >>> indices = model.encode_to_indices(images)          # (2, 4, 4, 2): 4x4 grid, 2 heads
    >>> model.decode_indices(indices).shape
    torch.Size([2, 3, 16, 16])
    """

    def __init__(self, config: OptVQConfig):
        super().__init__(config)
        backbone = (
            config.backbone,
            config.in_channels,
            config.block_out_channels,
            config.latent_channels,
            config.layers_per_block,
            config.norm_num_groups,
        )
        attention = {"attention_levels": config.attention_levels}
        self.encoder = build_image_encoder(*backbone, **attention)  # (B, C, H, W) -> (B, encoder channels, h, w)
        self.decoder = build_image_decoder(*backbone, **attention)  # (B, decoder channels, h, w) -> (B, C, H, W)
        self.quant_conv = nn.Conv2d(self.encoder.out_channels, config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, self.decoder.in_channels, 1)
        q = dict(config.quantizer_config)
        self.quantizer = build_quantizer(q.pop("type"), dim=config.embed_dim, **q)
        self.post_init()

    # ------------------------------------------------------------------ checks
    def _check_pixel_values(self, pixel_values: Tensor) -> None:
        check_pixel_values(pixel_values, self.config.in_channels, self.config.image_size)

    # ------------------------------------------------------------------ the three stages
    # Public methods check their inputs once; the private steps (_encode, _quantize, _decode) check nothing.
    def encode(self, pixel_values: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> continuous latents ``(B, embed_dim, h, w)`` (before quantization). Float images
        of another precision are cast to the model's dtype."""
        self._check_pixel_values(pixel_values)
        return self._encode(pixel_values)

    def _encode(self, pixel_values: Tensor) -> Tensor:
        return self.quant_conv(self.encoder(pixel_values.to(self.dtype)))

    def quantize(self, latents: Tensor) -> QuantizerOutput:
        """Latents ``(B, embed_dim, h, w)`` -> :class:`QuantizerOutput` with ``quantized`` ``(B, embed_dim, h, w)``
        and ``indices`` ``(B, h, w)`` (``(B, h, w, num_heads)`` when multi-head)."""
        _check_latents(latents, self.config.embed_dim, "latents")
        return self._quantize(latents)

    def _quantize(self, latents: Tensor) -> QuantizerOutput:
        out = self.quantizer(latents.permute(0, 2, 3, 1))  # channels last: (B, h, w, embed_dim)
        return dataclasses.replace(out, quantized=out.quantized.permute(0, 3, 1, 2))

    def decode(self, quantized: Tensor) -> Tensor:
        """Quantized latents ``(B, embed_dim, h, w)`` -> images ``(B, C, H, W)``."""
        _check_latents(quantized, self.config.embed_dim, "quantized")
        return self._decode(quantized)

    def _decode(self, quantized: Tensor) -> Tensor:
        return self.decoder(self.post_quant_conv(quantized))

    # ------------------------------------------------------------------ indices
    @torch.no_grad()
    def encode_to_indices(self, pixel_values: Tensor) -> Tensor:
        """Images -> code indices ``(B, h, w)`` (``(B, h, w, num_heads)`` multi-head). Call ``.eval()`` first for
        batch-independent codes (in training mode OptVQ assigns by Sinkhorn over the batch)."""
        self._check_pixel_values(pixel_values)
        return self._quantize(self._encode(pixel_values)).indices

    @torch.no_grad()
    def decode_indices(self, indices: Tensor) -> Tensor:
        """Code indices as returned by :meth:`encode_to_indices` -> images ``(B, C, H, W)``."""
        n = self.config.latent_size
        q = self.config.quantizer_config
        trailing = ()
        if q.get("num_heads", 1) > 1:
            trailing += (q["num_heads"],)
        if q.get("type") == "residual":
            trailing += (q.get("num_stages", 2),)
        expected = (n, n, *trailing)
        if (
            not isinstance(indices, Tensor)
            or indices.ndim != 1 + len(expected)
            or tuple(indices.shape[1:]) != expected
        ):
            raise ValueError(
                f"indices: expected shape (batch, {', '.join(map(str, expected))}), got "
                f"{tuple(getattr(indices, 'shape', ()))}."
            )
        codes = self.quantizer.indices_to_codes(indices)  # (B, h, w, embed_dim)
        return self._decode(codes.permute(0, 3, 1, 2))

    # ------------------------------------------------------------------ forward
    def forward(self, pixel_values: Tensor, return_dict: bool | None = None) -> VQAutoencoderOutput | tuple:
        """Reconstruct ``pixel_values`` ``(B, C, H, W)`` and compute the training loss (eq. 5)."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        self._check_pixel_values(pixel_values)
        check_batch_sizes(pixel_values=pixel_values)  # the loss of an empty batch is undefined
        latents = self._encode(pixel_values)  # (B, embed_dim, h, w)
        q = self._quantize(latents)  # quantized (B, embed_dim, h, w), straight-through (eq. 2)
        reconstruction = self._decode(q.quantized)  # (B, C, H, W)
        target = pixel_values.to(reconstruction.dtype)
        reconstruction_loss = self.config.reconstruction_l1_weight * F.l1_loss(
            reconstruction, target
        ) + self.config.reconstruction_l2_weight * F.mse_loss(reconstruction, target)
        loss = reconstruction_loss + self.config.quantizer_loss_weight * q.loss  # eq. 5
        out = VQAutoencoderOutput(
            loss=loss,
            reconstruction=reconstruction,
            reconstruction_loss=reconstruction_loss,
            quantizer_loss=q.loss,
            indices=q.indices,
            usage=q.usage,
            perplexity=q.perplexity,
        )
        return out if return_dict else out.to_tuple()
