"""The bad-input corpus: for every public entry point, a table of bad inputs, each of which must end in a clear
exception naming the argument and what was expected (the exception type and a ``match`` on its message), or in a
documented correct result (``ok`` cases with their check), within the suite's time bound (see conftest.py).

Each case id is ``<entry point>::<case>``; ``pytest tests/reliability -q`` ends with the count of cases and entry
points. The tiny real models come from the ``zoo`` fixture (the registry's ``*-test`` sizes).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

NAN, INF = float("nan"), float("inf")


@dataclass
class Case:
    entry: str
    name: str
    call: Callable
    error: type | tuple | None = None
    match: str | None = None
    check: Callable | None = None


def bad(entry: str, name: str, call: Callable, error=ValueError, match: str | None = None):
    """``call(zoo)`` must raise ``error`` with a message matching ``match`` (which names the argument)."""
    assert match, f"{entry}::{name}: a bad-input case must say what its message names"
    return pytest.param(Case(entry, name, call, error, match), id=f"{entry}::{name}")


def ok(entry: str, name: str, call: Callable, check: Callable):
    """``call(zoo)`` has a documented correct result: ``check(result)`` holds."""
    return pytest.param(Case(entry, name, call, check=check), id=f"{entry}::{name}")


# ---------------------------------------------------------------------------------------------------- inputs
def img(n=2, c=3, s=16):
    """``(n, c, s, s)`` images in [-1, 1]."""
    return torch.rand(n, c, s, s) * 2 - 1


def with_nan(x, value=NAN):
    x = x.clone()
    x.view(-1)[0] = value
    return x


def shape_is(*shape):
    return lambda r: tuple(r.shape) == shape


def finite(r):
    return bool(torch.isfinite(r).all())


# ---------------------------------------------------------------------------------------------------- quantizers
def _quantizers():
    from mmquant.quantizers import ResidualQuantizer, SinkhornQuantizer, VectorQuantizer

    return {
        "VectorQuantizer": lambda: VectorQuantizer(dim=8, codebook_size=16),
        "SinkhornQuantizer": lambda: SinkhornQuantizer(dim=8, codebook_size=16, num_heads=2),
        "ResidualQuantizer": lambda: ResidualQuantizer(dim=8, codebook_size=16, num_stages=2, stage_type="vq"),
    }


def _index_shape(name, *lead):
    return (*lead, 2) if name != "VectorQuantizer" else lead


QUANTIZER_CASES = []
for _name, _make in _quantizers().items():
    _f, _i = f"{_name}.forward", f"{_name}.indices_to_codes"
    _ishape, _empty = _index_shape(_name, 3), _index_shape(_name, 0)
    QUANTIZER_CASES += [
        bad(_f, "wrong-rank", lambda z, m=_make: m()(torch.randn(8)), match=r"x: expected shape \(\.\.\., 8\)"),
        bad(_f, "wrong-dim", lambda z, m=_make: m()(torch.randn(2, 7)), match=r"x: expected shape \(\.\.\., 8\)"),
        bad(_f, "int-dtype", lambda z, m=_make: m()(torch.ones(2, 8, dtype=torch.long)), match="x: expected a float"),
        bad(_f, "not-a-tensor", lambda z, m=_make: m()([[0.0] * 8]), match="x: expected a float"),
        bad(_f, "nan", lambda z, m=_make: m()(with_nan(torch.randn(2, 8))), match="x: contains NaN"),
        bad(_f, "inf", lambda z, m=_make: m()(with_nan(torch.randn(2, 8), INF)), match="x: contains NaN or Inf"),
        bad(
            _f, "mask-shape", lambda z, m=_make: m()(torch.randn(3, 8), torch.ones(2, dtype=torch.bool)), match="mask"
        ),
        bad(_f, "mask-dtype", lambda z, m=_make: m()(torch.randn(3, 8), torch.ones(3)), match="mask: expected a bool"),
        ok(
            _f,
            "empty-batch-zero-losses",
            lambda z, m=_make: m().train()(torch.randn(2, 0, 8)),
            lambda r: r.indices.numel() == 0 and float(r.loss.detach()) == 0.0 and r.quantized.shape == (2, 0, 8),
        ),
        ok(
            _f,
            "batch-of-one",
            lambda z, m=_make: m().train()(torch.randn(1, 8)),
            lambda r: tuple(r.quantized.shape) == (1, 8) and finite(r.loss),
        ),
        ok(
            _f,
            "all-padding-mask",
            lambda z, m=_make: m().train()(torch.randn(3, 8), torch.zeros(3, dtype=torch.bool)),
            lambda r: float(r.loss.detach()) == 0.0 and r.indices.shape[0] == 3,
        ),
        ok(
            _f,
            "float16-input-keeps-dtype",
            lambda z, m=_make: m().eval()(torch.randn(3, 8).half()),
            lambda r: r.quantized.dtype == torch.float16,
        ),
        bad(
            _i,
            "out-of-range",
            lambda z, m=_make, s=_ishape: m().indices_to_codes(torch.full(s, 16)),
            match=r"indices: expected values in \[0, 16\)",
        ),
        bad(
            _i,
            "negative",
            lambda z, m=_make, s=_ishape: m().indices_to_codes(torch.full(s, -1)),
            match=r"indices: expected values in \[0, 16\).*min -1",
        ),
        bad(_i, "float-dtype", lambda z, m=_make, s=_ishape: m().indices_to_codes(torch.zeros(s)), match="indices"),
        bad(
            _i,
            "bool-dtype",
            lambda z, m=_make, s=_ishape: m().indices_to_codes(torch.zeros(s, dtype=torch.bool)),
            match="indices",
        ),
        ok(
            _i,
            "empty",
            lambda z, m=_make, s=_empty: m().indices_to_codes(torch.zeros(s).long()),
            shape_is(0, 8),
        ),
    ]

QUANTIZER_CASES += [
    bad(
        "SinkhornQuantizer.indices_to_codes",
        "missing-head-axis",
        lambda z: _quantizers()["SinkhornQuantizer"]().indices_to_codes(torch.zeros(3, dtype=torch.long)),
        match=r"indices: expected shape \(\.\.\., 2\) for a 2-head",
    ),
    bad(
        "ResidualQuantizer.indices_to_codes",
        "missing-stage-axis",
        lambda z: _quantizers()["ResidualQuantizer"]().indices_to_codes(torch.zeros(3, dtype=torch.long)),
        match="indices: expected a tensor with a trailing stage axis of size 2",
    ),
]


def _vq(**kw):
    from mmquant.quantizers import VectorQuantizer

    return VectorQuantizer(**({"dim": 8, "codebook_size": 4} | kw))


def _sk(**kw):
    from mmquant.quantizers import SinkhornQuantizer

    return SinkhornQuantizer(**({"dim": 8, "codebook_size": 4} | kw))


QUANTIZER_CONFIG_CASES = [
    bad("VectorQuantizer", "dim-zero", lambda z: _vq(dim=0), match="dim=0: expected a positive integer"),
    bad("VectorQuantizer", "dim-bool", lambda z: _vq(dim=True), match="dim=True: expected a positive integer"),
    bad("VectorQuantizer", "dim-float", lambda z: _vq(dim=8.0), match="dim=8.0"),
    bad("VectorQuantizer", "codebook-size-zero", lambda z: _vq(codebook_size=0), match="codebook_size=0"),
    bad("VectorQuantizer", "heads-not-dividing", lambda z: _vq(num_heads=3), match="num_heads=3.*divisor of dim=8"),
    bad("VectorQuantizer", "beta-negative", lambda z: _vq(beta=-1.0), match="beta=-1.0: expected a finite number"),
    bad("VectorQuantizer", "beta-nan", lambda z: _vq(beta=NAN), match="beta=nan"),
    bad("VectorQuantizer", "ema-decay-one", lambda z: _vq(ema_decay=1.0), match="ema_decay=1.0"),
    bad("VectorQuantizer", "ema-with-affine", lambda z: _vq(ema_decay=0.9, use_affine=True), match="use_affine"),
    bad("VectorQuantizer", "kmeans-iters-zero", lambda z: _vq(kmeans_iters=0), match="kmeans_iters=0"),
    bad("VectorQuantizer", "usage-decay-above-one", lambda z: _vq(usage_decay=2.0), match="usage_decay=2.0"),
    bad(
        "VectorQuantizer",
        "dead-code-threshold-nan",
        lambda z: _vq(dead_code_threshold=NAN),
        match="dead_code_threshold=nan",
    ),
    bad("SinkhornQuantizer", "epsilon-zero", lambda z: _sk(epsilon=0), match="epsilon=0"),
    bad("SinkhornQuantizer", "epsilon-inf", lambda z: _sk(epsilon=INF), match="epsilon=inf: expected a finite"),
    bad("SinkhornQuantizer", "n-iters-zero", lambda z: _sk(n_iters=0), match="n_iters=0"),
    bad("SinkhornQuantizer", "normalize-unknown", lambda z: _sk(normalize="l1"), match="normalize='l1'"),
    bad(
        "ResidualQuantizer",
        "num-stages-zero",
        lambda z: __import__("mmquant").ResidualQuantizer(8, 4, num_stages=0),
        match="num_stages=0",
    ),
    bad(
        "ResidualQuantizer",
        "nested-residual",
        lambda z: __import__("mmquant").ResidualQuantizer(8, 4, stage_type="residual"),
        match="stage_type='residual'",
    ),
    bad(
        "build_quantizer",
        "unknown-type",
        lambda z: __import__("mmquant").build_quantizer("pq", dim=8, codebook_size=4),
        match="quantizer type 'pq' is unknown",
    ),
    bad(
        "build_quantizer",
        "unknown-key",
        lambda z: __import__("mmquant").build_quantizer("vq", dim=8, codebook_size=4, size=3),
        match="quantizer type 'vq'.*'size'.*quantizer_config",
    ),
    bad(
        "build_quantizer",
        "missing-key",
        lambda z: __import__("mmquant").build_quantizer("vq", dim=8),
        match="quantizer type 'vq'.*codebook_size",
    ),
]


def _usage(k=8):
    from mmquant.quantizers import CodebookUsage

    return CodebookUsage(k)


def _sinkhorn(x, c=None):
    from mmquant.quantizers import sinkhorn_assign

    return sinkhorn_assign(x, torch.randn(5, 4) if c is None else c)


FUNCTIONAL_QUANTIZER_CASES = [
    bad("CodebookUsage", "codebook-size-zero", lambda z: _usage(0), match="codebook_size=0"),
    bad(
        "CodebookUsage.update",
        "out-of-range",
        lambda z: _usage().update(torch.tensor([8])),
        match=r"indices.*\[0, 8\)",
    ),
    bad("CodebookUsage.update", "negative", lambda z: _usage().update(torch.tensor([-1])), match="indices.*min -1"),
    bad(
        "CodebookUsage.update",
        "float",
        lambda z: _usage().update(torch.tensor([0.5])),
        match="indices: expected an int",
    ),
    bad(
        "CodebookUsage.update",
        "mask-shape",
        lambda z: _usage().update(torch.tensor([1, 2]), torch.tensor([True])),
        match="mask: expected a bool tensor of indices' shape",
    ),
    bad(
        "CodebookUsage.update",
        "mask-dtype",
        lambda z: _usage().update(torch.tensor([1, 2]), torch.tensor([1, 0])),
        match="mask: expected a bool",
    ),
    ok(
        "CodebookUsage.compute",
        "nothing-counted",
        lambda z: _usage().compute(),
        lambda r: r["usage"] == 0.0 and r["dead_codes"] == 8,
    ),
    bad(
        "sinkhorn_assign",
        "nan-features",
        lambda z: _sinkhorn(with_nan(torch.randn(3, 4))),
        match="sinkhorn: x: contains NaN",
    ),
    bad(
        "sinkhorn_assign",
        "inf-codebook",
        lambda z: _sinkhorn(torch.randn(3, 4), with_nan(torch.randn(5, 4), INF)),
        match="sinkhorn: codebook: contains NaN or Inf",
    ),
    bad("sinkhorn_assign", "dim-mismatch", lambda z: _sinkhorn(torch.randn(3, 3)), match=r"x \(N, D\) and codebook"),
    ok("sinkhorn_assign", "empty", lambda z: _sinkhorn(torch.randn(0, 4)), shape_is(0)),
    ok("sinkhorn_assign", "one-token", lambda z: _sinkhorn(torch.randn(1, 4)), shape_is(1)),
]

# ---------------------------------------------------------------------------------------------------- OptVQ
OPTVQ_CASES = [
    bad(
        "OptVQModel.forward",
        "wrong-rank",
        lambda z: z.optvq(torch.rand(3, 16, 16)),
        match=r"pixel_values: expected shape \(batch, 3, 16, 16\)",
    ),
    bad(
        "OptVQModel.forward", "wrong-channels", lambda z: z.optvq(img(c=1)), match="pixel_values: expected 3 channels"
    ),
    bad(
        "OptVQModel.forward",
        "wrong-size",
        lambda z: z.optvq(img(s=32)),
        match="pixel_values: expected images of 16x16",
    ),
    bad(
        "OptVQModel.forward", "int-dtype", lambda z: z.optvq(img().long()), TypeError, "pixel_values: expected a float"
    ),
    bad(
        "OptVQModel.forward", "not-a-tensor", lambda z: z.optvq(img().tolist()), TypeError, "pixel_values: expected a"
    ),
    bad("OptVQModel.forward", "nan", lambda z: z.optvq(with_nan(img())), match="pixel_values: contains NaN"),
    bad(
        "OptVQModel.forward", "inf", lambda z: z.optvq(with_nan(img(), INF)), match="pixel_values: contains NaN or Inf"
    ),
    bad("OptVQModel.forward", "empty-batch", lambda z: z.optvq(img(n=0)), match="empty batch.*pixel_values"),
    ok("OptVQModel.forward", "batch-of-one", lambda z: z.optvq(img(n=1)).loss, finite),
    ok("OptVQModel.forward", "float64-input-cast", lambda z: z.optvq(img().double()).loss, finite),
    ok("OptVQModel.forward", "bfloat16-input-cast", lambda z: z.optvq(img().bfloat16()).loss, finite),
    bad("OptVQModel.encode_to_indices", "wrong-size", lambda z: z.optvq.encode_to_indices(img(s=8)), match="16x16"),
    bad("OptVQModel.encode_to_indices", "nan", lambda z: z.optvq.encode_to_indices(with_nan(img())), match="NaN"),
    ok(
        "OptVQModel.encode_to_indices",
        "empty-batch",
        lambda z: z.optvq.encode_to_indices(img(n=0)),
        shape_is(0, 4, 4, 2),
    ),
    bad(
        "OptVQModel.decode_indices",
        "out-of-range",
        lambda z: z.optvq.decode_indices(torch.full((1, 4, 4, 2), 32)),
        match=r"indices: expected values in \[0, 32\)",
    ),
    bad(
        "OptVQModel.decode_indices",
        "negative",
        lambda z: z.optvq.decode_indices(torch.full((1, 4, 4, 2), -1)),
        match=r"indices: .*min -1",
    ),
    bad(
        "OptVQModel.decode_indices",
        "float",
        lambda z: z.optvq.decode_indices(torch.zeros(1, 4, 4, 2)),
        match="indices",
    ),
    bad(
        "OptVQModel.decode_indices",
        "wrong-grid",
        lambda z: z.optvq.decode_indices(torch.zeros(1, 5, 5, 2).long()),
        match=r"indices: expected shape \(batch, 4, 4, 2\)",
    ),
    bad(
        "OptVQModel.decode_indices",
        "missing-heads",
        lambda z: z.optvq.decode_indices(torch.zeros(1, 4, 4).long()),
        match=r"indices: expected shape \(batch, 4, 4, 2\)",
    ),
    bad(
        "OptVQModel.decode_indices", "not-a-tensor", lambda z: z.optvq.decode_indices([[0]]), match="indices: expected"
    ),
    ok(
        "OptVQModel.decode_indices",
        "empty-batch",
        lambda z: z.optvq.decode_indices(torch.zeros(0, 4, 4, 2).long()),
        shape_is(0, 3, 16, 16),
    ),
    bad(
        "OptVQModel.quantize",
        "wrong-channels",
        lambda z: z.optvq.quantize(torch.zeros(1, 3, 4, 4)),
        match=r"latents: expected \(batch, 8, h, w\)",
    ),
    bad("OptVQModel.quantize", "not-a-tensor", lambda z: z.optvq.quantize([1.0]), TypeError, "latents: expected a"),
    bad(
        "OptVQModel.quantize",
        "nan",
        lambda z: z.optvq.quantize(with_nan(torch.zeros(1, 8, 4, 4))),
        match="latents: contains",
    ),
    bad(
        "OptVQModel.decode",
        "wrong-channels",
        lambda z: z.optvq.decode(torch.zeros(1, 3, 4, 4)),
        match=r"quantized: expected \(batch, 8, h, w\)",
    ),
    bad(
        "OptVQDiffusersModel.encode",
        "wrong-channels",
        lambda z: z.diffusers_optvq.encode(img(c=1)),
        match="pixel_values",
    ),
    bad(
        "OptVQDiffusersModel.decode",
        "wrong-channels",
        lambda z: z.diffusers_optvq.decode(torch.rand(1, 3, 4, 4)),
        match="latents: expected",
    ),
    bad(
        "OptVQDiffusersModel.decode",
        "nan",
        lambda z: z.diffusers_optvq.decode(with_nan(torch.rand(1, 8, 4, 4))),
        match="latents: contains NaN",
    ),
    bad("OptVQDiffusersModel.forward", "wrong-size", lambda z: z.diffusers_optvq(img(s=8)), match="16x16"),
]


def _optvq_config(**kw):
    from mmquant import OptVQConfig

    return OptVQConfig(**({"image_size": 16, "block_out_channels": [8, 8, 16]} | kw))


OPTVQ_CONFIG_CASES = [
    bad("OptVQConfig", "image-size-string", lambda z: _optvq_config(image_size="16"), match="image_size='16'"),
    bad("OptVQConfig", "image-size-indivisible", lambda z: _optvq_config(image_size=18), match="image_size=18"),
    bad("OptVQConfig", "in-channels-zero", lambda z: _optvq_config(in_channels=0), match="in_channels=0"),
    bad("OptVQConfig", "unknown-backbone", lambda z: _optvq_config(backbone="vit"), match="backbone='vit'"),
    bad(
        "OptVQConfig",
        "quantizer-without-type",
        lambda z: _optvq_config(quantizer_config={"codebook_size": 4}),
        match=r"quantizer_config\['type'\]=None",
    ),
    bad(
        "OptVQConfig",
        "quantizer-dim",
        lambda z: _optvq_config(quantizer_config={"type": "vq", "dim": 4}),
        match=r"quantizer_config\['dim'\]",
    ),
    bad(
        "OptVQConfig",
        "heads-not-dividing",
        lambda z: _optvq_config(quantizer_config={"type": "vq", "codebook_size": 4, "num_heads": 3}),
        match=r"quantizer_config\['num_heads'\]=3",
    ),
    bad(
        "create_model",
        "unknown-name",
        lambda z: __import__("mmquant").create_model("optvq-huge"),
        match="'optvq-huge'",
    ),
]


# ---------------------------------------------------------------------------------------------------- MXQ-VAE
def _mx(z, x=None, ids=None, **kw):
    return z.mxqvae(img(s=64) if x is None else x, z.ids() if ids is None else ids, **kw)


MXQVAE_CASES = [
    bad("MXQVAEModel.forward", "wrong-size", lambda z: _mx(z, img(s=32)), match="pixel_values.*resized to 64x64"),
    bad("MXQVAEModel.forward", "wrong-channels", lambda z: _mx(z, img(c=1, s=64)), match="pixel_values.*3-channel"),
    bad("MXQVAEModel.forward", "wrong-rank", lambda z: _mx(z, img(s=64)[0]), match="pixel_values: expected shape"),
    bad(
        "MXQVAEModel.forward",
        "uint8-images",
        lambda z: _mx(z, img(s=64).to(torch.uint8)),
        TypeError,
        "pixel_values: expected a float",
    ),
    bad("MXQVAEModel.forward", "nan", lambda z: _mx(z, with_nan(img(s=64))), match="pixel_values: contains NaN"),
    bad("MXQVAEModel.forward", "missing-images", lambda z: z.mxqvae(None, z.ids()), match="pixel_values: required"),
    bad("MXQVAEModel.forward", "missing-captions", lambda z: z.mxqvae(img(s=64), None), match="input_ids: required"),
    bad("MXQVAEModel.forward", "caption-too-short", lambda z: _mx(z, ids=z.ids()[:, :40]), match="max_text_length=48"),
    bad("MXQVAEModel.forward", "caption-too-long", lambda z: _mx(z, ids=z.ids(length=56)), match="max_text_length=48"),
    bad(
        "MXQVAEModel.forward", "ids-out-of-vocab", lambda z: _mx(z, ids=z.ids() + 1000), match="input_ids.*vocab_size"
    ),
    bad("MXQVAEModel.forward", "ids-negative", lambda z: _mx(z, ids=z.ids() - 5), match=r"input_ids.*\[-5"),
    bad(
        "MXQVAEModel.forward", "ids-float", lambda z: _mx(z, ids=z.ids().float()), TypeError, "input_ids: expected int"
    ),
    bad("MXQVAEModel.forward", "ids-list", lambda z: _mx(z, ids=z.ids().tolist()), TypeError, "input_ids: expected a"),
    bad(
        "MXQVAEModel.forward",
        "caption-only-padding",
        lambda z: _mx(z, ids=torch.zeros(2, 48, dtype=torch.long)),
        match="input_ids: a caption is only padding",
    ),
    bad(
        "MXQVAEModel.forward",
        "attention-mask-shape",
        lambda z: _mx(z, attention_mask=torch.ones(2, 3)),
        match="attention_mask: expected a tensor of input_ids' shape",
    ),
    bad("MXQVAEModel.forward", "batch-mismatch", lambda z: _mx(z, img(n=3, s=64)), match="batch sizes differ"),
    bad("MXQVAEModel.forward", "empty-batch", lambda z: _mx(z, img(n=0, s=64), z.ids()[:0]), match="empty batch"),
    ok("MXQVAEModel.forward", "batch-of-one", lambda z: _mx(z, img(n=1, s=64), z.ids(1)).loss, finite),
    ok("MXQVAEModel.forward", "float64-input-cast", lambda z: _mx(z, img(s=64).double()).loss, finite),
    bad(
        "MXQVAEModel.encode_to_indices",
        "nan",
        lambda z: z.mxqvae.encode_to_indices(with_nan(img(s=64)), z.ids()),
        match="pixel_values: contains NaN",
    ),
    bad(
        "MXQVAEModel.encode_to_indices",
        "ids-out-of-vocab",
        lambda z: z.mxqvae.encode_to_indices(img(s=64), z.ids() + 999),
        match="input_ids.*vocab_size",
    ),
    bad(
        "MXQVAEModel.decode_indices",
        "out-of-range",
        lambda z: z.mxqvae.decode_indices(torch.full((1, 72), 32)),
        match=r"indices.*codebook_size=32",
    ),
    bad(
        "MXQVAEModel.decode_indices",
        "negative",
        lambda z: z.mxqvae.decode_indices(torch.full((1, 72), -1)),
        match=r"indices.*\[-1",
    ),
    bad(
        "MXQVAEModel.decode_indices",
        "wrong-length",
        lambda z: z.mxqvae.decode_indices(torch.zeros(1, 70).long()),
        match="num_tokens=72",
    ),
    bad(
        "MXQVAEModel.decode_indices",
        "float",
        lambda z: z.mxqvae.decode_indices(torch.zeros(1, 72)),
        TypeError,
        "indices: expected integer",
    ),
    bad("MXQVAEModel.decode_indices", "not-a-tensor", lambda z: z.mxqvae.decode_indices([[0] * 72]), match="indices"),
    ok(
        "MXQVAEModel.decode_indices",
        "empty-batch",
        lambda z: z.mxqvae.decode_indices(torch.zeros(0, 72).long()),
        lambda r: r[0].shape == (0, 3, 64, 64) and r[1].shape == (0, 48),
    ),
]


def _sample(z, **kw):
    return z.prior.sample_codes(**({"num_samples": 1, "generator_seed": 0} | kw))


PRIOR_CASES = [
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "num-samples-zero",
        lambda z: _sample(z, num_samples=0),
        match="num_samples=0",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "num-samples-negative",
        lambda z: _sample(z, num_samples=-1),
        match="num_samples=-1",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "temperature-zero",
        lambda z: _sample(z, temperature=0),
        match="temperature=0",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "temperature-nan",
        lambda z: _sample(z, temperature=NAN),
        match="temperature=nan",
    ),
    bad("MXQVAEPriorForCausalLM.sample_codes", "top-p-above-one", lambda z: _sample(z, top_p=2.0), match="top_p=2.0"),
    bad("MXQVAEPriorForCausalLM.sample_codes", "top-k-negative", lambda z: _sample(z, top_k=-3), match="top_k"),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "prefix-out-of-range",
        lambda z: _sample(z, prefix=torch.full((1, 3), 999)),
        match=r"prefix.*codebook_size=32",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "prefix-negative",
        lambda z: _sample(z, prefix=torch.full((1, 3), -1)),
        match=r"prefix.*\[0, 32\)",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "prefix-float",
        lambda z: _sample(z, prefix=torch.zeros(1, 3)),
        TypeError,
        "prefix.*expected integer",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "prefix-too-long",
        lambda z: _sample(z, prefix=torch.zeros(1, 80, dtype=torch.long)),
        match=r"prefix.*1 to 71",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "prefix-complete",
        lambda z: _sample(z, prefix=torch.zeros(1, 72, dtype=torch.long)),
        match=r"prefix.*1 to 71",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "prefix-rank-1",
        lambda z: _sample(z, prefix=torch.zeros(3, dtype=torch.long)),
        match="prefix.*expected shape",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "prefix-empty-batch",
        lambda z: _sample(z, prefix=torch.zeros(0, 3, dtype=torch.long)),
        match="empty batch.*prefix",
    ),
    ok("MXQVAEPriorForCausalLM.sample_codes", "one-sample", lambda z: _sample(z), shape_is(1, 72)),
    bad(
        "MXQVAEPriorForCausalLM.to_sequence",
        "float-codes",
        lambda z: z.prior.to_sequence(torch.zeros(1, 72)),
        TypeError,
        "codes.*expected integer",
    ),
    bad(
        "MXQVAEPriorForCausalLM.from_sequence",
        "wrong-length",
        lambda z: z.prior.from_sequence(torch.zeros(1, 10, dtype=torch.long)),
        match="sequence: expected shape",
    ),
    bad(
        "MXQVAEPriorForCausalLM.forward",
        "ids-out-of-vocab",
        lambda z: z.prior(input_ids=torch.full((1, 5), 10**6)),
        match=r"input_ids: ids must lie in \[0, 34\)",
    ),
    bad(
        "MXQVAEPriorForCausalLM.forward",
        "ids-negative",
        lambda z: z.prior(input_ids=torch.full((1, 5), -1)),
        match="input_ids: ids must lie",
    ),
    bad(
        "MXQVAEPriorForCausalLM.forward",
        "too-long",
        lambda z: z.prior(input_ids=torch.zeros(1, 200).long()),
        match=r"input_ids: expected shape \(batch, 1 to 73\)",
    ),
    bad(
        "MXQVAEPriorForCausalLM.generate",
        "start-out-of-vocab",
        lambda z: z.prior.generate(input_ids=torch.full((1, 1), 99), max_new_tokens=2, pad_token_id=0),
        match="input_ids: ids must lie",
    ),
]


def _pipe(z, **kw):
    return z.pipeline(**({"num_samples": 1, "seed": 0} | kw))


PIPELINE_CASES = [
    bad("MXQVAEPipeline.__call__", "num-samples-zero", lambda z: _pipe(z, num_samples=0), match="num_samples=0"),
    bad(
        "MXQVAEPipeline.__call__",
        "caption-empty",
        lambda z: _pipe(z, caption=""),
        match="caption: expected a non-empty",
    ),
    bad(
        "MXQVAEPipeline.__call__", "caption-blank", lambda z: _pipe(z, caption="   "), match="caption: expected a non"
    ),
    bad(
        "MXQVAEPipeline.__call__", "caption-not-a-string", lambda z: _pipe(z, caption=["a"]), match="caption: expected"
    ),
    bad(
        "MXQVAEPipeline.__call__",
        "caption-too-long",
        lambda z: _pipe(z, caption="this is white 3. " * 12),
        match="more than max_length=48",
    ),
    bad(
        "MXQVAEPipeline.__call__",
        "caption-unknown-words",
        lambda z: _pipe(z, caption="The zebra flies over."),
        match=r"caption: words not in the tokenizer's vocabulary: \['zebra', 'flies', 'over'\]",
    ),
    bad(
        "MXQVAEPipeline.__call__",
        "caption-and-image",
        lambda z: _pipe(z, caption="a", image=Image.new("RGB", (64, 64))),
        match="caption and image: give at most one",
    ),
    bad(
        "MXQVAEPipeline.__call__",
        "image-wrong-size",
        lambda z: _pipe(z, image=Image.new("RGB", (32, 32))),
        match="image: expected 64x64",
    ),
    bad(
        "MXQVAEPipeline.__call__",
        "image-path-string",
        lambda z: _pipe(z, image="x.png"),
        match="image: expected a PIL",
    ),
    bad(
        "MXQVAEPipeline.__call__",
        "image-nan-tensor",
        lambda z: _pipe(z, image=torch.full((3, 64, 64), NAN)),
        match="image: contains NaN",
    ),
    bad("MXQVAEPipeline.__call__", "temperature-zero", lambda z: _pipe(z, temperature=0), match="temperature=0"),
    bad("MXQVAEPipeline.__call__", "seed-string", lambda z: _pipe(z, seed="a"), TypeError, "seed='a'"),
    ok(
        "MXQVAEPipeline.__call__",
        "known-caption",
        lambda z: _pipe(z, caption="This is white 3."),
        lambda r: len(r.images) == 1 and r.codes.shape == (1, 72),
    ),
    bad(
        "MXQVAEPipeline.from_pretrained",
        "not-a-pipeline-folder",
        lambda z: __import__("mmquant").MXQVAEPipeline.from_pretrained(str(z.tmp())),
        OSError,
        "model_index.json",
    ),
]


# ---------------------------------------------------------------------------------------------------- LAViTeR
def _lav_ids(z, n=2):
    return z.ids(n, length=12)


def _lav(z, x=None, ids=None, **kw):
    return z.laviter(img() if x is None else x, _lav_ids(z) if ids is None else ids, **kw)


LAVITER_CASES = [
    bad("LaviterModel.forward", "wrong-size", lambda z: _lav(z, img(s=8)), match="pixel_values.*16x16"),
    bad("LaviterModel.forward", "wrong-channels", lambda z: _lav(z, img(c=1)), match="pixel_values.*3-channel"),
    bad(
        "LaviterModel.forward",
        "int-dtype",
        lambda z: _lav(z, img().long()),
        TypeError,
        "pixel_values: expected a float",
    ),
    bad("LaviterModel.forward", "nan", lambda z: _lav(z, with_nan(img())), match="pixel_values: contains NaN"),
    bad("LaviterModel.forward", "missing-images", lambda z: z.laviter(None, _lav_ids(z)), TypeError, "pixel_values"),
    bad("LaviterModel.forward", "missing-captions", lambda z: z.laviter(img(), None), TypeError, "input_ids"),
    bad("LaviterModel.forward", "caption-too-long", lambda z: _lav(z, ids=z.ids(2, 14)), match="max_text_length=12"),
    bad("LaviterModel.forward", "ids-out-of-vocab", lambda z: _lav(z, ids=_lav_ids(z) + 100), match="vocab_size"),
    bad(
        "LaviterModel.forward",
        "caption-only-padding",
        lambda z: _lav(z, ids=torch.zeros(2, 12).long()),
        match="attention_mask: caption 0 is empty",
    ),
    bad(
        "LaviterModel.forward",
        "attention-mask-shape",
        lambda z: _lav(z, attention_mask=torch.ones(2, 5).long()),
        match="attention_mask: expected a tensor of input_ids' shape",
    ),
    bad(
        "LaviterModel.forward",
        "attention-mask-values",
        lambda z: _lav(z, attention_mask=torch.full((2, 12), 2)),
        match="attention_mask: expected only 0 and 1",
    ),
    bad(
        "LaviterModel.forward",
        "attention-mask-left-padding",
        lambda z: _lav(z, attention_mask=torch.tensor([[0] * 4 + [1] * 8] * 2)),
        match="attention_mask.*right padding",
    ),
    bad("LaviterModel.forward", "batch-mismatch", lambda z: _lav(z, img(n=3)), match="batch sizes differ"),
    bad("LaviterModel.forward", "empty-batch", lambda z: _lav(z, img(n=0), _lav_ids(z)[:0]), match="empty batch"),
    ok("LaviterModel.forward", "batch-of-one", lambda z: _lav(z, img(n=1), _lav_ids(z, 1)).loss, finite),
    ok("LaviterModel.forward", "float64-input-cast", lambda z: _lav(z, img().double()).loss, finite),
    bad(
        "LaviterModel.generate_images",
        "ids-float",
        lambda z: z.laviter.generate_images(_lav_ids(z).float()),
        TypeError,
        "input_ids: expected integer",
    ),
    bad(
        "LaviterModel.generate_images",
        "empty-batch",
        lambda z: z.laviter.generate_images(_lav_ids(z)[:0]),
        match="empty batch.*input_ids",
    ),
    ok(
        "LaviterModel.generate_images",
        "batch-of-one",
        lambda z: z.laviter.generate_images(_lav_ids(z, 1)),
        shape_is(1, 3, 16, 16),
    ),
    bad(
        "LaviterModel.generate_captions",
        "wrong-channels",
        lambda z: z.laviter.generate_captions(img(c=1)),
        match="pixel_values.*3-channel",
    ),
    bad(
        "LaviterModel.generate_captions",
        "nan",
        lambda z: z.laviter.generate_captions(with_nan(img())),
        match="pixel_values: contains NaN",
    ),
    bad(
        "LaviterModel.generate_captions",
        "empty-batch",
        lambda z: z.laviter.generate_captions(img(n=0)),
        match="empty batch.*pixel_values",
    ),
    bad(
        "LaviterModel.get_text_features",
        "empty-batch",
        lambda z: z.laviter.get_text_features(_lav_ids(z)[:0]),
        match="empty batch.*input_ids",
    ),
    bad(
        "LaviterModel.set_phase", "unknown-phase", lambda z: z.laviter.set_phase("pretrain"), match="phase='pretrain'"
    ),
]


# ---------------------------------------------------------------------------------------------------- jWAE
def _jw_ids(z, n=2):
    return z.ids(n, length=24)


def _jw(z, x=None, ids=None, **kw):
    return z.jwae(img() if x is None else x, _jw_ids(z) if ids is None else ids, **kw)


JWAE_CASES = [
    bad("JWAEModel.forward", "wrong-size", lambda z: _jw(z, img(s=32)), match="pixel_values.*16x16"),
    bad("JWAEModel.forward", "nan", lambda z: _jw(z, with_nan(img())), match="pixel_values: contains NaN"),
    bad("JWAEModel.forward", "missing-captions", lambda z: z.jwae(img()), match="input_ids: required"),
    bad("JWAEModel.forward", "missing-images", lambda z: z.jwae(None, _jw_ids(z)), match="pass pixel_values="),
    bad(
        "JWAEModel.forward",
        "features-for-a-pixel-model",
        lambda z: _jw(z, image_features=torch.randn(2, 8)),
        match="image_input is 'pixels'",
    ),
    bad(
        "JWAEModel.forward", "caption-too-short", lambda z: _jw(z, ids=_jw_ids(z)[:, :20]), match="max_text_length=24"
    ),
    bad("JWAEModel.forward", "ids-negative", lambda z: _jw(z, ids=_jw_ids(z) - 3), match=r"input_ids.*\[-3"),
    bad(
        "JWAEModel.forward",
        "caption-only-padding",
        lambda z: _jw(z, ids=torch.zeros(2, 24).long()),
        match="attention_mask: caption 0 is empty",
    ),
    bad("JWAEModel.forward", "batch-mismatch", lambda z: _jw(z, img(n=1)), match="batch sizes differ"),
    bad("JWAEModel.forward", "empty-batch", lambda z: _jw(z, img(n=0), _jw_ids(z)[:0]), match="empty batch"),
    ok("JWAEModel.forward", "batch-of-one", lambda z: _jw(z, img(n=1), _jw_ids(z, 1)).loss, finite),
    ok("JWAEModel.forward", "float64-input-cast", lambda z: _jw(z, img().double()).loss, finite),
    bad("JWAEModel.get_image_features", "empty-batch", lambda z: z.jwae.get_image_features(img(n=0)), match="empty"),
    bad(
        "JWAEModel.get_text_features",
        "ids-float",
        lambda z: z.jwae.get_text_features(_jw_ids(z).float()),
        TypeError,
        "input_ids",
    ),
    bad(
        "JWAEModel.generate_captions",
        "latent-dim",
        lambda z: z.jwae.generate_captions(torch.randn(2, 5)),
        match=r"latents: expected shape \(batch, 8\)",
    ),
    bad(
        "JWAEModel.generate_captions",
        "nan",
        lambda z: z.jwae.generate_captions(with_nan(torch.randn(2, 8))),
        match="latents: contains NaN",
    ),
    bad(
        "JWAEModel.generate_captions",
        "max-length-zero",
        lambda z: z.jwae.generate_captions(torch.randn(2, 8), 0),
        match="max_length=0",
    ),
    bad(
        "JWAEModel.generate_captions",
        "max-length-negative",
        lambda z: z.jwae.generate_captions(torch.randn(2, 8), -1),
        match="max_length=-1",
    ),
    ok(
        "JWAEModel.generate_captions",
        "empty-batch",
        lambda z: z.jwae.generate_captions(torch.randn(0, 8)),
        shape_is(0, 24),
    ),
]

# ---------------------------------------------------------------------------------------------------- judge
JUDGE_CASES = [
    bad("CaptionMnistJudgeModel.forward", "wrong-size", lambda z: z.judge(img(s=32)), match="pixel_values.*64x64"),
    bad(
        "CaptionMnistJudgeModel.forward",
        "bytes-not-mapped",
        lambda z: z.judge(img(s=64) * 127 + 128),
        match=r"pixel_values: expected values in \[-1, 1\]",
    ),
    bad(
        "CaptionMnistJudgeModel.forward", "nan", lambda z: z.judge(with_nan(img(s=64))), match="pixel_values: contains"
    ),
    bad("CaptionMnistJudgeModel.forward", "empty-batch", lambda z: z.judge(img(n=0, s=64)), match="pixel_values"),
    ok(
        "CaptionMnistJudgeModel.forward",
        "float64-input-cast",
        lambda z: z.judge(img(s=64).double()).digit_logits,
        shape_is(2, 5, 11),
    ),
    bad(
        "CaptionMnistJudgeModel.classify_crops",
        "nan",
        lambda z: z.judge.classify_crops(torch.full((1, 3, 32, 32), NAN)),
        match="crops: contains NaN",
    ),
    bad(
        "CaptionMnistJudgeModel.read_objects",
        "single-length",
        lambda z: z.judge.read_objects(img(s=64), [True]),
        match="single: expected one bool per canvas",
    ),
    bad(
        "CaptionMnistJudgeModel.read_objects",
        "unknown-color",
        lambda z: z.judge.read_objects(img(s=64), True, colors=["purple"]),
        match="colors=.*purple",
    ),
]


# ---------------------------------------------------------------------------------------------------- data
def _collate(z, rows, **kw):
    from mmquant.data.collate import ImageCaptionCollator

    return (ImageCaptionCollator(z.tokenizer, **({"image_size": 64} | kw)) if kw else z.collator)(rows)


def _row(image=None, caption="This is white 3."):
    return {"image": Image.new("RGB", (64, 64)) if image is None else image, "caption": caption}


def _tokenize(z, captions, max_length=48):
    from mmquant.data.pairs import tokenize_captions

    return tokenize_captions(z.tokenizer, captions, max_length)


def _train_tokenizer(captions, **kw):
    from mmquant.data.tokenizer import train_caption_tokenizer

    return train_caption_tokenizer(captions, **kw)


DATA_CASES = [
    bad("ImageCaptionCollator.__call__", "empty-batch", lambda z: _collate(z, []), match="examples: empty batch"),
    bad(
        "ImageCaptionCollator.__call__",
        "not-a-list",
        lambda z: _collate(z, _row()),
        TypeError,
        "examples: expected a list",
    ),
    bad("ImageCaptionCollator.__call__", "row-not-a-dict", lambda z: _collate(z, ["a"]), TypeError, r"examples\[0\]"),
    bad(
        "ImageCaptionCollator.__call__",
        "missing-caption",
        lambda z: _collate(z, [{"image": _row()["image"]}]),
        KeyError,
        r"examples\[0\]: no 'captions' column",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "missing-image",
        lambda z: _collate(z, [{"caption": "a"}]),
        KeyError,
        r"examples\[0\]: no 'image' column",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "caption-empty",
        lambda z: _collate(z, [_row(caption="")]),
        match=r"examples\[0\]\['caption'\]: expected a non-empty caption",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "caption-not-a-string",
        lambda z: _collate(z, [_row(caption=5)]),
        match=r"examples\[0\]\['caption'\]",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "caption-list-empty",
        lambda z: _collate(z, [{"image": _row()["image"], "captions": []}]),
        match=r"examples\[0\]\['captions'\]: empty list",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "caption-too-long",
        lambda z: _collate(z, [_row(caption="white " * 60)]),
        match=r"examples\[0\]: caption has 62 tokens.*max_length=48",
    ),
    ok(
        "ImageCaptionCollator.__call__",
        "unknown-words-become-unk",
        lambda z: _collate(z, [_row(caption="zebra 3")]),
        lambda r: r["input_ids"][0, :4].tolist() == [1, 3, r["input_ids"][0, 2].item(), 2],
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "image-path",
        lambda z: _collate(z, [_row(image="x.png")]),
        match=r"examples\[0\]: expected a PIL image",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "image-float-array",
        lambda z: _collate(z, [_row(np.zeros((8, 8, 3), "f4"))]),
        match=r"examples\[0\]: expected .*uint8",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "image-no-pixels",
        lambda z: _collate(z, [_row(np.zeros((0, 0, 3), "u1"))]),
        match=r"examples\[0\]: expected an image with pixels",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "image-tensor-nan",
        lambda z: _collate(z, [_row(torch.full((3, 8, 8), NAN))]),
        match=r"examples\[0\]: contains NaN",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "image-tensor-out-of-range",
        lambda z: _collate(z, [_row(torch.full((3, 8, 8), 2.0))]),
        match=r"examples\[0\]: .*\[0, 1\]",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "image-4-channel-tensor",
        lambda z: _collate(z, [_row(torch.zeros(4, 8, 8))]),
        match=r"examples\[0\]: expected a \(C, H, W\) tensor",
    ),
    bad(
        "ImageCaptionCollator.__call__",
        "wrong-size-without-resize",
        lambda z: _collate(z, [_row(Image.new("RGB", (32, 32)))], resize=False),
        match=r"examples\[0\]: expected 64x64",
    ),
    ok(
        "ImageCaptionCollator.__call__",
        "batch-of-one",
        lambda z: _collate(z, [_row()]),
        lambda r: r["pixel_values"].shape == (1, 3, 64, 64) and r["input_ids"].shape == (1, 48),
    ),
    bad(
        "ImageCaptionCollator", "image-size-zero", lambda z: _collate(z, [_row()], image_size=0), match="image_size=0"
    ),
    bad(
        "ImageCaptionCollator", "max-length-zero", lambda z: _collate(z, [_row()], max_length=0), match="max_length=0"
    ),
    bad(
        "ImageCaptionCollator",
        "caption-choice",
        lambda z: _collate(z, [_row()], caption_choice="last"),
        match="caption_choice='last'",
    ),
    bad(
        "tokenize_captions",
        "caption-too-long",
        lambda z: _tokenize(z, ["white " * 60]),
        match=r"captions\[0\] has 62 tokens, more than max_length=48",
    ),
    bad(
        "tokenize_captions",
        "a-string",
        lambda z: _tokenize(z, "This is white 3."),
        TypeError,
        "captions: expected a list",
    ),
    ok("tokenize_captions", "no-captions", lambda z: _tokenize(z, []), shape_is(0, 48)),
    ok(
        "tokenizer.__call__",
        "unknown-words-become-unk",
        lambda z: z.tokenizer("zebra flies")["input_ids"],
        lambda r: r == [1, 3, 3, 2],
    ),
    ok("tokenizer.__call__", "empty-caption", lambda z: z.tokenizer("")["input_ids"], lambda r: r == [1, 2]),
    bad("train_caption_tokenizer", "no-captions", lambda z: _train_tokenizer([]), match="captions: empty"),
    bad("train_caption_tokenizer", "a-string", lambda z: _train_tokenizer("abc"), TypeError, "captions: expected"),
    bad("train_caption_tokenizer", "not-strings", lambda z: _train_tokenizer([1, 2]), TypeError, r"captions\[0\]"),
    bad(
        "train_caption_tokenizer",
        "max-length-two",
        lambda z: _train_tokenizer(["a"], model_max_length=2),
        match="model_max_length=2",
    ),
    bad(
        "build_word_tokenizer",
        "max-length-zero",
        lambda z: __import__("mmquant.data.tokenizer").data.tokenizer.build_word_tokenizer(["a"], model_max_length=0),
        match="model_max_length=0",
    ),
    bad(
        "build_word_tokenizer",
        "a-string",
        lambda z: __import__("mmquant.data.tokenizer").data.tokenizer.build_word_tokenizer("abc"),
        TypeError,
        "words",
    ),
    bad(
        "image_to_tensor",
        "batched-tensor",
        lambda z: __import__("mmquant.data.collate").data.collate.image_to_tensor(torch.zeros(1, 3, 4, 4)),
        match=r"image: expected a \(C, H, W\)",
    ),
]


def _build(z, name, config=None, **kw):
    from mmquant.data.builders import build_dataset

    return build_dataset(name, config, cache_dir=str(z.tmp("datasets-cache")), **kw)


BUILDER_CASES = [
    bad("build_dataset", "unknown-builder", lambda z: _build(z, "mnist_captions"), match="name='mnist_captions'"),
    bad("build_dataset", "unknown-config", lambda z: _build(z, "caption_mnist", "quad9"), match="config_name='quad9'"),
    bad("build_dataset", "unknown-field", lambda z: _build(z, "caption_mnist", "quad1", colour="red"), match="colour"),
    bad(
        "build_dataset",
        "unknown-split",
        lambda z: _build(z, "caption_mnist", "quad1", num_examples={"tran": 3}),
        match=r"num_examples: unknown splits \['tran'\]",
    ),
    bad(
        "build_dataset",
        "negative-count",
        lambda z: _build(z, "caption_mnist", "quad1", num_examples={"test": -1}),
        match=r"num_examples\['test'\]=-1: expected a positive integer",
    ),
    bad(
        "build_dataset",
        "zero-count",
        lambda z: _build(z, "caption_mnist", "quad1", num_examples={"test": 0}),
        match=r"num_examples\['test'\]=0",
    ),
    bad(
        "build_dataset",
        "count-not-a-number",
        lambda z: _build(z, "caption_mnist", "quad1", num_examples={"test": "x"}),
        match=r"num_examples\['test'\]='x'",
    ),
    bad(
        "build_dataset",
        "seed-not-a-number",
        lambda z: _build(z, "caption_mnist", "quad1", seed="x", num_examples={"test": 2}),
        match="seed='x'",
    ),
    *[
        bad("build_dataset", f"{name}-without-data-dir", lambda z, n=name: _build(z, n), match="data_dir is required")
        for name in ("flowers102_captions", "cub200_captions", "coco_captions", "flickr30k_captions")
    ],
    *[
        bad(
            "build_dataset",
            f"{name}-empty-data-dir",
            lambda z, n=name: _build(z, n, data_dir=str(z.tmp("empty"))),
            FileNotFoundError,
            r"Missing .*Expected under data_dir",
        )
        for name in ("flowers102_captions", "cub200_captions", "coco_captions", "flickr30k_captions")
    ],
]


# ---------------------------------------------------------------------------------------------------- metrics
def _m(z, name, **kw):
    return z.metrics[name].compute(**kw)


_IMGS = torch.rand(2, 1, 16, 16).tolist()
_CAPTION = "This is white 3."

METRIC_CASES = [
    *[
        case
        for metric in ("psnr", "ssim")
        for case in (
            bad(
                f"{metric}.compute",
                "mismatched-lengths",
                lambda z, m=metric: _m(z, m, predictions=_IMGS, references=_IMGS[:1]),
                match="number of predictions \\(2\\) and references \\(1\\)",
            ),
            bad(
                f"{metric}.compute",
                "empty",
                lambda z, m=metric: _m(z, m, predictions=[], references=[]),
                match="predictions: expected",
            ),
            bad(
                f"{metric}.compute",
                "nan",
                lambda z, m=metric: _m(
                    z, m, predictions=torch.full((1, 16, 16), NAN).tolist(), references=torch.rand(1, 16, 16).tolist()
                ),
                match="predictions: expected finite",
            ),
            bad(
                f"{metric}.compute",
                "mismatched-shapes",
                lambda z, m=metric: _m(
                    z, m, predictions=torch.rand(1, 16, 16).tolist(), references=torch.rand(1, 17, 17).tolist()
                ),
                match="predictions .* and references .*same shape",
            ),
            bad(
                f"{metric}.compute",
                "ragged",
                lambda z, m=metric: _m(
                    z,
                    m,
                    predictions=[torch.rand(4, 4).tolist(), torch.rand(5, 5).tolist()],
                    references=[torch.rand(4, 4).tolist()] * 2,
                ),
                match="predictions: expected images of one shape",
            ),
            bad(
                f"{metric}.compute",
                "data-range-zero",
                lambda z, m=metric: _m(z, m, predictions=_IMGS, references=_IMGS, data_range=0),
                match="data_range=0",
            ),
        )
    ],
    ok(
        "psnr.compute",
        "identical-images-infinite",
        lambda z: _m(z, "psnr", predictions=_IMGS, references=_IMGS),
        lambda r: r["psnr"] == math.inf,
    ),
    bad(
        "ssim.compute",
        "image-smaller-than-window",
        lambda z: _m(z, "ssim", predictions=torch.rand(1, 8, 8).tolist(), references=torch.rand(1, 8, 8).tolist()),
        match="win_size=11",
    ),
    bad(
        "codebook_usage.compute",
        "missing-codebook-size",
        lambda z: _m(z, "codebook_usage", predictions=[[0]]),
        match="codebook_size: required",
    ),
    bad(
        "codebook_usage.compute",
        "out-of-range",
        lambda z: _m(z, "codebook_usage", predictions=[[4]], codebook_size=4),
        match=r"indices: expected values in \[0, 4\)",
    ),
    bad(
        "codebook_usage.compute",
        "negative",
        lambda z: _m(z, "codebook_usage", predictions=[[-1]], codebook_size=4),
        match="indices.*min -1",
    ),
    bad(
        "codebook_usage.compute",
        "fractional",
        lambda z: _m(z, "codebook_usage", predictions=[[0.5]], codebook_size=4),
        match=r"predictions\[0\]: expected integer code indices",
    ),
    bad(
        "codebook_usage.compute",
        "empty",
        lambda z: _m(z, "codebook_usage", predictions=[], codebook_size=4),
        match="indices: expected at least one",
    ),
    bad(
        "codebook_usage.compute",
        "codebook-size-string",
        lambda z: _m(z, "codebook_usage", predictions=[[0]], codebook_size="4"),
        match="codebook_size='4'",
    ),
    bad(
        "recall_at_k.compute",
        "mismatched-lengths",
        lambda z: _m(z, "recall_at_k", predictions=[[0.1, 0.2]] * 2, references=[[0]]),
        match="predictions \\(2\\) and references \\(1\\)",
    ),
    bad(
        "recall_at_k.compute",
        "ragged-gallery",
        lambda z: _m(z, "recall_at_k", predictions=[[0.1, 0.2], [0.3]], references=[[0], [0]]),
        match="predictions: every query must score the same gallery",
    ),
    bad(
        "recall_at_k.compute",
        "empty",
        lambda z: _m(z, "recall_at_k", predictions=[], references=[]),
        match="predictions",
    ),
    bad(
        "recall_at_k.compute",
        "positive-out-of-range",
        lambda z: _m(z, "recall_at_k", predictions=[[0.1, 0.2]], references=[[5]]),
        match=r"references\[0\]: index 5 is not a gallery index",
    ),
    bad(
        "recall_at_k.compute",
        "positive-negative",
        lambda z: _m(z, "recall_at_k", predictions=[[0.1, 0.2]], references=[[-1]]),
        match=r"references\[0\]: index -1",
    ),
    bad(
        "recall_at_k.compute",
        "nan-score",
        lambda z: _m(z, "recall_at_k", predictions=[[NAN, 0.2]], references=[[0]]),
        match="scores: contains NaN",
    ),
    bad(
        "recall_at_k.compute",
        "no-positives",
        lambda z: _m(z, "recall_at_k", predictions=[[0.1, 0.2]], references=[[]]),
        match="every query needs at least one relevant",
    ),
    bad(
        "recall_at_k.compute",
        "k-zero",
        lambda z: _m(z, "recall_at_k", predictions=[[0.1, 0.2]], references=[[0]], k_values=[0]),
        match=r"k_values=\(0,\)",
    ),
    bad(
        "r_precision.compute",
        "mismatched-lengths",
        lambda z: _m(z, "r_precision", predictions=[[0.1, 0.2]] * 3, references=[[0.1, 0.2]] * 2),
        match="predictions \\(3\\) and references \\(2\\)",
    ),
    bad(
        "r_precision.compute",
        "empty",
        lambda z: _m(z, "r_precision", predictions=[], references=[]),
        match="image_embeds: expected a non-empty",
    ),
    bad(
        "r_precision.compute",
        "nan",
        lambda z: _m(z, "r_precision", predictions=[[NAN, 0.2]] * 3, references=[[0.1, 0.2]] * 3, num_candidates=2),
        match="image_embeds: contains NaN",
    ),
    bad(
        "r_precision.compute",
        "dim-mismatch",
        lambda z: _m(z, "r_precision", predictions=[[0.1, 0.2]] * 3, references=[[0.1, 0.2, 0.3]] * 3),
        match="image_embeds .* and text_embeds .*same shape",
    ),
    bad(
        "r_precision.compute",
        "too-many-candidates",
        lambda z: _m(z, "r_precision", predictions=[[0.1, 0.2]] * 3, references=[[0.1, 0.2]] * 3, num_candidates=100),
        match="num_candidates=100",
    ),
    bad(
        "aimcos.compute",
        "mismatched-lengths",
        lambda z: _m(z, "aimcos", predictions=[[0.1, 0.2]] * 3, references=[[0]] * 2, attribute_embeds=[[0.1, 0.2]]),
        match="predictions \\(3\\) and references \\(2\\)",
    ),
    bad(
        "aimcos.compute",
        "attribute-out-of-range",
        lambda z: _m(z, "aimcos", predictions=[[0.1, 0.2]] * 2, references=[[5]] * 2, attribute_embeds=[[0.1, 0.2]]),
        match=r"attributes\[0\]=\[5\]",
    ),
    bad(
        "aimcos.compute",
        "missing-attribute-embeds",
        lambda z: _m(z, "aimcos", predictions=[[0.1, 0.2]], references=[[0]]),
        match="attribute_embeds: required",
    ),
    bad(
        "degree_accuracy.compute",
        "mismatched-lengths",
        lambda z: _m(z, "degree_accuracy", predictions=[_CAPTION] * 2, references=[_CAPTION], degrees=[1, 1]),
        match="predictions \\(2\\) and references \\(1\\)",
    ),
    bad(
        "degree_accuracy.compute",
        "mismatched-degrees",
        lambda z: _m(z, "degree_accuracy", predictions=[_CAPTION], references=[_CAPTION], degrees=[1, 1]),
        match="predictions \\(1\\) and degrees \\(2\\)",
    ),
    bad(
        "degree_accuracy.compute",
        "empty",
        lambda z: _m(z, "degree_accuracy", predictions=[], references=[], degrees=[]),
        match="input_captions: expected at least one caption",
    ),
    bad(
        "degree_accuracy.compute",
        "reference-not-a-caption",
        lambda z: _m(z, "degree_accuracy", predictions=[_CAPTION], references=["zebra"], degrees=[1]),
        match=r"input_captions\[0\]: not a Caption MNIST",
    ),
    ok(
        "degree_accuracy.compute",
        "unparseable-prediction-is-wrong",
        lambda z: _m(z, "degree_accuracy", predictions=["zebra"], references=[_CAPTION], degrees=[1]),
        lambda r: r == {"degree_1": 0.0},
    ),
    bad(
        "semantic_consistency.compute",
        "mismatched-lengths",
        lambda z: _m(
            z, "semantic_consistency", images=torch.zeros(2, 3, 64, 64).tolist(), captions=[_CAPTION], judge=z.judge
        ),
        match="number of images \\(2\\) and captions \\(1\\)",
    ),
    bad(
        "semantic_consistency.compute",
        "empty",
        lambda z: _m(z, "semantic_consistency", images=[], captions=[], judge=z.judge),
        match="captions: expected at least one",
    ),
    bad(
        "semantic_consistency.compute",
        "judge-not-a-checkpoint",
        lambda z: _m(
            z,
            "semantic_consistency",
            images=torch.zeros(1, 3, 64, 64).tolist(),
            captions=[_CAPTION],
            judge=str(z.tmp()),
        ),
        match="judge=.*no config.json",
    ),
    bad(
        "semantic_consistency.compute",
        "wrong-image-size",
        lambda z: _m(
            z, "semantic_consistency", images=torch.zeros(1, 3, 32, 32).tolist(), captions=[_CAPTION], judge=z.judge
        ),
        match="pixel_values.*64x64",
    ),
]


# ---------------------------------------------------------------------------------------------------- loading
def _saved(z, mutate=None):
    """A fresh copy of the tiny OptVQ's save_pretrained folder, changed by ``mutate(folder)``."""
    folder = z.tmp()
    z.optvq.save_pretrained(folder)
    if mutate is not None:
        mutate(folder)
    return folder


