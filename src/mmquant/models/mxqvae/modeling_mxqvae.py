"""MXQ-VAE stage 1: the multimodal cross quantizer (Lee, Park, Lee, Choi, "Unconditional Image-Text Pair Generation
with Multimodal Cross Quantizer", BMVC 2022, arXiv:2204.07537; reference code github.com/ttumyche/MXQ-VAE,
`models/x_vae.py` `X_BERT_VQVAE`).

The paper gives the method as its Stage 1 and Stage 2 figures and text, without numbered equations in the version
followed here; the comments below cite those parts ("Stage 1", z_hat, the masks "IM" and "TC" and the "Only
Sharing C" ablation of Table 1) and the reference's objective, written here as

    L = image_loss_weight * ||x - x_hat||^2 + text_loss_weight * CE(t, t_hat)
        + ||sg[z] - e||^2 + beta * ||z - sg[e]||^2                                     (x_vae.py, `total_loss`)

with x the clean image, t the clean caption, z the fused tokens and e their nearest codes (the last two terms are
the quantizer's loss, `mmquant.quantizers`).

masked image (IM) -> CNN encoder -> h*w image tokens --+
                                                       +-> [concat + positions] -> fusion transformer -> codebook
corrupted caption (TC) -> 1-D CNN encoder -> T tokens -+        -> z_hat (h*w + T codes, image positions then text)
z_hat -> linear over the token axis -> h*w image tokens -> CNN decoder -> image         (MSE to the clean image)
      -> MLP over the token axis    -> T text tokens    -> 1-D CNN decoder -> caption  (CE to the clean caption)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ...modules.positions import sincos_positions_1d, sincos_positions_2d
from ...modules.residual_cnn import ResidualCNNDecoder, ResidualCNNEncoder
from ...modules.text_cnn import TextChunkDecoder, TextChunkEncoder, TextConvDecoder, TextConvEncoder
from ...quantizers import build_quantizer
from ..input_checks import (
    check_attention_mask,
    check_batch_sizes,
    check_pixel_values,
    check_required,
    check_token_ids,
    value_bounds,
)
from ..modeling_utils import PushToHubWithCardMixin
from .card_mxqvae import MXQVAE_CARD
from .configuration_mxqvae import MXQVAEConfig

__all__ = ["MXQVAEModel", "MXQVAEOutput", "MXQVAEPreTrainedModel"]


@dataclass
class MXQVAEOutput(ModelOutput):
    """Output of [`MXQVAEModel.forward`].

    Args:
        loss: image_loss_weight * image MSE + text_loss_weight * caption cross-entropy + quantizer loss.
        image_reconstruction: `(B, C, H, W)` reconstructed images in [-1, 1] (unclamped).
        text_logits: `(B, L, vocab_size)` logits of the reconstructed caption tokens.
        indices: `(B, num_tokens)` the joint code sequence.
        image_loss / text_loss / quantizer_loss: the loss terms.
        text_accuracy: fraction of non-padding caption tokens reconstructed exactly (image-only rows left out).
        prefix_consistency_loss: the text-only / image-only rows' pull to the clean pair's codes (training only).
        text_loss_tokens: number of caption tokens the text loss averages over (for a global mean across processes).
        usage / perplexity: code usage of this batch.
    """

    loss: Tensor | None = None
    image_reconstruction: Tensor | None = None
    text_logits: Tensor | None = None
    indices: Tensor | None = None
    image_loss: Tensor | None = None
    text_loss: Tensor | None = None
    quantizer_loss: Tensor | None = None
    text_accuracy: Tensor | None = None
    prefix_consistency_loss: Tensor | None = None
    text_loss_tokens: Tensor | None = None
    usage: Tensor | None = None
    perplexity: Tensor | None = None


class MXQVAEPreTrainedModel(PushToHubWithCardMixin, PreTrainedModel):
    """Base class of MXQ-VAE stage-1 models (:class:`MXQVAEModel`): ties them to :class:`MXQVAEConfig`
    (``model_type="mxqvae"``), initialises their weights (``_init_weights``) and gives them transformers'
    ``save_pretrained`` / ``from_pretrained`` (safetensors only; a zoo name loads the checkpoint shipped with
    mmquant) and ``push_to_hub`` with a generated model card. Use a subclass; ``import mmquant`` registers them
    with the Auto classes."""

    config_class = MXQVAEConfig
    base_model_prefix = "mxqvae"
    card_info = MXQVAE_CARD  # what its model card says (card_mxqvae.py)
    main_input_name = "pixel_values"
    _no_split_modules = []

    def _init_weights(self, module: nn.Module) -> None:
        # convolutions and the codebook keep PyTorch's initialisation; transformer layers get BERT's
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class MXQVAEModel(MXQVAEPreTrainedModel):
    """Stage 1 of MXQ-VAE: `encode_to_indices(pixel_values, input_ids)` gives the joint code sequence,
    `decode_indices(indices)` the image and caption tokens it stands for."""

    def __init__(self, config: MXQVAEConfig):
        super().__init__(config)
        d, n_img, n_txt = config.hidden_size, config.num_image_tokens, config.text_latent_length
        self.image_encoder = ResidualCNNEncoder(config.in_channels, d, config.image_channels, config.image_res_layers)
        self.image_decoder = ResidualCNNDecoder(d, config.in_channels, config.image_channels, config.image_res_layers)
        text_args = (config.vocab_size, config.text_embed_dim)
        text_shape = (config.max_text_length, config.text_latent_length, config.text_num_layers)
        if config.text_coder == "chunk":
            self.text_encoder = TextChunkEncoder(*text_args, d, *text_shape, kernel_size=config.text_kernel_size)
            self.text_decoder = TextChunkDecoder(*text_args, d, *text_shape, kernel_size=config.text_kernel_size)
        else:
            self.text_encoder = TextConvEncoder(*text_args, d, *text_shape)
            self.text_decoder = TextConvDecoder(*text_args, d, *text_shape)
        # learned positions and modality of each token (the reference feeds the BERT encoder without them)
        self.position_embedding = nn.Parameter(self._initial_positions())
        if config.fusion_input_norm:  # one LayerNorm per modality, so that positions weigh as much as content
            self.image_token_norm, self.text_token_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        layer = nn.TransformerEncoderLayer(
            d, config.num_attention_heads, config.intermediate_size, dropout=0.0, batch_first=True, norm_first=True
        )
        self.fusion = nn.TransformerEncoder(layer, config.num_fusion_layers, enable_nested_tensor=False)
        self.fusion_norm = nn.LayerNorm(d)
        q = dict(config.quantizer_config)
        self.quantizer = build_quantizer(q.pop("type"), dim=d, **q)
        # split the joint codes back to the two modalities' positions (linear maps over the token axis, the
        # reference's Layer_img and Layer_txt)
        self.split_image = nn.Linear(n_img + n_txt, n_img)
        self.split_text = nn.Sequential(
            nn.Linear(n_img + n_txt, config.split_hidden_size),
            nn.ReLU(),
            nn.Linear(config.split_hidden_size, n_txt),
        )
        self.post_init()

    def _initial_positions(self) -> Tensor:
        """`(1, N, d)`: 2-D sine-cosine positions on the image grid followed by 1-D ones on the text positions, so
        that text tokens can find an image region from the first step (learned from there on)."""
        c = self.config
        n_txt, d = c.text_latent_length, c.hidden_size
        image = sincos_positions_2d(c.image_latent_size, c.image_latent_size, d)  # (h*w, d)
        text = sincos_positions_1d(n_txt, d).roll(d // 4, dims=1)  # (T, d), shifted off the image's pattern
        return torch.cat([image, text])[None]

    # ------------------------------------------------------------------ checks
    def _check_inputs(self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor | None = None) -> None:
        c = self.config
        check_required(pixel_values=pixel_values, input_ids=input_ids)
        check_pixel_values(pixel_values, c.in_channels, c.image_size)
        check_token_ids(input_ids, c.max_text_length, c.vocab_size)
        check_batch_sizes(pixel_values=pixel_values, input_ids=input_ids)
        if attention_mask is not None:
            check_attention_mask(attention_mask, input_ids)
        if (input_ids == c.pad_token_id).all(1).any():  # its text loss would be 0/0
            raise ValueError("input_ids: a caption is only padding; tokenize non-empty captions.")

    # ------------------------------------------------------------------ masking (training only)
    def mask_image(self, pixel_values: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Zero `image_mask_ratio` of the `image_mask_patch_size` patches of each image (IM: Stage 1's masked image
        input; "w/o IM" in Table 1)."""
        c = self.config
        b, ch, h, w = pixel_values.shape
        p = c.image_mask_patch_size
        n_patches = (h // p) * (w // p)
        n_drop = int(n_patches * c.image_mask_ratio)
        if n_drop == 0:
            return pixel_values
        scores = torch.rand(b, n_patches, generator=generator, device=pixel_values.device)
        drop = torch.zeros(b, n_patches, dtype=torch.bool, device=pixel_values.device)
        drop.scatter_(1, scores.topk(n_drop, dim=1).indices, True)  # (B, patches)
        keep = (~drop).view(b, 1, h // p, 1, w // p, 1).expand(b, 1, h // p, p, w // p, p).reshape(b, 1, h, w)
        return pixel_values * keep

    def corrupt_text(self, input_ids: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Corrupt `text_mask_ratio` of each caption's eligible tokens (TC: Stage 1's masked text input; "w/o TC" in
        Table 1): every non-padding token, or only those of `text_corruption_groups`. A corrupted token becomes
        `[MASK]`, or with probability `text_replace_ratio` another word of its group."""
        c = self.config
        if c.text_mask_ratio == 0:
            return input_ids
        eligible = input_ids != c.pad_token_id  # (B, L)
        if c.text_corruption_groups:
            group_of, rank_in_group, members = self._corruption_tables(input_ids.device)
            eligible &= group_of[input_ids] >= 0
        scores = torch.rand(input_ids.shape, generator=generator, device=input_ids.device).masked_fill(~eligible, 2.0)
        n_corrupt = (eligible.sum(1) * c.text_mask_ratio).long()  # (B,)
        ranks = scores.argsort(1).argsort(1)  # rank of each position among the eligible tokens
        corrupt = ranks < n_corrupt[:, None]  # (B, L)
        out = input_ids.masked_fill(corrupt, c.mask_token_id)
        if c.text_replace_ratio > 0:
            draws = torch.rand((2, *input_ids.shape), generator=generator, device=input_ids.device)
            replace = corrupt & (draws[0] < c.text_replace_ratio)
            group = group_of[input_ids].clamp(min=0)  # (B, L)
            size = (members[group] >= 0).sum(-1)  # (B, L) words in the token's group
            # another word of the group: a uniform rank among the size - 1 others, skipping the token's own
            other = (draws[1] * (size - 1)).long()
            other = other + (other >= rank_in_group[input_ids]).long()
            words = members[group].gather(-1, other.clamp(max=members.shape[1] - 1).unsqueeze(-1)).squeeze(-1)
            out = torch.where(replace, words, out)
        return out

    def _corruption_tables(self, device) -> tuple[Tensor, Tensor, Tensor]:
        """Lookups for `text_corruption_groups`: group of each vocabulary id (-1 = not eligible), rank of each id in
        its group, and the groups' members `(G, max group size)` padded with -1."""
        groups, v = self.config.text_corruption_groups, self.config.vocab_size
        group_of = torch.full((v,), -1, dtype=torch.long, device=device)
        rank_in_group = torch.zeros(v, dtype=torch.long, device=device)
        members = torch.full((len(groups), max(map(len, groups))), -1, dtype=torch.long, device=device)
        for g, ids in enumerate(groups):
            ids_t = torch.tensor(ids, device=device)
            group_of[ids_t], rank_in_group[ids_t] = g, torch.arange(len(ids), device=device)
            members[g, : len(ids)] = ids_t
        return group_of, rank_in_group, members

    # ------------------------------------------------------------------ one modality alone
    def text_only_inputs(self, input_ids: Tensor) -> tuple[Tensor, Tensor]:
        """(blank image, caption): a caption encoded alone, the text->image prefix (`config.text_only_ratio`)."""
        c = self.config
        blank = torch.zeros(len(input_ids), c.in_channels, c.image_size, c.image_size, device=input_ids.device)
        return blank.to(self.dtype), input_ids

    def image_only_inputs(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        """(image, all-`[MASK]` caption of half the text length): an image encoded alone, the image->text prefix
        (`config.image_only_ratio`)."""
        c = self.config
        ids = torch.full((len(pixel_values), c.max_text_length), c.pad_token_id, device=pixel_values.device)
        ids[:, : c.max_text_length // 2] = c.mask_token_id
        return pixel_values, ids

    def mode_rows(self, batch_size: int) -> tuple[int, int]:
        """Rows `[0, t)` of a training batch are encoded text-only, rows `[t, t + i)` image-only."""
        c = self.config
        t = round(batch_size * c.text_only_ratio)
        return t, min(round(batch_size * c.image_only_ratio), batch_size - t)

    @torch.no_grad()
    def _clean_codes(self, pixel_values: Tensor, input_ids: Tensor) -> Tensor:
        """The code vectors `(B, N, d)` of clean pairs, without updating the codebook (consistency targets)."""
        training = self.quantizer.training
        self.quantizer.eval()
        try:
            return self.quantizer(self._fuse(pixel_values, input_ids)).quantized.detach()
        finally:
            self.quantizer.train(training)

    # ------------------------------------------------------------------ stage 1
    def _fuse(self, pixel_values: Tensor, input_ids: Tensor) -> Tensor:
        """The fused tokens `(B, h*w + T, d)` before quantization (Stage 1: the concatenated image and text tokens
        through one transformer, the reference's BERT encoder)."""
        image_tokens = self.image_encoder(pixel_values).flatten(2).transpose(1, 2)  # (B, h*w, d)
        text_tokens = self.text_encoder(input_ids)  # (B, T, d)
        if self.config.fusion_input_norm:
            image_tokens, text_tokens = self.image_token_norm(image_tokens), self.text_token_norm(text_tokens)
        tokens = torch.cat([image_tokens, text_tokens], dim=1) + self.position_embedding  # (B, N, d)
        if self.config.fusion == "cross":
            return self.fusion_norm(self.fusion(tokens))
        n_img = self.config.num_image_tokens  # "Only Sharing C" (Table 1): each modality attends only to itself
        mask = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool, device=tokens.device)
        mask[:n_img, :n_img] = False
        mask[n_img:, n_img:] = False
        return self.fusion_norm(self.fusion(tokens, mask=mask))

    def _split(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """Codes `(B, N, d)` -> image tokens `(B, d, h, w)` and text tokens `(B, T, d)`."""
        c = self.config
        image = self.split_image(codes.transpose(1, 2))  # (B, d, h*w)
        text = self.split_text(codes.transpose(1, 2)).transpose(1, 2)  # (B, T, d)
        if c.split_text_residual:
            text = text + codes[:, c.num_image_tokens :]
        return image.reshape(len(codes), c.hidden_size, c.image_latent_size, c.image_latent_size), text

    def _decode_codes(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        image_tokens, text_tokens = self._split(codes)
        return self.image_decoder(image_tokens), self.text_decoder(text_tokens)  # (B, C, H, W), (B, L, V)

    def encode(self, pixel_values: Tensor, input_ids: Tensor):
        """The quantizer output for the fused tokens of an image–caption batch (no masking)."""
        self._check_inputs(pixel_values, input_ids)
        return self.quantizer(self._fuse(pixel_values.to(self.dtype), input_ids))

    @torch.no_grad()
    def encode_to_indices(self, pixel_values: Tensor, input_ids: Tensor) -> Tensor:
        """The joint code sequence `(B, h*w + T)` (image positions, then text positions)."""
        return self.encode(pixel_values, input_ids).indices

    @torch.no_grad()
    def decode_indices(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Codes `(B, h*w + T)` -> (images `(B, C, H, W)` clamped to [-1, 1], caption token ids `(B, L)`)."""
        c = self.config
        if not isinstance(indices, Tensor) or indices.ndim != 2 or indices.shape[1] != c.num_tokens:
            raise ValueError(
                f"indices: expected a tensor (batch, num_tokens={c.num_tokens}), got "
                f"{tuple(getattr(indices, 'shape', ())) or type(indices).__name__}."
            )
        if indices.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"indices: expected integer code indices, got {indices.dtype}.")
        low, high = value_bounds(indices)  # one host sync
        if low < 0 or high >= c.codebook_size:
            raise ValueError(
                f"indices: codes must lie in [0, codebook_size={c.codebook_size}), got [{int(low)}, {int(high)}]."
            )
        images, text_logits = self._decode_codes(self.quantizer.indices_to_codes(indices.long()))
        return images.clamp(-1, 1), text_logits.argmax(-1)

    def forward(
        self,
        pixel_values: Tensor,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        return_loss: bool = True,
        generator: torch.Generator | None = None,
    ) -> MXQVAEOutput:
        """Reconstruct an image–caption batch through the joint codes; in training mode the inputs are masked (IM)
        and corrupted (TC) first, and the losses compare with the clean inputs. `attention_mask` is accepted for
        collator compatibility: padding is a token of its own here, and the text loss ignores it (unless
        `config.text_loss_on_padding`)."""
        self._check_inputs(pixel_values, input_ids, attention_mask)
        c = self.config
        images_in, ids_in = pixel_values.to(self.dtype), input_ids
        n_text_only = n_image_only = 0
        if self.training:
            images_in = self.mask_image(images_in, generator)
            ids_in = self.corrupt_text(input_ids, generator)
            n_text_only, n_image_only = self.mode_rows(len(input_ids))
            if n_text_only or n_image_only:  # one modality alone (text_only_ratio / image_only_ratio)
                t, i = n_text_only, n_text_only + n_image_only
                images_in, ids_in = images_in.clone(), ids_in.clone()
                images_in[:t] = self.text_only_inputs(input_ids[:t])[0]
                ids_in[t:i] = self.image_only_inputs(pixel_values[t:i])[1]
                images_in[t:i] = pixel_values[t:i].to(self.dtype)  # the clean image (no IM)
                ids_in[:t] = input_ids[:t]  # the clean caption (no TC)
        z = self._fuse(images_in, ids_in)  # (B, N, d)
        q = self.quantizer(z)  # z_hat: codes (B, N, d), indices (B, N) (Stage 1)
        reconstruction, text_logits = self._decode_codes(q.quantized)
        out = MXQVAEOutput(
            image_reconstruction=reconstruction,
            text_logits=text_logits,
            indices=q.indices,
            quantizer_loss=q.loss,
            usage=q.usage,
            perplexity=q.perplexity,
        )
        if return_loss:
            ignore = -100 if c.text_loss_on_padding else c.pad_token_id
            targets = input_ids.clone()
            image_only = slice(n_text_only, n_text_only + n_image_only)
            targets[image_only] = ignore  # an image alone does not tell a caption's wording
            real = (targets != c.pad_token_id) & (targets != -100)
            out.image_loss = F.mse_loss(reconstruction.float(), pixel_values.float())  # to the clean image
            out.text_loss = F.cross_entropy(text_logits.float().flatten(0, 1), targets.flatten(), ignore_index=ignore)
            out.text_loss_tokens = (targets != ignore).sum()
            out.text_accuracy = (text_logits.argmax(-1) == input_ids)[real].float().mean()
            # L of the module docstring (reference x_vae.py total_loss; q.loss = codebook + beta * commitment)
            out.loss = c.image_loss_weight * out.image_loss + c.text_loss_weight * out.text_loss + q.loss
            if (n_text_only or n_image_only) and c.prefix_consistency_weight > 0:
                out.prefix_consistency_loss = self._prefix_consistency(
                    z, pixel_values.to(self.dtype), input_ids, n_text_only, n_image_only
                )
                out.loss = out.loss + c.prefix_consistency_weight * out.prefix_consistency_loss
        return out

    def _prefix_consistency(self, z: Tensor, pixel_values: Tensor, input_ids: Tensor, t: int, i: int) -> Tensor:
        """Mean `||z - sg[e_clean]||^2` over the text-only rows' text positions and the image-only rows' image
        positions (`z`: `(B, N, d)` fused tokens of the training inputs)."""
        n_img = self.config.num_image_tokens
        target = self._clean_codes(pixel_values[: t + i], input_ids[: t + i])  # (t + i, N, d)
        diffs = [(z[:t, n_img:] - target[:t, n_img:]).flatten(), (z[t : t + i, :n_img] - target[t:, :n_img]).flatten()]
        return torch.cat(diffs).float().pow(2).mean()
