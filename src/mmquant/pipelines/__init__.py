"""Generation pipelines (diffusers ``DiffusionPipeline`` subclasses); they import diffusers, so ``import mmquant``
loads them lazily."""

from .pipeline_mxqvae import MXQVAEPipeline, MXQVAEPipelineOutput

__all__ = ["MXQVAEPipeline", "MXQVAEPipelineOutput"]
