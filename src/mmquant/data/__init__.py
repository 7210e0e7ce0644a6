"""Data helpers: transforms, collate, tokenizer helpers, and synthetic tiny data for tests and smoke runs."""

from .synthetic import synthetic_images

__all__ = ["synthetic_images"]
