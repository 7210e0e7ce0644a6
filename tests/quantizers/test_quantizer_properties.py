"""Properties every quantizer must have, parametrized over types and options (DESIGN.md convention 16)."""

import pytest
import torch

from mmquant.quantizers import CodebookUsage, QuantizerOutput, build_quantizer

OPTIONS = [
    ("vq", {}),
    ("vq", {"num_heads": 4}),
    ("vq", {"ema_decay": 0.9}),
    ("vq", {"kmeans_init": True, "dead_code_threshold": 0.5}),
    ("vq", {"use_affine": True, "dead_code_threshold": 0.5}),
    ("sinkhorn", {}),
    ("sinkhorn", {"num_heads": 4, "use_affine": True}),
    ("sinkhorn", {"normalize": "dim", "kmeans_init": True}),
    ("sinkhorn", {"normalize": "none", "ema_decay": 0.9}),
    ("residual", {"num_stages": 3, "stage_type": "sinkhorn"}),
    ("residual", {"num_stages": 2, "stage_type": "vq", "num_heads": 2}),
]
IDS = [f"{t}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for t, o in OPTIONS]
DIM, K = 8, 32


def make(qtype, opts):
    return build_quantizer(qtype, dim=DIM, codebook_size=K, **opts)


@pytest.mark.parametrize("qtype,opts", OPTIONS, ids=IDS)
def test_indices_in_range_and_shapes(qtype, opts):
    q = make(qtype, opts)
    out = q(torch.randn(3, 5, 7, DIM))
    assert isinstance(out, QuantizerOutput)
    assert out.quantized.shape == (3, 5, 7, DIM)
    expected = (
        (3, 5, 7)
        + ((q.num_heads,) if q.num_heads > 1 else ())
        + ((opts["num_stages"],) if qtype == "residual" else ())
    )
    assert out.indices.shape == expected and out.indices.dtype == torch.long
    assert int(out.indices.min()) >= 0 and int(out.indices.max()) < K
    assert 0 < float(out.usage) <= 1 and 1 <= float(out.perplexity) <= K
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("qtype,opts", OPTIONS, ids=IDS)
def test_eval_indices_to_codes_equals_quantized(qtype, opts):
    q = make(qtype, opts)
    q(torch.randn(64, DIM))  # one training step (k-means init, EMA, restarts happen here)
    q.eval()
    x = torch.randn(4, 6, DIM)
    out = q(x)
    assert torch.equal(q.indices_to_codes(out.indices), out.quantized)


@pytest.mark.parametrize("qtype,opts", OPTIONS, ids=IDS)
def test_straight_through_gradient(qtype, opts):
    q = make(qtype, opts)
    x = torch.randn(64, DIM, requires_grad=True)
    out = q(x)
    (out.quantized * torch.randn_like(out.quantized)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # the commitment loss pulls x toward the codes
    x.grad = None
    out = q(x)
    out.loss.backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("qtype,opts", OPTIONS, ids=IDS)
def test_same_seed_same_indices(qtype, opts):
    x = torch.randn(50, DIM)
    results = []
    for _ in range(2):
        torch.manual_seed(123)
        q = make(qtype, opts)
        results.append(q(x).indices)
    assert torch.equal(results[0], results[1])


@pytest.mark.parametrize("qtype", ["vq", "sinkhorn"])
def test_assignment_in_float32_under_bf16_autocast(qtype):
    q = make(qtype, {"num_heads": 2})
    x = torch.randn(40, DIM)
    ref = q(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(x)
    assert torch.equal(out.indices, ref.indices)
    assert out.quantized.dtype == torch.float32
    x16 = x.to(torch.bfloat16)
    out16 = q(x16)
    assert out16.quantized.dtype == torch.bfloat16 and torch.equal(out16.indices, q(x16.float()).indices)


@pytest.mark.parametrize("qtype", ["vq", "sinkhorn"])
def test_mask_excludes_padding(qtype):
    """Padding takes no part: losses, usage and (for Sinkhorn) the marginals equal those of the real tokens alone."""
    q = make(qtype, {})
    x = torch.randn(2, 30, DIM)
    mask = torch.zeros(2, 30, dtype=torch.bool)
    mask[0, :20] = True
    mask[1, :11] = True
    x_pad = x.clone()
    x_pad[~mask] = 100.0  # garbage in the padding must not matter
    out = q(x_pad, mask=mask)
    alone = q(x[mask])
    assert torch.equal(out.indices[mask], alone.indices)
    assert torch.allclose(out.loss, alone.loss)
    assert torch.allclose(out.usage, alone.usage) and torch.allclose(out.perplexity, alone.perplexity)
    with pytest.raises(ValueError, match="mask"):
        q(x, mask=mask[:, :5])


def test_mask_keeps_ema_statistics_clean():
    q = make("vq", {"ema_decay": 0.5})
    x = torch.randn(1, 10, DIM)
    mask = torch.tensor([[True] * 6 + [False] * 4])
    before = q.ema_cluster_size.sum()  # one pseudo-member per code before the first update
    q(x, mask=mask)
    assert torch.allclose(q.ema_cluster_size.sum(), 0.5 * before + 0.5 * 6)


def test_codebook_usage_over_a_whole_set_not_per_batch():
    q = make("vq", {}).eval()
    meter = CodebookUsage(K)
    per_batch = []
    for _ in range(10):
        out = q(torch.randn(4, DIM) * 3)
        meter.update(out.indices)
        per_batch.append(float(out.usage))
    stats = meter.compute()
    assert stats["usage"] >= max(per_batch)
    assert stats["counts"].sum() == 40
    assert stats["dead_codes"] == int((stats["counts"] == 0).sum())
    with pytest.raises(ValueError, match="indices"):
        meter.update(torch.tensor([K]))


def test_dead_code_restart_revives_codes():
    q = make("vq", {"dead_code_threshold": 1.0})
    with torch.no_grad():
        q.embedding.weight.zero_()
        q.embedding.weight[0] = 5.0  # one code near the data cluster, the rest far away and unused
    data = torch.randn(256, DIM) + 5.0
    for _ in range(20):
        q(data)
    q.eval()
    assert float(q(data).usage) > 0.5


def test_kmeans_init_places_codes_on_data():
    q = make("vq", {"kmeans_init": True})
    data = torch.randn(512, DIM) + 10.0
    out = q(data)
    assert bool(q.initialized)
    assert float(out.commitment_loss) < 2.0  # codes sit on the data cloud, not at the origin
    state = q.state_dict()
    assert "initialized" in state


@pytest.mark.parametrize("qtype", ["vq", "sinkhorn"])
def test_decoding_from_saved_indices(tmp_path, qtype):
    from safetensors.torch import load_file, save_file

    q = make(qtype, {"num_heads": 2}).eval()
    out = q(torch.randn(3, 4, 4, DIM))
    save_file({"indices": out.indices}, tmp_path / "codes.safetensors")
    restored = load_file(tmp_path / "codes.safetensors")["indices"]
    assert torch.equal(q.indices_to_codes(restored), out.quantized)


BAD = [
    (lambda q: q(torch.randn(4, DIM + 1)), "x"),
    (lambda q: q(torch.randn(DIM)), "x"),
    (lambda q: q(torch.tensor([[float("nan")] * DIM])), "NaN"),
    (lambda q: q(torch.tensor([[float("inf")] * DIM])), "NaN or Inf"),
    (lambda q: q(torch.randint(0, 5, (4, DIM))), "floating"),
    (lambda q: q.indices_to_codes(torch.tensor([K])), r"\[0, 32\)"),
    (lambda q: q.indices_to_codes(torch.tensor([-1])), r"\[0, 32\)"),
    (lambda q: q.indices_to_codes(torch.tensor([0.5])), "integer"),
]


@pytest.mark.parametrize("qtype", ["vq", "sinkhorn"])
@pytest.mark.parametrize("call,match", BAD)
def test_bad_input_raises_value_error(qtype, call, match):
    with pytest.raises(ValueError, match=match):
        call(make(qtype, {}))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"type": "nope"}, "unknown"),
        ({"type": "vq", "num_heads": 3}, "num_heads"),
        ({"type": "vq", "ema_decay": 0.9, "use_affine": True}, "ema_decay"),
        ({"type": "sinkhorn", "normalize": "zscore"}, "normalize"),
        ({"type": "sinkhorn", "epsilon": 0.0}, "epsilon"),
        ({"type": "vq", "not_an_option": 1}, "not_an_option"),
    ],
)
def test_bad_construction_raises_value_error(kwargs, match):
    kwargs = dict(kwargs)
    with pytest.raises(ValueError, match=match):
        build_quantizer(kwargs.pop("type"), dim=DIM, codebook_size=K, **kwargs)