def _config_edit(**changes):
    def mutate(folder):
        config = json.loads((folder / "config.json").read_text())
        for key, value in changes.items():
            if value is _DROP:
                config.pop(key)
            else:
                config[key] = value
        (folder / "config.json").write_text(json.dumps(config))

    return mutate


def _write(name, data: bytes | None = None, truncate: int | None = None):
    def mutate(folder):
        path = folder / name
        path.write_bytes(path.read_bytes()[:truncate] if data is None else data)

    return mutate


def _drop_weights(folder):
    (folder / "model.safetensors").unlink()
    torch.save(z_state(folder), folder / "pytorch_model.bin")  # legitimate pickle weights: still refused


def z_state(folder):
    import mmquant

    return mmquant.create_model("test").state_dict()


def _load(folder, cls=None):
    from transformers import AutoModel

    import mmquant  # noqa: F401  (registers the Auto classes)

    return (cls or AutoModel).from_pretrained(str(folder))


_DROP = object()

LOADING_CASES = [
    bad("from_pretrained", "not-a-checkpoint-folder", lambda z: _load(z.tmp()), match="model_type"),
    bad("from_pretrained", "missing-folder", lambda z: _load(z.tmp() / "nope"), OSError, "nope"),
    bad(
        "from_pretrained",
        "config-without-model-type",
        lambda z: _load(_saved(z, _config_edit(model_type=_DROP))),
        match="model_type",
    ),
    bad(
        "from_pretrained",
        "unknown-model-type",
        lambda z: _load(_saved(z, _config_edit(model_type="zzz"))),
        match="model type `zzz`",
    ),
    bad(
        "from_pretrained",
        "corrupt-config-json",
        lambda z: _load(_saved(z, _write("config.json", b"{not json"))),
        OSError,
        "config.json.*not a valid JSON",
    ),
    bad(
        "from_pretrained",
        "empty-config-json",
        lambda z: _load(_saved(z, _write("config.json", b""))),
        OSError,
        "not a valid JSON",
    ),
    bad(
        "from_pretrained",
        "quantizer-without-type",
        lambda z: _load(_saved(z, _config_edit(quantizer_config={"codebook_size": 4}))),
        match=r"quantizer_config\['type'\]=None",
    ),
    bad(
        "from_pretrained",
        "image-size-string",
        lambda z: _load(_saved(z, _config_edit(image_size="16"))),
        match="image_size='16'",
    ),
    bad(
        "from_pretrained",
        "config-weights-mismatch",
        lambda z: _load(
            _saved(z, _config_edit(quantizer_config={"type": "sinkhorn", "codebook_size": 64, "num_heads": 2}))
        ),
        RuntimeError,
        "ignore_mismatched_sizes",
    ),
    bad(
        "from_pretrained",
        "truncated-weights-header",
        lambda z: _load(_saved(z, _write("model.safetensors", truncate=500))),
        OSError,
        "truncated or corrupt",
    ),
    bad(
        "from_pretrained",
        "truncated-weights-data",
        lambda z: _load(_saved(z, _write("model.safetensors", truncate=-100))),
        OSError,
        "truncated or corrupt",
    ),
    bad(
        "from_pretrained",
        "empty-weights",
        lambda z: _load(_saved(z, _write("model.safetensors", b""))),
        OSError,
        "pretrained_model_name_or_path=.*truncated or corrupt",
    ),
    bad(
        "from_pretrained",
        "garbage-weights",
        lambda z: _load(_saved(z, _write("model.safetensors", b"\0" * 999))),
        OSError,
        "truncated or corrupt",
    ),
    bad(
        "from_pretrained",
        "no-weights",
        lambda z: _load(_saved(z, lambda f: (f / "model.safetensors").unlink())),
        OSError,
        "model.safetensors",
    ),
    bad(
        "from_pretrained",
        "pickle-weights-only",
        lambda z: _load(_saved(z, _drop_weights)),
        OSError,
        "model.safetensors",
    ),
    bad(
        "from_pretrained",
        "another-models-checkpoint",
        lambda z: _load(_saved(z), __import__("mmquant").MXQVAEModel),
        ValueError,
        "model_type='optvq', but MXQVAEModel loads 'mxqvae'.*strict=False",
    ),
]


