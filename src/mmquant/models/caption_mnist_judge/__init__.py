"""The Caption MNIST judge: reads coloured digits and their positions off Caption MNIST canvases (MXQ-VAE Table 2)."""

from .configuration_caption_mnist_judge import CaptionMnistJudgeConfig
from .modeling_caption_mnist_judge import (
    POSITIONS,
    CaptionMnistJudgeModel,
    CaptionMnistJudgeOutput,
    CaptionMnistJudgePreTrainedModel,
    crop_positions,
)

__all__ = [
    "POSITIONS",
    "CaptionMnistJudgeConfig",
    "CaptionMnistJudgeModel",
    "CaptionMnistJudgeOutput",
    "CaptionMnistJudgePreTrainedModel",
    "crop_positions",
]
