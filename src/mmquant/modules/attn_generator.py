"""An AttnGAN-style cascade of text-conditioned image generators (Xu et al., "AttnGAN: Fine-Grained Text to Image
Generation with Attentional Generative Adversarial Networks", CVPR 2018), the LAViTeR TIM generator: conditioning
augmentation of the sentence feature (StackGAN++), a first stage from noise and condition, then stages that attend
from each image position to the word features and double the resolution; every stage has an RGB head."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .gru_text import bidirectional_read
from .positions import sincos_positions_2d

__all__ = ["AttnGANGenerator", "ConditioningAugmentation", "WordAttention"]


def _glu_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch * 2, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch * 2), nn.GLU(1))


def _up(in_ch: int, out_ch: int) -> nn.Sequential:
    """Nearest upsampling by 2, then a gated 3x3 convolution."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _glu_conv(in_ch, out_ch))


class _ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.block = nn.Sequential(_glu_conv(ch, ch), nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ConditioningAugmentation(nn.Module):
    """Sentence ``(B, S)`` -> condition ``c = mu + sigma * eps`` ``(B, c_dim)``, with ``mu`` and ``log sigma^2``
    (their KL to N(0, I) is a generator loss term)."""

    def __init__(self, sentence_dim: int, condition_dim: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(sentence_dim, condition_dim * 4), nn.GLU(1))

    def forward(self, sentence: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.fc(sentence).chunk(2, dim=1)  # (B, c), (B, c)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * (0.5 * logvar).exp(), mu, logvar


class WordAttention(nn.Module):
    """Each image position attends over the (non-padding) word features: ``(B, C, H, W)`` -> context, same shape.

    With ``size``, each position's query also carries a learned embedding of its place on the ``size x size`` grid
    (initialised to 2-D sine-cosine positions, ``channels`` a multiple of 4), so that a position can look for the
    words that name its place; AttnGAN's queries are the image features alone."""

    def __init__(self, channels: int, word_dim: int, size: int | None = None):
        super().__init__()
        self.proj = nn.Linear(word_dim, channels)
        if size is not None:
            self.position = nn.Parameter(sincos_positions_2d(size, size, channels)[None])  # (1, HW, C)

    def forward(self, h: Tensor, words: Tensor, word_mask: Tensor) -> Tensor:
        w = self.proj(words)  # (B, T, C)
        query = h.flatten(2).transpose(1, 2)  # (B, HW, C)
        if hasattr(self, "position"):
            query = query + self.position
        scores = (query @ w.transpose(1, 2)).masked_fill(word_mask[:, None] == 0, float("-inf"))  # (B, HW, T)
        attn = scores.softmax(-1)
        return (attn @ w).transpose(1, 2).reshape(h.shape)  # (B, C, H, W)


class AttnGANGenerator(nn.Module):
    """``noise (B, Z)``, ``sentence (B, S)``, ``words (B, T, S)`` -> one image per stage (``sizes``, smallest
    first, values in [-1, 1]), and the conditioning's ``mu``, ``logvar``. ``attention_positions``: the word
    attention's queries carry their place (:class:`WordAttention`). ``first_stage_attention``: the first stage's
    4x4 features also attend to the words (AttnGAN's first stage reads the sentence alone), so a layout that binds
    words to places is set before the first upsampling. ``word_context``: the (frozen) word features are re-read by one
    trainable self-attention layer of the generator's own before any attention, so a place word can take in the digit
    and colour words it is bound to. ``word_rnn``: a bidirectional GRU of the generator's own reads the word features
    in order; its final states join the noise and the condition that the first stage's layout is drawn from, and its
    outputs (each word read with the words around it) are what the word attention reads, so a digit word carries the
    place it is bound to (the word attention, whose queries are places, is slow to learn that binding from words
    trained to match regions by content)."""

    def __init__(
        self,
        sentence_dim: int,
        noise_dim: int,
        condition_dim: int,
        channels: int,
        sizes: Sequence[int],
        out_channels: int = 3,
        attention_positions: bool = False,
        first_stage_attention: bool = False,
        word_context: bool = False,
        word_rnn: bool = False,
    ):
        super().__init__()
        ngf = channels
        words_code = 0
        if word_rnn:
            if sentence_dim % 2:
                raise ValueError(
                    f"sentence_dim={sentence_dim}: word_rnn splits it between two directions; use an even size."
                )
            self.word_rnn = nn.GRU(sentence_dim, sentence_dim // 2, batch_first=True, bidirectional=True)
            words_code = sentence_dim
        if word_context:
            self.word_context = nn.TransformerEncoderLayer(
                sentence_dim, 4, 2 * sentence_dim, dropout=0.0, batch_first=True, norm_first=True
            )
        self.ca = ConditioningAugmentation(sentence_dim, condition_dim)
        n_up = int(math.log2(sizes[0] // 4))
        width = ngf * 2**n_up  # halved by each upsampling, down to ngf at the first stage's size
        self.fc = nn.Sequential(
            nn.Linear(noise_dim + condition_dim + words_code, width * 2 * 16, bias=False),
            nn.BatchNorm1d(width * 2 * 16),
            nn.GLU(1),
        )
        if first_stage_attention:  # the 4x4 layout, before any upsampling, also reads the words
            self.first_attention = WordAttention(width, sentence_dim, 4 if attention_positions else None)
        self.first = nn.Sequential(*[_up(width // 2**i, width // 2 ** (i + 1)) for i in range(n_up)])
        self.attention = nn.ModuleList(
            WordAttention(ngf, sentence_dim, size if attention_positions else None) for size in sizes[:-1]
        )  # stage i + 1 attends at stage i's size
        self.next = nn.ModuleList(
            nn.Sequential(_ResBlock(2 * ngf), _ResBlock(2 * ngf), _up(2 * ngf, ngf)) for _ in sizes[1:]
        )
        self.to_image = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ngf, out_channels, 3, padding=1), nn.Tanh()) for _ in sizes
        )
        self._width = width

    def forward(
        self,
        noise: Tensor,
        sentence: Tensor,
        words: Tensor,
        word_mask: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        c, mu, logvar = self.ca(sentence, generator)  # (B, c_dim)
        if hasattr(self, "word_context"):
            words = self.word_context(words, src_key_padding_mask=word_mask == 0)  # (B, T, S)
        code = [noise, c]  # (B, Z), (B, c_dim)
        if hasattr(self, "word_rnn"):  # the words read in order: (B, T, S) at each word, (B, S) the whole caption
            words, caption = bidirectional_read(self.word_rnn, words, word_mask)
            code.append(caption)
        h = self.fc(torch.cat(code, dim=1)).view(len(noise), self._width, 4, 4)  # (B, W, 4, 4)
        if hasattr(self, "first_attention"):
            h = h + self.first_attention(h, words, word_mask)  # (B, W, 4, 4)
        h = self.first(h)  # (B, ngf, s0, s0)
        images = [self.to_image[0](h)]
        for attend, stage, head in zip(self.attention, self.next, self.to_image[1:]):
            context = attend(h, words, word_mask)  # (B, ngf, s, s): word attention
            h = stage(torch.cat([h, context], dim=1))  # (B, ngf, 2s, 2s)
            images.append(head(h))
        return images, mu, logvar