@pytest.mark.parametrize("kind", ["vq", "sinkhorn"])
def test_rotation_trick_keeps_the_codes_and_changes_only_the_gradient(kind):
    torch.manual_seed(0)
    plain = build_quantizer(kind, dim=8, codebook_size=16, num_heads=2)
    rotated = build_quantizer(kind, dim=8, codebook_size=16, num_heads=2, rotation_trick=True)
    rotated.load_state_dict(plain.state_dict())
    x = torch.randn(5, 6, 8, requires_grad=True)
    target = torch.randn(5, 6, 8)
    outputs, grads = [], []
    for q in (plain, rotated):
        out = q(x)
        x.grad = None
        ((out.quantized - target) ** 2).sum().backward()
        outputs.append(out.quantized.detach())
        grads.append(x.grad.clone())
    assert torch.equal(outputs[0], outputs[1])  # the same forward value: the codes
    assert not torch.allclose(grads[0], grads[1])  # another estimator
    q = rotated.eval()
    assert torch.equal(q(x).quantized, q.indices_to_codes(q(x).indices))  # eval: exactly the codes


def test_straight_through_and_vq_losses_match_their_autograd_expressions():
    """The one-pass straight-through and VQ losses give the values and gradients, bit for bit, of the expressions
    they replace: ``codes + (z - z.detach())``, ``mse(z, sg(codes))`` and ``mse(codes, sg(z))``."""
    from torch.nn import functional as F

    from mmquant.quantizers.functional import straight_through, vq_losses

    g = torch.Generator().manual_seed(0)
    z0, w0 = torch.randn(64, 5, generator=g), torch.randn(9, 5, generator=g)
    index = torch.randint(0, 9, (64,), generator=g)
    upstream = torch.randn(64, 5, generator=g)
    results = []
    for fused in (False, True):
        z, w = z0.clone().requires_grad_(), w0.clone().requires_grad_()
        codes = w.index_select(0, index)
        if fused:
            quantized = straight_through(z, codes)
            commitment, codebook = vq_losses(z, codes)
        else:
            quantized = codes + (z - z.detach())
            commitment, codebook = F.mse_loss(z, codes.detach()), F.mse_loss(codes, z.detach())
        ((quantized * upstream).sum() + 0.25 * commitment + 3.0 * codebook).backward()
        results.append((quantized.detach(), commitment.detach(), codebook.detach(), z.grad, w.grad))
    for old, new in zip(*results):
        assert torch.equal(old, new)
    # a loss taken alone sends its gradient to its own input only
    z, w = z0.clone().requires_grad_(), w0.clone().requires_grad_()
    vq_losses(z, w.index_select(0, index))[0].backward()
    assert w.grad is None and z.grad is not None and z.grad.any()
    commitment, codebook = vq_losses(z0, w.index_select(0, index))  # features without gradient (inference)
    assert not commitment.requires_grad and codebook.requires_grad
