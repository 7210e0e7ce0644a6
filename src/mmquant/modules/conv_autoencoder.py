"""Convolutional image encoders and decoders for image tokenizers.

* ``simple_cnn``: the plain CNN of OptVQ's appendix B (Tab. 4; "Preventing Local Pitfalls in Vector Quantization
  via Optimal Transport", arXiv:2412.15195) used on MNIST and CIFAR-10: 3x3 convolutions with ReLU, 2x2 stride-2
  convolutions to downsample, 2x2 stride-2 transposed convolutions to upsample.
* ``vqgan``: the VQGAN encoder/decoder (Esser et al., arXiv:2012.09841: ResNet blocks, group norm, SiLU, attention
  in the middle block and, optionally, after every ResNet block of chosen resolution levels, as taming's
  ``attn_resolutions``) as implemented by diffusers' ``Encoder``/``Decoder`` (the ones inside ``diffusers.VQModel``),
  imported only when such a model is built so that ``import mmquant`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["PlainCNNDecoder", "PlainCNNEncoder", "build_image_decoder", "build_image_encoder"]

BACKBONES = ("simple_cnn", "vqgan")


class PlainCNNEncoder(nn.Module):
    """Appendix-B encoder: ``(B, in_channels, H, W)`` -> ``(B, channels[-1], H / 2^(n-1), W / 2^(n-1))``.

    With ``channels=(16, 16, 32)``: conv 3x3 16 + ReLU, [down 2x2, conv 3x3 16 + ReLU], [down 2x2, conv 3x3 32 +
    ReLU], conv 3x3 32, exactly Tab. 4.
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (16, 16, 32)):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels[0], 3, padding=1), nn.ReLU()]
        for prev, ch in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(prev, prev, 2, stride=2), nn.Conv2d(prev, ch, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(channels[-1], channels[-1], 3, padding=1))
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class PlainCNNDecoder(nn.Module):
    """Appendix-B decoder, the mirror of :class:`PlainCNNEncoder` (``channels`` given encoder-side, e.g.
    ``(16, 16, 32)``; the decoder walks them backwards)."""

    def __init__(self, out_channels: int, channels: Sequence[int] = (16, 16, 32)):
        super().__init__()
        rev = list(reversed(channels))
        layers: list[nn.Module] = [nn.Conv2d(rev[0], rev[0], 3, padding=1)]
        for prev, ch in zip(rev[:-1], rev[1:]):
            layers += [nn.ReLU(), nn.ConvTranspose2d(prev, ch, 2, stride=2), nn.Conv2d(ch, ch, 3, padding=1)]
        layers += [nn.ReLU(), nn.Conv2d(rev[-1], out_channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)
        self.in_channels = rev[0]

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def _block_types(plain: str, channels: Sequence[int], attention_levels: Sequence[bool]) -> list[str]:
    """diffusers block names per level (encoder order): ``Attn<plain>`` where the level has attention."""
    levels = list(attention_levels) or [False] * len(channels)
    if len(levels) != len(channels):
        raise ValueError(
            f"attention_levels={list(attention_levels)}: expected one flag per level of channels={list(channels)}."
        )
    return [f"Attn{plain}" if attend else plain for attend in levels]


def build_image_encoder(
    backbone: str,
    in_channels: int,
    channels: Sequence[int],
    latent_channels: int,
    layers_per_block: int = 2,
    norm_num_groups: int = 32,
    attention_levels: Sequence[bool] = (),
) -> nn.Module:
    """Encoder by backbone name; its output channels are in ``.out_channels``. ``attention_levels[i]``: the ``vqgan``
    level ``i`` (``channels[i]``, counted from the input resolution) adds self-attention after each ResNet block."""
    if backbone == "simple_cnn":
        return PlainCNNEncoder(in_channels, channels)
    if backbone == "vqgan":
        from diffusers.models.autoencoders.vae import Encoder

        encoder = Encoder(
            in_channels=in_channels,
            out_channels=latent_channels,
            down_block_types=tuple(_block_types("DownEncoderBlock2D", channels, attention_levels)),
            block_out_channels=tuple(channels),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            double_z=False,
        )
        encoder.out_channels = latent_channels
        return encoder
    raise ValueError(f"backbone={backbone!r}: expected one of {BACKBONES}.")


def build_image_decoder(
    backbone: str,
    out_channels: int,
    channels: Sequence[int],
    latent_channels: int,
    layers_per_block: int = 2,
    norm_num_groups: int = 32,
    attention_levels: Sequence[bool] = (),
) -> nn.Module:
    """Decoder by backbone name; its input channels are in ``.in_channels``. ``attention_levels`` as for
    :func:`build_image_encoder` (encoder-side order: the decoder adds attention at the same resolutions)."""
    if backbone == "simple_cnn":
        return PlainCNNDecoder(out_channels, channels)
    if backbone == "vqgan":
        from diffusers.models.autoencoders.vae import Decoder

        decoder = Decoder(
            in_channels=latent_channels,
            out_channels=out_channels,
            up_block_types=tuple(reversed(_block_types("UpDecoderBlock2D", channels, attention_levels))),
            block_out_channels=tuple(channels),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
        )
        decoder.in_channels = latent_channels
        return decoder
    raise ValueError(f"backbone={backbone!r}: expected one of {BACKBONES}.")
