"""1-D convolutional text encoder and decoder (the MXQ-VAE reference's text tokenizer): word embeddings, then
``num_layers`` valid convolutions that shorten ``max_length`` tokens to ``latent_length`` positions; the decoder
mirrors them with transposed convolutions and predicts every token of the caption."""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn

__all__ = ["TextConvDecoder", "TextConvEncoder", "text_kernel_size"]


def text_kernel_size(max_length: int, latent_length: int, num_layers: int) -> int:
    """The kernel of each valid convolution taking ``max_length`` positions to ``latent_length`` in ``num_layers``."""
    shrink = max_length - latent_length
    if latent_length < 1 or num_layers < 1 or shrink < 0 or shrink % num_layers:
        raise ValueError(
            f"max_text_length={max_length}, text_latent_length={latent_length}, text_num_layers={num_layers}: "
            "max_text_length - text_latent_length must be a non-negative multiple of text_num_layers."
        )
    return shrink // num_layers + 1


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
