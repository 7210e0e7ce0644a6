"""Image–caption galleries for retrieval training and evaluation: ``N`` images (pixels as uint8, or precomputed
feature vectors) and ``T`` captions with ``text_to_image`` mapping each caption to its image (one caption per image
on Caption MNIST, five on COCO/Flickr30k), every caption tokenized once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .pairs import CaptionPairs, tokenize_captions

__all__ = ["RetrievalPairs"]


@dataclass
class RetrievalPairs:
    """``images`` uint8 ``(N, 3, H, W)`` or ``image_features`` float ``(N, F)``; ``input_ids`` ``(T, L)``,
    ``captions`` (T strings) and ``text_to_image`` ``(T,)`` indices into the images."""

    input_ids: torch.Tensor
    captions: list[str]
    text_to_image: torch.Tensor
    images: torch.Tensor | None = None
    image_features: torch.Tensor | None = None

    def __post_init__(self):
        if (self.images is None) == (self.image_features is None):
            raise ValueError("RetrievalPairs: give exactly one of images (pixels) and image_features.")
        n = self.num_images
        if len(self.input_ids) != len(self.captions) or len(self.text_to_image) != len(self.captions):
            raise ValueError(
                f"RetrievalPairs: input_ids ({len(self.input_ids)}), captions ({len(self.captions)}) and "
                f"text_to_image ({len(self.text_to_image)}) must have one row per caption."
            )
        if len(self.captions) and (self.text_to_image.min() < 0 or self.text_to_image.max() >= n):
            raise ValueError(f"RetrievalPairs: text_to_image must index the {n} images.")

    @property
    def num_images(self) -> int:
        return len(self.images if self.images is not None else self.image_features)

    def __len__(self) -> int:
        """The number of captions (training pairs)."""
        return len(self.captions)

    def image_inputs(self, image_index: torch.Tensor) -> dict:
        """The model's image keyword for images ``image_index``: ``pixel_values`` in [-1, 1] or
        ``image_features``."""
        if self.images is not None:
            return {"pixel_values": self.images[image_index].float() / 127.5 - 1.0}
        return {"image_features": self.image_features[image_index].float()}

    @torch.no_grad()
    def with_image_features(self, encode, batch_size: int = 500) -> RetrievalPairs:
        """The same pairs with every image replaced by ``encode(pixel_values)`` ``(n, F)``, run once in batches:
        e.g. a frozen feature extractor (jWAE's ``model.grid_features``), so that training reads its features
        instead of running it at every step."""
        if self.images is None:
            raise ValueError("RetrievalPairs.with_image_features: these pairs hold features already, not pixels.")
        index = torch.arange(self.num_images)
        features = [encode(**self.image_inputs(index[s : s + batch_size])) for s in range(0, len(index), batch_size)]
        return RetrievalPairs(self.input_ids, self.captions, self.text_to_image, image_features=torch.cat(features))

    def head(self, num_images: int) -> RetrievalPairs:
        """The first ``num_images`` images and all their captions (a smaller gallery, e.g. the 1K test protocol)."""
        keep = self.text_to_image < num_images
        return RetrievalPairs(
            input_ids=self.input_ids[keep],
            captions=[c for c, k in zip(self.captions, keep.tolist()) if k],
            text_to_image=self.text_to_image[keep],
            images=None if self.images is None else self.images[:num_images],
            image_features=None if self.image_features is None else self.image_features[:num_images],
        )

    @classmethod
    def from_caption_pairs(cls, pairs: CaptionPairs) -> RetrievalPairs:
        """One caption per image (Caption MNIST)."""
        return cls(pairs.input_ids, list(pairs.captions), torch.arange(len(pairs)), images=pairs.images)

    @classmethod
    def from_dataset(
        cls, dataset, tokenizer, max_length: int, image_size: int | None = None, image_features=None
    ) -> RetrievalPairs:
        """Rows with ``image`` and a ``captions`` list (the COCO, Flickr30k, Flowers and CUB builders). Images are
        resized to ``image_size`` (bicubic) unless ``image_features`` ``(rows, F)`` are given for them."""
        captions, owner = [], []
        for i, row_captions in enumerate(dataset["captions"]):
            if not row_captions:
                raise ValueError(f"dataset row {i} has no caption.")
            captions += list(row_captions)
            owner += [i] * len(row_captions)
        input_ids = tokenize_captions(tokenizer, captions, max_length)
        text_to_image = torch.tensor(owner, dtype=torch.long)
        if image_features is not None:
            features = torch.as_tensor(np.asarray(image_features), dtype=torch.float32)
            if features.ndim != 2 or len(features) != len(dataset):
                raise ValueError(
                    f"image_features: expected shape ({len(dataset)}, feature_dim), one row per dataset row, got "
                    f"{tuple(features.shape)}."
                )
            return cls(input_ids, captions, text_to_image, image_features=features)
        if image_size is None:
            raise ValueError("image_size: required to resize the images (or pass image_features).")
        from PIL import Image

        images = np.stack(
            [
                np.asarray(im.convert("RGB").resize((image_size, image_size), Image.Resampling.BICUBIC))
                for im in dataset["image"]
            ]
        )
        return cls(
            input_ids, captions, text_to_image, images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        )
