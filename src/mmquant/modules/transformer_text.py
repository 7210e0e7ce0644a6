"""A transformer text encoder giving word features and a sentence feature (the LAViTeR VTA text encoder, paper
eqs. 1-3: word embeddings plus positions, multi-head self-attention, feed-forward, residuals and layer norms)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["TransformerTextEncoder"]


class TransformerTextEncoder(nn.Module):
    """``input_ids (B, L)`` (or soft word distributions ``(B, L, vocab)``) -> words ``(B, L, D)``, sentence ``(B, D)``.

    The sentence feature is the mean of the non-padding word features, projected; padding takes no part in the
    attention. Soft inputs (a captioner's word distributions) are embedded as the expectation of the word
    embeddings.
    """

    def __init__(self, vocab_size: int, max_length: int, dim: int, num_layers: int, num_heads: int, ffn: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.position = nn.Parameter(torch.zeros(1, max_length, dim))
        layer = nn.TransformerEncoderLayer(dim, num_heads, ffn, dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.word_proj = nn.Linear(dim, dim)
        self.sentence_proj = nn.Linear(dim, dim)

    def forward(self, input_ids: Tensor | None, attention_mask: Tensor, word_probs: Tensor | None = None):
        if word_probs is not None:
            x = word_probs @ self.embed.weight  # (B, L, D): expected embedding
        else:
            x = self.embed(input_ids)  # (B, L, D)
        x = self.layers(x + self.position[:, : x.shape[1]], src_key_padding_mask=attention_mask == 0)  # eqs. 1-3
        x = self.norm(x)
        mask = attention_mask.to(x.dtype)[..., None]  # (B, L, 1)
        sentence = (x * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, D)
        return self.word_proj(x), self.sentence_proj(sentence)
