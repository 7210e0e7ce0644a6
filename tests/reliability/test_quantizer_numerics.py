"""Quantizer numerics that used to go silently wrong: EMA codebooks without k-means initialisation (the first update
divided unused codes by a near-zero smoothed cluster size; an empty or fully masked first batch made the codebook
inf) and finite inputs large enough to overflow float32 distances (loss=inf, one index for every token)."""

from __future__ import annotations

import pytest
import torch

from mmquant.quantizers import ResidualQuantizer, SinkhornQuantizer, VectorQuantizer, sinkhorn_assign
from mmquant.quantizers.functional import MAX_FEATURE_MAGNITUDE

EMA_MAKERS = {
    "vq": lambda **kw: VectorQuantizer(dim=8, codebook_size=64, ema_decay=0.99, **kw),
    "vq-heads": lambda **kw: VectorQuantizer(dim=8, codebook_size=64, num_heads=2, ema_decay=0.99, **kw),
    "sinkhorn": lambda **kw: SinkhornQuantizer(dim=8, codebook_size=64, ema_decay=0.99, **kw),
    "residual": lambda **kw: ResidualQuantizer(8, 64, num_stages=2, stage_type="vq", ema_decay=0.99, **kw),
}


def _codebooks(q) -> list[torch.Tensor]:
    stages = q.stages if isinstance(q, ResidualQuantizer) else [q]
    return [s.embedding.weight.detach().clone() for s in stages]


@pytest.mark.parametrize("name", sorted(EMA_MAKERS))
def test_ema_first_batch_keeps_unused_codes(name):
    torch.manual_seed(0)
    q = EMA_MAKERS[name]().train()
    before = _codebooks(q)
    # a batch that sits on a few codes: most codes get no member in the first update
    x = before[0][:3].repeat(4, 1).reshape(-1, q.codebook_dim).repeat(1, q.dim // q.codebook_dim)
    out = q(x + 0.01 * torch.randn_like(x))
    assert torch.isfinite(out.loss)
    for b, a in zip(before, _codebooks(q)):
        assert torch.isfinite(a).all()
        # no code moves far from where it was: the old bug multiplied unused codes by ~1e5
        assert a.norm(dim=1).max() < 2 * b.norm(dim=1).max(), (b.norm(dim=1).max(), a.norm(dim=1).max())
    if name in ("vq", "vq-heads"):
        used = set(out.indices.flatten().tolist())
        unused = torch.tensor([k for k in range(64) if k not in used])
        # an unused code decays its sum and its size alike: its vector changes only by the Laplace smoothing
        assert torch.allclose(_codebooks(q)[0][unused], before[0][unused], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", sorted(EMA_MAKERS))
@pytest.mark.parametrize(
    "batch",
    ["empty", "all-masked", "empty-then-normal"],
)
def test_ema_empty_or_masked_first_batch_stays_finite(name, batch):
    torch.manual_seed(0)
    q = EMA_MAKERS[name]().train()
    before = _codebooks(q)
    if batch == "all-masked":
        out = q(torch.randn(2, 5, 8), torch.zeros(2, 5, dtype=torch.bool))
    else:
        out = q(torch.randn(2, 0, 8))
    assert float(out.loss) == 0.0
    for b, a in zip(before, _codebooks(q)):
        assert torch.equal(a, b), "a batch without real tokens must leave the codebook as it was"
    if batch == "empty-then-normal":
        out = q(torch.randn(4, 8))
        assert torch.isfinite(out.loss)
        assert all(torch.isfinite(c).all() for c in _codebooks(q))


@pytest.mark.parametrize("name", ["vq", "sinkhorn"])
def test_ema_dead_code_restart_stays_bounded(name):
    torch.manual_seed(0)
    q = EMA_MAKERS[name](dead_code_threshold=1.0).train()
    for _ in range(5):
        x = torch.randn(16, 8)
        q(x)
        w = q.embedding.weight
        assert torch.isfinite(w).all() and w.norm(dim=1).max() < 50


def test_ema_with_kmeans_init_unchanged():
    torch.manual_seed(0)
    q = VectorQuantizer(dim=8, codebook_size=4, ema_decay=0.9, kmeans_init=True).train()
    q(torch.randn(2, 0, 8))  # nothing to fit yet
    assert not bool(q.initialized)
    q(torch.randn(32, 8))
    assert bool(q.initialized) and torch.isfinite(q.embedding.weight).all()


QUANTIZERS = {
    "vq": lambda: VectorQuantizer(dim=8, codebook_size=16),
    "vq-ema": lambda: VectorQuantizer(dim=8, codebook_size=16, ema_decay=0.9),
    "sinkhorn": lambda: SinkhornQuantizer(dim=8, codebook_size=16, num_heads=2),
    "sinkhorn-affine": lambda: SinkhornQuantizer(dim=8, codebook_size=16, use_affine=True),
    "residual": lambda: ResidualQuantizer(dim=8, codebook_size=16, num_stages=2, stage_type="sinkhorn"),
}


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
@pytest.mark.parametrize("value", [1e30, -1e30, 1e20, 3e38, MAX_FEATURE_MAGNITUDE * 2])
@pytest.mark.parametrize("training", [True, False])
def test_overflowing_inputs_are_refused(name, value, training):
    q = QUANTIZERS[name]().train(training)
    x = torch.randn(3, 4, 8)
    x[1, 2, 3] = value
    with pytest.raises(ValueError, match=r"x: largest magnitude .* exceeds 1e\+12.*normalise or rescale"):
        q(x)


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_overflow_in_half_precision_and_masked_padding(name):
    q = QUANTIZERS[name]().train()
    x = torch.full((2, 3, 8), 6e4, dtype=torch.float16)  # finite in fp16, fine in float32: a correct answer
    out = q(x)
    assert torch.isfinite(out.loss)
    big = torch.randn(2, 3, 8)
    big[0, 0] = 1e30  # even in a padding position: the nearest-code pass still computes its distances
    with pytest.raises(ValueError, match="x: largest magnitude"):
        q(big, torch.tensor([[False, True, True], [True, True, True]]))


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_largest_accepted_inputs_give_finite_results(name):
    q = QUANTIZERS[name]().train()
    x = torch.randn(4, 6, 8).sign() * MAX_FEATURE_MAGNITUDE
    out = q(x)
    assert torch.isfinite(out.loss) and torch.isfinite(out.quantized).all()


def test_sinkhorn_assign_refuses_overflowing_codebook():
    with pytest.raises(ValueError, match="sinkhorn: codebook: largest magnitude"):
        sinkhorn_assign(torch.randn(3, 4), torch.full((5, 4), 1e25))
    with pytest.raises(ValueError, match="sinkhorn: x: largest magnitude"):
        sinkhorn_assign(torch.full((3, 4), -1e25), torch.randn(5, 4))
