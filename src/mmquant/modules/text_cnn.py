"""1-D convolutional text encoders and decoders for MXQ-VAE.

``TextConvEncoder`` / ``TextConvDecoder`` (the MXQ-VAE reference's text tokenizer): word embeddings, then
``num_layers`` valid convolutions that shorten ``max_length`` tokens to ``latent_length`` positions; the decoder
mirrors them with transposed convolutions and predicts every token of the caption.

``TextChunkEncoder`` / ``TextChunkDecoder``: word embeddings, ``num_layers`` same-padded convolutions of width
``kernel_size`` over the whole caption, then each run of ``max_length // latent_length`` consecutive positions is
flattened and projected to one latent position (the decoder mirrors it). Every latent position owns its own
stretch of the caption, instead of the valid convolutions' windows that overlap on all but a few tokens; on Caption
MNIST Quad4 this carries the digit and colour words through a quantized bottleneck in far fewer steps."""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn

__all__ = [
    "TextChunkDecoder",
    "TextChunkEncoder",
    "TextConvDecoder",
    "TextConvEncoder",
    "text_chunk_size",
    "text_kernel_size",
]


def text_kernel_size(max_length: int, latent_length: int, num_layers: int) -> int:
    """The kernel of each valid convolution taking ``max_length`` positions to ``latent_length`` in ``num_layers``."""
    shrink = max_length - latent_length
    if latent_length < 1 or num_layers < 1 or shrink < 0 or shrink % num_layers:
        raise ValueError(
            f"max_text_length={max_length}, text_latent_length={latent_length}, text_num_layers={num_layers}: "
            "max_text_length - text_latent_length must be a non-negative multiple of text_num_layers."
        )
    return shrink // num_layers + 1


def text_chunk_size(max_length: int, latent_length: int, num_layers: int, kernel_size: int) -> int:
    """Caption positions per latent position of the chunked coder (``max_length`` must be a multiple of
    ``latent_length``)."""
    if latent_length < 1 or max_length % latent_length:
        raise ValueError(
            f"max_text_length={max_length}, text_latent_length={latent_length}: the chunked text coder needs "
            "max_text_length to be a multiple of text_latent_length."
        )
    if num_layers < 0 or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"text_num_layers={num_layers}, text_kernel_size={kernel_size}: the chunked text coder needs "
            "text_num_layers >= 0 and an odd text_kernel_size."
        )
    return max_length // latent_length


def _channels(embed_dim: int, num_layers: int) -> list[int]:
    return np.linspace(embed_dim, embed_dim * 2, num_layers + 1).astype(int).tolist()  # the reference: to 4x


class TextConvEncoder(nn.Module):
    """``input_ids (B, L)`` -> ``(B, latent_length, out_dim)``."""

    def __init__(
        self, vocab_size: int, embed_dim: int, out_dim: int, max_length: int, latent_length: int, num_layers: int
    ):
        super().__init__()
        kernel = text_kernel_size(max_length, latent_length, num_layers)
        self.embed = nn.Embedding(vocab_size, embed_dim)
        chans = _channels(embed_dim, num_layers)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.Conv1d(c_in, c_out, kernel), nn.ReLU()]
        layers.append(nn.Conv1d(chans[-1], out_dim, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, input_ids: Tensor) -> Tensor:
        x = self.embed(input_ids).transpose(1, 2)  # (B, E, L)
        return self.layers(x).transpose(1, 2)  # (B, T, out_dim)


class TextConvDecoder(nn.Module):
    """``(B, latent_length, in_dim)`` -> token logits ``(B, max_length, vocab_size)``."""

    def __init__(
        self, vocab_size: int, embed_dim: int, in_dim: int, max_length: int, latent_length: int, num_layers: int
    ):
        super().__init__()
        kernel = text_kernel_size(max_length, latent_length, num_layers)
        chans = list(reversed(_channels(embed_dim, num_layers)))
        layers: list[nn.Module] = [nn.Conv1d(in_dim, chans[0], 1), nn.ReLU()]
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose1d(c_in, c_out, kernel), nn.ReLU()]
        layers.append(nn.Conv1d(chans[-1], vocab_size, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(z.transpose(1, 2)).transpose(1, 2)  # (B, L, vocab)


def _same_convs(channels: int, num_layers: int, kernel_size: int, in_channels: int | None = None) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(num_layers):
        c_in = in_channels if (i == 0 and in_channels is not None) else channels
        layers += [nn.Conv1d(c_in, channels, kernel_size, padding=kernel_size // 2), nn.ReLU()]
    return layers


class TextChunkEncoder(nn.Module):
    """``input_ids (B, L)`` -> ``(B, latent_length, out_dim)``: same-padded convolutions, then one linear map per
    run of ``L // latent_length`` positions (the weights are shared across runs)."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        out_dim: int,
        max_length: int,
        latent_length: int,
        num_layers: int,
        kernel_size: int = 5,
        channels: int | None = None,
    ):
        super().__init__()
        self.chunk = text_chunk_size(max_length, latent_length, num_layers, kernel_size)
        self.latent_length = latent_length
        channels = channels or embed_dim
        self.embed = nn.Embedding(vocab_size, embed_dim)
        width = channels if num_layers else embed_dim
        self.layers = nn.Sequential(*_same_convs(channels, num_layers, kernel_size, in_channels=embed_dim))
        self.proj = nn.Linear(self.chunk * width, out_dim)

    def forward(self, input_ids: Tensor) -> Tensor:
        x = self.layers(self.embed(input_ids).transpose(1, 2)).transpose(1, 2)  # (B, L, C)
        return self.proj(x.reshape(len(input_ids), self.latent_length, -1))  # (B, T, out_dim)


class TextChunkDecoder(nn.Module):
    """``(B, latent_length, in_dim)`` -> token logits ``(B, max_length, vocab_size)``: each latent position is
    projected to its run of ``max_length // latent_length`` positions, then same-padded convolutions."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        in_dim: int,
        max_length: int,
        latent_length: int,
        num_layers: int,
        kernel_size: int = 5,
        channels: int | None = None,
    ):
        super().__init__()
        self.chunk = text_chunk_size(max_length, latent_length, num_layers, kernel_size)
        self.max_length = max_length
        self.channels = channels or embed_dim
        self.proj = nn.Linear(in_dim, self.chunk * self.channels)
        convs = _same_convs(self.channels, num_layers, kernel_size)
        # ReLU before each convolution and before the output layer (the projection is linear)
        layers: list[nn.Module] = []
        for conv, _ in zip(convs[0::2], convs[1::2]):
            layers += [nn.ReLU(), conv]
        layers += [nn.ReLU(), nn.Conv1d(self.channels, vocab_size, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        x = self.proj(z).reshape(len(z), self.max_length, self.channels).transpose(1, 2)  # (B, C, L)
        return self.layers(x).transpose(1, 2)  # (B, L, vocab)
