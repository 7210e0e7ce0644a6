"""Configuration of the Caption MNIST judge: the classifier that reads which coloured digit sits where on a Caption
MNIST canvas, to score the semantic consistency of generated image-text pairs (MXQ-VAE, Lee et al., "Unconditional
Image-Text Pair Generation with Multimodal Cross Quantizer", Table 2; reference code github.com/ttumyche/MXQ-VAE)."""

from __future__ import annotations

from transformers import PretrainedConfig

from ...data.caption_mnist import COLORS

__all__ = ["CaptionMnistJudgeConfig"]


class CaptionMnistJudgeConfig(PretrainedConfig):
    r"""Configuration of [`CaptionMnistJudgeModel`]: a small CNN that classifies one crop of a Caption MNIST canvas
    into a digit (0-9 or "empty") and a colour.

    The model cuts a canvas into five crops of `image_size // 2` pixels: its four quadrants (in the order of
    `mmquant.data.caption_grammar.QUADRANTS`) and the whole canvas average-pooled by 2 (where a single-layout digit
    sits, scaled down to the size of a quadrant digit). One CNN classifies every crop.

    Args:
        image_size (`int`, *optional*, defaults to 64):
            Height and width of the canvases (Caption MNIST's default); crops are `image_size // 2` pixels.
        hidden_channels (`list[int]`, *optional*, defaults to `[24, 48, 96]`):
            Channels of the three convolution stages (two 3x3 convolutions at full crop size, two after a 2x2
            max-pool, one after another, then global average pooling).
        dropout (`float`, *optional*, defaults to 0.1):
            Dropout before the two classification heads (training only).
        colors (`list[str]`, *optional*, defaults to every colour of `mmquant.data.caption_mnist.COLORS`):
            The colour words the colour head tells apart, in class order.

    Example:
    >>> import mmquant
    >>> from transformers import AutoModel
    >>> config = mmquant.models.caption_mnist_judge.CaptionMnistJudgeConfig(hidden_channels=[8, 8, 8])
    >>> model = AutoModel.from_config(config)
    >>> config.num_digit_classes, config.empty_class, len(config.colors)
    (11, 10, 7)
    """

    model_type = "caption_mnist_judge"

    def __init__(
        self,
        image_size: int = 64,
        hidden_channels: list[int] | tuple[int, ...] = (24, 48, 96),
        dropout: float = 0.1,
        colors: list[str] | tuple[str, ...] | None = None,
        **kwargs,
    ):
        colors = list(COLORS) if colors is None else list(colors)
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16 or image_size % 4:
            raise ValueError(f"image_size={image_size!r}: expected a multiple of 4, at least 16 (Caption MNIST: 64).")
        hidden_channels = list(hidden_channels)
        if len(hidden_channels) != 3 or any(not isinstance(c, int) or c < 1 for c in hidden_channels):
            raise ValueError(f"hidden_channels={hidden_channels!r}: expected three positive channel counts.")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout!r}: expected a probability in [0, 1).")
        unknown = [c for c in colors if c not in COLORS]
        if unknown or len(colors) < 2 or len(set(colors)) != len(colors):
            raise ValueError(f"colors={colors!r}: expected at least two distinct colour words from {tuple(COLORS)}.")
        self.image_size = image_size
        self.hidden_channels = hidden_channels
        self.dropout = dropout
        self.colors = colors
        super().__init__(**kwargs)

    @property
    def crop_size(self) -> int:
        """Side of one crop: a quadrant of the canvas."""
        return self.image_size // 2

    @property
    def num_digit_classes(self) -> int:
        """Ten digits and "empty"."""
        return 11

    @property
    def empty_class(self) -> int:
        """Digit-head class of a crop without a digit."""
        return 10