# ---------------------------------------------------------------------------------------------------- CLI
def _cli(main_path: str, argv: list[str]):
    module, _, name = main_path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)(argv)


def _train_args(script: str, argv: list[str]):
    import importlib.util
    import sys

    from conftest import ROOT

    path = ROOT / "examples" / script
    name = f"_reliability_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))
        spec.loader.exec_module(module)
    return sys.modules[name].parse_args(argv)


def _yaml(z, text: str) -> str:
    path = z.tmp() / "config.yaml"
    path.write_text(text)
    return str(path)


TRAIN_SCRIPTS = [
    "optvq/train_optvq.py",
    "mxqvae/train_mxqvae.py",
    "mxqvae/train_mxqvae_prior.py",
    "jwae/train_jwae.py",
    "laviter/train_laviter.py",
]

CLI_CASES = [
    ok("mmquant", "no-command-prints-usage", lambda z: _cli("mmquant.cli.main", []), lambda r: r == 2),
    ok("mmquant", "unknown-command", lambda z: _cli("mmquant.cli.main", ["frobnicate"]), lambda r: r == 2),
    bad(
        "mmquant zoo",
        "unknown-subcommand",
        lambda z: _cli("mmquant.cli.main", ["zoo", "frob"]),
        SystemExit,
        "invalid choice: 'frob'",
    ),
    bad(
        "mmquant zoo",
        "unknown-checkpoint",
        lambda z: _cli("mmquant.cli.main", ["zoo", "info", "nope"]),
        SystemExit,
        "name='nope': no such checkpoint",
    ),
    bad(
        "mmquant publish",
        "missing-repo-id",
        lambda z: _cli("mmquant.cli.main", ["publish", str(z.tmp())]),
        SystemExit,
        "--repo_id",
    ),
    bad(
        "mmquant publish",
        "not-a-folder",
        lambda z: _cli("mmquant.cli.main", ["publish", str(z.tmp() / "nope"), "--repo_id", "a/b"]),
        SystemExit,
        "mmquant: error: FileNotFoundError: folder=.*not a directory.*--debug",
    ),
    bad(
        "mmquant publish",
        "not-a-checkpoint-folder",
        lambda z: _cli("mmquant.cli.main", ["publish", str(z.tmp()), "--repo_id", "a/b"]),
        SystemExit,
        "config.json: missing",
    ),
    bad(
        "mmquant publish-metric",
        "unknown-metric",
        lambda z: _cli("mmquant.cli.main", ["publish-metric", "nope", "--repo_id", "a/b"]),
        error=SystemExit,
        match="name='nope'",
    ),
    bad("mmquant-data", "no-command", lambda z: _cli("mmquant.data.cli.main", []), SystemExit, "required: command"),
    bad(
        "mmquant-data build",
        "unknown-builder",
        lambda z: _cli("mmquant.data.cli.main", ["build", "nope", "--cache_dir", str(z.tmp())]),
        error=SystemExit,
        match="mmquant-data: error: .*name='nope'",
    ),
    bad(
        "mmquant-data build",
        "unknown-config",
        lambda z: _cli(
            "mmquant.data.cli.main", ["build", "caption_mnist", "--config", "zzz", "--cache_dir", str(z.tmp())]
        ),
        error=SystemExit,
        match="config_name='zzz'",
    ),
    bad(
        "mmquant-data build",
        "set-without-value",
        lambda z: _cli(
            "mmquant.data.cli.main", ["build", "caption_mnist", "--set", "seed", "--cache_dir", str(z.tmp())]
        ),
        SystemExit,
        "--set 'seed': expected key=value",
    ),
    bad(
        "mmquant-data build",
        "count-not-a-number",
        lambda z: _cli(
            "mmquant.data.cli.main",
            ["build", "caption_mnist", "--config", "quad1", "--num_examples", "test=x", "--cache_dir", str(z.tmp())],
        ),
        error=SystemExit,
        match=r"num_examples\['test'\]='x'",
    ),
    bad(
        "mmquant-data build",
        "unknown-format",
        lambda z: _cli("mmquant.data.cli.main", ["build", "caption_mnist", "--format", "csv"]),
        SystemExit,
        "--format: invalid choice: 'csv'",
    ),
    bad(
        "mmquant-data build",
        "folder-builder-without-data-dir",
        lambda z: _cli("mmquant.data.cli.main", ["build", "cub200_captions", "--cache_dir", str(z.tmp())]),
        error=SystemExit,
        match="data_dir is required",
    ),
]
for _script in TRAIN_SCRIPTS:
    _e = f"{_script.split('/')[1]}"
    CLI_CASES += [
        bad(
            _e,
            "missing-config-file",
            lambda z, s=_script: _train_args(s, ["--config", str(z.tmp() / "no.yaml")]),
            FileNotFoundError,
            "no.yaml",
        ),
        bad(
            _e,
            "unknown-config-key",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "modell: test\n")]),
            match=r"--config .*unknown keys \['modell'\]",
        ),
        bad(
            _e,
            "invalid-yaml",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "model: [test\n")]),
            match="--config .*not valid YAML",
        ),
        bad(
            _e,
            "yaml-not-a-mapping",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "- a\n")]),
            match="--config .*expected a mapping",
        ),
        bad(
            _e,
            "yaml-wrong-type",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "max_steps: 2.5\n")]),
            SystemExit,
            r"--max_steps 2.5 \(from --config .*\): expected an integer",
        ),
        bad(
            _e,
            "negative-learning-rate",
            lambda z, s=_script: _train_args(s, ["--learning_rate", "-1"]),
            SystemExit,
            "--learning_rate -1.0: expected a finite number > 0",
        ),
        bad(
            _e,
            "nan-learning-rate",
            lambda z, s=_script: _train_args(s, ["--learning_rate", "nan"]),
            SystemExit,
            "--learning_rate nan",
        ),
        bad(
            _e,
            "zero-checkpointing-steps",
            lambda z, s=_script: _train_args(s, ["--checkpointing_steps", "0"]),
            SystemExit,
            "--checkpointing_steps 0: expected >= 1",
        ),
        bad(
            _e,
            "zero-eval-steps",
            lambda z, s=_script: _train_args(s, ["--eval_steps", "0"]),
            SystemExit,
            "--eval_steps 0",
        ),
        bad(
            _e,
            "zero-batch-size",
            lambda z, s=_script: _train_args(s, ["--batch_size", "0"]),
            SystemExit,
            "--batch_size",
        ),
        bad(
            _e,
            "warmup-above-one",
            lambda z, s=_script: _train_args(s, ["--warmup_ratio", "1.5"]),
            SystemExit,
            r"--warmup_ratio 1.5: expected in \[0, 1\]",
        ),
        bad(
            _e,
            "unknown-option",
            lambda z, s=_script: _train_args(s, ["--no_such_option", "1"]),
            SystemExit,
            "unrecognized arguments: --no_such_option",
        ),
    ]


