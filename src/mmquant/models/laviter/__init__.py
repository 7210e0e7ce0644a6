from .configuration_laviter import PHASES, LaviterConfig, LaviterTextConfig, LaviterVisionConfig
from .modeling_laviter import LaviterModel, LaviterOutput, LaviterPreTrainedModel

__all__ = [
    "PHASES",
    "LaviterConfig",
    "LaviterModel",
    "LaviterOutput",
    "LaviterPreTrainedModel",
    "LaviterTextConfig",
    "LaviterVisionConfig",
]
