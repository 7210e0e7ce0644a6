"""The ONLY place that registers mmquant's models with transformers' Auto classes (called by ``import mmquant``)."""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel
from .jwae import JWAEConfig, JWAEModel
from .laviter import LaviterConfig, LaviterModel, LaviterTextConfig, LaviterVisionConfig
from .mxqvae import MXQVAEConfig, MXQVAEModel, MXQVAEPriorConfig, MXQVAEPriorForCausalLM
from .optvq import OptVQConfig, OptVQModel

__all__ = ["register_auto_classes", "registered_model_classes"]

_REGISTRY = [
    (OptVQConfig, AutoModel, OptVQModel),
    (CaptionMnistJudgeConfig, AutoModel, CaptionMnistJudgeModel),
    (MXQVAEConfig, AutoModel, MXQVAEModel),
    (MXQVAEPriorConfig, AutoModelForCausalLM, MXQVAEPriorForCausalLM),
    (JWAEConfig, AutoModel, JWAEModel),
    (LaviterConfig, AutoModel, LaviterModel),
]
_SUB_CONFIGS = [LaviterVisionConfig, LaviterTextConfig]


def register_auto_classes() -> None:
    """Register every model's config with ``AutoConfig`` and its classes with the matching Auto classes."""
    for config_cls, auto_cls, model_cls in _REGISTRY:
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        auto_cls.register(config_cls, model_cls, exist_ok=True)
    for config_cls in _SUB_CONFIGS:
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)


def registered_model_classes() -> list[type]:
    """Every model class registered with an Auto class (the classes a checkpoint's ``architectures`` names)."""
    return [model_cls for _, _, model_cls in _REGISTRY]
