"""OptVQModel: Auto-class dispatch, save/load round trip, batch equivalence, size cap, bad inputs, diffusers."""

import json

import pytest
import torch
from transformers import AutoModel

import mmquant
from mmquant import OptVQConfig
from mmquant.data import synthetic_images


@pytest.fixture
def model():
    return mmquant.create_model("test").eval()


@pytest.fixture
def images():
    return synthetic_images(4, 16, 3, seed=1)


@pytest.mark.parametrize("name", ["test", "test-vqgan"])
def test_save_load_identical_outputs(tmp_path, name):
    model = mmquant.create_model(name)
    size = model.config.image_size
    model(synthetic_images(8, size, 3))  # a training step's buffers (k-means flag, counts) must round-trip too
    model.eval()
    x = synthetic_images(3, size, 3, seed=2)
    ref = model(x)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    out = loaded(x)
    assert torch.equal(out.indices, ref.indices)
    # same weights bit for bit; the convolution kernels may pick another summation order for the loaded buffers
    torch.testing.assert_close(out.reconstruction, ref.reconstruction, rtol=1e-5, atol=1e-5)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_encode_quantize_decode_and_indices_round_trip(model, images):
    latents = model.encode(images)
    assert latents.shape == (4, 8, 4, 4)
    q = model.quantize(latents)
    assert q.quantized.shape == latents.shape and q.indices.shape == (4, 4, 4, 2)
    indices = model.encode_to_indices(images)
    assert torch.equal(indices, q.indices)
    torch.testing.assert_close(model.decode_indices(indices), model.decode(q.quantized))
    torch.testing.assert_close(model.decode_indices(indices), model(images).reconstruction)


def test_swap_vq_for_optvq_by_config_alone(tmp_path, images):
    for qtype in ("vq", "sinkhorn", "residual"):
        qcfg = {"type": qtype, "codebook_size": 16}
        if qtype == "residual":
            qcfg.update(num_stages=2, stage_type="sinkhorn")
        config = mmquant.get_config("test", quantizer_config=qcfg)
        model = AutoModel.from_config(config)
        expected = {"vq": "VectorQuantizer", "sinkhorn": "SinkhornQuantizer", "residual": "ResidualQuantizer"}
        assert type(model.quantizer).__name__ == expected[qtype]
        out = model(images)
        assert torch.isfinite(out.loss)
        model.eval()
        idx = model.encode_to_indices(images)
        assert model.decode_indices(idx).shape == images.shape


def test_training_reduces_loss_and_uses_the_codebook():
    torch.manual_seed(0)
    model = mmquant.create_model("test")
    data = synthetic_images(128, 16, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses, usage = [], []
    for _ in range(40):
        out = model(data[torch.randint(0, 128, (32,))])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
        usage.append(out.usage.item())
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert min(usage[-5:]) > 0.8


def test_bf16_autocast_training_step_is_finite(images):
    model = mmquant.create_model("test")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    "bad,match,error",
    [
        (torch.full((2, 3, 16, 16), float("nan")), "NaN", ValueError),
        (torch.full((2, 3, 16, 16), float("inf")), "NaN or Inf", ValueError),
        (torch.rand(3, 16, 16), r"expected shape \(batch, 3, 16, 16\)", ValueError),
        (torch.rand(2, 1, 16, 16), "3 channels", ValueError),
        (torch.rand(2, 3, 32, 32), "16x16", ValueError),
        (torch.randint(0, 255, (2, 3, 16, 16)), "floating-point", TypeError),  # a wrong dtype is a TypeError
        (torch.rand(2, 3, 16, 16).tolist(), "floating-point", TypeError),
    ],
)
def test_bad_pixel_values(model, bad, match, error):
    for call in (model, model.encode, model.encode_to_indices):
        with pytest.raises(error, match=f"pixel_values: .*{match}"):
            call(bad)


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.full((1, 4, 4, 2), 32), r"\[0, 32\)"),
        (torch.full((1, 4, 4, 2), -1), r"\[0, 32\)"),
        (torch.zeros(1, 4, 4), r"\(batch, 4, 4, 2\)"),
        (torch.zeros(1, 8, 8, 2, dtype=torch.long), r"\(batch, 4, 4, 2\)"),
        (torch.zeros(1, 4, 4, 2), "integer"),
    ],
)
def test_bad_indices(model, bad, match):
    with pytest.raises(ValueError, match=match):
        model.decode_indices(bad)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"quantizer_config": {"type": "lfq"}}, "unknown quantizer type"),
        ({"backbone": "vit"}, "backbone"),
        ({"image_size": 18}, "divisible"),
        ({"embed_dim": 6, "quantizer_config": {"type": "vq", "num_heads": 4}}, "num_heads"),
        ({"quantizer_config": {"type": "vq", "dim": 4}}, "embed_dim"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptVQConfig(**kwargs)


def test_unknown_quantizer_type_in_a_saved_config(tmp_path, model):
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["quantizer_config"]["type"] = "fsq"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown quantizer type"):
        AutoModel.from_pretrained(tmp_path)


def test_unknown_named_size():
    with pytest.raises(ValueError, match="unknown"):
        mmquant.create_model("optvq-huge")


def test_diffusers_wrapper_stands_where_vqmodel_stands(tmp_path, model, images):
    from diffusers import DDIMScheduler, LDMPipeline, UNet2DModel

    vq = mmquant.OptVQDiffusersModel.from_optvq(model).eval()
    torch.testing.assert_close(vq(images).sample, model(images).reconstruction, rtol=1e-6, atol=1e-6)
    latents = vq.encode(images).latents
    torch.testing.assert_close(vq.decode(latents).sample, model(images).reconstruction, rtol=1e-6, atol=1e-6)
    vq.save_pretrained(tmp_path)
    loaded = mmquant.OptVQDiffusersModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(images).sample, vq(images).sample, rtol=1e-6, atol=1e-6)
    unet = UNet2DModel(
        sample_size=4,
        in_channels=8,
        out_channels=8,
        block_out_channels=(16, 16),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    pipe = LDMPipeline(vqvae=vq, unet=unet, scheduler=DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=2, num_inference_steps=2, output_type="np", generator=torch.manual_seed(0))
    assert out.images.shape == (2, 16, 16, 3)
