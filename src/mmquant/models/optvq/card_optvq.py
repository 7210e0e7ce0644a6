"""What the model card of an OptVQ checkpoint says (read by :mod:`mmquant.hub.cards` through the registry)."""

from __future__ import annotations

from ..card_info import ModelCardInfo

__all__ = ["OPTVQ_CARD"]


class OptVQCardInfo(ModelCardInfo):
    def details(self, config, repo_id: str) -> tuple[list[tuple[str, str]], str]:
        q = config.quantizer_config
        heads = q.get("num_heads", 1)
        grid = f"{config.latent_size}×{config.latent_size} grid" + (f" × {heads} heads" if heads > 1 else "")
        rows = [
            ("quantizer", q["type"]),
            (
                "codebook",
                f"{q['codebook_size']} codes of dimension {config.embed_dim // heads}"
                + (f", {heads} heads sharing it" if heads > 1 else ""),
            ),  # fmt: skip
            ("tokens per image", f"{config.tokens_per_image} ({grid})"),
            (
                "image size",
                f"{config.image_size}×{config.image_size}, {config.in_channels} channel(s), values in [-1, 1]",
            ),
        ]
        shape = f"(4, {config.latent_size}, {config.latent_size}" + (f", {heads})" if heads > 1 else ")")
        c, n = config.in_channels, config.image_size
        usage = f"""import torch
import mmquant  # registers the model classes
from transformers import AutoModel

model = AutoModel.from_pretrained("{repo_id}").eval()
images = torch.rand(4, {c}, {n}, {n}) * 2 - 1   # your images, scaled to [-1, 1]
indices = model.encode_to_indices(images)        # {shape}
reconstruction = model.decode_indices(indices)   # (4, {c}, {n}, {n})"""
        return rows, usage


OPTVQ_CARD = OptVQCardInfo(
    description=(
        "An image tokenizer trained with OptVQ: codes are assigned by entropic optimal transport (Sinkhorn-Knopp) "
        "over the batch instead of nearest neighbour, so the whole codebook stays in use."
    ),
    task=("image-to-image", "image reconstruction"),
    tags=("vector-quantization", "optimal-transport", "sinkhorn", "image-tokenizer", "mmquant"),
    limitations=(
        "At inference each feature takes its nearest code (Sinkhorn depends on the batch); set "
        "`quantizer.sinkhorn_at_inference = True` to assign by Sinkhorn over the batch instead."
    ),
    citation="""@article{zhang2024preventing,
    title   = {Preventing Local Pitfalls in Vector Quantization via Optimal Transport},
    author  = {Borui Zhang and Wenzhao Zheng and Jie Zhou and Jiwen Lu},
    journal = {ArXiv},
    year    = {2024},
    volume  = {abs/2412.15195}
}""",
)
