"""jWAE: joint Wasserstein autoencoders for aligning image and text embeddings (Mahajan, Botschen, Gurevych, Roth,
ICCV Workshops 2019, arXiv:1909.06635; reference code github.com/visinf/jwae).

image x -> f_v -> z_v (B, latent_dim) -> g_v -> x_hat          lambda_1 ||x - g_v(f_v(x))||_1
  (x: pixels, precomputed features, or frozen grid features of the pixels, image_input="grid_features")
caption y -> f_t -> z_t (B, latent_dim) -> g_t -> log p(y | z_t) lambda_2 (- sum_m log p(w_m | w_<m, f_t(y)))
z_v, z_t vs N(0, I): latent critic                               lambda_3 D_JS(F_v || P_L) + lambda_4 D_JS(F_t || P_L)
cos(z_v, z_t) hinge ranking, hardest negatives                   L_MH (jWAE-MH)  or  ||z_v - z_t||^2 (jWAE-MSE)
sg(z_v) -> g_t -> log p(y | sg(z_v))  (optional, not in the paper)  lambda_image_caption (- sum_m log p(w_m | ...))

The critic is a separate module owned by the training loop (as a GAN discriminator is in diffusers' training
scripts); `forward(..., critic=critic)` adds the encoders' side of the two divergences.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ...losses.contrastive import max_hinge_loss, paired_mse_loss
from ...losses.distributed import gather_batch, global_mean
from ...losses.divergences import LatentCritic, prior_matching_loss
from ...modules.grid_features import GridFeatures
from ...modules.gru_text import GRUTextDecoder, GRUTextEncoder
from ...modules.residual_cnn import ResidualCNNDecoder, ResidualCNNEncoder
from ..input_checks import check_attention_mask, check_batch_sizes, check_features, check_pixel_values, check_token_ids
from ..modeling_utils import PushToHubWithCardMixin
from .card_jwae import JWAE_CARD
from .configuration_jwae import JWAEConfig

__all__ = ["JWAEModel", "JWAEOutput", "JWAEPreTrainedModel"]


@dataclass
class JWAEOutput(ModelOutput):
    """Output of [`JWAEModel.forward`].

    Args:
        loss: the weighted sum of the terms below (L_jWAE, plus the ranking term for jWAE-MH / jWAE-MSE).
        image_embeds / text_embeds: `(B, latent_dim)` latents z_v = f_v(x), z_t = f_t(y) (not normalised; retrieval
            compares their directions).
        logits_per_image: `(B, B)` cosine similarities of every image with every caption of the batch.
        image_reconstruction: g_v(z_v) when an image decoder exists: `(B, C, H, W)` pixels, or `(B, F)` features
            (`config.encoded_feature_dim`: the precomputed or the frozen grid features it reconstructs).
        text_logits: `(B, L - 1, vocab_size)` next-token logits of g_t(z_t), when a text decoder exists.
        image_caption_logits: `(B, L' - 1, vocab_size)` next-token logits of g_t(sg(z_v)), when
            `lambda_image_caption > 0` (L' = the batch's longest caption).
        image_reconstruction_loss / text_reconstruction_loss / image_prior_loss / text_prior_loss / ranking_loss /
            image_caption_loss: the unweighted terms (prior losses only when a critic is given).
    """

    loss: Tensor | None = None
    image_embeds: Tensor | None = None
    text_embeds: Tensor | None = None
    logits_per_image: Tensor | None = None
    image_reconstruction: Tensor | None = None
    text_logits: Tensor | None = None
    image_caption_logits: Tensor | None = None
    image_reconstruction_loss: Tensor | None = None
    text_reconstruction_loss: Tensor | None = None
    image_prior_loss: Tensor | None = None
    text_prior_loss: Tensor | None = None
    ranking_loss: Tensor | None = None
    image_caption_loss: Tensor | None = None


class JWAEPreTrainedModel(PushToHubWithCardMixin, PreTrainedModel):
    """Base class of jWAE models (:class:`JWAEModel`): ties them to :class:`JWAEConfig` (``model_type="jwae"``),
    initialises their weights (``_init_weights``) and gives them transformers' ``save_pretrained`` /
    ``from_pretrained`` (safetensors only; a zoo name loads the checkpoint shipped with mmquant) and
    ``push_to_hub`` with a generated model card. Use a subclass; ``import mmquant`` registers them with the Auto
    classes."""

    config_class = JWAEConfig
    base_model_prefix = "jwae"
    card_info = JWAE_CARD  # what its model card says (card_jwae.py)
    main_input_name = "pixel_values"
    _no_split_modules = []

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's default initialisation everywhere (the reference uses Xavier for its linear layers)
        return


class _FlatLatent(nn.Module):
    """CNN feature map `(B, C, h, w)` <-> latent vector `(B, D)`."""

    def __init__(self, channels: int, side: int, latent_dim: int):
        super().__init__()
        self.to_latent = nn.Linear(channels * side * side, latent_dim)
        self.from_latent = nn.Linear(latent_dim, channels * side * side)
        self.shape = (channels, side, side)


class JWAEModel(JWAEPreTrainedModel):
    """Image and text autoencoders with a shared latent space: `get_image_features` / `get_text_features` embed,
    `forward` computes the training loss, `generate_captions` decodes a caption from any latent."""

    def __init__(self, config: JWAEConfig):
        super().__init__(config)
        c, d = config, config.latent_dim
        if c.image_input == "pixels":
            width = c.image_channels[-1]
            self.image_encoder = ResidualCNNEncoder(c.in_channels, width, c.image_channels, c.image_res_layers)
            self.image_flat = _FlatLatent(width, c.image_latent_size, d)
            if c.lambda_image_reconstruction > 0:
                self.image_decoder = ResidualCNNDecoder(width, c.in_channels, c.image_channels, c.image_res_layers)
        else:
            if c.image_input == "grid_features":  # frozen, loaded from a pretrained digit classifier
                self.grid_features = GridFeatures(c.image_size // 2, c.grid_feature_channels, c.grid_feature_dim)
            f = c.encoded_feature_dim
            self.image_encoder = nn.Linear(f, d)  # the reference's EncoderImagePrecomp
            if c.lambda_image_reconstruction > 0:
                h = c.image_decoder_hidden_size
                self.image_decoder = nn.Sequential(  # the reference's ImageDecoder MLP
                    nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, f)
                )
        text_args = (c.vocab_size, c.word_embed_dim, c.text_hidden_size)
        self.text_encoder = GRUTextEncoder(*text_args, d, c.text_num_layers, c.pad_token_id)
        if c.has_text_decoder:
            self.text_decoder = GRUTextDecoder(*text_args, d, c.text_num_layers, c.pad_token_id)
        self.post_init()

    def make_critic(self) -> LatentCritic:
        """A fresh latent critic for this model's latent space (used by the training loop)."""
        c = self.config
        return LatentCritic(c.latent_dim, c.critic_hidden_size, c.critic_num_layers)

    # ------------------------------------------------------------------ checks
    def _check_images(self, pixel_values: Tensor | None, image_features: Tensor | None) -> Tensor:
        """The one image input, checked: pixels `(B, C, H, W)` or features `(B, F)`. A `"grid_features"` model takes
        pixels, or their frozen grid features precomputed (`image_features=model.grid_features(pixel_values)`), so
        that a trainer runs the frozen CNN once per dataset instead of once per step."""
        c = self.config
        grid = c.image_input == "grid_features"
        takes_pixels = c.image_input == "pixels" or (grid and image_features is None)
        images = pixel_values if takes_pixels else image_features
        other = image_features if takes_pixels else pixel_values
        if images is None or other is not None:
            given = (
                "pixel_values= or image_features= (its grid features)"
                if grid
                else ("pixel_values=" if takes_pixels else "image_features=")
            )
            raise ValueError(f"this model's image_input is {c.image_input!r}: pass {given} (and only one).")
        if takes_pixels:
            check_pixel_values(images, c.in_channels, c.image_size)
        else:
            check_features(images, c.encoded_feature_dim, "image_features")
        return images.to(self.dtype)

    def _check_text(self, input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
        c = self.config
        check_token_ids(input_ids, c.max_text_length, c.vocab_size)
        if attention_mask is None:
            attention_mask = (input_ids != c.pad_token_id).long()
        return check_attention_mask(attention_mask, input_ids)

    # ------------------------------------------------------------------ embeddings
    def _image_targets(self, images: Tensor) -> Tensor:
        """What the image encoder reads and the image decoder reconstructs: the pixels or precomputed features
        themselves, or the frozen grid features of the pixels `(B, 5 * C * F)`."""
        if self.config.image_input == "grid_features" and images.dim() == 4:  # pixels, not precomputed features
            return self.grid_features(images)
        return images

    def _encode_images(self, images: Tensor) -> Tensor:
        """`images` as `_image_targets` returns them -> latents `(B, D)`."""
        if self.config.image_input != "pixels":
            return self.image_encoder(images)  # (B, D)
        feature_map = self.image_encoder(images)  # (B, C, h, w)
        return self.image_flat.to_latent(feature_map.flatten(1))  # (B, D)

    def _decode_images(self, latents: Tensor) -> Tensor:
        if self.config.image_input != "pixels":
            return self.image_decoder(latents)  # (B, F)
        feature_map = self.image_flat.from_latent(latents).view(len(latents), *self.image_flat.shape)
        return self.image_decoder(F.relu(feature_map))  # (B, C, H, W)

    def get_image_features(self, pixel_values: Tensor | None = None, image_features: Tensor | None = None) -> Tensor:
        """The image latents z_v = f_v(x) `(B, latent_dim)`."""
        images = self._check_images(pixel_values, image_features)
        check_batch_sizes(images=images)
        return self._encode_images(self._image_targets(images))

    def get_text_features(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """The caption latents z_t = f_t(y) `(B, latent_dim)`."""
        lengths = self._check_text(input_ids, attention_mask)
        check_batch_sizes(input_ids=input_ids)
        return self.text_encoder(input_ids, lengths)

    @torch.no_grad()
    def generate_captions(self, latents: Tensor, max_length: int | None = None) -> Tensor:
        """Greedy captions `(B, max_length)` decoded by g_t from latents of either modality (image latents give
        captions of the image)."""
        c = self.config
        if not hasattr(self, "text_decoder"):
            raise ValueError(
                "generate_captions: this model has no text decoder (lambda_text_reconstruction and "
                "lambda_image_caption are 0)."
            )
        check_features(latents, c.latent_dim, "latents")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
            raise ValueError(f"max_length={max_length!r}: expected None or an integer >= 2 ([BOS] and a word).")
        max_length = max_length or c.max_text_length
        return self.text_decoder.generate(
            latents.to(self.dtype), c.bos_token_id, c.eos_token_id, c.pad_token_id, max_length
        )

    # ------------------------------------------------------------------ training loss
    def _caption_nll(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Mean next-token negative log-likelihood over the real (non-padding) tokens (in training under
        ``torch.distributed``: over the global batch's tokens, see ``global_mean``)."""
        nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=self.config.pad_token_id)
        return global_mean(nll, (targets != self.config.pad_token_id).sum()) if self.training else nll

    def _drop_words(self, input_ids: Tensor) -> Tensor:
        """Replace `word_dropout` of the decoder's input words (not [BOS] or padding) by [UNK]."""
        c = self.config
        droppable = (input_ids != c.pad_token_id) & (input_ids != c.bos_token_id)
        drop = (torch.rand(input_ids.shape, device=input_ids.device) < c.word_dropout) & droppable
        return input_ids.masked_fill(drop, c.unk_token_id)

    def forward(
        self,
        pixel_values: Tensor | None = None,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        image_features: Tensor | None = None,
        critic: nn.Module | None = None,
        return_loss: bool = True,
        hardest_negatives: bool | None = None,
    ) -> JWAEOutput:
        """Embed a batch of matching image–caption pairs and compute the jWAE loss. With `critic` (a
        [`LatentCritic`]) the prior terms λ3, λ4 are included; they train the encoders only. `hardest_negatives`
        overrides the config for this call (training scripts warm up with the sum of hinges: from scratch, the
        hardest-negative loss alone collapses every embedding to one point)."""
        c = self.config
        if input_ids is None:
            raise ValueError("input_ids: required (the captions paired with the images).")
        images = self._check_images(pixel_values, image_features)
        lengths = self._check_text(input_ids, attention_mask)
        check_batch_sizes(images=images, input_ids=input_ids)

        images = self._image_targets(images)  # pixels (B, C, H, W) or features (B, F)
        image_embeds = self._encode_images(images)  # (B, D)
        text_embeds = self.text_encoder(input_ids, lengths)  # (B, D)
        logits_per_image = F.normalize(image_embeds, dim=-1) @ F.normalize(text_embeds, dim=-1).T  # (B, B)
        out = JWAEOutput(image_embeds=image_embeds, text_embeds=text_embeds, logits_per_image=logits_per_image)
        if hasattr(self, "image_decoder"):
            out.image_reconstruction = self._decode_images(image_embeds)
        if hasattr(self, "text_decoder"):
            targets = input_ids[:, 1 : int(lengths.max())]  # (B, L' - 1): trailing all-padding columns dropped
            inputs = input_ids[:, : targets.shape[1]]
            inputs = self._drop_words(inputs) if self.training and c.word_dropout else inputs
            if c.lambda_text_reconstruction > 0:
                out.text_logits = self.text_decoder(inputs, text_embeds)  # (B, L' - 1, V), predicts targets
            if c.lambda_image_caption > 0:  # the captioning head reads the image latent, detached
                out.image_caption_logits = self.text_decoder(inputs, image_embeds.detach())  # (B, L' - 1, V)
        if not return_loss:
            return out

        zero = image_embeds.new_zeros(())
        terms = []
        if out.image_reconstruction is not None:  # λ1 ||x - g_v(f_v(x))||, L1 per element
            out.image_reconstruction_loss = F.l1_loss(out.image_reconstruction.float(), images.float())
            terms.append(c.lambda_image_reconstruction * out.image_reconstruction_loss)
        if out.text_logits is not None:  # λ2 (-log p_gt(w_m | w_<m, f_t(y))), mean over real tokens
            out.text_reconstruction_loss = self._caption_nll(out.text_logits, targets)
            terms.append(c.lambda_text_reconstruction * out.text_reconstruction_loss)
        if out.image_caption_logits is not None:  # -log p_gt(w_m | w_<m, sg(f_v(x))), the captioning head
            out.image_caption_loss = self._caption_nll(out.image_caption_logits, targets)
            terms.append(c.lambda_image_caption * out.image_caption_loss)
        if critic is not None and c.uses_prior:  # λ3 D_JS(F_v || P_L) + λ4 D_JS(F_t || P_L), adversarial estimates
            out.image_prior_loss = prior_matching_loss(critic, image_embeds)
            out.text_prior_loss = prior_matching_loss(critic, text_embeds)
            terms += [c.lambda_image_prior * out.image_prior_loss, c.lambda_text_prior * out.text_prior_loss]
        if c.ranking_loss == "max_hinge":  # L_MH, VSE++ hardest negatives
            hardest = c.hardest_negatives if hardest_negatives is None else hardest_negatives
            # in-batch negatives: in training under torch.distributed, those of the global batch (gather_batch)
            pair = gather_batch(image_embeds, text_embeds) if self.training else (image_embeds, text_embeds)
            out.ranking_loss = max_hinge_loss(*pair, c.margin, hardest)
        elif c.ranking_loss == "mse":  # jWAE-MSE
            out.ranking_loss = paired_mse_loss(image_embeds, text_embeds)
        if out.ranking_loss is not None:
            terms.append(c.lambda_ranking * out.ranking_loss)
        out.loss = sum(terms, zero)
        return out