# ---------------------------------------------------------------------------------------------------- round 2
# The classes of issue 22, each with more inputs than the examples.


def _codes_norm(q):
    return float(q.embedding.weight.norm(dim=1).max())


def _ema(kind="vq", **kw):
    from mmquant.quantizers import ResidualQuantizer, SinkhornQuantizer, VectorQuantizer

    if kind == "residual":
        return ResidualQuantizer(8, 32, num_stages=2, stage_type="vq", ema_decay=0.99, **kw).train()
    cls = VectorQuantizer if kind == "vq" else SinkhornQuantizer
    return cls(dim=8, codebook_size=32, ema_decay=0.99, **kw).train()


def _ema_after(kind, batch, **kw):
    """``(norm before, norm after, loss)`` of an EMA codebook without k-means init after one first ``batch``."""
    torch.manual_seed(0)
    q = _ema(kind, **kw)
    qs = q.stages if hasattr(q, "stages") else [q]
    before = max(_codes_norm(s) for s in qs)
    x, mask = batch(q)
    out = q(x, mask)
    after = max(_codes_norm(s) for s in qs)
    return before, after, float(out.loss.detach())


def _bounded(r):
    before, after, loss = r
    return math.isfinite(after) and after < 2 * before and math.isfinite(loss)


_EMA_BATCHES = {
    "first-batch-few-codes": lambda q: (torch.randn(1, 8).repeat(64, 1), None),
    "first-batch-normal": lambda q: (torch.randn(64, 8), None),
    "first-batch-empty": lambda q: (torch.randn(0, 8), None),
    "first-batch-all-masked": lambda q: (torch.randn(4, 8), torch.zeros(4, dtype=torch.bool)),
    "first-batch-one-token": lambda q: (torch.randn(1, 8), None),
    "first-batch-one-real-token": lambda q: (torch.randn(6, 8), torch.tensor([True] + [False] * 5)),
}

