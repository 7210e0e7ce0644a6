"""Data: the dataset builders' runner, Caption MNIST generation and its caption grammar, the shared caption
tokenizer, the image–caption collator, and synthetic tiny data for tests and smoke runs."""

from .builders import build_dataset, list_builders, load_builder
from .caption_grammar import CaptionObject, CaptionParseError, parse_caption, render_caption
from .collate import ImageCaptionCollator
from .synthetic import synthetic_images
from .tokenizer import build_word_tokenizer, train_caption_tokenizer

__all__ = [
    "CaptionObject",
    "CaptionParseError",
    "ImageCaptionCollator",
    "build_dataset",
    "build_word_tokenizer",
    "list_builders",
    "load_builder",
    "parse_caption",
    "render_caption",
    "synthetic_images",
    "train_caption_tokenizer",
]
