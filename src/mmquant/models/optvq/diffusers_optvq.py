"""OptVQ for diffusers: a ``ModelMixin``/``ConfigMixin`` with the ``diffusers.VQModel`` interface, so an OptVQ
tokenizer stands where ``VQModel`` stands (e.g. the ``vqvae`` of ``LDMPipeline``) and saves/loads with diffusers'
``save_pretrained``/``from_pretrained``. Imported lazily (``mmquant.OptVQDiffusersModel``): diffusers is heavy.
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput
from diffusers.models.autoencoders.vq_model import VQEncoderOutput

from .configuration_optvq import OptVQConfig
from .modeling_optvq import OptVQModel, _check_latents

__all__ = ["OptVQDiffusersModel"]


class OptVQDiffusersModel(ModelMixin, ConfigMixin):
    """An :class:`OptVQModel` behind diffusers' ``VQModel`` API.

    Args:
        optvq_config: the :class:`OptVQConfig` as a dict (``config.to_dict()``).
        scaling_factor: latent scaling used by diffusion pipelines (``latents / scaling_factor`` before decoding),
            as ``VQModel.config.scaling_factor``.

    Example:
    >>> import mmquant
    >>> vq = mmquant.OptVQDiffusersModel.from_optvq(mmquant.create_model("test"))
    >>> latents = vq.encode(torch.rand(1, 3, 16, 16)).latents      # (1, 8, 4, 4), before quantization
    >>> vq.decode(latents).sample.shape                             # quantizes, then decodes
    torch.Size([1, 3, 16, 16])
    """

    @register_to_config
    def __init__(self, optvq_config: dict | None = None, scaling_factor: float = 1.0):
        super().__init__()
        config = dict(optvq_config or {})
        for key in ("model_type", "transformers_version", "architectures"):
            config.pop(key, None)
        self.tokenizer = OptVQModel(OptVQConfig(**config))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, strict: bool = True, **kwargs):
        """diffusers' loading, strict as the transformers models
        (:class:`~mmquant.models.modeling_utils.PushToHubWithCardMixin`): missing or unexpected tensors are a
        ``ValueError`` naming them unless ``strict=False``."""
        from ..modeling_utils import check_loading_info

        if not isinstance(strict, bool):
            raise TypeError(f"strict={strict!r}: expected True (refuse weights that do not match) or False.")
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs)
        if strict:
            check_loading_info(cls, str(pretrained_model_name_or_path), info)
        return (model, info) if want_info else model

    @classmethod
    def from_optvq(cls, model: OptVQModel, scaling_factor: float = 1.0) -> OptVQDiffusersModel:
        """Wrap a (trained) :class:`OptVQModel`, weights included."""
        wrapper = cls(optvq_config=model.config.to_dict(), scaling_factor=scaling_factor)
        wrapper.tokenizer.load_state_dict(model.state_dict())
        return wrapper.to(model.device)

    def to_optvq(self) -> OptVQModel:
        """The wrapped :class:`OptVQModel` (shares weights), e.g. to ``save_pretrained`` it for transformers."""
        return self.tokenizer

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> VQEncoderOutput | tuple:
        """Images -> latents before quantization, as ``VQModel.encode``."""
        h = self.tokenizer.encode(x)
        return VQEncoderOutput(latents=h) if return_dict else (h,)

    def decode(
        self, h: torch.Tensor, force_not_quantize: bool = False, return_dict: bool = True, shape=None
    ) -> DecoderOutput | tuple:
        """Latents -> images, quantizing first unless ``force_not_quantize``, as ``VQModel.decode``."""
        _check_latents(h, self.tokenizer.config.embed_dim, "latents")
        return self._decode(h, force_not_quantize, return_dict)

    def _decode(self, h: torch.Tensor, force_not_quantize: bool, return_dict: bool) -> DecoderOutput | tuple:
        if force_not_quantize:
            quant, commit_loss = h, torch.zeros(h.shape[0], device=h.device, dtype=h.dtype)
        else:
            q = self.tokenizer._quantize(h)
            quant, commit_loss = q.quantized, q.loss
        dec = self.tokenizer._decode(quant)
        return DecoderOutput(sample=dec, commit_loss=commit_loss) if return_dict else (dec, commit_loss)

    def forward(self, sample: torch.Tensor, return_dict: bool = True) -> DecoderOutput | tuple:
        """Encode and decode, as ``VQModel.forward`` (the images are checked once, by ``encode``)."""
        return self._decode(self.tokenizer.encode(sample), False, return_dict)
