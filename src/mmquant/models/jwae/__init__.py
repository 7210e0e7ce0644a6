from .configuration_jwae import JWAEConfig
from .modeling_jwae import JWAEModel, JWAEOutput, JWAEPreTrainedModel

__all__ = ["JWAEConfig", "JWAEModel", "JWAEOutput", "JWAEPreTrainedModel"]
