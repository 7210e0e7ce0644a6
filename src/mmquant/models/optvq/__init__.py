"""OptVQ image tokenizer."""

from .configuration_optvq import OptVQConfig
from .modeling_optvq import OptVQModel, OptVQPreTrainedModel

__all__ = ["OptVQConfig", "OptVQModel", "OptVQPreTrainedModel"]
