"""bf16 autocast on CPU: every model trains a few optimizer steps with finite losses, and the quantizers' assignment
is computed in float32 (the same indices with and without autocast)."""

from __future__ import annotations

import pytest
import torch

STEPS = 3


def _train(model, loss_fn, steps: int = STEPS) -> list[float]:
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_fn(model)
        assert loss.dtype == torch.float32 or torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses))), losses
    return losses


def _images(n, s):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, s, s, generator=g) * 2 - 1


def test_optvq_trains_under_bf16_autocast(zoo):
    import mmquant

    for name in ("test", "test-vqgan"):
        model = mmquant.create_model(name)
        x = _images(4, model.config.image_size)
        _train(model, lambda m, x=x: m(x).loss)


def test_mxqvae_trains_under_bf16_autocast(zoo):
    model = type(zoo.mxqvae)(zoo.mxqvae.config)  # a fresh copy: the zoo's is shared
    x, ids = _images(2, 64), zoo.ids(2)
    _train(model, lambda m: m(x, ids).loss)


def test_mxqvae_prior_trains_under_bf16_autocast(zoo):
    prior = type(zoo.prior)(zoo.prior.config)
    codes = torch.randint(0, zoo.mxqvae.config.codebook_size, (2, zoo.mxqvae.config.num_tokens))
    sequence = prior.to_sequence(codes)
    _train(prior, lambda m: m(input_ids=sequence, labels=sequence).loss)


@pytest.mark.parametrize("phase", ["vta", "generators", "joint"])
def test_laviter_trains_under_bf16_autocast(zoo, phase):
    model = type(zoo.laviter)(zoo.laviter.config)
    model.set_phase(phase)
    discriminator = model.make_discriminator()
    x, ids = _images(2, 16), zoo.ids(2, length=12)
    _train(model, lambda m: m(x, ids, discriminator=discriminator).loss)


def test_jwae_trains_under_bf16_autocast(zoo):
    model = type(zoo.jwae)(zoo.jwae.config)
    critic = model.make_critic()
    x, ids = _images(2, 16), zoo.ids(2, length=24)
    _train(model, lambda m: m(x, ids, critic=critic).loss)


def _quantizers():
    from mmquant.quantizers import ResidualQuantizer, SinkhornQuantizer, VectorQuantizer

    return {
        "vq": lambda: VectorQuantizer(dim=16, codebook_size=64),
        "vq-ema-kmeans": lambda: VectorQuantizer(dim=16, codebook_size=64, ema_decay=0.9, kmeans_init=True),
        "sinkhorn": lambda: SinkhornQuantizer(dim=16, codebook_size=64),
        "sinkhorn-heads-affine": lambda: SinkhornQuantizer(dim=16, codebook_size=64, num_heads=4, use_affine=True),
        "sinkhorn-at-inference": lambda: SinkhornQuantizer(dim=16, codebook_size=64, sinkhorn_at_inference=True),
        "residual": lambda: ResidualQuantizer(dim=16, codebook_size=64, num_stages=2),
    }


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", list(_quantizers()))
def test_quantizer_assignment_is_float32_under_autocast(name, input_dtype, training):
    """The same input gives the same indices with and without bf16 autocast (a fresh quantizer with the same
    initial codebook each time, as training mode updates it)."""
    torch.manual_seed(0)
    template = _quantizers()[name]()
    x = (torch.randn(4, 32, 16) * 3).to(input_dtype)

    def indices(autocast: bool):
        q = _quantizers()[name]()
        q.load_state_dict(template.state_dict())
        q.train(training)
        torch.manual_seed(1)  # k-means / restarts draw random rows
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = q(x)
        assert out.quantized.dtype == input_dtype
        return out.indices, out.loss

    plain, plain_loss = indices(False)
    cast, cast_loss = indices(True)
    assert torch.equal(plain, cast)
    assert torch.equal(plain_loss, cast_loss)
