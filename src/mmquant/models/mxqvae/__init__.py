"""MXQ-VAE: the stage-1 multimodal cross quantizer and the stage-2 prior over its joint codes."""

from .configuration_mxqvae import MXQVAEConfig, MXQVAEPriorConfig
from .modeling_mxqvae import MXQVAEModel, MXQVAEOutput, MXQVAEPreTrainedModel
from .modeling_mxqvae_prior import MXQVAEPriorForCausalLM

__all__ = [
    "MXQVAEConfig",
    "MXQVAEModel",
    "MXQVAEOutput",
    "MXQVAEPreTrainedModel",
    "MXQVAEPriorConfig",
    "MXQVAEPriorForCausalLM",
]
