"""A transformer text encoder giving word features and a sentence feature (the LAViTeR VTA text encoder, paper
eqs. 1-3: word embeddings plus positions, multi-head self-attention, feed-forward, residuals and layer norms)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .gru_text import bidirectional_final_states

__all__ = ["SENTENCE_POOLINGS", "TransformerTextEncoder"]

SENTENCE_POOLINGS = ("mean", "gru")


class TransformerTextEncoder(nn.Module):
    """``input_ids (B, L)`` (or soft word distributions ``(B, L, vocab)``) -> words ``(B, L, D)``, sentence ``(B, D)``.

    The sentence feature pools the non-padding word features, then is projected: ``pooling="mean"`` averages them (the
    paper's encoder), ``pooling="gru"`` reads them in order with a bidirectional GRU and takes its two final states
    (a reading that can keep which digit and colour go with which place, which a mean of the words need not).
    Padding takes no part in the attention or the pooling. Soft inputs (a captioner's word distributions) are
    embedded as the expectation of the word embeddings.
    """

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        dim: int,
        num_layers: int,
        num_heads: int,
        ffn: int,
        pooling: str = "mean",
    ):
        super().__init__()
        if pooling not in SENTENCE_POOLINGS:
            raise ValueError(f"pooling={pooling!r}: expected one of {SENTENCE_POOLINGS}.")
        if pooling == "gru" and dim % 2:
            raise ValueError(f"dim={dim}: pooling='gru' splits it between two directions; use an even size.")
        self.embed = nn.Embedding(vocab_size, dim)
        self.position = nn.Parameter(torch.zeros(1, max_length, dim))
        layer = nn.TransformerEncoderLayer(dim, num_heads, ffn, dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.word_proj = nn.Linear(dim, dim)
        self.sentence_proj = nn.Linear(dim, dim)
        self.pool_gru = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True) if pooling == "gru" else None

    def pool(self, x: Tensor, attention_mask: Tensor) -> Tensor:
        """Word features ``(B, L, D)`` and their mask ``(B, L)`` -> one feature per sentence ``(B, D)``."""
        if self.pool_gru is None:
            mask = attention_mask.to(x.dtype)[..., None]  # (B, L, 1)
            return (x * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, D)
        return bidirectional_final_states(self.pool_gru, x, attention_mask)  # (B, D)

    def forward(self, input_ids: Tensor | None, attention_mask: Tensor, word_probs: Tensor | None = None):
        if word_probs is not None:
            x = word_probs @ self.embed.weight  # (B, L, D): expected embedding
        else:
            x = self.embed(input_ids)  # (B, L, D)
        x = self.layers(x + self.position[:, : x.shape[1]], src_key_padding_mask=attention_mask == 0)  # eqs. 1-3
        x = self.norm(x)
        return self.word_proj(x), self.sentence_proj(self.pool(x, attention_mask))
