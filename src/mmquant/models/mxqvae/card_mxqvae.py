"""What the model card of an MXQ-VAE checkpoint says (read by :mod:`mmquant.hub.cards` through the registry): a
stage-1 model, or the pipeline folder (``stage1/``, ``prior/``, ``tokenizer/``) it is published as."""

from __future__ import annotations

from ..card_info import ModelCardInfo, parameter_count

__all__ = ["MXQVAE_CARD"]


def _corruption_scope(config, tokenizer) -> str:
    """What text corruption picks and does, for the card's "training masks" row."""
    if not config.text_corruption_groups:
        return " of all tokens, to [MASK]"
    words = " / ".join(" ".join(tokenizer.convert_ids_to_tokens(g)) for g in config.text_corruption_groups)
    return (
        f" of the words {words}, {1 - config.text_replace_ratio:.0%} to [MASK] and {config.text_replace_ratio:.0%}"
        " to another word of their group"
    )


class MXQVAECardInfo(ModelCardInfo):
    def pipeline_details(
        self, stage1, prior, tokenizer, repo_id: str, caption_prior=None
    ) -> tuple[list[tuple[str, str]], str]:
        """Model-details rows and a usage snippet for an ``MXQVAEPipeline`` folder of ``stage1``, ``prior`` and
        ``tokenizer`` (and the optional text -> image ``caption_prior``)."""
        c, p = stage1.config, prior.config
        q_type, masks = c.quantizer_config["type"], (c.image_mask_ratio, c.image_mask_patch_size, c.text_mask_ratio)
        rows = [
            ("pipeline", "`MXQVAEPipeline` (diffusers `DiffusionPipeline`): `stage1/`, `prior/`, `tokenizer/`"
             + (", `caption_prior/`" if caption_prior is not None else "")),
            ("stage 1", f"`MXQVAEModel`, {parameter_count(stage1)} parameters, fusion `{c.fusion}`"),
            ("prior", f"`MXQVAEPriorForCausalLM` (GPT-2, {p.n_layer} layers, width {p.n_embd}), "
             f"{parameter_count(prior)} parameters"),
            ("codebook", f"{c.codebook_size} codes of dimension {c.hidden_size}, quantizer `{q_type}`"),
            ("joint codes", f"{c.num_tokens} per pair: {c.num_image_tokens} image + {c.text_latent_length} text "
             "slots"),
            ("image", f"{c.image_size}×{c.image_size} RGB, values in [-1, 1]"),
            ("caption", f"up to {c.max_text_length} tokens, word-level vocabulary of {len(tokenizer)}"),
            ("training masks", "image masking {:.0%} of {}px patches, text corruption {:.0%}".format(*masks)
             + _corruption_scope(c, tokenizer)),
        ]  # fmt: skip
        if caption_prior is not None:
            q = caption_prior.config
            rows.insert(3, (
                "caption prior (text -> image, not in the paper)",
                f"`caption_prior/`: `MXQVAEPriorForCausalLM` (GPT-2, {q.n_layer} layers, width {q.n_embd}), "
                f"{parameter_count(caption_prior)} parameters, over the caption's {c.max_text_length} token ids then "
                "the pair's codes; `pipe(caption=...)` samples from it",
            ))  # fmt: skip
        if c.text_only_ratio or c.image_only_ratio:  # what the conditional-generation issue added to the paper
            rows.append((
                "departures from the paper",
                f"{c.text_only_ratio:.0%} of each stage-1 batch encoded from the caption alone (blank image) and "
                f"{c.image_only_ratio:.0%} from the image alone (all-[MASK] caption), their prefix codes pulled to "
                f"the pair's (weight {c.prefix_consistency_weight:g}), so that text->image and image->text prefixes "
                "are what stage 1 was trained on; sampling may add classifier-free-style guidance "
                "(`guidance_scale`, the prior's other order as the unconditional branch)",
            ))  # fmt: skip
        usage = f"""import mmquant  # registers the model classes
from mmquant.pipelines import MXQVAEPipeline

pipe = MXQVAEPipeline.from_pretrained("{repo_id}")
out = pipe(num_samples=8, seed=0)          # out.images (PIL), out.captions (str)
out = pipe(caption="The red 7 is on the upper left, and the 3 on the bottom right is blue.")  # text -> image
MXQVAEPipeline.save_grid(out, "pairs.png")"""
        return rows, usage


MXQVAE_CARD = MXQVAECardInfo(
    description=(
        "An MXQ-VAE image-text pair generator: a stage-1 multimodal cross quantizer turns an image and its "
        "caption into one joint code sequence, and a stage-2 GPT-2 prior samples such sequences, which stage 1 "
        "decodes into an image and a caption at once."
    ),
    task=("any-to-any", "image-text pair generation"),
    tags=("vector-quantization", "image-text", "text-to-image", "image-captioning", "mxq-vae", "mmquant"),
    limitations=(
        "Trained on synthetic Caption MNIST pairs only, on a CPU budget far below the paper's; captions follow "
        "the dataset's templates. Semantic consistency is read by a small judge network trained on the same data."
    ),
    citation="""@inproceedings{lee2022unconditional,
    title     = {Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer},
    author    = {Hyungyung Lee and Sungjin Park and Joonseok Lee and Edward Choi},
    booktitle = {NeurIPS 2022 Workshop on Vision Transformers: Theory and Applications},
    year      = {2022}
}""",
)
