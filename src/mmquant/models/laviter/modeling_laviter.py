"""LAViTeR: visual–text alignment assisted by text-to-image and image-to-text generation (Shaikh et al.,
arXiv:2109.04993; reference code github.com/mshaikh2/MMRL).

image x -> E_v -> regions (B, R, D), global (B, D) --+-- L_VTA (eq. 8) with the caption's words and sentence
caption t -> E_t -> words (B, L, D), sentence (B, D) -+
sentence, words, noise -> TIM generators -> x_fake (each stage)   L_G (eq. 9) against the discriminators (eq. 10)
                          E_v(x_fake) vs real caption              L_fi-rt (eq. 15), also in L_TIM (eq. 11)
regions -> ITM captioner -> t_fake (word distributions)           L_ITM (eq. 14)
                          E_t(t_fake) vs real image                L_ri-ft (eq. 15)
joint: L = λ1 L_TIM + λ2 L_ITM + λ3 L_fi-rt + λ4 L_ri-ft + λ5 L_VTA (eq. 16)

The discriminators belong to the training loop (as a GAN discriminator does in diffusers' training scripts):
`make_discriminator()` builds them, `forward(..., discriminator=d)` adds the generator's adversarial term and
`discriminator_loss(...)` is their side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ...losses.adversarial import discriminator_loss, generator_adversarial_loss, kl_to_standard_normal
from ...losses.contrastive import damsm_loss
from ...losses.distributed import gather_batch
from ...modules.attn_generator import AttnGANGenerator
from ...modules.caption_decoder import TransformerCaptioner
from ...modules.discriminator import MultiScaleDiscriminator
from ...modules.grid_features import exchange_quadrants
from ...modules.transformer_text import TransformerTextEncoder
from ...modules.vision_encoder import CNNRegionEncoder, DigitGridRegionEncoder, InceptionRegionEncoder
from ..input_checks import check_attention_mask, check_batch_sizes, check_pixel_values, check_token_ids
from ..modeling_utils import PushToHubWithCardMixin
from .card_laviter import LAVITER_CARD
from .configuration_laviter import PHASES, LaviterConfig

__all__ = ["LaviterModel", "LaviterOutput", "LaviterPreTrainedModel"]


def _swap_halves(images: Tensor, dim: int) -> Tensor:
    """``images`` with their two halves along ``dim`` swapped (-1: left and right, -2: top and bottom): the same
    objects at other places, the swapped-halves negatives of `vta_swapped_negatives` and
    `discriminator_swapped_halves`."""
    return images.roll(images.shape[dim] // 2, dim)


def _pixel_loss(stages: list[Tensor], real: Tensor) -> Tensor:
    """Sum over the generator's stages `(B, C, s, s)` of the mean squared difference from the real images `(B, C, H,
    W)` resized to `s` (area averaging; the real images are targets)."""
    real = real.detach()
    return sum(F.mse_loss(x, F.interpolate(real, size=x.shape[-2:], mode="area")) for x in stages)


@dataclass
class LaviterOutput(ModelOutput):
    """Output of [`LaviterModel.forward`].

    Args:
        loss: the phase's objective (`"vta"`: L_VTA; `"generators"`: L_TIM + L_ITM; `"joint"`: eq. 16).
        image_embeds / text_embeds: `(B, D)` global image features and sentence features.
        vta_loss, tim_loss, itm_loss, fake_image_loss, fake_text_loss: L_VTA, L_TIM, L_ITM, L_fi-rt, L_ri-ft
            (those the phase and the model's modules have).
        generator_adversarial_loss / kl_loss: the parts of L_TIM (eq. 9; the conditioning augmentation's KL).
        redescription_loss: the captioner's cross-entropy of the real caption given the generated image (with
            `lambda_redescription` > 0; part of L_TIM).
        image_match_loss: the generated images' contrastive matching with their pairs' real images (with
            `lambda_image_match` > 0; part of L_TIM).
        pixel_loss: the generated images' mean squared difference from their pairs' real images, summed over the
            stages (with `lambda_pixel` > 0; part of L_TIM).
        place_label_loss: the auxiliary classification of the generated images against their captions' place
            labels (with `place_label_classes`, by the discriminators or the region classifier; part of L_TIM).
        place_classifier_loss: the region classifier's classification of the real images (`place_classifier=
            "regions"`; part of L_TIM, trains the classifier alone).
        generated_images: one `(B, C, s, s)` tensor per generator stage, smallest first, in [-1, 1].
        caption_logits: `(B, T - 1, vocab_size)` the captioner's next-word logits (teacher forcing), `T` the
            longest caption of the batch.
        word_embeds / word_mask: `(B, T, D)` word features and `(B, T)` their mask (set when the generator trains:
            what a place-reading discriminator is conditioned on).
    """

    loss: Tensor | None = None
    image_embeds: Tensor | None = None
    text_embeds: Tensor | None = None
    vta_loss: Tensor | None = None
    tim_loss: Tensor | None = None
    itm_loss: Tensor | None = None
    fake_image_loss: Tensor | None = None
    fake_text_loss: Tensor | None = None
    generator_adversarial_loss: Tensor | None = None
    kl_loss: Tensor | None = None
    redescription_loss: Tensor | None = None
    image_match_loss: Tensor | None = None
    pixel_loss: Tensor | None = None
    place_label_loss: Tensor | None = None
    place_classifier_loss: Tensor | None = None
    generated_images: tuple[Tensor, ...] | None = None
    caption_logits: Tensor | None = None
    word_embeds: Tensor | None = None
    word_mask: Tensor | None = None


class LaviterPreTrainedModel(PushToHubWithCardMixin, PreTrainedModel):
    """Base class of LAViTeR models (:class:`LaviterModel`): ties them to :class:`LaviterConfig`
    (``model_type="laviter"``), initialises their weights (``_init_weights``) and gives them transformers'
    ``save_pretrained`` / ``from_pretrained`` (safetensors only; a zoo name loads the checkpoint shipped with
    mmquant) and ``push_to_hub`` with a generated model card. Use a subclass; ``import mmquant`` registers them
    with the Auto classes."""

    config_class = LaviterConfig
    base_model_prefix = "laviter"
    card_info = LAVITER_CARD  # what its model card says (card_laviter.py)
    main_input_name = "pixel_values"
    _no_split_modules = []

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's default initialisation everywhere; the captioner's GPT-2 keeps its own
        return


class LaviterModel(LaviterPreTrainedModel):
    """VTA encoders with the TIM generator and the ITM captioner; `set_phase` selects what trains."""

    def __init__(self, config: LaviterConfig):
        super().__init__(config)
        v, t, d = config.vision_config, config.text_config, config.embed_dim
        if v.backbone == "inception_v3":
            self.image_encoder = InceptionRegionEncoder(d, v.backbone_weights)
        elif v.backbone == "digit_grid":  # frozen pretrained digit CNN (the training script loads it)
            self.image_encoder = DigitGridRegionEncoder(v.in_channels, v.image_size, v.channels, v.grid_feature_dim, d)
        else:
            self.image_encoder = CNNRegionEncoder(v.in_channels, v.channels, d)
        self.text_encoder = TransformerTextEncoder(
            t.vocab_size, t.max_length, d, t.num_layers, t.num_heads, t.intermediate_size, t.sentence_pooling
        )
        if config.use_tim:
            self.generator = AttnGANGenerator(
                d, config.noise_dim, config.condition_dim, config.generator_channels, config.generator_sizes,
                v.in_channels, config.generator_attention_positions, config.generator_first_stage_attention,
                config.generator_word_context, config.generator_word_rnn,
            )  # fmt: skip
        if config.use_tim and config.place_label_classes and config.place_classifier == "regions":
            self.place_classifier = nn.Linear(d, sum(config.place_label_classes))  # per quadrant's region feature
        if config.use_itm:
            self.captioner = TransformerCaptioner(
                t.vocab_size, t.max_length, d, config.captioner_num_layers, config.captioner_num_heads,
                v.num_regions, t.pad_token_id, t.bos_token_id, t.eos_token_id,
            )  # fmt: skip
        self.phase = "joint"
        self.post_init()

    # ------------------------------------------------------------------ checks
    def _check_image(self, pixel_values: Tensor) -> Tensor:
        """The checked images, cast to the model's dtype."""
        check_pixel_values(pixel_values, self.config.vision_config.in_channels, self.config.vision_config.image_size)
        check_batch_sizes(pixel_values=pixel_values)
        return pixel_values.to(self.dtype)

    def _text_mask(self, input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
        t = self.config.text_config
        check_token_ids(input_ids, t.max_length, t.vocab_size)
        check_batch_sizes(input_ids=input_ids)
        if attention_mask is None:
            attention_mask = (input_ids != t.pad_token_id).long()
        check_attention_mask(attention_mask, input_ids)
        return attention_mask

    def _require(self, module: str) -> nn.Module:
        if not hasattr(self, module):
            switch = {"generator": "use_tim", "captioner": "use_itm"}[module]
            raise ValueError(f"this model has no {module}: it was built with {switch}=False.")
        return getattr(self, module)

    # ------------------------------------------------------------------ VTA
    def encode_image(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        """Region features `(B, R, D)` and global features `(B, D)`."""
        return self.image_encoder(self._check_image(pixel_values))

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Word features `(B, L, D)` and sentence features `(B, D)` of captions padded to `max_length`."""
        return self.text_encoder(input_ids, self._text_mask(input_ids, attention_mask))

    def get_image_features(self, pixel_values: Tensor) -> Tensor:
        return self.encode_image(pixel_values)[1]

    def get_text_features(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.encode_text(input_ids, attention_mask)[1]

    def _vta(self, words, mask, sentence, regions, global_features, negatives=None) -> Tensor:
        """Eq. 8 on a batch; ``negatives``: ``(regions, global)`` of images no caption describes."""
        c = self.config
        batch = (words, mask, sentence, regions, global_features, *(negatives or ()))
        if self.training:  # the softmax over the batch: under torch.distributed, over the global batch
            batch = gather_batch(*batch)
        return damsm_loss(*batch[:5], c.gamma1, c.gamma2, c.gamma3, *batch[5:])  # eq. 8

    def _encode_with_negatives(
        self, pixel_values: Tensor
    ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
        """The image encoder on the images, ``(B, R, D)``, ``(B, D)``, and the features of the images no caption of
        the batch describes (``None`` when neither option is on): with `vta_swapped_negatives` the images with their
        left and right halves swapped and with their top and bottom halves swapped (2B), with `vta_exchanged_quadrants`
        the images with each pair of their quadrants exchanged (6B); ``(kB, R, D)``, ``(kB, D)``."""
        c, exchanged = self.config, None
        if c.vta_exchanged_quadrants:
            encoded, exchanged = self._encode_with_exchanged(pixel_values)  # ..., (6B, R, D), (6B, D)
        else:
            encoded = self.image_encoder(pixel_values)
        if not c.vta_swapped_negatives:
            return encoded, exchanged
        swapped = torch.cat([_swap_halves(pixel_values, -1), _swap_halves(pixel_values, -2)])  # (2B, C, H, W)
        negatives = self.image_encoder(swapped)  # (2B, R, D), (2B, D)
        if exchanged is not None:
            negatives = tuple(torch.cat(pair) for pair in zip(negatives, exchanged))
        return encoded, negatives

    def _encode_with_exchanged(self, pixel_values: Tensor) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """The image encoder on the images, ``(B, R, D)``, ``(B, D)``, and on ``exchange_quadrants(pixel_values)``,
        ``(6B, R, D)``, ``(6B, D)`` (the digit-grid encoder reads each quadrant once for all seven)."""
        if isinstance(self.image_encoder, DigitGridRegionEncoder):
            return self.image_encoder.with_exchanged_quadrants(pixel_values)
        return self.image_encoder(pixel_values), self.image_encoder(exchange_quadrants(pixel_values))

    def _encode_exchanged(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        """The image encoder on ``exchange_quadrants(pixel_values)`` alone: ``(6B, R, D)``, ``(6B, D)``."""
        if isinstance(self.image_encoder, DigitGridRegionEncoder):
            return self.image_encoder.with_exchanged_quadrants(pixel_values)[1]
        return self.image_encoder(exchange_quadrants(pixel_values))

    # ------------------------------------------------------------------ TIM and ITM
    def _noise(self, batch: int, generator: torch.Generator | None, device) -> Tensor:
        return torch.randn(batch, self.config.noise_dim, generator=generator, device=device).to(self.dtype)

    @torch.no_grad()
    def generate_images(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
        all_stages: bool = False,
    ) -> Tensor | list[Tensor]:
        """Images `(B, C, H, W)` in [-1, 1] generated from captions (every stage's with `all_stages=True`)."""
        gen = self._require("generator")
        mask = self._text_mask(input_ids, attention_mask)
        words, sentence = self.text_encoder(input_ids, mask)
        images, _, _ = gen(self._noise(len(input_ids), generator, input_ids.device), sentence, words, mask, generator)
        return images if all_stages else images[-1]

    @torch.no_grad()
    def generate_captions(self, pixel_values: Tensor, use_cache: bool = True, **generate_kwargs) -> Tensor:
        """Caption token ids `(B, max_length)` for images (greedy unless `do_sample=True`; transformers' generate)."""
        regions, _ = self.encode_image(pixel_values)
        return self._require("captioner").generate(regions, use_cache=use_cache, **generate_kwargs)

    def make_discriminator(self) -> MultiScaleDiscriminator:
        """A fresh discriminator per generator stage (trained by the training loop, not saved with the model)."""
        c = self.config
        return MultiScaleDiscriminator(
            c.vision_config.in_channels, c.generator_sizes, c.discriminator_channels, c.embed_dim,
            c.discriminator_place_words, c.discriminator_word_rnn,
            c.discriminator_place_classes,
        )  # fmt: skip

    def _check_place_labels(self, place_labels: Tensor | None, batch: int) -> Tensor:
        """`place_labels (B, 2, 2, A)`: a class index per quadrant and label, within `place_label_classes`."""
        classes = self.config.place_label_classes
        if place_labels is None:
            raise ValueError(
                f"place_labels: this model classifies each quadrant of the generated images (place_label_classes="
                f"{classes}, by the {self.config.place_classifier}); "
                "pass the labels of the batch, (B, 2, 2, A) integers (Caption MNIST: "
                "mmquant.data.caption_grammar.place_labels(captions, colors))."
            )
        if not isinstance(place_labels, Tensor) or place_labels.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"place_labels: expected an integer tensor (B, 2, 2, {len(classes)}), got "
                            f"{type(place_labels).__name__} {getattr(place_labels, 'dtype', '')}.")  # fmt: skip
        if tuple(place_labels.shape) != (batch, 2, 2, len(classes)):
            raise ValueError(f"place_labels: expected shape ({batch}, 2, 2, {len(classes)}), got "
                             f"{tuple(place_labels.shape)}.")  # fmt: skip
        low = place_labels.amin(dim=(0, 1, 2))
        high = place_labels.amax(dim=(0, 1, 2))
        limit = torch.tensor(classes, device=place_labels.device)
        if bool((low < 0).any() | (high >= limit).any()):
            raise ValueError(f"place_labels: label i must lie in [0, place_label_classes[i]) = {classes}, got "
                             f"minima {low.tolist()} and maxima {high.tolist()}.")  # fmt: skip
        return place_labels.long()

    def discriminator_loss(
        self,
        discriminator: MultiScaleDiscriminator,
        pixel_values: Tensor,
        output: LaviterOutput,
        place_labels: Tensor | None = None,
    ) -> Tensor:
        """Eq. 10 for the discriminators: real images (resized to each stage) against `output.generated_images`
        (detached), conditioned on `output.text_embeds` (and `output.word_embeds`, detached); mismatched = the next
        pair's caption (and, with `discriminator_swapped_halves`, the real images with swapped halves and their own
        captions). With `place_label_classes`, plus the auxiliary classification of the real images against
        `place_labels (B, 2, 2, A)` (weight `lambda_place_labels`)."""
        sentence, words, mask = output.text_embeds.detach(), output.word_embeds, output.word_mask
        places = discriminator.read_places(None if words is None else words.detach(), mask)  # once per step
        wrong = [None if p is None else p.roll(1, 0) for p in places]  # the next pair's caption, place by place
        real = [F.interpolate(pixel_values, size=x.shape[-2:], mode="area") for x in output.generated_images]
        real_scores = discriminator(real, sentence, places=places)
        fake_scores = discriminator([x.detach() for x in output.generated_images], sentence, places=places)
        mismatched = [d(x, sentence.roll(1, 0), places=p)[1] for d, x, p in zip(discriminator, real, wrong)]
        if self.config.discriminator_swapped_halves:  # the same objects at other places: mismatched too
            for dim in (-1, -2):  # left <-> right, top <-> bottom
                swapped = [_swap_halves(x, dim) for x in real]
                scores = discriminator(swapped, sentence, places=places)
                mismatched = [torch.cat([m, c]) for m, (_, c) in zip(mismatched, scores)]
        if self.config.discriminator_exchanged_quadrants:  # the same objects bound to each other's place: mismatched
            six = [None if p is None else p.repeat(6, 1, 1, 1) for p in places]
            scores = discriminator([exchange_quadrants(x) for x in real], sentence.repeat(6, 1), places=six)
            mismatched = [torch.cat([m, c]) for m, (_, c) in zip(mismatched, scores)]
        loss = discriminator_loss(real_scores, fake_scores, mismatched)
        if self.config.discriminator_place_classes:  # AC-GAN, real only
            labels = self._check_place_labels(place_labels, len(pixel_values))
            loss = loss + self.config.lambda_place_labels * discriminator.place_label_loss(real, labels)
        return loss

    # ------------------------------------------------------------------ phases
    def set_phase(self, phase: str, train_image_backbone: bool = True) -> None:
        """What trains (section 4.3): `"vta"` the two encoders; `"generators"` the generator and the captioner on
        the frozen encoders' features; `"joint"` everything but the captioner's first `captioner_frozen_layers`
        layers (and the image backbone when `train_image_backbone=False`, the paper's LAViTeR-(F)). A `"digit_grid"`
        backbone never trains: it is a frozen pretrained network."""
        if phase not in PHASES:
            raise ValueError(f"phase={phase!r}: expected one of {PHASES}.")
        self.phase = phase
        encoders = phase != "generators"
        self.image_encoder.requires_grad_(encoders)
        self.text_encoder.requires_grad_(encoders)
        for name in ("generator", "captioner", "place_classifier"):
            if hasattr(self, name):
                getattr(self, name).requires_grad_(phase != "vta")
        if phase == "joint" and hasattr(self, "captioner"):
            self.captioner.freeze_first_layers(self.config.captioner_frozen_layers)
        backbone = self.config.vision_config.backbone
        frozen_backbone = backbone == "digit_grid" or (backbone == "inception_v3" and phase == "vta")
        if encoders and (not train_image_backbone or frozen_backbone):  # only the output layers train
            self.image_encoder.requires_grad_(False)
            for name in self.image_encoder.output_layers:
                getattr(self.image_encoder, name).requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and getattr(self, "phase", "joint") == "generators":  # frozen encoders keep their statistics
            self.image_encoder.eval()
            self.text_encoder.eval()
        return self

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        pixel_values: Tensor,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        discriminator: MultiScaleDiscriminator | None = None,
        generator: torch.Generator | None = None,
        return_loss: bool = True,
        place_labels: Tensor | None = None,
    ) -> LaviterOutput:
        """The losses of the current phase (`set_phase`) on a batch of paired images and captions; `place_labels
        (B, 2, 2, A)` are needed with `place_label_classes` when a discriminator is given."""
        pixel_values = self._check_image(pixel_values)
        mask = self._text_mask(input_ids, attention_mask)
        check_batch_sizes(pixel_values=pixel_values, input_ids=input_ids)
        c, phase = self.config, self.phase
        if phase == "generators" and not (hasattr(self, "generator") or hasattr(self, "captioner")):
            raise ValueError("phase 'generators': this model has neither a generator nor a captioner to train.")
        vta = return_loss and phase != "generators"
        if vta:  # (B, R, D), (B, D) and the negatives of eq. 8
            (regions, global_features), negatives = self._encode_with_negatives(pixel_values)
        else:
            regions, global_features = self.image_encoder(pixel_values)  # (B, R, D), (B, D)
        words, sentence = self.text_encoder(input_ids, mask)  # (B, L, D), (B, D)
        out = LaviterOutput(image_embeds=global_features, text_embeds=sentence)
        if not return_loss:
            return out
        if vta:
            out.vta_loss = self._vta(words, mask, sentence, regions, global_features, negatives)  # eq. 8
        if self._runs("generator", c.lambda_tim, c.lambda_fake_image):
            if hasattr(self, "place_classifier") or (discriminator is not None and c.place_label_classes):
                place_labels = self._check_place_labels(place_labels, len(pixel_values))
            self._tim(out, pixel_values, input_ids, words, mask, sentence, regions, global_features, discriminator,
                      generator, place_labels)  # fmt: skip
        if self._runs("captioner", c.lambda_itm, c.lambda_fake_text):
            out.caption_logits = self.captioner(regions, input_ids, mask)  # (B, T - 1, V)
            out.itm_loss = self.captioner.loss(out.caption_logits, input_ids)  # eq. 14
            if phase == "joint":
                logits = out.caption_logits
                out.fake_text_loss = self._fake_text_loss(logits, input_ids, mask, regions, global_features)
        out.loss = self._objective(out)
        return out

    def _runs(self, module: str, *joint_weights: float) -> bool:
        """Whether the generator or captioner takes part: built, and trained in this phase (any weight > 0)."""
        if not hasattr(self, module) or self.phase == "vta":
            return False
        return self.phase == "generators" or any(w > 0 for w in joint_weights)

    def _tim(
        self,
        out,
        real_pixels,
        input_ids,
        words,
        mask,
        sentence,
        real_regions,
        real_global,
        discriminator,
        generator,
        place_labels,
    ) -> None:
        """L_TIM (eq. 11) = L_G (eq. 9, when a discriminator is given) + λ L_fi-rt + KL, with L_fi-rt (eq. 15);
        plus the redescription, image-match and pixel terms when their weights are > 0, and the auxiliary
        classification of the generated images (with `place_label_classes`: by the discriminators when one is
        given, or by the region classifier, whose classification of the real regions joins the loss too)."""
        c = self.config
        noise = self._noise(len(words), generator, words.device)
        images, mu, logvar = self.generator(noise, sentence, words, mask, generator)
        out.generated_images = tuple(images)
        out.word_embeds, out.word_mask = words, mask
        # the last stage's images only (section 3.2): (B, R, D), (B, D), and their negatives
        (fake_regions, fake_global), negatives = self._encode_with_negatives(images[-1])
        out.fake_image_loss = self._vta(words, mask, sentence, fake_regions, fake_global, negatives)  # L_fi-rt
        out.kl_loss = kl_to_standard_normal(mu, logvar)
        out.tim_loss = c.lambda_fake_image_damsm * out.fake_image_loss + out.kl_loss
        if c.lambda_redescription > 0 or c.lambda_image_match > 0 or hasattr(self, "place_classifier"):
            # read with fixed weights: (B, R, D), (B, D)
            regions, fixed_global = fake_regions, fake_global  # phase 2 (a frozen encoder): the same reading
            if any(p.requires_grad for p in self.image_encoder.parameters()):
                regions, fixed_global = self._fixed(self.image_encoder, images[-1])
        if c.lambda_redescription > 0:
            out.redescription_loss = self._redescription_loss(regions, input_ids, mask)
            out.tim_loss = out.tim_loss + c.lambda_redescription * out.redescription_loss
        if c.lambda_image_match > 0:
            exchanged = None
            if c.image_match_exchanged_quadrants:  # the real images' quadrants exchanged pair by pair: (6B, D)
                with torch.no_grad():
                    exchanged = self._encode_exchanged(real_pixels)[1]
            out.image_match_loss = self._image_match_loss(fixed_global, real_global, exchanged)
            out.tim_loss = out.tim_loss + c.lambda_image_match * out.image_match_loss
        if c.lambda_pixel > 0:
            out.pixel_loss = _pixel_loss(images, real_pixels)
            out.tim_loss = out.tim_loss + c.lambda_pixel * out.pixel_loss
        if hasattr(self, "place_classifier"):  # learnt on the real regions; the generated ones read by fixed weights
            real_logits = self.place_classifier(real_regions.detach())  # (B, R, sum(classes))
            out.place_classifier_loss = self._place_label_loss(real_logits, place_labels)
            out.place_label_loss = self._place_label_loss(self._fixed(self.place_classifier, regions), place_labels)
            out.tim_loss = out.tim_loss + c.lambda_place_labels * (out.place_label_loss + out.place_classifier_loss)
        if discriminator is not None:
            scores = discriminator(images, sentence, words, mask)
            out.generator_adversarial_loss = generator_adversarial_loss(scores)  # eq. 9
            out.tim_loss = out.tim_loss + out.generator_adversarial_loss
            if c.discriminator_place_classes:  # AC-GAN: as their captions say
                out.place_label_loss = discriminator.place_label_loss(images, place_labels)
                out.tim_loss = out.tim_loss + c.lambda_place_labels * out.place_label_loss

    def _place_label_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The region classifier's cross-entropy: ``logits (B, R, sum(classes))`` of the region features against
        ``labels (B, 2, 2, A)``, each label's term averaged over the quadrants, then over the labels."""
        quadrants = self._quadrants(logits)  # (B, 4, sum(classes))
        parts = quadrants.float().split(self.config.place_label_classes, dim=-1)
        flat = labels.view(len(labels), 4, -1)  # (B, 4, A): upper left, upper right, lower left, lower right
        return sum(F.cross_entropy(z.transpose(1, 2), flat[..., i]) for i, z in enumerate(parts)) / len(parts)

    def _quadrants(self, per_region: Tensor) -> Tensor:
        """``(B, R, X)`` per region -> ``(B, 4, X)`` per quadrant (row-major): the digit grid's first four regions
        are its quadrant crops; a square grid of regions is average-pooled to 2x2."""
        if self.config.vision_config.backbone == "digit_grid":
            return per_region[:, :4]
        b, r, x = per_region.shape
        side = int(round(r**0.5))
        grid = per_region.transpose(1, 2).reshape(b, x, side, side)  # (B, X, s, s)
        return F.adaptive_avg_pool2d(grid, 2).flatten(2).transpose(1, 2)  # (B, 4, X)

    def _fixed(self, module: nn.Module, *args):
        """``module(*args)`` with its weights detached: gradients reach ``args`` only (the generator's images)."""
        return functional_call(module, {name: p.detach() for name, p in module.named_parameters()}, args)

    def _redescription_loss(self, regions: Tensor, input_ids: Tensor, mask: Tensor) -> Tensor:
        """The captioner's eq. 14 on the generated images' ``regions (B, R, D)`` (read with fixed weights) and their
        real captions, with the captioner's weights detached too (MirrorGAN's redescription): the generator learns
        from it (in the joint phase also the text encoder that conditions it), the captioner from real images
        alone."""
        logits = self._fixed(self.captioner, regions, input_ids, mask)  # (B, T - 1, V)
        return self.captioner.loss(logits, input_ids)

    def _image_match_loss(self, fake_global: Tensor, real_global: Tensor, exchanged: Tensor | None = None) -> Tensor:
        """XMC-GAN's image-to-image contrastive term: each generated image's global feature ``(B, D)`` (read with
        fixed weights) must be nearer its own pair's real image than the batch's other real images (InfoNCE, cosine
        over a temperature of 0.1 as XMC-GAN) and, given ``exchanged`` ``(6B, D)`` (the real images' features with
        two quadrants exchanged, pair by pair), than its own real image with any two quadrants exchanged. The real
        features are targets (detached)."""
        fake, real = F.normalize(fake_global.float(), dim=-1), F.normalize(real_global.detach().float(), dim=-1)
        logits = fake @ real.T / 0.1  # (B, B)
        if exchanged is not None:  # (B, 6): each image against its own exchanged versions
            own = F.normalize(exchanged.detach().float(), dim=-1).view(6, len(fake), -1)  # (6, B, D)
            logits = torch.cat([logits, torch.einsum("bd,kbd->bk", fake, own) / 0.1], dim=1)  # (B, B + 6)
        return F.cross_entropy(logits, torch.arange(len(fake), device=fake.device))

    def _fake_text_loss(self, logits, input_ids, mask, regions, global_features) -> Tensor:
        """L_ri-ft (eq. 15): the captioner's word distributions, after [BOS], read by the text encoder as a caption
        (the expected word embedding) and matched with the real images. The distributions are detached: a generated
        caption is a sample, so this loss trains the encoders and the captioner learns from L_ITM alone (section
        4.4: "L_G and L_ITM are only used for necessary updates in G and ITM"). Letting it reach the captioner, with
        λ4 = 1 against λ2 = 0.1, wrecked the captions on Caption MNIST (the `joint-soft-captions` results row)."""
        bos = F.one_hot(input_ids[:, :1], self.config.text_config.vocab_size).to(logits.dtype)  # (B, 1, V)
        probs = torch.cat([bos, logits.softmax(-1).detach()], dim=1)  # (B, T, V)
        mask = mask[:, : probs.shape[1]]
        fake_words, fake_sentence = self.text_encoder(None, mask, word_probs=probs)
        return self._vta(fake_words, mask, fake_sentence, regions, global_features)

    def _objective(self, out: LaviterOutput) -> Tensor:
        c = self.config
        if self.phase == "vta":
            return out.vta_loss
        if self.phase == "generators":
            return sum(x for x in (out.tim_loss, out.itm_loss) if x is not None)
        terms = [
            (c.lambda_tim, out.tim_loss),
            (c.lambda_itm, out.itm_loss),
            (c.lambda_fake_image, out.fake_image_loss),
            (c.lambda_fake_text, out.fake_text_loss),
            (c.lambda_vta, out.vta_loss),
        ]
        return sum(w * x for w, x in terms if x is not None and w > 0)  # eq. 16