ROUND2_QUANTIZER_CASES = [
    ok(f"{kind}-ema.forward", name, lambda z, k=kind, b=batch: _ema_after(k, b), _bounded)
    for kind in ("vq", "sinkhorn", "residual")
    for name, batch in _EMA_BATCHES.items()
] + [
    ok(
        "vq-ema.forward",
        "first-batch-with-dead-code-restart",
        lambda z: _ema_after("vq", lambda q: (torch.randn(16, 8), None), dead_code_threshold=1.0),
        _bounded,
    ),
    ok(
        "vq-ema.forward",
        "multi-head-first-batch",
        lambda z: _ema_after("vq", lambda q: (torch.randn(1, 8).repeat(32, 1), None), num_heads=2),
        _bounded,
    ),
]
for _name, _make in _quantizers().items():
    _f = f"{_name}.forward"
    ROUND2_QUANTIZER_CASES += [
        bad(_f, "overflow-1e30", lambda z, m=_make: m()(torch.full((3, 8), 1e30)), match="x: largest magnitude 1e"),
        bad(_f, "overflow-negative", lambda z, m=_make: m()(torch.full((3, 8), -1e25)), match="x: largest magn"),
        bad(
            _f,
            "overflow-one-value",
            lambda z, m=_make: m().train()(with_nan(torch.randn(4, 8), 3e38)),
            match="exceeds 1e\\+12.*normalise or rescale",
        ),
        bad(
            _f,
            "overflow-in-padding",
            lambda z, m=_make: m()(with_nan(torch.randn(2, 8), 1e20), torch.tensor([False, True])),
            match="x: largest magnitude",
        ),
        bad(
            _f,
            "overflow-float64",
            lambda z, m=_make: m()(torch.full((2, 8), 1e200, dtype=torch.float64)),
            match="x: largest magnitude",
        ),
        ok(_f, "large-but-finite-1e6", lambda z, m=_make: m().train()(torch.randn(4, 8) * 1e6).loss, finite),
        ok(_f, "float16-max", lambda z, m=_make: m().train()(torch.full((2, 8), 65504.0).half()).loss, finite),
    ]
