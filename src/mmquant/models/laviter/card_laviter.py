"""What the model card of a LAViTeR checkpoint says (read by :mod:`mmquant.hub.cards` through the registry)."""

from __future__ import annotations

from ..card_info import ModelCardInfo

__all__ = ["LAVITER_CARD"]


class LaviterCardInfo(ModelCardInfo):
    def details(self, config, repo_id: str) -> tuple[list[tuple[str, str]], str]:
        c, v, t = config, config.vision_config, config.text_config
        if v.backbone == "digit_grid":
            regions = "5 regions (the quadrants and the pooled canvas), frozen pretrained digit CNN"
        else:
            side = int(v.num_regions**0.5)
            regions = f"{side}×{side} regions"
        weights = (c.lambda_tim, c.lambda_itm, c.lambda_fake_image, c.lambda_fake_text, c.lambda_vta)
        rows = [
            ("image encoder", f"{v.backbone}, {v.image_size}×{v.image_size} images, {regions}"),
            ("text encoder", f"{t.num_layers}-layer transformer, captions up to {t.max_length} tokens"),
            ("features", f"{c.embed_dim}-d; γ1, γ2, γ3 = {c.gamma1:g}, {c.gamma2:g}, {c.gamma3:g}"),
            ("generator", _generator(c)),
            ("captioner", f"{c.captioner_num_layers}-layer encoder and GPT-2 decoder" if c.use_itm else "none"),
            ("λ1..λ5 (eq. 16)", ", ".join(f"{w:g}" for w in weights)),
        ]
        n, length = v.image_size, t.max_length
        usage = f"""import torch
import mmquant  # registers the model classes
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("{repo_id}").eval()
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
images = torch.rand(2, 3, {n}, {n}) * 2 - 1   # your images, scaled to [-1, 1]
captions = tokenizer.batch_decode(model.generate_captions(images), skip_special_tokens=True)
ids = tokenizer(["The red 7 is on the upper left, and the white 3 is on the bottom right."],
                padding="max_length", max_length={length}, return_tensors="pt").input_ids
drawn = model.generate_images(ids, generator=torch.Generator().manual_seed(0))   # (1, 3, {n}, {n})
similarity = torch.cosine_similarity(model.get_image_features(drawn), model.get_text_features(ids))"""
        return rows, usage


def _generator(c) -> str:
    if not c.use_tim:
        return "none"
    stages = ", ".join(f"{s}×{s}" for s in c.generator_sizes)
    attention = [
        "place-aware word attention" if c.generator_attention_positions else "",
        "first stage attends to the words" if c.generator_first_stage_attention else "",
        "its own self-attention over the words" if c.generator_word_context else "",
        "trained against place-reading discriminators" if c.discriminator_place_words else "",
        "swapped-halves negatives" if c.discriminator_swapped_halves else "",
    ]
    return ", ".join([stages, *filter(None, attention)])


LAVITER_CARD = LaviterCardInfo(
    description=(
        "A LAViTeR visual-text alignment model: image and text encoders aligned by DAMSM-style word-region and "
        "sentence-image matching (VTA), trained together with a text-to-image generator (TIM) and an image "
        "captioner (ITM) whose generated images and captions are matched with the real captions and images."
    ),
    task=("feature-extraction", "image-text alignment"),
    tags=("image-text-alignment", "text-to-image", "image-captioning", "laviter", "mmquant"),
    limitations=(
        "Trained on synthetic Caption MNIST pairs on a CPU budget; its captions follow the dataset's templates "
        "and it is not a general image-text model. Three R-precisions are reported and only two can be trusted: "
        "`r_precision@k` ranks captions for a generated image with the model's own encoders, which the joint "
        "phase trains to match generated images with their captions (L_fi-rt, eq. 15), so it measures the "
        "encoders agreeing with the generator rather than what the images show; `judge_r_precision@k` ranks them "
        "by an independent Caption MNIST reader that the training never sees, and `real_r_precision@k` is the "
        "alignment itself, on real test images."
    ),
    citation="""@article{shaikh2021laviter,
    title   = {LAViTeR: Learning Aligned Visual and Textual Representations Assisted by Image and Caption Generation},
    author  = {Mohammad Abuzar Shaikh and Zhanghexuan Ji and Dana Moukheiber and Sargur Srihari and Mingchen Gao},
    journal = {arXiv preprint arXiv:2109.04993},
    year    = {2021}
}""",
)
