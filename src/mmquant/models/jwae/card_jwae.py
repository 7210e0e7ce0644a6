"""What the model card of a jWAE checkpoint says (read by :mod:`mmquant.hub.cards` through the registry)."""

from __future__ import annotations

from ..card_info import ModelCardInfo

__all__ = ["JWAE_CARD"]


class JWAECardInfo(ModelCardInfo):
    def details(self, config, repo_id: str) -> tuple[list[tuple[str, str]], str]:
        c = config
        pixels = f"{c.image_size}×{c.image_size}, {c.in_channels} channels, values in [-1, 1]"
        image = {
            "pixels": pixels,
            "grid_features": f"{pixels}, read by a frozen pretrained digit CNN per quadrant and colour channel "
            f"({c.encoded_feature_dim} features)",
            "features": f"precomputed {c.image_feature_dim}-d features",
        }[c.image_input]
        ranking = {"max_hinge": f"max-hinge, margin {c.margin}", "mse": "MSE (jWAE-MSE)", "none": "none"}
        weights = (
            c.lambda_image_reconstruction,
            c.lambda_text_reconstruction,
            c.lambda_image_prior,
            c.lambda_text_prior,
        )
        rows = [
            ("latent space", f"{c.latent_dim}-d, prior N(0, I)"),
            ("image input", image),
            ("caption", f"up to {c.max_text_length} tokens, GRU of width {c.text_hidden_size}"),
            ("ranking loss", ranking[c.ranking_loss]),
            ("λ1..λ4", ", ".join(f"{w:g}" for w in weights)),
        ]
        usage = f"""import torch
import mmquant  # registers the model classes
from transformers import AutoModel, AutoTokenizer
from mmquant.metrics.retrieval import rank_gallery

model = AutoModel.from_pretrained("{repo_id}").eval()
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
captions = ["The red 7 is on the upper left, and the 3 on the bottom right is blue.", "This is white 3."]
ids = tokenizer(captions, padding="max_length", max_length={c.max_text_length}, return_tensors="pt").input_ids
images = torch.rand(1, 3, {c.image_size}, {c.image_size}) * 2 - 1   # your image, scaled to [-1, 1]
with torch.no_grad():
    scores, order = rank_gallery(model.get_image_features(images), model.get_text_features(ids), top_k=2)
print([captions[i] for i in order[0]])"""
        return rows, usage


JWAE_CARD = JWAECardInfo(
    description=(
        "A jWAE joint image-text embedding: an image autoencoder and a caption autoencoder whose latents share "
        "one space, matched to a Gaussian prior by adversarial latent critics and aligned across modalities by "
        "a max-hinge ranking loss with hardest negatives (jWAE-MH), for cross-modal retrieval."
    ),
    task=("feature-extraction", "image-text retrieval"),
    tags=("image-text-retrieval", "joint-embedding", "wasserstein-autoencoder", "jwae", "mmquant"),
    limitations=(
        "Trained on synthetic Caption MNIST pairs on a CPU budget; its captions follow the dataset's templates "
        "and it is not a general image-text model. Retrieval compares the directions of the latents (cosine)."
    ),
    citation="""@inproceedings{mahajan2019joint,
    title     = {Joint Wasserstein Autoencoders for Aligning Multimodal Embeddings},
    author    = {Shweta Mahajan and Teresa Botschen and Iryna Gurevych and Stefan Roth},
    booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision Workshops},
    year      = {2019}
}""",
)