ROUND2_QUANTIZER_CASES += [
    bad("sinkhorn_assign", "overflow-x", lambda z: _sinkhorn(torch.full((3, 4), 1e30)), match="sinkhorn: x: largest"),
    bad(
        "sinkhorn_assign",
        "overflow-codebook",
        lambda z: _sinkhorn(torch.randn(3, 4), torch.full((5, 4), -1e30)),
        match="sinkhorn: codebook: largest",
    ),
    bad("VectorQuantizer", "codebook-size-1e9", lambda z: _vq(codebook_size=10**9), match="codebook_size=1000000000"),
    bad("VectorQuantizer", "dim-1e9", lambda z: _vq(dim=10**9), match="dim=1000000000: larger than MAX_CONFIG"),
    bad("CodebookUsage", "codebook-size-1e12", lambda z: _usage(10**12), match="codebook_size=1000000000000"),
    bad(
        "OptVQModel.forward",
        "overflowing-pixels",
        lambda z: z.optvq(torch.full((1, 3, 16, 16), 1e30)),
        match="largest magnitude|contains NaN or Inf",
    ),
]


def _mutate_weights(change):
    """A save_pretrained folder whose ``model.safetensors`` is changed by ``change(dict of tensors)``."""

    def mutate(folder):
        from safetensors.torch import load_file, save_file

        weights = load_file(folder / "model.safetensors")
        change(weights)
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})

    return mutate


def _drop_first(weights):
    weights.pop(sorted(weights)[0])


def _drop_all_quantizer(weights):
    for key in [k for k in weights if "quantizer" in k]:
        weights.pop(key)


def _rename_first(weights):
    key = sorted(weights)[0]
    weights[key + "_old"] = weights.pop(key)


def _saved_family(z, family, mutate=None):
    folder = z.tmp()
    getattr(z, family).save_pretrained(folder)
    if mutate is not None:
        mutate(folder)
    return folder


def _load_cls(family):
    import mmquant
    from mmquant.models.caption_mnist_judge import CaptionMnistJudgeModel

    return {
        "optvq": mmquant.OptVQModel,
        "mxqvae": mmquant.MXQVAEModel,
        "laviter": mmquant.LaviterModel,
        "jwae": mmquant.JWAEModel,
        "judge": CaptionMnistJudgeModel,
    }[family]


ROUND2_LOADING_CASES = []
for _family in ("optvq", "mxqvae", "laviter", "jwae", "judge"):
    _e = f"{_load_cls(_family).__name__}.from_pretrained"
    ROUND2_LOADING_CASES += [
        bad(
            _e,
            "missing-tensor",
            lambda z, f=_family: _load_cls(f).from_pretrained(str(_saved_family(z, f, _mutate_weights(_drop_first)))),
            match=r"weights do not match .*1 tensors missing from the checkpoint .*\['.*'\].*strict=False",
        ),
        bad(
            _e,
            "unexpected-tensor",
            lambda z, f=_family: _load_cls(f).from_pretrained(
                str(_saved_family(z, f, _mutate_weights(lambda w: w.__setitem__("extra.weight", torch.zeros(2)))))
            ),
            match=r"1 unexpected tensors in the checkpoint: \['extra.weight'\]",
        ),
        bad(
            _e,
            "renamed-tensor",
            lambda z, f=_family: _load_cls(f).from_pretrained(
                str(_saved_family(z, f, _mutate_weights(_rename_first)))
            ),
            match="missing from the checkpoint.*unexpected tensors in the checkpoint: .*_old",
        ),
        bad(
            "AutoModel.from_pretrained",
            f"{_family}-missing-tensor",
            lambda z, f=_family: _load(_saved_family(z, f, _mutate_weights(_drop_first))),
            match="tensors missing from the checkpoint",
        ),
        ok(
            _e,
            "missing-tensor-strict-false",
            lambda z, f=_family: _load_cls(f).from_pretrained(
                str(_saved_family(z, f, _mutate_weights(_drop_first))), strict=False
            ),
            lambda r: r is not None,
        ),
        ok(
            _e,
            "loading-info-still-given",
            lambda z, f=_family: _load_cls(f).from_pretrained(str(_saved_family(z, f)), output_loading_info=True)[1],
            lambda info: not info["missing_keys"] and not info["unexpected_keys"],
        ),
    ]


def _diffusers_folder(z, change=None):
    folder = z.tmp()
    z.diffusers_optvq.save_pretrained(folder)
    if change is not None:
        from safetensors.torch import load_file, save_file

        path = folder / "diffusion_pytorch_model.safetensors"
        weights = load_file(path)
        change(weights)
        save_file(weights, path)
    return str(folder)


