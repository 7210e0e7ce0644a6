"""Recurrent caption encoder and decoder (the text side of VSE++ and of jWAE's reference code, github
visinf/jwae ``model.py``: a GRU over word embeddings whose last state is the caption's embedding, and a GRU
language model conditioned on an embedding that reconstructs the caption word by word)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["GRUTextDecoder", "GRUTextEncoder", "bidirectional_final_states", "bidirectional_read"]


def _bidirectional(gru: nn.GRU, features: Tensor, mask: Tensor):
    """``gru`` over the unpadded ``features``: its packed outputs, and its forward and backward final states side by
    side ``(B, 2H)``."""
    lengths = mask.sum(1).clamp(min=1).cpu()
    outputs, last = gru(pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False))
    return outputs, torch.cat([last[0], last[1]], dim=-1)


def bidirectional_final_states(gru: nn.GRU, features: Tensor, mask: Tensor) -> Tensor:
    """A one-layer bidirectional ``gru`` over the unpadded ``features (B, L, D)`` (``mask (B, L)``: the real ones
    first, then padding) -> its forward and backward final states side by side, ``(B, 2H)``."""
    return _bidirectional(gru, features, mask)[1]


def bidirectional_read(gru: nn.GRU, features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`bidirectional_final_states`, and the GRU's outputs at every position ``(B, L, 2H)`` (zeros at
    padding) before them."""
    outputs, final = _bidirectional(gru, features, mask)
    outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=features.shape[1])  # (B, L, 2H)
    return outputs, final


class GRUTextEncoder(nn.Module):
    """``input_ids (B, L)`` + ``lengths (B,)`` -> ``(B, out_dim)``: the top GRU layer's state at the last real
    token, projected."""

    def __init__(
        self, vocab_size: int, embed_dim: int, hidden_size: int, out_dim: int, num_layers: int = 1, pad_id: int = 0
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = nn.GRU(embed_dim, hidden_size, num_layers, batch_first=True)
        self.proj = nn.Linear(hidden_size, out_dim)

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        words = self.embed(input_ids)  # (B, L, E)
        packed = pack_padded_sequence(words, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)  # (layers, B, H), in the input's order
        return self.proj(state[-1])  # (B, out_dim)


class GRUTextDecoder(nn.Module):
    """A GRU language model conditioned on a vector ``c``: the initial state is ``tanh(W c)`` and ``c`` is
    concatenated to every input word, as in the jWAE reference's ``TextDecoder``.

    ``forward(input_ids (B, L), condition (B, C))`` -> next-token logits ``(B, L, vocab_size)`` (teacher forcing);
    ``generate(condition, ...)`` decodes greedily, carrying the recurrent state as its cache.
    """

    def __init__(
        self, vocab_size: int, embed_dim: int, hidden_size: int, cond_dim: int, num_layers: int = 1, pad_id: int = 0
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.init_state = nn.Linear(cond_dim, hidden_size * num_layers)
        self.rnn = nn.GRU(embed_dim + cond_dim, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.num_layers, self.hidden_size = num_layers, hidden_size

    def _state(self, condition: Tensor) -> Tensor:
        state = torch.tanh(self.init_state(condition))  # (B, layers * H)
        return state.view(len(condition), self.num_layers, self.hidden_size).transpose(0, 1).contiguous()

    def _step(self, input_ids: Tensor, condition: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        words = self.embed(input_ids)  # (B, L, E)
        inputs = torch.cat([words, condition[:, None].expand(-1, words.shape[1], -1)], dim=-1)  # (B, L, E + C)
        out, state = self.rnn(inputs, state)  # (B, L, H)
        return self.head(out), state  # (B, L, V)

    def forward(self, input_ids: Tensor, condition: Tensor) -> Tensor:
        return self._step(input_ids, condition, self._state(condition))[0]

    @torch.no_grad()
    def generate(self, condition: Tensor, bos_id: int, eos_id: int, pad_id: int, max_length: int) -> Tensor:
        """Greedy decoding ``(B, max_length)``: ``[BOS]`` first, ``pad_id`` after each caption's ``[EOS]`` (or after a
        predicted padding token)."""
        ids = torch.full((len(condition), max_length), pad_id, dtype=torch.long, device=condition.device)
        ids[:, 0] = bos_id
        state, done = self._state(condition), torch.zeros(len(condition), dtype=torch.bool, device=ids.device)
        for t in range(1, max_length):
            logits, state = self._step(ids[:, t - 1 : t], condition, state)  # (B, 1, V)
            token = logits[:, -1].argmax(-1).masked_fill(done, pad_id)
            ids[:, t] = token
            done |= (token == eos_id) | (token == pad_id)
            if done.all():
                break
        return ids
