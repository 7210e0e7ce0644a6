"""MXQ-VAE stage 2 (Lee et al., arXiv:2204.07537): an autoregressive transformer over the joint code sequence z_hat
(the paper's Stage 2; the reference, `models/x_vae.py` `Transformer_Prior`, uses a GPT-2 decoder sampled with
top-k 10). The prior is trained by next-code cross-entropy on the stage-1 codes of training pairs.

It is transformers' GPT-2 with its own config (vocabulary = codebook + two start tokens, one per sequence order),
so the key/value cache and ``generate()`` (temperature, top-k, top-p, seeds, ``num_return_sequences``) are the
library's. :meth:`MXQVAEPriorForCausalLM.sample_codes` wraps ``generate`` and returns codes in the stage-1
model's canonical order.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import GPT2LMHeadModel

from ...limits import MAX_NUM_SAMPLES, check_int, check_seed, check_temperature
from ..input_checks import check_batch_sizes, check_code_ids
from ..modeling_utils import PushToHubWithCardMixin
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
    def _check_codes(self, codes: Tensor, name: str = "codes", max_length: int | None = None) -> None:
        s1 = self.config.stage1_config
        check_code_ids(
            codes, s1.codebook_size, max_length or s1.num_tokens, f"{name} (codebook_size={s1.codebook_size})"
        )
        check_batch_sizes(**{name: codes})

    def forward(self, input_ids: Tensor | None = None, *args, **kwargs):
        """GPT-2's forward, after checking that `input_ids` are prior tokens (codes or a start token)."""
        if input_ids is not None:
            check_code_ids(input_ids, self.config.vocab_size, self.config.n_positions, "input_ids")
        return super().forward(input_ids, *args, **kwargs)

    def caption_prefix(self, caption_ids: Tensor) -> Tensor:
        """Caption token ids `(B, L)` (the stage-1 tokenizer's, `L = max_text_length`) -> the prefix `(B, L + 1)` of a
        caption-conditioned prior's sequences: the caption start token and the words in the prior's vocabulary."""
        c = self.config
        if not c.caption_vocab_size:
            raise ValueError("caption_ids: this prior is not caption-conditioned (config.caption_vocab_size is 0).")
        length = c.stage1_config.max_text_length
        check_code_ids(caption_ids, c.caption_vocab_size, length, f"caption_ids (vocab {c.caption_vocab_size})")
        if caption_ids.shape[1] != length:
            shape = tuple(caption_ids.shape)
            raise ValueError(f"caption_ids: expected (batch, max_text_length={length}), got {shape}.")
        words = caption_ids.long() + c.caption_token_id + 1
        return torch.cat([torch.full_like(words[:, :1], c.caption_token_id), words], 1)

    def to_sequence(self, codes: Tensor, text_first: bool = False, caption_ids: Tensor | None = None) -> Tensor:
        """Canonical codes `(B, N)` -> prior input `(B, N + 1)` with the start token of the chosen order; with
        `caption_ids` `(B, L)` (caption-conditioned priors, image-first) the caption prefix before it."""
        self._check_codes(codes)
        start = self.config.text_first_token_id if text_first else self.config.image_first_token_id
        ordered = codes[:, self._text_first_order(codes.device)] if text_first else codes
        sequence = torch.cat([torch.full_like(codes[:, :1], start), ordered], dim=1)
        if caption_ids is None:
            return sequence
        if text_first:
            raise ValueError("caption_ids: a caption-conditioned sequence is image-first (text_first=False).")
        return torch.cat([self.caption_prefix(caption_ids.to(codes.device)), sequence], 1)

    def from_sequence(self, sequence: Tensor) -> Tensor:
        """Prior output `(B, N + 1)` (after a caption prefix, if any) -> canonical codes `(B, N)` (image positions,
        then text positions)."""
        n = self.config.stage1_config.num_tokens
        check_code_ids(sequence, self.config.vocab_size, n + 1 + self.config.caption_length, "sequence")
        if sequence.shape[1] == n + 1 + self.config.caption_length:
            sequence = sequence[:, self.config.caption_length :]
        if sequence.shape[1] != n + 1:
            raise ValueError(
                f"sequence: expected shape (batch, num_tokens + 1 = {n + 1}), got {tuple(sequence.shape)}."
            )
        text_first = sequence[:, 0] == self.config.text_first_token_id  # (B,)
        codes = sequence[:, 1:]
        reordered = codes[:, self._text_first_order(codes.device).argsort()]
        return torch.where(text_first[:, None], reordered, codes)

    @torch.no_grad()
    def code_log_probs(self, codes: Tensor, text_first: bool = False) -> Tensor:
        """Log-probability of each code of `codes` `(B, N)` (canonical order) given the codes before it in the
        chosen order (teacher forcing): `(B, N)` in canonical order. Summed over the text positions with
        `text_first=False` it is `log p(text codes | image codes)`."""
        sequence = self.to_sequence(codes, text_first)  # (B, N + 1)
        logits = self(sequence).logits[:, :-1].float()  # (B, N, V): the prediction of each code
        log_probs = logits.log_softmax(-1).gather(-1, sequence[:, 1:, None])[..., 0]  # (B, N) in sequence order
        if text_first:
            log_probs = log_probs[:, self._text_first_order(codes.device).argsort()]
        return log_probs

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
        guidance_scale: float | None = None,
        text_temperature: float | None = None,
        caption_ids: Tensor | None = None,
    ) -> Tensor:
        """Sample joint code sequences `(num_samples, N)` in canonical order.

        `caption_ids` `(B, L)` (caption-conditioned priors only, and required there; not in the paper): the
        captions (stage-1 tokenizer ids) that the codes are drawn for, text -> image; each row `num_samples` times.

        `prefix`: codes `(B, n)` already known, in the order chosen by `text_first` (e.g. a caption's `T` text-position
        codes with `text_first=True`); each row is completed `num_samples` times.

        `guidance_scale` (with a `prefix`; not in the paper): classifier-free-style guidance, transformers'
        `guidance_scale` / `negative_prompt_ids`. The unconditional branch is the other order's start token alone,
        whose first codes are the remaining modality's without the prefix (the prior learns both orders), so each
        step samples from `log p(x | prefix) + (g - 1) * (log p(x | prefix) - log p(x))`; 1 or None: no guidance.

        `text_temperature` (image-first order only; not in the paper): the temperature of the text-position codes,
        which are then sampled in a second `generate` call after the image positions (None: `temperature` for all,
        one call). A low one (0.2) keeps the caption's codes to the ones the prior finds most likely after the image:
        on the shipped Quad4 prior the share of sampled captions that parse rises from 0.77 to 0.99."""
        s1 = self.config.stage1_config
        start = self.config.text_first_token_id if text_first else self.config.image_first_token_id
        check_int(num_samples, "num_samples", 1, MAX_NUM_SAMPLES, "sample in several calls")
        check_temperature(temperature)
        if text_temperature is not None:
            check_temperature(text_temperature, "text_temperature")
            if text_first:
                raise ValueError("text_temperature: only with text_first=False (the text positions come last).")
        if generator_seed is not None:
            check_seed(generator_seed, "generator_seed")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"top_p={top_p!r}: expected None or a float in (0, 1].")
        guided = guidance_scale is not None and guidance_scale != 1
        if guidance_scale is not None and not (isinstance(guidance_scale, (int, float)) and 0 < guidance_scale <= 20):
            raise ValueError(f"guidance_scale={guidance_scale!r}: expected None or a number in (0, 20] (1 = none).")
        if guided and prefix is None and caption_ids is None:
            raise ValueError("guidance_scale: guidance needs a prefix (a caption's or an image's codes) to follow.")
        conditioned = bool(self.config.caption_vocab_size)
        if conditioned != (caption_ids is not None):
            raise ValueError(
                "caption_ids: required by a caption-conditioned prior (text -> image) and refused by the paper's "
                f"prior (config.caption_vocab_size={self.config.caption_vocab_size})."
            )
        if conditioned and (text_first or prefix is not None):
            raise ValueError("caption_ids: a caption-conditioned prior samples every code after the caption alone.")
        if conditioned and guided:
            raise ValueError(
                "guidance_scale: the caption-conditioned prior has no unconditional branch to guide against; "
                "leave guidance_scale=None."
            )
        if conditioned:
            if num_samples * len(caption_ids) > MAX_NUM_SAMPLES:
                raise ValueError(
                    f"num_samples={num_samples} times {len(caption_ids)} captions: more than MAX_NUM_SAMPLES="
                    f"{MAX_NUM_SAMPLES} sequences (mmquant.limits); sample in several calls."
                )
            caption = self.caption_prefix(caption_ids.to(self.device))
            input_ids = torch.cat([caption, torch.full_like(caption[:, :1], start)], 1)
        elif prefix is None:
            input_ids = torch.full((1, 1), start, dtype=torch.long, device=self.device)
        else:
            self._check_codes(prefix, "prefix", max_length=s1.num_tokens - 1)  # at least one code left to sample
            input_ids = torch.cat([torch.full_like(prefix[:, :1], start), prefix.long()], 1).to(self.device)
            if num_samples * len(prefix) > MAX_NUM_SAMPLES:
                raise ValueError(
                    f"num_samples={num_samples} times {len(prefix)} prefix rows: more than MAX_NUM_SAMPLES="
                    f"{MAX_NUM_SAMPLES} sequences (mmquant.limits); sample in several calls."
                )
        if generator_seed is not None:
            torch.manual_seed(generator_seed)
        guidance = {}
        if guided:  # the unconditional branch: the other order's start token, one row per returned sequence
            other = self.config.image_first_token_id if text_first else self.config.text_first_token_id
            negative = torch.full((len(input_ids) * num_samples, 1), other, dtype=torch.long, device=self.device)
            guidance = dict(
                guidance_scale=float(guidance_scale),
                negative_prompt_ids=negative,
                negative_prompt_attention_mask=torch.ones_like(negative),
            )
        settings = dict(top_k=top_k, top_p=top_p, use_cache=use_cache, guidance=guidance)
        base = self.config.caption_length + 1  # tokens before the first code
        if text_temperature is None or text_temperature == temperature:
            sequence = self._generate(input_ids, base + s1.num_tokens, temperature, num_samples, **settings)
            return self.from_sequence(sequence)
        # image positions at `temperature`, then the text positions at `text_temperature`
        if input_ids.shape[1] < base + s1.num_image_tokens:
            given = input_ids.shape[1]
            input_ids = self._generate(input_ids, base + s1.num_image_tokens, temperature, num_samples, **settings)
            num_samples = 1
            if guided:  # the unconditional branch goes on from the codes drawn so far, as in one call
                negative = torch.cat([guidance["negative_prompt_ids"], input_ids[:, given:]], 1)
                settings["guidance"] = guidance | dict(
                    negative_prompt_ids=negative, negative_prompt_attention_mask=torch.ones_like(negative)
                )
        sequence = self._generate(input_ids, base + s1.num_tokens, text_temperature, num_samples, **settings)
        return self.from_sequence(sequence)

    def _generate(self, input_ids, length, temperature, num_samples, top_k, top_p, use_cache, guidance) -> Tensor:
        """`generate` from `input_ids` `(B, n)` to sequences of `length` (start token included),
        `num_samples` per row."""
        return self.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=length - input_ids.shape[1],
            min_new_tokens=length - input_ids.shape[1],
            do_sample=True,
            temperature=temperature,
            top_k=top_k if top_k else None,
            top_p=top_p,
            num_return_sequences=num_samples,
            use_cache=use_cache,
            bad_words_ids=[[t] for t in range(self.config.image_first_token_id, self.config.vocab_size)],  # codes only
            pad_token_id=self.config.image_first_token_id,
            **guidance,
        )