ROUND2_LOADING_CASES += [
    bad(
        "OptVQDiffusersModel.from_pretrained",
        "missing-tensor",
        lambda z: __import__("mmquant").OptVQDiffusersModel.from_pretrained(_diffusers_folder(z, _drop_first)),
        match="weights do not match OptVQDiffusersModel: 1 tensors missing",
    ),
    bad(
        "OptVQDiffusersModel.from_pretrained",
        "strict-not-a-bool",
        lambda z: __import__("mmquant").OptVQDiffusersModel.from_pretrained(_diffusers_folder(z), strict=1),
        TypeError,
        "strict=1",
    ),
    ok(
        "OptVQDiffusersModel.from_pretrained",
        "missing-tensor-strict-false",
        lambda z: __import__("mmquant").OptVQDiffusersModel.from_pretrained(
            _diffusers_folder(z, _drop_first), strict=False
        ),
        lambda r: r is not None,
    ),
    ok(
        "OptVQDiffusersModel.from_pretrained",
        "round-trip",
        lambda z: __import__("mmquant").OptVQDiffusersModel.from_pretrained(_diffusers_folder(z)),
        lambda r: r is not None,
    ),
    bad(
        "OptVQModel.from_pretrained",
        "model-type-of-another-mmquant-model",
        lambda z: _load(_saved(z, _config_edit(model_type="mxqvae")), __import__("mmquant").OptVQModel),
        match="model_type='mxqvae', but OptVQModel loads 'optvq'",
    ),
    bad(
        "OptVQModel.from_pretrained",
        "model-type-jwae",
        lambda z: _load(_saved(z, _config_edit(model_type="jwae")), __import__("mmquant").OptVQModel),
        match="model_type='jwae'.*AutoModel.from_pretrained",
    ),
    bad(
        "AutoModel.from_pretrained",
        "model-type-of-another-mmquant-model",
        lambda z: _load(_saved(z, _config_edit(model_type="jwae"))),
        match="jwae|JWAE",
    ),
    bad(
        "LaviterModel.from_pretrained",
        "optvq-checkpoint",
        lambda z: _load(_saved(z), __import__("mmquant").LaviterModel),
        match="model_type='optvq', but LaviterModel",
    ),
    bad(
        "OptVQModel.from_pretrained",
        "all-quantizer-tensors-missing",
        lambda z: _load(_saved(z, _mutate_weights(_drop_all_quantizer)), __import__("mmquant").OptVQModel),
        match="quantizer",
    ),
    bad(
        "OptVQModel.from_pretrained",
        "strict-not-a-bool",
        lambda z: __import__("mmquant").OptVQModel.from_pretrained(str(_saved(z)), strict="no"),
        TypeError,
        "strict='no': expected True",
    ),
    bad(
        "OptVQModel.from_pretrained",
        "config-size-1e9",
        lambda z: _load(_saved(z, _config_edit(latent_channels=10**9))),
        match="latent_channels=1000000000 is larger than MAX_CONFIG_SIZE",
    ),
    bad(
        "MXQVAEPipeline.from_pretrained",
        "missing-tensor-in-stage1",
        lambda z: _pipeline_folder(z, lambda d: _mutate_weights(_drop_first)(d / "stage1")),
        match="tensors missing from the checkpoint",
    ),
    bad(
        "MXQVAEPipeline.from_pretrained",
        "empty-tokenizer-json",
        lambda z: _pipeline_folder(z, lambda d: (d / "tokenizer" / "tokenizer.json").write_bytes(b"")),
        OSError,
        r"tokenizer/tokenizer.json is empty",
    ),
    bad(
        "MXQVAEPipeline.from_pretrained",
        "corrupt-tokenizer-json",
        lambda z: _pipeline_folder(z, lambda d: (d / "tokenizer" / "tokenizer.json").write_text("{not json")),
        OSError,
        r"tokenizer/tokenizer.json is not valid JSON",
    ),
    bad(
        "MXQVAEPipeline.from_pretrained",
        "binary-tokenizer-config",
        lambda z: _pipeline_folder(z, lambda d: (d / "tokenizer" / "tokenizer_config.json").write_bytes(b"\xff\xfe")),
        OSError,
        r"tokenizer_config.json is not valid JSON",
    ),
    bad(
        "MXQVAEPipeline.from_pretrained",
        "corrupt-model-index",
        lambda z: _pipeline_folder(z, lambda d: (d / "model_index.json").write_text("[")),
        OSError,
        r"model_index.json is not valid JSON",
    ),
]


def _pipeline_folder(z, mutate):
    from mmquant.pipelines import MXQVAEPipeline

    folder = z.tmp()
    z.pipeline.save_pretrained(folder)
    mutate(folder)
    return MXQVAEPipeline.from_pretrained(str(folder))


def _family_model(z, family, **kw):
    import mmquant

    t = z.tokenizer
    if family == "optvq":
        return mmquant.create_model("test", **kw)
    if family == "mxqvae":
        return mmquant.create_model("mxqvae-test", mask_token_id=t.mask_token_id, **(z._text_ids() | kw))
    if family == "laviter":
        text = dict(vocab_size=len(t), max_length=12, embed_dim=16, num_heads=2, intermediate_size=32)
        return mmquant.create_model("laviter-test", text_config=text | kw)
    if family == "jwae":
        ids = dict(bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id, unk_token_id=t.unk_token_id)
        return mmquant.create_model("jwae-test", max_text_length=24, **(ids | z._text_ids() | kw))
    if family == "judge":
        from mmquant.models.caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel

        return CaptionMnistJudgeModel(CaptionMnistJudgeConfig(**({"hidden_channels": [4, 4, 8]} | kw)))
    from mmquant.models.mxqvae import MXQVAEPriorConfig, MXQVAEPriorForCausalLM

    base = dict(stage1_config=z.mxqvae.config.to_dict(), n_layer=1, n_head=2, n_embd=32)
    return MXQVAEPriorForCausalLM(MXQVAEPriorConfig(**(base | kw)))


_BIG_FIELDS = [
    ("optvq", {"latent_channels": 10**9}, "latent_channels=1000000000"),
    ("optvq", {"quantizer_config": {"type": "vq", "codebook_size": 10**9}}, r"quantizer_config\['codebook_size'\]"),
    ("optvq", {"image_size": 2**30}, "image_size=1073741824"),
    ("optvq", {"block_out_channels": [8, 10**9]}, r"block_out_channels\[1\]=1000000000"),
    ("mxqvae", {"vocab_size": 10**9}, "vocab_size=1000000000"),
    ("mxqvae", {"max_text_length": 10**9}, "max_text_length=1000000000"),
    ("laviter", {"vocab_size": 10**9}, r"text_config\['vocab_size'\]=1000000000"),
    ("laviter", {"intermediate_size": 10**9}, r"text_config\['intermediate_size'\]"),
    ("jwae", {"image_feature_dim": 10**9}, "image_feature_dim=1000000000"),
    ("jwae", {"vocab_size": 10**9}, "vocab_size=1000000000"),
    ("judge", {"hidden_channels": [4, 4, 10**9]}, r"hidden_channels\[2\]=1000000000"),
    ("prior", {"n_embd": 2**21}, "n_embd=2097152"),
    ("prior", {"n_layer": 10**9}, "n_layer=1000000000"),
]


def _data_cli(z, *argv):
    return _cli("mmquant.data.cli.main", ["build", "caption_mnist", "--config", "quad1", *argv])


ROUND2_SIZE_CASES = [
    bad(
        f"{family} model config",
        f"{next(iter(kw))}-too-large",
        lambda z, f=family, k=kw: _family_model(z, f, **k),
        match=f"{m}.*MAX_CONFIG_SIZE",
    )  # fmt: skip
    for family, kw, m in _BIG_FIELDS
] + [
    bad(
        "codebook_usage.compute",
        "codebook-size-1e12",
        lambda z: _m(z, "codebook_usage", predictions=[[0, 1]], codebook_size=10**12),
        match="codebook_size=1000000000000: expected an integer >= 1 and <= 16777216",
    ),
    bad(
        "codebook_usage.compute",
        "codebook-size-2e24",
        lambda z: _m(z, "codebook_usage", predictions=[[0, 1]], codebook_size=2**25),
        match="codebook_size=33554432",
    ),
    bad(
        "metrics.functional.codebook_usage",
        "codebook-size-1e12",
        lambda z: __import__("mmquant.metrics.functional", fromlist=["x"]).codebook_usage(torch.tensor([0]), 10**12),
        match="codebook_size=1000000000000",
    ),
    bad(
        "MXQVAEPipeline.__call__",
        "num-samples-million",
        lambda z: _pipe(z, num_samples=10**6),
        match=r"num_samples=1000000: expected an integer >= 1 and <= 4096; call the pipeline again",
    ),
    bad("MXQVAEPipeline.__call__", "num-samples-bool", lambda z: _pipe(z, num_samples=True), TypeError, "num_samples"),
    bad("MXQVAEPipeline.__call__", "num-samples-float", lambda z: _pipe(z, num_samples=2.0), TypeError, "num_samp"),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "num-samples-million",
        lambda z: _sample(z, num_samples=10**6),
        match="num_samples=1000000",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "num-samples-times-prefix-rows",
        lambda z: _sample(z, num_samples=4000, prefix=torch.zeros(2, 3, dtype=torch.long)),
        match="num_samples=4000 times 2 prefix rows",
    ),
    bad(
        "build_dataset",
        "num-proc-zero",
        lambda z: _build(z, "caption_mnist", "quad1", num_proc=0),
        match="num_proc=0: expected an integer >= 1",
    ),
    bad(
        "build_dataset",
        "num-proc-huge",
        lambda z: _build(z, "caption_mnist", "quad1", num_proc=10**6),
        match="num_proc=1000000",
    ),
    bad(
        "build_dataset",
        "seed-negative",
        lambda z: _build(z, "caption_mnist", "quad1", seed=-1, num_examples={"test": 1}),
        match="seed=-1: expected an integer >= 0",
    ),
    bad(
        "build_dataset",
        "seed-2**64",
        lambda z: _build(z, "caption_mnist", "quad1", seed=2**64, num_examples={"test": 1}),
        match="seed=18446744073709551616",
    ),
    bad(
        "mmquant-data build",
        "set-seed-negative",
        lambda z: _data_cli(z, "--set", "seed=-7", "--num_examples", "test=1", "--cache_dir", str(z.tmp())),
        SystemExit,
        "mmquant-data: error: .*seed=-7",
    ),
    bad(
        "build_dataset",
        "num-proc-str",
        lambda z: _build(z, "caption_mnist", "quad1", num_proc="2"),
        TypeError,
        "num_p",
    ),
]


def _lrs_ok(lrs):
    return all(math.isfinite(x) and 0 <= x <= 1e-3 * (1 + 1e-6) for x in lrs)


def _sched(kind, steps, warmup=0.05):
    from mmquant.training import make_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = make_scheduler(opt, kind, steps, 1e-3, warmup)
    lrs = []
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs


ROUND2_VALUE_CASES = [
    bad("MXQVAEPipeline.__call__", "seed-negative", lambda z: _pipe(z, seed=-1), match="seed=-1: expected an integer"),
    bad("MXQVAEPipeline.__call__", "seed-2**32", lambda z: _pipe(z, seed=2**32), match="seed=4294967296"),
    bad("MXQVAEPipeline.__call__", "seed-2**70", lambda z: _pipe(z, seed=2**70), match="seed=1180591620717411303424"),
    bad("MXQVAEPipeline.__call__", "seed-bool", lambda z: _pipe(z, seed=True), TypeError, "seed=True"),
    bad("MXQVAEPipeline.__call__", "seed-float", lambda z: _pipe(z, seed=1.0), TypeError, "seed=1.0"),
    ok("MXQVAEPipeline.__call__", "seed-max", lambda z: _pipe(z, seed=2**32 - 1).codes, lambda r: r.shape[0] == 1),
    bad(
        "MXQVAEPipeline.__call__",
        "temperature-tiny",
        lambda z: _pipe(z, temperature=1e-30),
        match=r"temperature=1e-30: expected a finite number in \[0.0001, 10000\].*top_k=1",
    ),
    bad("MXQVAEPipeline.__call__", "temperature-denormal", lambda z: _pipe(z, temperature=5e-324), match="temperat"),
    bad("MXQVAEPipeline.__call__", "temperature-nan", lambda z: _pipe(z, temperature=NAN), match="temperature=nan"),
    bad("MXQVAEPipeline.__call__", "temperature-inf", lambda z: _pipe(z, temperature=INF), match="temperature=inf"),
    bad("MXQVAEPipeline.__call__", "temperature-negative", lambda z: _pipe(z, temperature=-1.0), match="temperatu"),
    bad("MXQVAEPipeline.__call__", "temperature-string", lambda z: _pipe(z, temperature="1"), TypeError, "temper"),
    ok(
        "MXQVAEPipeline.__call__",
        "temperature-smallest-allowed",
        lambda z: _pipe(z, num_samples=2, temperature=1e-4).codes,
        lambda r: r.shape[0] == 2 and int(r.min()) >= 0,
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "temperature-tiny",
        lambda z: _sample(z, temperature=1e-12),
        match="temperature=1e-12",
    ),
    bad(
        "MXQVAEPriorForCausalLM.sample_codes",
        "generator-seed-negative",
        lambda z: _sample(z, generator_seed=-5),
        match="generator_seed=-5",
    ),
    ok(
        "MXQVAEPriorForCausalLM.sample_codes",
        "temperature-largest-allowed",
        lambda z: _sample(z, num_samples=2, temperature=1e4),
        lambda r: r.shape[0] == 2,
    ),
    bad("make_scheduler", "max-steps-zero", lambda z: _sched("onecycle", 0), match="max_steps=0"),
    ok("make_scheduler", "onecycle-one-step", lambda z: _sched("onecycle", 1), _lrs_ok),
    ok("make_scheduler", "onecycle-two-steps", lambda z: _sched("onecycle", 2), _lrs_ok),
    ok("make_scheduler", "onecycle-3-steps", lambda z: _sched("onecycle", 3), _lrs_ok),
    ok("make_scheduler", "onecycle-20-steps", lambda z: _sched("onecycle", 20), lambda r: _lrs_ok(r) and len(r) == 20),
    ok("make_scheduler", "onecycle-no-warmup", lambda z: _sched("onecycle", 50, 0.0), _lrs_ok),
    ok("make_scheduler", "onecycle-all-warmup", lambda z: _sched("onecycle", 7, 1.0), _lrs_ok),
    ok("make_scheduler", "cosine-one-step", lambda z: _sched("cosine", 1), _lrs_ok),
]


