"""The Caption MNIST judge: a small CNN that reads which coloured digit sits in each quadrant of a Caption MNIST
canvas (or alone on a single-digit canvas), so that generated image-text pairs can be scored for semantic
consistency as in MXQ-VAE Table 2 (Lee et al., "Unconditional Image-Text Pair Generation with Multimodal Cross
Quantizer"; reference code github.com/ttumyche/MXQ-VAE).

canvas (B, 3, 64, 64) -> 4 quadrant crops + the canvas pooled by 2 = 5 crops (B, 5, 3, 32, 32)
    -> CNN per crop -> digit logits (B, 5, 11: digits 0-9, empty) and colour logits (B, 5, len(colors))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ...data.caption_grammar import CENTER, QUADRANTS, CaptionObject
from ...modules.grid_features import canvas_crops
from ..input_checks import check_batch_sizes, check_pixel_values
from ..modeling_utils import PushToHubWithCardMixin
from .card_caption_mnist_judge import CAPTION_MNIST_JUDGE_CARD
from .configuration_caption_mnist_judge import CaptionMnistJudgeConfig

__all__ = [
    "POSITIONS",
    "CaptionMnistJudgeModel",
    "CaptionMnistJudgeOutput",
    "CaptionMnistJudgePreTrainedModel",
    "crop_positions",
]

POSITIONS = (*QUADRANTS, CENTER)  # crop order: the four quadrants, then the whole canvas (single layout)


@dataclass
class CaptionMnistJudgeOutput(ModelOutput):
    """Output of [`CaptionMnistJudgeModel.forward`].

    Args:
        digit_logits: `(B, 5, 11)` per position of `POSITIONS` (four quadrants, then the whole canvas): logits of the
            digits 0-9 and of "empty" (class 10).
        color_logits: `(B, 5, len(config.colors))` per position: logits of the colours (meaningless where empty).
    """

    digit_logits: Tensor | None = None
    color_logits: Tensor | None = None


crop_positions = canvas_crops  # the judge reads the same five crops as the grid features of jWAE


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CaptionMnistJudgePreTrainedModel(PushToHubWithCardMixin, PreTrainedModel):
    """Base class of the Caption MNIST judge (:class:`CaptionMnistJudgeModel`): ties them to
    :class:`CaptionMnistJudgeConfig` (``model_type="caption_mnist_judge"``), initialises their weights
    (``_init_weights``) and gives them transformers' ``save_pretrained`` / ``from_pretrained`` (safetensors only; a
    zoo name loads the checkpoint shipped with mmquant) and ``push_to_hub`` with a generated model card. Use a
    subclass; ``import mmquant`` registers them with the Auto classes."""

    config_class = CaptionMnistJudgeConfig
    base_model_prefix = "judge"
    card_info = CAPTION_MNIST_JUDGE_CARD  # what its model card says (card_caption_mnist_judge.py)
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False

    def _init_weights(self, module: nn.Module) -> None:
        """Layers keep PyTorch's default initialisation."""


