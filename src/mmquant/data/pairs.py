"""Image–caption datasets as in-memory tensors for the training scripts: every image as uint8 ``(N, 3, H, W)`` and
every caption tokenized to ``(N, L)`` once, so training draws batches by index without a DataLoader."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["CaptionPairs", "load_caption_mnist_pairs", "tokenize_captions"]


@dataclass
class CaptionPairs:
    """``images`` uint8 ``(N, 3, H, W)``, ``input_ids`` int64 ``(N, L)``, the ``captions`` and the dataset rows'
    other columns (``extra``, e.g. Degree fields) as lists."""

    images: torch.Tensor
    input_ids: torch.Tensor
    captions: list[str]
    extra: dict

    def __len__(self) -> int:
        return len(self.captions)

    def head(self, n: int) -> CaptionPairs:
        """The first ``n`` pairs."""
        return CaptionPairs(
            self.images[:n], self.input_ids[:n], self.captions[:n], {k: v[:n] for k, v in self.extra.items()}
        )

    def resized(self, size: int) -> CaptionPairs:
        """The same pairs with images area-resized to ``size`` x ``size``."""
        import torch.nn.functional as F

        if self.images.shape[-1] == size and self.images.shape[-2] == size:
            return self
        images = F.interpolate(self.images.float(), size=(size, size), mode="area").round().clamp(0, 255)
        return CaptionPairs(images.to(torch.uint8), self.input_ids, self.captions, self.extra)

    def image_array(self, index: int) -> np.ndarray:
        """Image ``index`` as a contiguous ``(H, W, 3)`` uint8 array (what the pipelines take as ``image=``)."""
        return np.ascontiguousarray(self.images[index].permute(1, 2, 0).numpy())

    def pixel_values(self, index) -> torch.Tensor:
        """Float ``(B, 3, H, W)`` in [-1, 1] of the rows ``index``."""
        return self.images[index].float() / 127.5 - 1.0

    @classmethod
    def from_dataset(cls, dataset, tokenizer, max_length: int, extra_columns=()) -> CaptionPairs:
        images = torch.from_numpy(np.stack([np.asarray(im.convert("RGB")) for im in dataset["image"]]))
        captions = list(dataset["caption"])
        return cls(
            images=images.permute(0, 3, 1, 2).contiguous(),
            input_ids=tokenize_captions(tokenizer, captions, max_length),
            captions=captions,
            extra={c: list(dataset[c]) for c in extra_columns},
        )


def tokenize_captions(tokenizer, captions: list[str], max_length: int) -> torch.Tensor:
    """``(N, max_length)`` token ids; a caption longer than ``max_length`` tokens is an error naming it. No captions
    give a ``(0, max_length)`` tensor."""
    if isinstance(captions, str):
        raise TypeError("captions: expected a list of caption strings, got a single string.")
    if not captions:
        return torch.empty(0, max_length, dtype=torch.long)
    ids = tokenizer(list(captions), padding="max_length", max_length=max_length, truncation=False)["input_ids"]
    for i, row in enumerate(ids):
        if len(row) > max_length:
            raise ValueError(
                f"captions[{i}] has {len(row)} tokens, more than max_length={max_length}: {captions[i]!r}; raise the "
                "model's max_text_length."
            )
    return torch.tensor(ids, dtype=torch.long)


def load_caption_mnist_pairs(
    config_name: str,
    num_examples: dict[str, int],
    max_length: int,
    cache_dir: str | None = None,
    tokenizer=None,
):
    """Caption MNIST splits (generated offline, cached) as :class:`CaptionPairs`, with the word-level tokenizer
    trained on the training captions plus the grammar's closed vocabulary (so every configuration shares it), unless
    a ``tokenizer`` is given. Returns ``(tokenizer, {split: CaptionPairs})``; ``num_examples`` names the splits."""
    from .builders import build_dataset
    from .caption_grammar import caption_vocabulary
    from .caption_mnist import DEFAULT_COLORS
    from .tokenizer import train_caption_tokenizer

    ds = build_dataset("caption_mnist", config_name, cache_dir=cache_dir, num_examples=dict(num_examples))
    if tokenizer is None:
        if "train" not in ds:
            raise ValueError("num_examples: without a tokenizer, a 'train' split is needed to train one.")
        tokenizer = train_caption_tokenizer(
            ds["train"]["caption"], model_max_length=max_length, extra_words=caption_vocabulary(DEFAULT_COLORS)
        )
    return tokenizer, {split: CaptionPairs.from_dataset(ds[split], tokenizer, max_length) for split in num_examples}