def _export(z, config_name):
    from datasets import Dataset, DatasetDict

    from mmquant.data.export import export_parquet

    return export_parquet(DatasetDict({"test": Dataset.from_dict({"a": [1]})}), z.tmp() / "out", config_name)


def _card(z, **changes):
    import yaml

    from conftest import ROOT
    from mmquant.hub.cards import main as cards_main

    data = yaml.safe_load((ROOT / "hub_cards" / "optvq-mnist.yaml").read_text()) | changes
    path = z.tmp() / "hub_cards" / "evil.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return cards_main(["render", str(path)])


def _hub(z, **kw):
    from mmquant.hub.local_server import LocalHubServer

    server = LocalHubServer(z.tmp(), port=0, **kw)
    server._httpd.server_close()
    return server


ROUND2_PATH_CASES = [
    bad("export_parquet", f"config-name-{n}", lambda z, v=v: _export(z, v), match="config_name=.*single folder name")
    for n, v in [("dotdot", "../x"), ("nested", "a/b"), ("absolute", "/tmp/x"), ("dot", "."), ("empty", "")]
] + [
    bad("export_parquet", "config-name-none", lambda z: _export(z, None), TypeError, "config_name=None"),
    bad("cards render", "checkpoint-dir-dotdot", lambda z: _card(z, checkpoint_dir="../../x"), match="checkpoint_dir"),
    bad("cards render", "checkpoint-dir-absolute", lambda z: _card(z, checkpoint_dir="/tmp/x"), match="outside"),
    bad("cards render", "results-file-dotdot", lambda z: _card(z, results_file="../r.json"), match="results_file"),
    bad("cards render", "template-dotdot", lambda z: _card(z, template="../../t.md"), match="template="),
    bad("LocalHubServer", "test-token-on-all-addresses", lambda z: _hub(z, host="0.0.0.0"), match="well-known"),
    bad("LocalHubServer", "test-token-on-ipv6-any", lambda z: _hub(z, host="::"), match="well-known test token"),
    ok("LocalHubServer", "own-token-on-all-addresses", lambda z: _hub(z, host="0.0.0.0", tokens={"s3": "me"}), bool),
    ok("LocalHubServer", "test-token-on-loopback", lambda z: _hub(z, host="127.0.0.1"), bool),
]


ROUND2_CLI_CASES = [
    bad("mmquant-data build", "num-proc-zero", lambda z: _data_cli(z, "--num_proc", "0"), SystemExit, "--num_proc 0"),
    bad("mmquant-data build", "num-proc-negative", lambda z: _data_cli(z, "--num_proc", "-2"), SystemExit, "1 to 256"),
    bad(
        "mmquant-data build",
        "missing-data-dir",
        lambda z: _data_cli(z, "--data_dir", str(z.tmp() / "nope")),
        SystemExit,
        "--data_dir .*nope: not a folder",
    ),
    bad(
        "mmquant zoo",
        "debug-flag-keeps-the-exception",
        lambda z: _cli("mmquant.cli.main", ["zoo", "info", "nope", "--debug"]),
        KeyError,
        "name='nope'",
    ),
]
for _script in TRAIN_SCRIPTS:
    _e = f"{_script.split('/')[1]}"
    ROUND2_CLI_CASES += [
        bad(
            _e,
            "yaml-outside-choices",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "mixed_precision: fp8\n")]),
            SystemExit,
            r"--mixed_precision 'fp8' \(from --config .*\): invalid choice; expected one of \['bf16', 'fp16', 'no'\]",
        ),
        bad(
            _e,
            "yaml-schedule-outside-choices",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "lr_schedule: linear\n")]),
            SystemExit,
            "--lr_schedule 'linear'.*invalid choice",
        ),
        bad(
            _e,
            "yaml-string-for-int",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "batch_size: '8x'\n")]),
            SystemExit,
            "--batch_size",
        ),
        bad(
            _e,
            "yaml-bool-for-int",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "max_steps: true\n")]),
            SystemExit,
            r"--max_steps True \(from --config .*\): expected an integer",
        ),
        bad(
            _e,
            "yaml-list-for-scalar",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "learning_rate: [1, 2]\n")]),
            SystemExit,
            "--learning_rate.*expected a number",
        ),
        bad(
            _e,
            "yaml-seed-negative",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "seed: -3\n")]),
            SystemExit,
            r"--seed -3: expected an integer in \[0, 4294967295\]",
        ),
        bad(
            _e,
            "seed-too-large",
            lambda z, s=_script: _train_args(s, ["--seed", str(2**40)]),
            SystemExit,
            "--seed 1099511627776",
        ),
        bad(
            _e,
            "yaml-null-for-required",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "max_steps: null\n")]),
            SystemExit,
            r"--max_steps None \(from --config .*\): expected a value",
        ),
        bad(
            _e,
            "zero-threads",
            lambda z, s=_script: _train_args(s, ["--num_threads", "0"]),
            SystemExit,
            "--num_threads 0",
        ),
        bad(
            _e,
            "yaml-number-for-string",
            lambda z, s=_script: _train_args(s, ["--config", _yaml(z, "lr_schedule: 5\n")]),
            SystemExit,
            r"--lr_schedule 5 \(from --config .*\): expected a string",
        ),
        ok(
            _e,
            "yaml-valid-values-accepted",
            lambda z, s=_script: _train_args(
                s,
                [
                    *(["--stage1", "."] if "prior" in s else []),
                    "--config",
                    _yaml(z, "seed: 3\nmixed_precision: bf16\n"),
                ],
            ),
            lambda r: r.seed == 3 and r.mixed_precision == "bf16",
        ),
    ]

_SAMPLE_OPTIONS = {
    "optvq/train_optvq.py": ["train_samples", "eval_samples"],
    "mxqvae/train_mxqvae.py": ["train_examples", "test_examples", "degree_eval_examples"],
    "mxqvae/train_mxqvae_prior.py": ["train_examples", "test_examples"],
    "jwae/train_jwae.py": ["train_examples", "test_examples", "eval_images"],
    "laviter/train_laviter.py": ["train_examples", "test_examples", "eval_images", "r_precision_candidates"],
}
for _script, _options in _SAMPLE_OPTIONS.items():
    _e = f"{_script.split('/')[1]}"
    _base = ["--stage1", "."] if "prior" in _script else []
    for _opt in _options:
        ROUND2_CLI_CASES += [
            bad(
                _e,
                f"negative-{_opt}",
                lambda z, s=_script, o=_opt, b=_base: _train_args(s, [*b, f"--{o}", "-5"]),
                SystemExit,
                f"--{_opt} -5: expected >= 1",
            ),
            bad(
                _e,
                f"yaml-negative-{_opt}",
                lambda z, s=_script, o=_opt, b=_base: _train_args(s, [*b, "--config", _yaml(z, f"{o}: -1\n")]),
                SystemExit,
                f"--{_opt} -1: expected >= 1",
            ),
            bad(
                _e,
                f"zero-{_opt}",
                lambda z, s=_script, o=_opt, b=_base: _train_args(s, [*b, f"--{o}", "0"]),
                SystemExit,
                f"--{_opt} 0",
            ),
        ]
ROUND2_CLI_CASES += [
    bad(
        "train_optvq.py",
        "yaml-dataset-outside-choices",
        lambda z: _train_args("optvq/train_optvq.py", ["--config", _yaml(z, "dataset: cifar10\n")]),
        SystemExit,
        r"--dataset 'cifar10' \(from --config .*\): invalid choice; expected one of \['mnist', 'synthetic'\]",
    ),
    bad(
        "train_optvq.py",
        "yaml-model-outside-choices",
        lambda z: _train_args("optvq/train_optvq.py", ["--config", _yaml(z, "model: optvq-imagenet\n")]),
        SystemExit,
        "--model 'optvq-imagenet'.*invalid choice",
    ),
    bad(
        "train_optvq.py",
        "log-steps-zero",
        lambda z: _train_args("optvq/train_optvq.py", ["--log_steps", "0"]),
        SystemExit,
        "--log_steps 0: expected >= 1",
    ),
    bad(
        "train_optvq.py",
        "yaml-log-steps-negative",
        lambda z: _train_args("optvq/train_optvq.py", ["--config", _yaml(z, "log_steps: -10\n")]),
        SystemExit,
        "--log_steps -10",
    ),
    bad(
        "train_optvq.py",
        "missing-mnist-root",
        lambda z: _train_args("optvq/train_optvq.py", ["--mnist_root", str(z.tmp() / "nope")]),
        SystemExit,
        "--mnist_root .*nope does not exist; expected an existing folder",
    ),
    bad(
        "train_mxqvae.py",
        "yaml-quantizer-outside-choices",
        lambda z: _train_args("mxqvae/train_mxqvae.py", ["--config", _yaml(z, "quantizer: rq\n")]),
        SystemExit,
        "--quantizer 'rq'.*invalid choice",
    ),
    bad(
        "train_mxqvae.py",
        "yaml-model-config-not-a-mapping-string",
        lambda z: _train_args("mxqvae/train_mxqvae.py", ["--config", _yaml(z, "model_config: '{bad'\n")]),
        SystemExit,
        "--model_config",
    ),
    bad(
        "train_mxqvae_prior.py",
        "missing-stage1",
        lambda z: _train_args("mxqvae/train_mxqvae_prior.py", ["--stage1", str(z.tmp() / "nope")]),
        SystemExit,
        "--stage1 .*nope does not exist",
    ),
    bad(
        "train_laviter.py",
        "yaml-phase-outside-choices",
        lambda z: _train_args("laviter/train_laviter.py", ["--config", _yaml(z, "phase: all\n")]),
        SystemExit,
        "--phase 'all'.*invalid choice",
    ),
    bad(
        "train_laviter.py",
        "yaml-flag-not-bool",
        lambda z: _train_args("laviter/train_laviter.py", ["--config", _yaml(z, "train_image_backbone: 'yes'\n")]),
        SystemExit,
        "--train_image_backbone",
    ),
    bad(
        "train_laviter.py",
        "missing-init-from",
        lambda z: _train_args("laviter/train_laviter.py", ["--init_from", str(z.tmp() / "nope")]),
        SystemExit,
        "--init_from .*nope",
    ),
    bad(
        "train_jwae.py",
        "yaml-dataset-outside-choices",
        lambda z: _train_args("jwae/train_jwae.py", ["--config", _yaml(z, "dataset: imagenet\n")]),
        SystemExit,
        "--dataset 'imagenet'.*invalid choice",
    ),
    bad(
        "train_jwae.py",
        "missing-image-features",
        lambda z: _train_args("jwae/train_jwae.py", ["--image_features", str(z.tmp() / "f.safetensors")]),
        SystemExit,
        "--image_features .*f.safetensors does not exist; expected an existing file",
    ),
]

ROUND2_CASES = (
    ROUND2_QUANTIZER_CASES
    + ROUND2_LOADING_CASES
    + ROUND2_SIZE_CASES
    + ROUND2_VALUE_CASES
    + ROUND2_PATH_CASES
    + ROUND2_CLI_CASES
)


ALL_CASES = (
    QUANTIZER_CASES
    + QUANTIZER_CONFIG_CASES
    + FUNCTIONAL_QUANTIZER_CASES
    + OPTVQ_CASES
    + OPTVQ_CONFIG_CASES
    + MXQVAE_CASES
    + PRIOR_CASES
    + PIPELINE_CASES
    + LAVITER_CASES
    + JWAE_CASES
    + JUDGE_CASES
    + DATA_CASES
    + BUILDER_CASES
    + METRIC_CASES
    + LOADING_CASES
    + CLI_CASES
    + ROUND2_CASES
)


@pytest.mark.parametrize("case", ALL_CASES)
def test_bad_input_corpus(case: Case, zoo, capsys):
    if case.error is None:
        result = case.call(zoo)
        assert case.check(result), f"{case.entry}::{case.name}: unexpected result {result!r}"[:2000]
        return
    if case.error is SystemExit:  # a command line refusing its arguments: non-zero exit, the reason on stderr
        with pytest.raises(SystemExit) as exit_info:
            case.call(zoo)
        assert exit_info.value.code not in (0, None)
        said = f"{exit_info.value.code}\n{capsys.readouterr().err}"
        assert re.search(case.match, said), f"{case.match!r} not in {said!r}"
        return
    with pytest.raises(case.error, match=case.match):
        case.call(zoo)