class CaptionMnistJudgeModel(CaptionMnistJudgePreTrainedModel):
    """Reads Caption MNIST canvases: ``forward`` gives per-position logits, ``read_objects`` the objects seen.

    Example:
    >>> import torch
    >>> from mmquant.models.caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel
    >>> model = CaptionMnistJudgeModel(CaptionMnistJudgeConfig(hidden_channels=[8, 8, 8])).eval()
    >>> canvases = torch.full((2, 3, 64, 64), -1.0)        # two black canvases in [-1, 1]
    >>> model(canvases).digit_logits.shape                 # 5 positions: 4 quadrants + the whole canvas
    torch.Size([2, 5, 11])
    >>> objects = model.read_objects(canvases, single=[False, True])  # one list of CaptionObject per canvas
    >>> len(objects)
    2
    """

    def __init__(self, config: CaptionMnistJudgeConfig):
        super().__init__(config)
        c1, c2, c3 = config.hidden_channels
        self.features = nn.Sequential(
            _conv_block(3, c1),
            _conv_block(c1, c1),
            nn.MaxPool2d(2),
            _conv_block(c1, c2),
            _conv_block(c2, c2),
            nn.MaxPool2d(2),
            _conv_block(c2, c3),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(config.dropout)
        self.digit_head = nn.Linear(c3, config.num_digit_classes)
        self.color_head = nn.Linear(c3, len(config.colors))
        self.post_init()

    # ------------------------------------------------------------------ checks
    def _check_pixel_values(self, pixel_values: Tensor) -> None:
        """Caption MNIST canvases ``(B, 3, S, S)`` in [-1, 1] (``mmquant.data.collate.image_to_tensor``); they are not
        resized, and bytes not mapped to [-1, 1] are refused."""
        check_pixel_values(pixel_values, 3, self.config.image_size, check_range=True)
        check_batch_sizes(pixel_values=pixel_values)

    # ------------------------------------------------------------------ classification
    def classify_crops(self, crops: Tensor) -> tuple[Tensor, Tensor]:
        """Crops ``(N, 3, S/2, S/2)`` in [-1, 1] (see ``crop_positions``) -> ``(digit_logits (N, 11), color_logits
        (N, len(colors)))``."""
        check_pixel_values(crops, 3, self.config.crop_size, name="crops")
        return self._classify_crops(crops)

    def _classify_crops(self, crops: Tensor) -> tuple[Tensor, Tensor]:
        features = self.dropout(self.features(crops.to(self.dtype)))  # (N, c3)
        return self.digit_head(features), self.color_head(features)

    def forward(self, pixel_values: Tensor, return_dict: bool | None = None) -> CaptionMnistJudgeOutput | tuple:
        """Canvases ``(B, 3, S, S)`` in [-1, 1] -> digit and colour logits for each of the five ``POSITIONS``."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        self._check_pixel_values(pixel_values)
        b = pixel_values.shape[0]
        crops = crop_positions(pixel_values)  # (B, 5, 3, S/2, S/2)
        digit_logits, color_logits = self._classify_crops(crops.flatten(0, 1))  # (B*5, 11), (B*5, colors)
        digit_logits = digit_logits.view(b, len(POSITIONS), -1)  # (B, 5, 11)
        color_logits = color_logits.view(b, len(POSITIONS), -1)  # (B, 5, colors)
        if not return_dict:
            return digit_logits, color_logits
        return CaptionMnistJudgeOutput(digit_logits=digit_logits, color_logits=color_logits)

    # ------------------------------------------------------------------ reading
    def _color_mask(self, colors: Sequence[str] | None) -> Tensor | None:
        if colors is None:
            return None
        colors = list(colors)
        unknown = [c for c in colors if c not in self.config.colors]
        if unknown or not colors:
            raise ValueError(
                f"colors={colors!r}: expected a non-empty subset of the judge's colours {self.config.colors}."
            )
        return torch.tensor([c not in colors for c in self.config.colors], device=self.device)

    @torch.no_grad()
    def read_objects(
        self, pixel_values: Tensor, single: bool | Sequence[bool], colors: Sequence[str] | None = None
    ) -> list[list[CaptionObject]]:
        """The objects the judge sees on each canvas ``(B, 3, S, S)`` in [-1, 1], always in eval mode.

        Args:
            pixel_values: the canvases.
            single: whether the canvases have the single layout (one digit filling the canvas, read from the whole
                canvas, position ``"center"``) or the quadrant layout (each quadrant read on its own, empty ones
                skipped); one bool for all or one per canvas.
            colors: restrict the colour readings to this palette (e.g. ``DEFAULT_COLORS``); all of
                ``config.colors`` when None.

        Returns:
            One list of ``CaptionObject`` per canvas: quadrant objects in ``QUADRANTS`` order, or the one
            ``"center"`` object (none when the judge sees an empty canvas).
        """
        b = pixel_values.shape[0] if isinstance(pixel_values, Tensor) and pixel_values.ndim >= 1 else None
        if isinstance(single, bool):
            single = [single] * (b or 0)
        elif isinstance(single, Sequence) and all(isinstance(s, bool) for s in single):
            single = list(single)
            if b is not None and len(single) != b:
                raise ValueError(f"single: expected one bool per canvas ({b}), got {len(single)}.")
        else:
            raise ValueError(f"single={single!r}: expected a bool or a list of bools (one per canvas).")
        mask = self._color_mask(colors)
        was_training = self.training
        self.eval()
        try:
            out = self(pixel_values, return_dict=True)
        finally:
            self.train(was_training)
        color_logits = out.color_logits
        if mask is not None:
            color_logits = color_logits.masked_fill(mask, float("-inf"))
        digits = out.digit_logits.argmax(-1).tolist()  # (B, 5)
        color_ids = color_logits.argmax(-1).tolist()  # (B, 5)
        objects = []
        for image_digits, image_colors, is_single in zip(digits, color_ids, single):
            slots = [len(POSITIONS) - 1] if is_single else range(len(QUADRANTS))
            objects.append(
                [
                    CaptionObject(
                        digit=image_digits[p], color=self.config.colors[image_colors[p]], position=POSITIONS[p]
                    )
                    for p in slots
                    if image_digits[p] != self.config.empty_class
                ]
            )
        return objects
