"""Residual (multi-stage) quantization: RQ-VAE, "Autoregressive Image Generation using Residual Quantization"
(Lee et al., arXiv:2203.01941). Each stage quantizes what the previous stages left; the codes are summed.

Any quantizer type can be a stage, the OptVQ Sinkhorn quantizer included. Measured (``benchmarks/RESULTS.md``,
residual sections: the optvq-mnist model, 4 and 8 stages of 1,024 codes, 3 seeds): Sinkhorn stages keep far more of
their codebooks than plain nearest-neighbour stages, but their usage still falls stage by stage, while
nearest-neighbour stages with EMA, k-means initialisation and dead-code restart keep all of theirs; the stack's
PSNR is then level with or below theirs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import QuantizerOutput
from .functional import straight_through

__all__ = ["ResidualQuantizer"]


class ResidualQuantizer(nn.Module):
    """A stack of ``num_stages`` quantizers, each applied to the residual of the previous ones.

    Args:
        dim: feature dimension.
        codebook_size: codes per stage.
        num_stages: number of residual stages.
        stage_type: quantizer type of every stage (``"vq"`` or ``"sinkhorn"``, see :func:`build_quantizer`).
        **stage_kwargs: arguments of each stage's quantizer (``num_heads``, ``beta``, ``epsilon``, ...).

    Indices have a trailing stage axis: ``(..., num_stages)`` (``(..., num_heads, num_stages)`` when multi-head).
    """

    def __init__(
        self, dim: int, codebook_size: int, num_stages: int = 2, stage_type: str = "sinkhorn", **stage_kwargs
    ):
        super().__init__()
        from .factory import build_quantizer

        if stage_type == "residual":
            raise ValueError(
                "stage_type='residual': a residual stage cannot itself be residual; use 'vq' or 'sinkhorn'."
            )
        if not isinstance(num_stages, int) or num_stages < 1:
            raise ValueError(f"num_stages={num_stages!r}: expected an integer >= 1.")
        self.stages = nn.ModuleList(
            build_quantizer(stage_type, dim=dim, codebook_size=codebook_size, **stage_kwargs)
            for _ in range(num_stages)
        )
        self.dim = dim
        self.codebook_size = codebook_size
        self.codebook_dim = self.stages[0].codebook_dim
        self.num_heads = self.stages[0].num_heads
        self.num_stages = num_stages

    def forward(self, x: Tensor, mask: Tensor | None = None) -> QuantizerOutput:
        """Quantize ``x`` ``(..., dim)`` stage by stage; ``mask`` as in :meth:`BaseQuantizer.forward`."""
        self.stages[0]._check_input(x, mask)
        residual = x
        total = torch.zeros((), dtype=torch.float32, device=x.device)
        outs = []
        for stage in self.stages:
            out = stage(residual, mask=mask)
            outs.append(out)
            total = total + out.quantized.detach().float()  # (..., dim): running sum of the codes
            residual = residual - out.quantized.detach()  # what the next stage quantizes
        quantized = straight_through(x.float(), total).to(x.dtype)  # straight-through (eq. 2)
        return QuantizerOutput(
            quantized=quantized,
            indices=torch.stack([o.indices for o in outs], dim=-1),
            loss=sum(o.loss for o in outs),
            codebook_loss=sum(o.codebook_loss for o in outs),
            commitment_loss=sum(o.commitment_loss for o in outs),
            usage=torch.stack([o.usage for o in outs]).mean(),
            perplexity=torch.stack([o.perplexity for o in outs]).mean(),
        )

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """Sum of the stages' codes for ``indices`` ``(..., num_stages)``; returns ``(..., dim)``."""
        if not isinstance(indices, Tensor) or indices.ndim < 1 or indices.shape[-1] != self.num_stages:
            raise ValueError(
                f"indices: expected a tensor with a trailing stage axis of size {self.num_stages}, got "
                f"{tuple(getattr(indices, 'shape', ()))}."
            )
        total = None
        for i, stage in enumerate(self.stages):
            codes = stage.indices_to_codes(indices[..., i])
            total = codes if total is None else total + codes
        return total
