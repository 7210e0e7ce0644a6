"""Conditional image discriminators for text-to-image GANs (StackGAN++ / AttnGAN): each scores an image alone
(unconditional) and together with a sentence feature (conditional); one per generator stage. Optionally the
conditional branch also reads the words place by place (:class:`PlaceWords`), so that it can check which object sits
where, not only which objects the sentence names. With ``label_classes``, each also classifies what is at each place
of a 2x2 grid (an AC-GAN auxiliary classifier, Odena et al. 2017)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attn_generator import WordAttention
from .gru_text import bidirectional_final_states

__all__ = ["MultiScaleDiscriminator", "PlaceWords", "StageDiscriminator"]


class PlaceWords(nn.Module):
    """What a caption says about each place of a ``size x size`` grid: ``words (B, T, D)``, ``word_mask (B, T)``
    -> ``(B, channels, size, size)``. The words are re-read by one trainable self-attention layer (so a place word can
    take in the digit and colour words it is bound to), then each place attends over them with a learned query of
    its own (2-D sine-cosine at the start), independent of the image."""

    def __init__(self, word_dim: int, channels: int, size: int, num_heads: int = 4):
        super().__init__()
        self.context = nn.TransformerEncoderLayer(
            word_dim, num_heads, 2 * word_dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.attention = WordAttention(channels, word_dim, size)
        self.size = size

    def forward(self, words: Tensor, word_mask: Tensor) -> Tensor:
        words = self.context(words, src_key_padding_mask=word_mask == 0)  # (B, T, D)
        places = words.new_zeros(len(words), self.attention.proj.out_features, self.size, self.size)
        return self.attention(places, words, word_mask)  # (B, channels, size, size): the place queries alone


class StageDiscriminator(nn.Module):
    """``images (B, C, S, S)``, ``sentence (B, D)`` -> unconditional and conditional logits, each ``(B,)``. With
    ``place_words``, the conditional branch also takes ``words (B, T, D)`` and ``word_mask (B, T)`` read place by
    place on its 4x4 grid (:class:`PlaceWords`); with ``word_rnn``, the words read in order by a bidirectional GRU of
    its own (its final states, which can tell which object is where where the sentence feature barely does). With
    ``label_classes`` (class counts), :meth:`place_label_logits` classifies each quadrant of the image once per
    entry (AC-GAN's auxiliary classifier, on the 4x4 features pooled to 2x2)."""

    def __init__(
        self,
        in_channels: int,
        size: int,
        channels: int,
        condition_dim: int,
        place_words: bool = False,
        word_rnn: bool = False,
        label_classes: Sequence[int] = (),
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = channels
        for _ in range(int(math.log2(size // 4)) - 1):  # down to 4x4
            layers += [nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2)]
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.unconditional = nn.Conv2d(ch, 1, 4)
        if place_words:
            self.place_words = PlaceWords(condition_dim, ch, 4)
        if word_rnn:
            self.word_rnn = nn.GRU(condition_dim, condition_dim // 2, batch_first=True, bidirectional=True)
        read = (ch if place_words else 0) + (2 * (condition_dim // 2) if word_rnn else 0)
        joint = nn.Conv2d(ch + read + condition_dim, ch, 3, padding=1)
        self.joint = nn.Sequential(joint, nn.BatchNorm2d(ch), nn.LeakyReLU(0.2))
        self.conditional = nn.Conv2d(ch, 1, 4)
        self.label_classes = tuple(label_classes)
        if self.label_classes:
            self.place_labels = nn.Conv2d(ch, sum(self.label_classes), 1)

    def place_label_logits(self, images: Tensor) -> list[Tensor]:
        """``images (B, C, S, S)`` -> one ``(B, classes, 2, 2)`` logit map per entry of ``label_classes``: what is
        in each quadrant."""
        h = self.features(images)  # (B, ch, 4, 4)
        logits = F.avg_pool2d(self.place_labels(h), 2)  # (B, sum(classes), 2, 2)
        return list(logits.split(self.label_classes, dim=1))

    def read_places(self, words: Tensor, word_mask: Tensor) -> Tensor:
        """What the words say about each place of the 4x4 grid, ``(B, ch', 4, 4)`` (`place_words`, then the
        `word_rnn` reading broadcast to every place): it depends on the caption alone, so a training step reads it
        once for the real, generated and (rolled) mismatched images."""
        parts = []
        if hasattr(self, "place_words"):
            parts.append(self.place_words(words, word_mask))  # (B, ch, 4, 4)
        if hasattr(self, "word_rnn"):
            code = bidirectional_final_states(self.word_rnn, words, word_mask)  # (B, D)
            parts.append(code[:, :, None, None].expand(-1, -1, 4, 4))
        return torch.cat(parts, dim=1)

    @property
    def reads_words(self) -> bool:
        return hasattr(self, "place_words") or hasattr(self, "word_rnn")

    def forward(
        self,
        images: Tensor,
        sentence: Tensor,
        words: Tensor | None = None,
        word_mask: Tensor | None = None,
        places: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        h = self.features(images)  # (B, ch, 4, 4)
        s = sentence[:, :, None, None].expand(-1, -1, *h.shape[2:])  # (B, D, 4, 4)
        parts = [h, s]
        if self.reads_words:
            if places is None:
                if words is None or word_mask is None:
                    raise ValueError(
                        "words, word_mask: this discriminator reads the words place by place; pass both (or places)."
                    )
                places = self.read_places(words, word_mask)
            parts.append(places)  # (B, ch', 4, 4)
        joint = self.joint(torch.cat(parts, dim=1))
        return self.unconditional(h).flatten(), self.conditional(joint).flatten()


class MultiScaleDiscriminator(nn.ModuleList):
    """One :class:`StageDiscriminator` per image size; called with the list of stage images."""

    def __init__(
        self,
        in_channels: int,
        sizes: Sequence[int],
        channels: int,
        condition_dim: int,
        place_words: bool = False,
        word_rnn: bool = False,
        label_classes: Sequence[int] = (),
    ):
        super().__init__(
            StageDiscriminator(in_channels, s, channels, condition_dim, place_words, word_rnn, label_classes)
            for s in sizes
        )

    def forward(
        self,
        images: Sequence[Tensor],
        sentence: Tensor,
        words: Tensor | None = None,
        word_mask: Tensor | None = None,
        places: Sequence[Tensor | None] | None = None,
    ) -> list[tuple[Tensor, Tensor]]:
        if len(images) != len(self):
            raise ValueError(f"images: expected {len(self)} stage images, got {len(images)}.")
        places = places or [None] * len(self)
        return [d(x, sentence, words, word_mask, p) for d, x, p in zip(self, images, places)]

    def place_label_loss(self, images: Sequence[Tensor], labels: Tensor) -> Tensor:
        """The auxiliary classification's cross-entropy of the stage ``images`` against ``labels (B, 2, 2, A)``
        (one class index per quadrant and label), averaged over the labels and summed over the stages."""
        total = 0.0
        for d, x in zip(self, images):
            logits = d.place_label_logits(x)
            total = total + sum(F.cross_entropy(z.float(), labels[..., i]) for i, z in enumerate(logits)) / len(logits)
        return total

    def read_places(self, words: Tensor | None, word_mask: Tensor | None) -> list[Tensor | None]:
        """Each stage's :meth:`StageDiscriminator.read_places` (``None`` for a stage that does not read words)."""
        if words is None:
            return [None] * len(self)
        return [d.read_places(words, word_mask) if d.reads_words else None for d in self]
