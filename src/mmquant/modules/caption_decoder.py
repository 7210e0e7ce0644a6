"""A transformer image captioner (the LAViTeR ITM, paper eqs. 12-14, after CATR): a transformer encoder over the
flattened region features, and a GPT-2 decoder whose layers cross-attend to the encoded regions; transformers'
``generate()`` decodes with its key/value cache."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import GPT2Config, GPT2LMHeadModel

__all__ = ["TransformerCaptioner"]


class TransformerCaptioner(nn.Module):
    """``regions (B, R, D)`` -> caption logits (teacher forcing) or token ids (``generate``)."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        dim: int,
        num_layers: int,
        num_heads: int,
        num_regions: int,
        pad_token_id: int,
        bos_token_id: int,
        eos_token_id: int,
    ):
        super().__init__()
        self.region_position = nn.Parameter(torch.zeros(1, num_regions, dim))
        layer = nn.TransformerEncoderLayer(dim, num_heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        decoder_config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=max_length,
            n_embd=dim,
            n_layer=num_layers,
            n_head=num_heads,
            add_cross_attention=True,
            tie_word_embeddings=False,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
        )
        self.decoder = GPT2LMHeadModel(decoder_config)
        self.max_length = max_length
        self.pad_token_id, self.bos_token_id, self.eos_token_id = pad_token_id, bos_token_id, eos_token_id

    def encode(self, regions: Tensor) -> Tensor:
        return self.encoder(regions + self.region_position).contiguous()  # (B, R, D): eq. 12's keys and values

    def forward(self, regions: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Next-word logits ``(B, T - 1, vocab)`` for ``input_ids[:, 1:T]`` given the words before (eq. 13), with
        ``T`` the longest caption of the batch (trailing padding is not decoded)."""
        memory = self.encode(regions)
        longest = int(attention_mask.sum(1).max())
        prefix, prefix_mask = input_ids[:, : longest - 1], attention_mask[:, : longest - 1]
        return self.decoder(input_ids=prefix, attention_mask=prefix_mask, encoder_hidden_states=memory).logits

    def loss(self, logits: Tensor, input_ids: Tensor) -> Tensor:
        """Cross-entropy of the caption's next words, padding ignored (eq. 14)."""
        target = input_ids[:, 1 : 1 + logits.shape[1]]
        return F.cross_entropy(logits.float().flatten(0, 1), target.flatten(), ignore_index=self.pad_token_id)

    @torch.no_grad()
    def generate(self, regions: Tensor, use_cache: bool = True, **generate_kwargs) -> Tensor:
        """Captions ``(B, max_length)`` from ``[BOS]``, ended by ``[EOS]`` and right-padded with ``[PAD]``; greedy
        unless ``do_sample=True`` (with ``temperature``, ``top_k``, ``top_p``)."""
        start = torch.full((len(regions), 1), self.bos_token_id, dtype=torch.long, device=regions.device)
        ids = self.decoder.generate(
            start,
            attention_mask=torch.ones_like(start),
            encoder_hidden_states=self.encode(regions),
            max_length=self.max_length,
            use_cache=use_cache,
            pad_token_id=self.pad_token_id,
            eos_token_id=self.eos_token_id,
            **generate_kwargs,
        )
        return F.pad(ids, (0, self.max_length - ids.shape[1]), value=self.pad_token_id)

    def freeze_first_layers(self, n: int) -> None:
        """Stop the gradients of the first ``n`` layers of the encoder and of the decoder (the joint phase)."""
        for layer in [*self.encoder.layers[:n], *self.decoder.transformer.h[:n]]:
            layer.requires_grad_(False)
