"""Image–text pair generation with MXQ-VAE as a diffusers pipeline: the stage-2 prior samples a joint code sequence
and the stage-1 model decodes it into an image and a caption. Saved and loaded as one folder.

    pipe = MXQVAEPipeline.from_pretrained("checkpoints/mxqvae-caption-mnist-quad4")
    out = pipe(num_samples=8, seed=0)                             # unconditional pairs
    out = pipe(caption="The red 7 is on the upper left, ...")    # text -> image (the caption's codes prefix)
    out = pipe(image=pil_image)                                  # image -> text (the image's codes prefix)
    out.images, out.captions; pipe.save_grid(out, "pairs.png")
    pipe.register_to_config(default_temperature=0.7)             # the temperature a call without one uses (saved)
    out = pipe(num_samples=8, seed=0, **MXQVAEPipeline.PAPER_SAMPLING)  # the paper's procedure: prior samples only

Three sampling steps, on by default, are not in the paper (``PAPER_SAMPLING`` turns them off):

* ``text_temperature=0.2``: the caption's codes, which come after the image's, are sampled at a low temperature,
  so that the sampled caption is well formed (the template of the caption).
* ``refine=True``: the pair is encoded once more by stage 1, with the image kept, and the caption is decoded from
  the new text-position codes. Stage 1 is trained with text corruption (TC: digit and colour words masked or
  replaced), so its encoder takes those words from the image: the caption is rewritten to say what the image shows.
  With a ``caption`` given (text -> image) the input caption is the template, so the returned caption is stage 1's
  reading of the generated image in the words of the input. The returned image and caption are both decoded from
  the returned codes (the image codes are the prior's; the decoder reads every position, so the image can differ by
  a few levels from the one the prior's codes alone decode to).
* ``caption_drafts=16`` (unconditional and image -> text): the caption's codes are drawn that many times after the
  image's (at ``text_temperature``), each draft is refined, and the pipeline keeps the draft on which the prior's two
  orders agree best: the largest ``log p(text codes | image codes) + log p(image codes | text codes)`` (teacher
  forcing, :meth:`~mmquant.models.mxqvae.MXQVAEPriorForCausalLM.code_log_probs`). A small prior sometimes writes a
  caption that names one quadrant twice; such a draft, once refined, is one that the prior itself finds unlikely.
* ``caption_grammar="caption_mnist"`` (a pipeline option saved in ``model_index.json``; the shipped Caption MNIST
  pipelines set it): among the drafts, those whose caption parses in the Caption MNIST grammar
  (:func:`mmquant.data.caption_grammar.parse_caption`: known words, each quadrant named once) are preferred, and the
  prior's score picks among them; a row with no such draft keeps the best-scored one. The prior likes to repeat an
  object under a synonym of its place ("the red 7 is on the upper right, and the red 7 is on the top right"), which
  its score alone does not rule out. Only the caption's wording is checked: no image reader takes part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from ..data.collate import image_to_tensor
from ..data.pairs import tokenize_captions
from ..limits import MAX_NUM_SAMPLES, check_int, check_seed, check_temperature

__all__ = ["MXQVAEPipeline", "MXQVAEPipelineOutput"]

MAX_CAPTION_DRAFTS = 256  # captions drawn per image with `caption_drafts`
CAPTION_GRAMMARS = ("caption_mnist",)  # the values of `caption_grammar`


def _parses(caption: str) -> bool:
    """Whether `caption` is a Caption MNIST caption (`caption_grammar="caption_mnist"`)."""
    from ..data.caption_grammar import CaptionParseError, parse_caption
    from ..data.caption_mnist import COLORS

    try:
        parse_caption(caption, tuple(COLORS))
    except CaptionParseError:
        return False
    return True


def _register_with_diffusers() -> None:
    """Let diffusers save the components as ``["mmquant", "<class>"]`` in ``model_index.json`` and load them back
    with their ``from_pretrained`` (from a folder or a Hub repo, without remote code)."""
    from diffusers.pipelines import pipeline_loading_utils

    methods = ["save_pretrained", "from_pretrained"]
    classes = {"MXQVAEModel": methods, "MXQVAEPriorForCausalLM": methods}
    pipeline_loading_utils.LOADABLE_CLASSES.setdefault("mmquant", {}).update(classes)
    pipeline_loading_utils.ALL_IMPORTABLE_CLASSES.update(classes)


_register_with_diffusers()


@dataclass
class MXQVAEPipelineOutput(BaseOutput):
    """Generated pairs: PIL `images`, `captions` (strings) and the joint `codes` `(N, num_tokens)` behind them."""

    images: list
    captions: list[str]
    codes: torch.Tensor


class MXQVAEPipeline(DiffusionPipeline):
    r"""Sample image–caption pairs from an MXQ-VAE stage-1 model (`stage1`), its prior (`prior`) and the caption
    tokenizer (`tokenizer`); with a caption-conditioned prior (`caption_prior`, optional) text -> image samples from
    it. A pipeline with `caption_prior` and `prior=None` generates images from captions only."""

    #: the paper's sampling: temperature 1, the prior's codes decoded as they are (see the module docstring)
    PAPER_SAMPLING = {"temperature": 1.0, "text_temperature": None, "refine": False, "caption_drafts": 1}
    _optional_components = ["prior", "caption_prior"]

    def __init__(
        self,
        stage1,
        prior,
        tokenizer,
        caption_prior=None,
        default_temperature: float = 1.0,
        caption_grammar: str | None = None,
    ):
        super().__init__()
        check_temperature(default_temperature, "default_temperature")
        if caption_grammar is not None and caption_grammar not in CAPTION_GRAMMARS:
            raise ValueError(f"caption_grammar={caption_grammar!r}: expected None or one of {CAPTION_GRAMMARS}.")
        if caption_prior is not None and not caption_prior.config.caption_vocab_size:
            raise ValueError("caption_prior: expected a caption-conditioned prior (config.caption_vocab_size > 0).")
        if prior is None and caption_prior is None:
            raise ValueError(
                "prior and caption_prior: give at least one (the joint prior, the caption-conditioned one)."
            )
        self.register_modules(stage1=stage1, prior=prior, tokenizer=tokenizer, caption_prior=caption_prior)
        # sampling defaults saved in model_index.json: the temperature of a call without one, the drafts' grammar
        self.register_to_config(default_temperature=float(default_temperature), caption_grammar=caption_grammar)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """diffusers' loading, after checking that every JSON file of a local pipeline folder (``model_index.json``,
        the components' configs, ``tokenizer/tokenizer.json``, ...) is readable JSON: an empty or corrupt file is an
        ``OSError`` naming it, not a bare ``JSONDecodeError`` from inside the tokenizer library."""
        folder = Path(str(pretrained_model_name_or_path))
        if folder.is_dir():
            for path in sorted(folder.rglob("*.json")):
                try:
                    json.loads(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, ValueError) as err:
                    state = "is empty" if path.stat().st_size == 0 else f"is not valid JSON ({err})"
                    raise OSError(
                        f"pretrained_model_name_or_path={str(folder)!r}: {path} {state}; save the pipeline again "
                        "or re-download it."
                    ) from err
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def _caption_ids(self, caption: str) -> torch.Tensor:
        """`caption` as stage-1 token ids `(1, max_text_length)`, refusing words the tokenizer does not know."""
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(f"caption: expected a non-empty string, got {caption!r}.")
        ids = tokenize_captions(self.tokenizer, [caption], self.stage1.config.max_text_length).to(self.stage1.device)
        unk = self.tokenizer.unk_token_id
        if unk is not None and (ids == unk).any():  # conditioning on [UNK] would give an unrelated image
            enc = self.tokenizer(caption, return_offsets_mapping=True)
            unknown = [caption[a:b] for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]) if i == unk]
            raise ValueError(f"caption: words not in the tokenizer's vocabulary: {unknown}; use the captions' words.")
        return ids

    def _prefix_from_caption(self, caption: str | torch.Tensor) -> torch.Tensor:
        """The text-position codes of `caption` (a string, or its `_caption_ids`) encoded alone
        (`stage1.text_only_inputs`: a blank image): `(1, T)`."""
        ids = self._caption_ids(caption) if isinstance(caption, str) else caption
        codes = self.stage1.encode_to_indices(*self.stage1.text_only_inputs(ids))  # (1, N)
        return codes[:, self.stage1.config.num_image_tokens :]

    def _image_tensor(self, image) -> torch.Tensor:
        """A PIL image or array of the model's size as `(1, C, H, W)` in [-1, 1] on the model's device."""
        c = self.stage1.config
        return image_to_tensor(image, c.image_size, resize=False, name="image")[None].to(self.stage1.device)

    def _prefix_from_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The image-position codes of `pixel_values` `(1, C, H, W)` encoded alone (`stage1.image_only_inputs`: an
        all-[MASK] caption): `(1, h*w)`."""
        codes = self.stage1.encode_to_indices(*self.stage1.image_only_inputs(pixel_values))  # (1, N)
        return codes[:, : self.stage1.config.num_image_tokens]

    def _refined_codes(self, codes: torch.Tensor, pixel_values=None, template=None) -> torch.Tensor:
        """`refine`: the image-position `codes` `(B, N)` kept, the text positions replaced by those of stage 1
        encoding (image, template): the image is `pixel_values` `(1, C, H, W)` (image -> text) or else the one
        `codes` decode to; the template is `template` `(1, L)` caption ids (text -> image) or else the caption
        `codes` decode to."""
        c = self.stage1.config
        decoded, token_ids = self.stage1.decode_indices(codes)
        pixel_values = decoded if pixel_values is None else pixel_values.expand(len(codes), -1, -1, -1)
        template = token_ids if template is None else template.to(codes.device).expand(len(codes), -1)
        empty = (template == c.pad_token_id).all(1)  # a sampled caption of padding only: the image-only caption
        if empty.any():
            template = template.clone()
            template[empty] = self.stage1.image_only_inputs(pixel_values[empty])[1]
        encoded = self.stage1.encode_to_indices(pixel_values.to(self.stage1.dtype), template)  # (B, N)
        return torch.cat([codes[:, : c.num_image_tokens], encoded[:, c.num_image_tokens :]], 1)

    def _best_caption_draft(self, codes, pixel_values, caption_drafts: int, refine: bool, sampling: dict):
        """`caption_drafts`: for each row of `codes` `(B, N)`, `caption_drafts - 1` more captions drawn after its
        image codes (`sampling`: the prior's sampling arguments); every draft refined (with `refine`) and the one
        whose codes the prior's two orders find most likely kept: `(B, N)`."""
        rows = max(1, MAX_NUM_SAMPLES // caption_drafts)  # the prior samples at most MAX_NUM_SAMPLES sequences a call
        if len(codes) > rows:
            chunks = codes.split(rows)
            return torch.cat(
                [self._best_caption_draft(c, pixel_values, caption_drafts, refine, sampling) for c in chunks]
            )
        n_img, b = self.stage1.config.num_image_tokens, len(codes)
        more = self.prior.sample_codes(caption_drafts - 1, prefix=codes[:, :n_img], **sampling)  # grouped by row
        drafts = torch.cat([codes[:, None], more.to(codes.device).view(b, caption_drafts - 1, -1)], 1)
        drafts = drafts.flatten(0, 1)  # (B * drafts, N)
        if refine:
            drafts = self._refined_codes(drafts, pixel_values)
        # log p(text | image) + log p(image | text), each under its order: (B, drafts)
        score = self.prior.code_log_probs(drafts)[:, n_img:].sum(1)
        score = (score + self.prior.code_log_probs(drafts, text_first=True)[:, :n_img].sum(1)).view(b, caption_drafts)
        best = score.argmax(1)  # (B,)
        if self.config.caption_grammar is not None:  # the best draft among those that parse
            captions = self.tokenizer.batch_decode(self.stage1.decode_indices(drafts)[1], skip_special_tokens=True)
            ok = torch.tensor([_parses(c) for c in captions], device=score.device).view(b, caption_drafts)
            best = torch.where(ok.any(1), score.masked_fill(~ok, float("-inf")).argmax(1), best)
        return drafts.view(b, caption_drafts, -1)[torch.arange(b, device=drafts.device), best]

    @torch.no_grad()
    def __call__(
        self,
        num_samples: int = 4,
        caption: str | None = None,
        image=None,
        temperature: float | None = None,
        top_k: int | None = 10,
        top_p: float | None = None,
        seed: int | None = None,
        use_cache: bool = True,
        guidance_scale: float | None = None,
        text_temperature: float | None = 0.2,
        refine: bool = True,
        caption_drafts: int = 16,
    ) -> MXQVAEPipelineOutput:
        """Sample `num_samples` pairs: unconditionally, or completing a given `caption` (text -> image) or a given
        `image` (image -> text; a PIL image or array of the model's image size). `guidance_scale` (with a caption or
        an image; not in the paper): classifier-free-style guidance of the prior towards it (1 or None: none).
        `temperature`: of the image's codes (and of the caption's where `text_temperature` is None); None: the
        pipeline's `config.default_temperature` (1.0 unless the pipeline was saved with another).

        `text_temperature` (not in the paper): temperature of the caption's codes when they follow the image's
        (unconditional and image -> text; None: `temperature`). `refine` (not in the paper): stage 1 encodes the
        sampled pair once more and the caption is decoded from those text-position codes (see the module
        docstring). `caption_drafts` (unconditional and image -> text; not in the paper): captions drawn per image,
        the one the prior's two orders agree on best kept (see the module docstring; 1: one caption).
        `PAPER_SAMPLING` turns these three off (and samples at temperature 1)."""
        if caption is not None and image is not None:
            raise ValueError("caption and image: give at most one of them (the other is generated).")
        # every user-given number is checked before the prior allocates its (num_samples, tokens) buffers and cache
        check_int(num_samples, "num_samples", 1, MAX_NUM_SAMPLES, "call the pipeline again for more samples")
        if seed is not None:
            check_seed(seed)
        temperature = self.config.default_temperature if temperature is None else check_temperature(temperature)
        if not isinstance(refine, bool):
            raise TypeError(f"refine={refine!r}: expected True or False.")
        check_int(caption_drafts, "caption_drafts", 1, MAX_CAPTION_DRAFTS)
        if self.prior is None and caption is None:  # (then it has a caption prior: __init__)
            raise ValueError(
                "This pipeline has no joint prior (prior=None), only a caption-conditioned one: it generates images "
                "from captions; call it with caption=..."
            )
        self.stage1.eval()
        prefix, text_first, pixel_values, caption_ids, conditioning = None, False, None, None, None
        prior = self.prior.eval() if self.prior is not None else None
        if caption is not None:  # text -> image; the ids are also the refinement's template
            caption_ids = self._caption_ids(caption)
            if self.caption_prior is not None:  # sampled by the caption-conditioned prior
                conditioning, prior = caption_ids, self.caption_prior.eval()
            else:
                prefix, text_first = self._prefix_from_caption(caption_ids), True
        elif image is not None:
            pixel_values = self._image_tensor(image)
            prefix = self._prefix_from_image(pixel_values)
        codes = prior.sample_codes(
            num_samples,
            prefix=prefix,
            text_first=text_first,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            use_cache=use_cache,
            generator_seed=seed,
            guidance_scale=guidance_scale,
            text_temperature=None if text_first else text_temperature,
            caption_ids=conditioning,
        )
        codes = codes.to(self.stage1.device)
        drafted = caption is None and caption_drafts > 1
        if drafted:
            sampling = dict(temperature=text_temperature or temperature, top_k=top_k, top_p=top_p)
            sampling |= dict(use_cache=use_cache, guidance_scale=guidance_scale)
            codes = self._best_caption_draft(codes, pixel_values, caption_drafts, refine, sampling)
        elif refine:  # with a caption (text -> image) the input caption is the template
            codes = self._refined_codes(codes, pixel_values, caption_ids)
        images, token_ids = self.stage1.decode_indices(codes)  # the returned pair is decoded from `codes`
        captions = self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)
        pixels = ((images.float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        from PIL import Image

        pil = [Image.fromarray(np.ascontiguousarray(p.numpy())) for p in pixels]
        return MXQVAEPipelineOutput(images=pil, captions=captions, codes=codes.cpu())

    @staticmethod
    def save_grid(output: MXQVAEPipelineOutput, path, columns: int = 4):
        """A PNG grid of the generated images with their captions."""
        from ..data.image_grids import save_captioned_grid

        images = torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in output.images]).float()
        return save_captioned_grid(images / 127.5 - 1, output.captions, path, columns=columns)
