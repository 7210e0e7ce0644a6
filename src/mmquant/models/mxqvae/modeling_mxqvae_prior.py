"""MXQ-VAE stage 2: an autoregressive transformer over the joint code sequence z_hat (the Stage 2 figure; the
reference uses a GPT-2 decoder sampled with top-k 10).

It is transformers' GPT-2 with its own config (vocabulary = codebook + two start tokens, one per sequence order),
so the key/value cache and ``generate()`` (temperature, top-k, top-p, seeds, ``num_return_sequences``) are the
library's. :meth:`MXQVAEPriorForCausalLM.sample_codes` wraps ``generate`` and returns codes in the stage-1
model's canonical order.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import GPT2LMHeadModel

from ...hub.mixin import PushToHubWithCardMixin
from .configuration_mxqvae import MXQVAEPriorConfig

__all__ = ["MXQVAEPriorForCausalLM"]


class MXQVAEPriorForCausalLM(PushToHubWithCardMixin, GPT2LMHeadModel):
    """GPT-2 over `[start] + codes`; `start` tells the order (`config.image_first_token_id`: image positions then
    text positions; `config.text_first_token_id`: text positions first)."""

    config_class = MXQVAEPriorConfig

    def _text_first_order(self, device) -> Tensor:
        """Canonical positions in text-first order: text positions, then image positions."""
        s1 = self.config.stage1_config
        n_img, n = s1.num_image_tokens, s1.num_tokens
        return torch.cat([torch.arange(n_img, n, device=device), torch.arange(n_img, device=device)])

    # ------------------------------------------------------------------ sequences
    def _check_codes(self, codes: Tensor, name: str = "codes") -> None:
        s1 = self.config.stage1_config
        if codes.ndim != 2 or codes.shape[1] > s1.num_tokens:
            raise ValueError(f"{name}: expected shape (batch, <= {s1.num_tokens}), got {tuple(codes.shape)}.")
        if codes.numel() and (codes.min() < 0 or codes.max() >= s1.codebook_size):
            raise ValueError(
                f"{name}: codes must lie in [0, codebook_size={s1.codebook_size}), got "
                f"[{int(codes.min())}, {int(codes.max())}]."
            )

    def to_sequence(self, codes: Tensor, text_first: bool = False) -> Tensor:
        """Canonical codes `(B, N)` -> prior input `(B, N + 1)` with the start token of the chosen order."""
        self._check_codes(codes)
        start = self.config.text_first_token_id if text_first else self.config.image_first_token_id
        ordered = codes[:, self._text_first_order(codes.device)] if text_first else codes
        return torch.cat([torch.full_like(codes[:, :1], start), ordered], dim=1)

    def from_sequence(self, sequence: Tensor) -> Tensor:
        """Prior output `(B, N + 1)` -> canonical codes `(B, N)` (image positions, then text positions)."""
        text_first = sequence[:, 0] == self.config.text_first_token_id  # (B,)
        codes = sequence[:, 1:]
        reordered = codes[:, self._text_first_order(codes.device).argsort()]
        return torch.where(text_first[:, None], reordered, codes)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample_codes(
        self,
        num_samples: int = 1,
        prefix: Tensor | None = None,
        text_first: bool = False,
        temperature: float = 1.0,
        top_k: int | None = 10,
        top_p: float | None = None,
        use_cache: bool = True,
        generator_seed: int | None = None,
    ) -> Tensor:
        """Sample joint code sequences `(num_samples, N)` in canonical order.

        `prefix`: codes `(B, n)` already known, in the order chosen by `text_first` (e.g. a caption's `T` text-position
        codes with `text_first=True`); each row is completed `num_samples` times."""
        s1 = self.config.stage1_config
        start = self.config.text_first_token_id if text_first else self.config.image_first_token_id
        if prefix is None:
            input_ids = torch.full((1, 1), start, dtype=torch.long, device=self.device)
        else:
            self._check_codes(prefix, "prefix")
            input_ids = torch.cat([torch.full_like(prefix[:, :1], start), prefix.long()], 1).to(self.device)
        if generator_seed is not None:
            torch.manual_seed(generator_seed)
        if temperature <= 0:
            raise ValueError(f"temperature={temperature}: expected > 0.")
        sequence = self.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=s1.num_tokens + 1 - input_ids.shape[1],
            min_new_tokens=s1.num_tokens + 1 - input_ids.shape[1],
            do_sample=True,
            temperature=temperature,
            top_k=top_k if top_k else None,
            top_p=top_p,
            num_return_sequences=num_samples,
            use_cache=use_cache,
            bad_words_ids=[[self.config.image_first_token_id], [self.config.text_first_token_id]],
            pad_token_id=self.config.image_first_token_id,
        )
        return self.from_sequence(sequence)
